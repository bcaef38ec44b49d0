"""RSE expressions: the subset of Rucio's grammar that rules use to say where replicas go.

The grammar and its meaning follow Rucio's ``lib/rucio/core/rse_expression_parser.py``; every
expression accepted here is a valid Rucio expression with the same meaning, except that a bare
term is only an RSE name (Rucio also matches a boolean attribute of that name; see ``docs/ddm.md``)::

    expression := operand (operator operand)*       all operators have the same precedence and
    operator   := '&' | '|' | '\\'                   group from the left, as in Rucio:
    operand    := '(' expression ')' | term          A|B&C means (A|B)&C
    term       := key '=' value | key '<' number | key '>' number | name | '*'
    key        := [A-Za-z0-9._-]+
    value      := [A-Za-z0-9_-]+
    name       := [A-Za-z0-9]+ ([_-][A-Za-z0-9]+)*

``&`` is intersection, ``|`` union and ``\\`` difference (``A\\B``: in A and not in B; write
``*\\B`` for "every RSE but B"). No spaces. ``key<number`` / ``key>number`` keep the RSEs whose
attribute parses as a number below / above it. A bare ``name`` is an RSE name.

Attributes of an RSE: its ``attributes`` dict plus implicit ones: ``rse`` (name) and ``rse_type``
(DISK/TAPE) from the model, ``site`` (atlas_site) and ``type`` (the token after the last ``_`` of
the name, e.g. DATADISK) unless ``attributes`` sets them. ``tier``, ``cloud``, ``country`` and any
other key match only when ``attributes`` holds them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gridtwin.errors import ConfigError
from gridtwin.platform.model import RSE

__all__ = [
    "All",
    "AttrCompare",
    "AttrEqual",
    "Expr",
    "Operation",
    "RSEName",
    "parse_rse_expression",
    "resolve_rse_expression",
    "rse_attribute",
    "rse_attributes",
]

OPERATORS = {"&": "intersection", "|": "union", "\\": "difference"}
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_VALUE_RE = re.compile(r"[A-Za-z0-9_-]+")
_NAME_RE = re.compile(r"[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*")
_TERM_HINT = "an RSE name, key=value, key<number, key>number, '*' or '('"
_ALLOWED = "letters, digits, '.', '_', '-', '=', '<', '>', '*', '&', '|', '\\', '(' and ')'"


# --- attributes -----------------------------------------------------------------------------------


def rse_attribute(rse: RSE, key: str) -> str | None:
    """The value of attribute ``key`` of ``rse`` (explicit or implicit), or None if it has none."""
    if key == "rse":
        return rse.name
    if key == "rse_type":
        return rse.rse_type
    value = rse.attributes.get(key)
    if value is not None:
        return str(value)
    if key == "site":
        return rse.atlas_site
    if key == "type":
        head, sep, token = rse.name.rpartition("_")
        return token if sep and head and token else None
    return None


def rse_attributes(rse: RSE) -> dict[str, str]:
    """Every attribute an expression can match on ``rse``: ``attributes`` plus the implicit ones."""
    out = {str(k): str(v) for k, v in rse.attributes.items()}
    for key in ("site", "type", "rse", "rse_type"):
        value = rse_attribute(rse, key)
        if value is not None:
            out[key] = value
    return out


def _as_number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


# --- expression tree ------------------------------------------------------------------------------


class Expr:
    """A parsed RSE expression; immutable, so parsed trees are shared through a cache."""

    __slots__ = ()

    def evaluate(self, rses: Mapping[str, RSE]) -> list[str]:
        """Names of the RSEs in ``rses`` that the expression selects, sorted."""
        return sorted(self._select(rses))

    def _select(self, rses: Mapping[str, RSE]) -> set[str]:
        raise NotImplementedError

    def terms(self) -> list[Expr]:
        """The leaf terms, left to right."""
        return [self]


@dataclass(frozen=True, slots=True)
class All(Expr):
    """``*``: every RSE."""

    def _select(self, rses: Mapping[str, RSE]) -> set[str]:
        return set(rses)

    def __str__(self) -> str:
        return "*"


@dataclass(frozen=True, slots=True)
class RSEName(Expr):
    """A bare name: the RSE of that name, if it exists."""

    name: str

    def _select(self, rses: Mapping[str, RSE]) -> set[str]:
        return {self.name} if self.name in rses else set()

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class AttrEqual(Expr):
    """``key=value``: RSEs whose attribute ``key`` equals ``value`` (exact, case-sensitive)."""

    key: str
    value: str

    def _select(self, rses: Mapping[str, RSE]) -> set[str]:
        key, value = self.key, self.value
        return {name for name, rse in rses.items() if rse_attribute(rse, key) == value}

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


@dataclass(frozen=True, slots=True)
class AttrCompare(Expr):
    """``key<number`` or ``key>number``: RSEs whose attribute ``key`` is a number below / above it."""

    key: str
    op: str
    number: float
    text: str

    def _select(self, rses: Mapping[str, RSE]) -> set[str]:
        out: set[str] = set()
        for name, rse in rses.items():
            x = _as_number(rse_attribute(rse, self.key))
            if x is not None and (x < self.number if self.op == "<" else x > self.number):
                out.add(name)
        return out

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.text}"


@dataclass(frozen=True, slots=True)
class Operation(Expr):
    """``left op right`` with op ``&`` (intersection), ``|`` (union) or ``\\`` (difference)."""

    op: str
    left: Expr
    right: Expr

    def _select(self, rses: Mapping[str, RSE]) -> set[str]:
        a = self.left._select(rses)
        b = self.right._select(rses)
        if self.op == "&":
            return a & b
        if self.op == "|":
            return a | b
        return a - b

    def terms(self) -> list[Expr]:
        return self.left.terms() + self.right.terms()

    def __str__(self) -> str:
        right = f"({self.right})" if isinstance(self.right, Operation) else str(self.right)
        return f"{self.left}{self.op}{right}"


# --- parser ---------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the characters; positions in messages are 1-based columns."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def fail(self, what: str, at: int | None = None, detail: str = "") -> ConfigError:
        at = self.i if at is None else at
        where = f"at position {at + 1}" + (" (end of expression)" if at >= len(self.text) else "")
        return ConfigError(f'RSE expression "{self.text}": {what} {where}' + (f"; {detail}" if detail else ""))

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def describe(self, ch: str) -> str:
        return "end of expression" if not ch else f"'{ch}'"

    def expression(self, opened_at: int | None) -> Expr:
        left = self.operand()
        while True:
            ch = self.peek()
            if ch in OPERATORS and ch:
                op_at = self.i
                self.i += 1
                if not self.peek() or self.peek() in OPERATORS or self.peek() == ")":
                    raise self.fail(f"dangling operator '{ch}'", op_at,
                                    f"expected {_TERM_HINT} after it, got {self.describe(self.peek())}")
                left = Operation(ch, left, self.operand())
            elif ch == ")":
                if opened_at is None:
                    raise self.fail("unexpected ')'", None, "no '(' is open")
                return left
            elif not ch:
                if opened_at is not None:
                    raise self.fail("missing ')'", None, f"the '(' at position {opened_at + 1} is not closed")
                return left
            elif ch in _KEY_CHARS or ch in "(*=<>":
                raise self.fail("expected an operator '&', '|' or '\\'", None, f"got '{ch}'")
            else:
                raise self.bad_char()

    def operand(self) -> Expr:
        ch = self.peek()
        if ch == "(":
            opened = self.i
            self.i += 1
            if self.peek() == ")":
                raise self.fail("empty parentheses", opened, f"expected {_TERM_HINT} inside")
            inner = self.expression(opened)
            self.i += 1  # the ')' that expression() stopped on
            return inner
        if ch == "*":
            self.i += 1
            return All()
        if ch and ch in _KEY_CHARS:
            return self.term()
        if not ch:
            raise self.fail(f"expected {_TERM_HINT}")
        if ch in OPERATORS or ch in "=<>)":
            raise self.fail(f"expected {_TERM_HINT}", None, f"got '{ch}'")
        raise self.bad_char()

    def bad_char(self) -> ConfigError:
        ch = self.text[self.i]
        hint = "spaces are not allowed" if ch.isspace() else f"allowed: {_ALLOWED}"
        return self.fail(f"unexpected character {ch!r}", None, hint)

    def term(self) -> Expr:
        start = self.i
        while self.peek() and self.peek() in _KEY_CHARS:
            self.i += 1
        word = self.text[start : self.i]
        op = self.peek()
        if op in ("=", "<", ">") and op:
            self.i += 1
            m = _VALUE_RE.match(self.text, self.i)
            if m is None:
                nxt = self.peek()
                got = self.describe(nxt)
                raise self.fail(f"expected a value after '{word}{op}'", None,
                                f"got {got}; a value is letters, digits, '_' and '-'")
            value = m.group()
            self.i = m.end()
            if self.peek() == ".":
                raise self.fail(f"'.' in the value of '{word}{op}'", None,
                                "Rucio's grammar allows letters, digits, '_' and '-' in values")
            if op == "=":
                return AttrEqual(word, value)
            number = _as_number(value)
            if number is None:
                raise self.fail(f"expected a number after '{word}{op}'", m.start(), f"got '{value}'")
            return AttrCompare(word, op, number, value)
        if not _NAME_RE.fullmatch(word):
            raise self.fail(f"'{word}' is neither an RSE name nor key=value", start,
                            "an RSE name is letters and digits joined by single '_' or '-'")
        return RSEName(word)


def parse_rse_expression(text: str) -> Expr:
    """Parse ``text``; raise ``ConfigError`` naming the expression, the position and what was expected.

    Parsed trees are cached (``functools.lru_cache``), so rules sharing an expression share one tree.
    """
    if not isinstance(text, str):
        raise ConfigError(f"RSE expression must be a string, got {type(text).__name__} {text!r}")
    return _parse(text)


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> Expr:
    if not text:
        raise ConfigError(f'RSE expression "": empty; expected {_TERM_HINT}')
    return _Parser(text).expression(None)


def resolve_rse_expression(text: str, rses: Mapping[str, RSE]) -> list[str]:
    """The sorted RSE names ``text`` selects among ``rses``; ``ConfigError`` if it does not parse or
    matches no RSE (as Rucio's ``InvalidRSEExpression``)."""
    expr = parse_rse_expression(text)
    names = expr.evaluate(rses)
    if not names:
        raise ConfigError(f'RSE expression "{text}": matches no RSE{_diagnose(expr, rses)}')
    return names


def _diagnose(expr: Expr, rses: Mapping[str, RSE]) -> str:
    """Hints for an empty result: unknown RSE names and attribute keys no RSE has."""
    if not rses:
        return " (the platform has no RSEs)"
    unknown: list[str] = []
    missing: list[str] = []
    for t in expr.terms():
        if isinstance(t, RSEName) and t.name not in rses and t.name not in unknown:
            unknown.append(t.name)
        elif (
            isinstance(t, AttrEqual | AttrCompare)
            and t.key not in missing
            and all(rse_attribute(r, t.key) is None for r in rses.values())
        ):
            missing.append(t.key)
    hints = []
    if unknown:
        hints.append("unknown RSE " + ", ".join(unknown))
    if missing:
        hints.append("no RSE has attribute " + ", ".join(repr(k) for k in missing))
    return f" ({'; '.join(hints)})" if hints else ""

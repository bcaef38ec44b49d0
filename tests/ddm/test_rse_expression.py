"""RSE expressions: Rucio's grammar subset, its left-to-right grouping, implicit attributes, errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridtwin.ddm.rse_expression import (
    All,
    AttrEqual,
    Operation,
    RSEName,
    parse_rse_expression,
    resolve_rse_expression,
    rse_attribute,
    rse_attributes,
)
from gridtwin.errors import ConfigError
from gridtwin.platform.model import RSE


def _rse(name: str, atlas_site: str, rse_type: str = "DISK", **attrs: str) -> RSE:
    return RSE(name, atlas_site, rse_type, 10**15, 0, attributes=dict(attrs))


RSES = {
    r.name: r
    for r in [
        _rse("CERN-PROD_DATADISK", "CERN-PROD", tier="0", cloud="CERN", country="ch"),
        _rse("CERN-PROD_DATATAPE", "CERN-PROD", "TAPE", tier="0", cloud="CERN", country="ch"),
        _rse("BNL-ATLAS_DATADISK", "BNL-ATLAS", tier="1", cloud="US", country="us", freespace="120"),
        _rse("BNL-ATLAS_DATATAPE", "BNL-ATLAS", "TAPE", tier="1", cloud="US", country="us"),
        _rse("FZK-LCG2_DATADISK", "FZK-LCG2", tier="1", cloud="DE", country="de", freespace="40"),
        _rse("FZK-LCG2_SCRATCHDISK", "FZK-LCG2", tier="1", cloud="DE", country="de"),
        _rse("MWT2_DATADISK", "MWT2", tier="2", cloud="US", country="us", freespace="7"),
        _rse("DESY-HH_LOCALGROUPDISK", "DESY-HH", tier="2", cloud="DE", site="DESY", istape="False"),
    ]
}
CERN_DD, CERN_DT = "CERN-PROD_DATADISK", "CERN-PROD_DATATAPE"
BNL_DD, BNL_DT = "BNL-ATLAS_DATADISK", "BNL-ATLAS_DATATAPE"
FZK_DD, FZK_SD = "FZK-LCG2_DATADISK", "FZK-LCG2_SCRATCHDISK"
MWT2, DESY = "MWT2_DATADISK", "DESY-HH_LOCALGROUPDISK"


CASES = [
    ("*", list(RSES)),
    ("tier=1", [BNL_DD, BNL_DT, FZK_DD, FZK_SD]),
    ("tier=1&type=DATADISK", [BNL_DD, FZK_DD]),
    ("type=DATADISK", [CERN_DD, BNL_DD, FZK_DD, MWT2]),
    ("type=SCRATCHDISK", [FZK_SD]),
    ("type=LOCALGROUPDISK", [DESY]),
    ("rse_type=TAPE", [CERN_DT, BNL_DT]),
    ("cloud=US", [BNL_DD, BNL_DT, MWT2]),
    ("cloud=US\\rse_type=TAPE", [BNL_DD, MWT2]),
    ("cloud=US|cloud=DE", [BNL_DD, BNL_DT, FZK_DD, FZK_SD, MWT2, DESY]),
    ("country=ch", [CERN_DD, CERN_DT]),
    ("site=FZK-LCG2", [FZK_DD, FZK_SD]),
    ("site=DESY", [DESY]),  # the attribute overrides atlas_site
    ("rse=MWT2_DATADISK", [MWT2]),
    ("MWT2_DATADISK", [MWT2]),
    ("MWT2_DATADISK|CERN-PROD_DATATAPE", [MWT2, CERN_DT]),
    ("*\\rse_type=TAPE", [CERN_DD, BNL_DD, FZK_DD, FZK_SD, MWT2, DESY]),
    ("freespace>50", [BNL_DD]),
    ("freespace<50", [FZK_DD, MWT2]),
    ("freespace>-1", [BNL_DD, FZK_DD, MWT2]),
    ("tier<2", [CERN_DD, CERN_DT, BNL_DD, BNL_DT, FZK_DD, FZK_SD]),
    ("tier>0", [BNL_DD, BNL_DT, FZK_DD, FZK_SD, MWT2, DESY]),
    ("istape=False", [DESY]),
    ("((tier=1))", [BNL_DD, BNL_DT, FZK_DD, FZK_SD]),
    # Rucio groups from the left, with no precedence between operators:
    ("cloud=DE|cloud=US&tier=2", [MWT2, DESY]),
    ("cloud=DE|(cloud=US&tier=2)", [FZK_DD, FZK_SD, MWT2, DESY]),
    ("tier=2&cloud=US|cloud=DE", [FZK_DD, FZK_SD, MWT2, DESY]),
    ("*\\cloud=US\\rse_type=TAPE", [CERN_DD, FZK_DD, FZK_SD, DESY]),
    ("*\\(cloud=US\\rse_type=TAPE)", [CERN_DD, CERN_DT, BNL_DT, FZK_DD, FZK_SD, DESY]),
    ("type=DATADISK\\cloud=US|site=CERN-PROD", [CERN_DD, CERN_DT, FZK_DD]),
    ("type=DATADISK\\(cloud=US|site=CERN-PROD)", [FZK_DD]),
    ("(tier=0|tier=1)&(rse_type=DISK\\type=SCRATCHDISK)", [CERN_DD, BNL_DD, FZK_DD]),
    ("tier=1&cloud=FR", []),
    ("NOPE_DATADISK", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_hand_checked_expressions(text: str, expected: list[str]) -> None:
    assert parse_rse_expression(text).evaluate(RSES) == sorted(expected)


def test_left_to_right_tree_shape() -> None:
    a, b, c = RSEName("A"), RSEName("B"), RSEName("C")
    assert parse_rse_expression("A|B&C") == Operation("&", Operation("|", a, b), c)
    assert parse_rse_expression("A|(B&C)") == Operation("|", a, Operation("&", b, c))
    assert parse_rse_expression("A\\B\\C") == Operation("\\", Operation("\\", a, b), c)
    assert parse_rse_expression("*&tier=1") == Operation("&", All(), AttrEqual("tier", "1"))


def test_implicit_attributes() -> None:
    r = RSES[FZK_SD]
    attrs = rse_attributes(r)
    assert attrs["rse"] == FZK_SD and attrs["site"] == "FZK-LCG2"
    assert attrs["type"] == "SCRATCHDISK" and attrs["rse_type"] == "DISK"
    assert attrs["tier"] == "1" and attrs["cloud"] == "DE"
    plain = RSE("TESTDISK", "SOMEWHERE")
    assert rse_attribute(plain, "type") is None  # no '_': no implicit type
    assert rse_attribute(plain, "tier") is None
    # explicit attributes win, except rse and rse_type that come from the model
    odd = RSE("X_Y", "S", "TAPE", attributes={"type": "Z", "rse_type": "DISK", "rse": "other"})
    rses = {"X_Y": odd}
    assert parse_rse_expression("type=Z").evaluate(rses) == ["X_Y"]
    assert parse_rse_expression("type=Y").evaluate(rses) == []
    assert parse_rse_expression("rse_type=TAPE").evaluate(rses) == ["X_Y"]
    assert parse_rse_expression("rse=X_Y").evaluate(rses) == ["X_Y"]


def test_parse_is_cached_and_round_trips() -> None:
    assert parse_rse_expression("tier=1&type=DATADISK") is parse_rse_expression("tier=1&type=DATADISK")
    for text, _ in CASES:
        expr = parse_rse_expression(text)
        assert parse_rse_expression(str(expr)) == expr


def test_resolve_returns_sorted_names() -> None:
    assert resolve_rse_expression("cloud=US", RSES) == sorted([BNL_DD, BNL_DT, MWT2])


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("tier=1&cloud=FR", "matches no RSE"),
        ("NOPE_DATADISK|OTHER", "unknown RSE NOPE_DATADISK, OTHER"),
        ("tierx=1", "no RSE has attribute 'tierx'"),
        ("speed>5", "no RSE has attribute 'speed'"),
    ],
)
def test_resolve_empty_result_is_an_error(text: str, hint: str) -> None:
    with pytest.raises(ConfigError, match="matches no RSE") as info:
        resolve_rse_expression(text, RSES)
    msg = str(info.value)
    assert msg.startswith(f'RSE expression "{text}"') and hint in msg


def test_resolve_on_an_empty_platform() -> None:
    with pytest.raises(ConfigError, match="no RSEs"):
        resolve_rse_expression("*", {})


MALFORMED = [
    ("tier=1&(type=DATADISK", "missing ')' at position 22 (end of expression); the '(' at position 8"),
    ("(A|B", "missing ')' at position 5"),
    ("((A)", "the '(' at position 1 is not closed"),
    ("A|B)", "unexpected ')' at position 4"),
    (")A", "at position 1; got ')'"),
    ("", "empty"),
    ("A|", "dangling operator '|' at position 2"),
    ("A&&B", "dangling operator '&' at position 2"),
    ("(A|)", "dangling operator '|' at position 3"),
    ("&A", "at position 1; got '&'"),
    ("\\A", "at position 1; got '\\'"),
    ("()", "empty parentheses at position 1"),
    ("A(B)", "expected an operator '&', '|' or '\\' at position 2"),
    ("*A", "expected an operator"),
    ("A B", "unexpected character ' ' at position 2; spaces are not allowed"),
    ("tier=1 ", "spaces are not allowed"),
    ("A$B", "unexpected character '$' at position 2"),
    ("A,B", "unexpected character ','"),
    ("tier=", "expected a value after 'tier=' at position 6"),
    ("=DISK", "at position 1; got '='"),
    ("A=B=C", "expected an operator '&', '|' or '\\' at position 4; got '='"),
    ("tier<one", "expected a number after 'tier<' at position 6; got 'one'"),
    ("freespace>1.5", "'.' in the value of 'freespace>'"),
    ("a..b", "'a..b' is neither an RSE name nor key=value at position 1"),
    ("_DATADISK", "neither an RSE name"),
    ("X__Y", "neither an RSE name"),
]


@pytest.mark.parametrize(("text", "fragment"), MALFORMED)
def test_malformed_expressions(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_rse_expression(text)
    msg = str(info.value)
    assert msg.startswith(f'RSE expression "{text}": ')
    assert fragment in msg


def test_non_string_expression() -> None:
    with pytest.raises(ConfigError, match="must be a string"):
        parse_rse_expression(["tier=1"])  # type: ignore[arg-type]


# --- property: parsing a rendered tree evaluates to the same set algebra ---------------------------

_TERMS = ["*", "tier=1", "tier=2", "cloud=US", "cloud=DE", "rse_type=TAPE", "type=DATADISK", MWT2, "freespace>30"]


def _trees(depth: int) -> st.SearchStrategy[tuple[str, frozenset[str]]]:
    leaves = st.sampled_from(_TERMS).map(lambda t: (t, frozenset(parse_rse_expression(t).evaluate(RSES))))
    if depth == 0:
        return leaves

    def combine(args: tuple[tuple[str, frozenset[str]], str, tuple[str, frozenset[str]]]) -> tuple[str, frozenset]:
        (lt, ls), op, (rt, rs) = args
        value = {"&": ls & rs, "|": ls | rs, "\\": ls - rs}[op]
        return f"({lt}){op}({rt})", frozenset(value)

    sub = _trees(depth - 1)
    return st.one_of(leaves, st.tuples(sub, st.sampled_from(["&", "|", "\\"]), sub).map(combine))


@settings(max_examples=150, deadline=None)
@given(_trees(3))
def test_parenthesised_trees_match_set_algebra(tree: tuple[str, frozenset[str]]) -> None:
    text, expected = tree
    assert parse_rse_expression(text).evaluate(RSES) == sorted(expected)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_TERMS), min_size=1, max_size=5), st.lists(st.sampled_from("&|\\"), max_size=4))
def test_flat_chains_group_from_the_left(terms: list[str], ops: list[str]) -> None:
    ops = ops[: len(terms) - 1]
    terms = terms[: len(ops) + 1]
    acc = set(parse_rse_expression(terms[0]).evaluate(RSES))
    for op, t in zip(ops, terms[1:], strict=True):
        s = set(parse_rse_expression(t).evaluate(RSES))
        acc = acc & s if op == "&" else acc | s if op == "|" else acc - s
    text = terms[0] + "".join(op + t for op, t in zip(ops, terms[1:], strict=True))
    assert parse_rse_expression(text).evaluate(RSES) == sorted(acc)


def test_expressions_on_the_built_in_grid():
    """RSEs of the built-in grid carry tier, cloud and country from their queues."""
    from gridtwin.config import scenario_from_dict
    from gridtwin.scenario import build_platform

    rses = build_platform(scenario_from_dict({})).rses
    t1_disk = resolve_rse_expression("tier=1&type=DATADISK", rses)
    assert len(t1_disk) == 11  # one DATADISK per Tier-1
    assert all(rses[r].rse_type == "DISK" for r in t1_disk)
    assert len(resolve_rse_expression("type=DATATAPE", rses)) == 12  # 11 Tier-1s and the Tier-0

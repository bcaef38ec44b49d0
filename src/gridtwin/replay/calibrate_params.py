"""The parameters ``gridtwin calibrate`` fits: names, search ranges, first guesses, and how a value reaches a run.

Scalar parameters are scenario keys (``pilot.latency_median_s``, ``pilot.latency_sigma``, ``pilot.setup_s``,
``network.lan_rate_mbps``). Three families expand to one parameter per queue or per link:

``site.corepower[QUEUE]``
    factor on the queue's corepower (effective HS06 per core over the platform's figure);
``site.efficiency[QUEUE]``
    the queue's factor on the payload CPU efficiency (``Site.efficiency``);
``link.bandwidth_scale[SRC:DST]``
    factor on the directed link's bandwidth (``platform.link_scales``).

Queues are those whose speed the trace identifies (:mod:`gridtwin.replay.sitespeed`), the busiest
:data:`MAX_SITES`; links those with at least ``transfers.MIN_TRANSFERS`` done transfers, the busiest
:data:`MAX_LINKS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gridtwin.errors import ConfigError


@dataclass(frozen=True)
class Param:
    """A calibrated parameter: its search range and scale."""

    key: str
    low: float
    high: float
    log: bool


SCALARS: dict[str, Param] = {
    "pilot.latency_median_s": Param("pilot.latency_median_s", 1.0, 50_000.0, True),
    "pilot.latency_sigma": Param("pilot.latency_sigma", 0.0, 2.5, False),
    "pilot.setup_s": Param("pilot.setup_s", 0.0, 600.0, False),
    "network.lan_rate_mbps": Param("network.lan_rate_mbps", 1.0, 5_000.0, True),
}
FAMILIES: dict[str, Param] = {
    "site.corepower": Param("site.corepower", 0.05, 20.0, True),
    "site.efficiency": Param("site.efficiency", 0.02, 1.5, True),
    "link.bandwidth_scale": Param("link.bandwidth_scale", 1e-3, 1e3, True),
}
JOB_FAMILIES = (*SCALARS, "site.corepower", "site.efficiency")
"""What the job replay scores; ``link.bandwidth_scale`` is scored on the transfer replay."""
MAX_SITES = 20
MAX_LINKS = 20
_MEMBER = re.compile(r"^(site\.corepower|site\.efficiency|link\.bandwidth_scale)\[(.+)\]$")


def family(name: str) -> str:
    """The family of a concrete parameter name (a scalar is its own family)."""
    m = _MEMBER.match(name)
    return m.group(1) if m else name


def member(name: str) -> str | None:
    """The queue or link of a family member (``site.corepower[BNL]`` -> ``BNL``), None for a scalar."""
    m = _MEMBER.match(name)
    return m.group(2) if m else None


def spec(name: str) -> Param:
    """The range of a concrete parameter."""
    fam = family(name)
    if fam in SCALARS:
        return SCALARS[fam]
    return FAMILIES[fam]


def check_families(names: list[str]) -> None:
    """Refuse unknown names (families, scalars, or concrete members)."""
    unknown = [n for n in names if family(n) not in SCALARS and family(n) not in FAMILIES]
    if unknown:
        raise ConfigError(f"--param {', '.join(unknown)}: unknown (calibrated parameters: "
                          f"{', '.join([*SCALARS, *FAMILIES])})")


def expand(names: list[str], sites: list[str], links: list[str]) -> list[str]:
    """Concrete parameter names: each family becomes one member per queue of ``sites`` / link of ``links``."""
    out: list[str] = []
    for n in names:
        if n in ("site.corepower", "site.efficiency"):
            out += [f"{n}[{s}]" for s in sites[:MAX_SITES]]
        elif n == "link.bandwidth_scale":
            out += [f"{n}[{k}]" for k in links[:MAX_LINKS]]
        else:
            out.append(n)
    return list(dict.fromkeys(out))


def clip_bounds(name: str, low: float, guess: float, high: float) -> tuple[float, float, float]:
    """``(low, guess, high)`` within the parameter's own range, the guess inside the bounds."""
    p = spec(name)
    lo, hi = max(p.low, low), min(p.high, high)
    if not lo < hi:
        lo, hi = p.low, p.high
    return lo, min(max(guess, lo), hi), hi

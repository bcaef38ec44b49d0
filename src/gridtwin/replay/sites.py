"""Recorded queues the platform lacks: a clear error, or queues derived from the trace by a stated rule.

Derivation rule (``--missing-sites derive``), per missing ``computingsite``:

- slot size = the largest core count among its recorded jobs; capability ucore;
- total cores = the peak number of cores its recorded jobs used at once (each job running from
  ``starttime`` to ``endtime`` counts its cores), rounded up to whole slots; at least one slot; when none
  of its jobs has both times, the sum of its jobs' cores (all counted as running at once);
- corepower 10 HS06 per core, tier 2, type unified, online, memory 4000 MB per core, maxtime 4 days;
- a DISK RSE ``<queue>_DATADISK`` of :data:`DERIVED_DISK_TB` TB at an ATLAS site of the queue's name.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridtwin.errors import InputError
from gridtwin.platform.model import RSE, Platform, Site
from gridtwin.replay.trace import Trace, job_cores

DERIVED_COREPOWER = 10.0
DERIVED_TIER = 2
DERIVED_RSS_MB_PER_CORE = 4000
DERIVED_DISK_TB = 1000.0
MISSING_SITE_MODES = ("error", "derive")


def missing_sites(trace: Trace, platform: Platform) -> dict[str, int]:
    """Recorded queues absent from ``platform``, with their number of jobs (name order)."""
    counts: dict[str, int] = {}
    for s in trace.table.column("computingsite").to_pylist():
        if s not in platform.sites:
            counts[s] = counts.get(s, 0) + 1
    return dict(sorted(counts.items()))


def peak_cores(starts_ms: np.ndarray, ends_ms: np.ndarray, cores: np.ndarray) -> int:
    """The largest number of cores in use at once by jobs running over [start, end) (a job ending when
    another starts does not overlap it)."""
    ok = (starts_ms >= 0) & (ends_ms > starts_ms)
    if not ok.any():
        return 0
    t = np.concatenate([starts_ms[ok], ends_ms[ok]])
    d = np.concatenate([cores[ok], -cores[ok]])
    order = np.lexsort((d, t))  # at equal times, ends (negative) before starts
    return int(np.cumsum(d[order]).max())


def derive_site(trace: Trace, name: str) -> tuple[Site, RSE, str]:
    """A queue for ``name`` built from its recorded jobs by the module's rule, its DISK RSE, and the warning."""
    t = trace.table
    mask = pc.equal(t.column("computingsite"), name)
    sub = t.filter(mask)
    cores = job_cores(sub)

    def ms(col: str) -> np.ndarray:
        return np.asarray(pc.fill_null(sub.column(col).cast(pa.int64()), -1).to_numpy(zero_copy_only=False))

    starts, ends = ms("starttime"), ms("endtime")
    timed = (starts >= 0) & (ends > starts)
    if timed.any():
        peak = peak_cores(starts, ends, cores)
        how = f"peak of {peak} cores in use at once by its recorded jobs"
    else:
        peak = int(cores.sum())
        how = f"{peak} cores of its recorded jobs, all counted as running at once (no start and end times)"
    slot = int(cores.max())
    total = max(slot, math.ceil(peak / slot) * slot)
    rse = RSE(f"{name}_DATADISK", name, "DISK", int(DERIVED_DISK_TB * 1e12))
    site = Site(name=name, atlas_site=name, tier=DERIVED_TIER, corecount=slot, corepower=DERIVED_COREPOWER,
                total_cores=total, capability="ucore", type="unified",
                maxrss_mb=DERIVED_RSS_MB_PER_CORE * slot, rses=[rse.name])
    warning = (f"site {name} is not in the platform: derived from the trace ({sub.num_rows} jobs): {total} cores "
               f"= {how}, rounded up to whole {slot}-core slots; "
               f"corepower {DERIVED_COREPOWER:g} HS06/core, tier {DERIVED_TIER}")
    return site, rse, warning


def resolve_sites(trace: Trace, platform: Platform, mode: str = "error") -> list[str]:
    """Make every recorded queue a queue of ``platform``: ``error`` raises an InputError naming the missing
    ones; ``derive`` adds each (changing ``platform`` in place) and returns one warning per derived queue."""
    if mode not in MISSING_SITE_MODES:
        raise InputError(f"--missing-sites: expected one of {', '.join(MISSING_SITE_MODES)}, got {mode!r}")
    missing = missing_sites(trace, platform)
    if not missing:
        return []
    if mode == "error":
        listed = ", ".join(f"{k} ({v} jobs)" for k, v in list(missing.items())[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise InputError(f"{trace.source}: computingsite not in the platform: {listed}{more}; add the queue(s) to "
                         "the platform, or pass --missing-sites derive to build them from the trace")
    warnings = []
    for name in missing:
        site, rse, warning = derive_site(trace, name)
        platform.sites[name] = site
        if rse.name not in platform.rses:
            platform.rses[rse.name] = rse
        platform.notes.append(warning)
        warnings.append(warning)
    platform.derive_rse_attributes()
    platform.validate()
    return warnings

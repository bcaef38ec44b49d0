"""What a pilot does with a job it fetched: the timeline of getJob, setup, stage-in, payload and
stage-out, and how the attempt ends. Pure functions of the job, the queue and a few draws.

Wall time of the payload is work / (cores x corepower x efficiency): ``work`` in HS06-seconds, the
payload's CPU efficiency times the queue's efficiency factor. CPU time is work / corepower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gridtwin.wms import failures as F


@dataclass(frozen=True)
class PilotParams:
    """Pilot overheads in seconds; with ``jitter`` each is drawn uniformly in [0.5, 1.5] x the mean."""

    getjob_s: float = 15.0
    setup_s: float = 60.0
    jitter: bool = True
    mcore_drain_after_s: float = 3600.0
    """How long a multi-core job lets 1-core jobs backfill before its queue drains cores for it."""
    latency_median_s: float = 0.0
    """Median of the lognormal time an activated job waits for a pilot (Harvester submission and the
    batch queue) before a free core can take it; 0: pilots are always there."""
    latency_sigma: float = 0.0


class PilotLatency:
    """Lognormal waits for a pilot, drawn in blocks from their own random stream."""

    BLOCK = 4096

    def __init__(self, median_s: float, sigma: float, rng: np.random.Generator) -> None:
        self.mu = math.log(median_s)
        self.sigma = sigma
        self.rng = rng
        self._buf: list[float] = []

    def draw(self) -> float:
        if not self._buf:
            self._buf = self.rng.lognormal(self.mu, self.sigma, self.BLOCK).tolist()[::-1]
        return self._buf.pop()


@dataclass(slots=True)
class Attempt:
    """The outcome of one attempt, as the pilot will report it."""

    duration: float
    """Seconds from ``sent`` to the end of the pilot (slot released)."""
    getjob: float
    setup: float
    stagein: float
    exe: float
    stageout: float
    kind: int
    """One of ``failures.OK, STAGEIN, OOM, WALLTIME, PAYLOAD, STAGEOUT``."""
    piloterrorcode: int
    exeerrorcode: int
    cpu_s: float
    maxrss_kb: int
    row: int = -1
    """Job table row of the attempt (set by the server)."""
    cores: int = 0
    handle: int = -1
    """Engine handle of the attempt's end event."""


def run_attempt(
    work_hs06s: float,
    cores: int,
    cpu_eff: float,
    maxrss_kb: int,
    stagein_s: float,
    stageout_s: float,
    corepower: float,
    site_efficiency: float,
    memory_limit_kb: float,
    maxtime_s: float,
    getjob_s: float,
    setup_s: float,
    kind: int,
    frac: float,
    exe_code: int,
) -> Attempt:
    """Compute an attempt's timeline. ``kind`` is the random failure drawn (or OK); ``frac`` in [0, 1)
    says how far into the failing phase the failure strikes; memory and time limits apply on top."""
    eff = cpu_eff * site_efficiency
    cpu_full = work_hs06s / corepower
    exe_full = cpu_full / (cores * eff)
    pre = getjob_s + setup_s + stagein_s
    if kind != F.STAGEIN:
        if maxrss_kb > memory_limit_kb:
            kind = F.OOM
        elif pre - getjob_s + exe_full + stageout_s > maxtime_s:
            kind = F.WALLTIME
    pe = ee = 0
    rss = maxrss_kb
    exe, si, so = exe_full, stagein_s, stageout_s
    if kind == F.STAGEIN:
        si = stagein_s * frac
        exe = so = 0.0
        pe = F.STAGEIN_FAILED
    elif kind == F.OOM:
        exe = exe_full * (0.05 + 0.9 * frac)
        so = 0.0
        pe = F.PAYLOAD_OUT_OF_MEMORY
        rss = int(max(maxrss_kb, memory_limit_kb))
    elif kind == F.WALLTIME:
        # killed by the batch system when the job's wall time reaches the queue's maxtime: either its
        # work needs longer, or (a random 1213) the payload hung or looped until the limit
        exe = max(0.0, maxtime_s - (pre - getjob_s))
        so = 0.0
        pe = F.REACHED_MAX_TIME
    elif kind == F.PAYLOAD:
        exe = exe_full * (0.02 + 0.96 * frac)
        so = 0.0
        pe = F.PAYLOAD_EXECUTION_FAILURE
        ee = exe_code
    elif kind == F.STAGEOUT:
        so = stageout_s * frac
        pe = F.STAGEOUT_FAILED
    cpu = exe * cores * eff
    return Attempt(
        duration=getjob_s + setup_s + si + exe + so, getjob=getjob_s, setup=setup_s, stagein=si, exe=exe,
        stageout=so, kind=kind, piloterrorcode=pe, exeerrorcode=ee, cpu_s=cpu, maxrss_kb=int(rss),
    )


def truncate(a: Attempt, elapsed: float, cores: int) -> Attempt:
    """The attempt cut short ``elapsed`` seconds after ``sent`` (its slot was killed)."""
    left = elapsed
    parts = []
    for d in (a.getjob, a.setup, a.stagein, a.exe, a.stageout):
        take = min(d, max(0.0, left))
        parts.append(take)
        left -= take
    g, su, si, exe, so = parts
    cpu = a.cpu_s * (exe / a.exe) if a.exe > 0 else 0.0
    return Attempt(duration=elapsed, getjob=g, setup=su, stagein=si, exe=exe, stageout=so, kind=a.kind,
                   piloterrorcode=F.SIGTERM, exeerrorcode=0, cpu_s=cpu, maxrss_kb=a.maxrss_kb)

"""Job brokerage (hard filters, then the policy) and task brokerage to a nucleus.

The hard filters are PanDA's: queue status online, core count (CRIC capability), memory window
((ramcount x cores) x 0.9 within the queue's [minrss, maxrss] scaled to the job's share of a slot),
walltime window (the task's estimate scaled by corepower within [mintime, maxtime]) and queue type
(analysis queues take user jobs, production queues managed jobs, unified both). Static filters are
evaluated once per task and cached; only the status is checked per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridtwin.errors import ConfigError, PolicyError
from gridtwin.policies.base import BrokeragePolicy, JobChunk
from gridtwin.wms.sitestate import Grid, SiteState
from gridtwin.workload.generator import REFERENCE_COREPOWER
from gridtwin.workload.spec import Workload


def passes_static_filters(site: SiteState, prodsourcelabel: str, cores: int, ramcount_mb: float,
                          walltime_estimate_s: float) -> bool:
    """PanDA's hard filters that do not change during a run."""
    s = site.site
    if s.total_cores < cores or not s.accepts_cores(cores):
        return False
    if prodsourcelabel == "user" and s.type == "production":
        return False
    if prodsourcelabel != "user" and s.type == "analysis":
        return False
    share = cores / s.corecount
    need = ramcount_mb * cores * 0.9
    if need > s.maxrss_mb * share or need < s.minrss_mb * share:
        return False
    wall = walltime_estimate_s * REFERENCE_COREPOWER / s.corepower
    return s.mintime_s <= wall <= s.maxtime_s


class JobBroker:
    """Applies the hard filters and asks the policy to place a chunk of a task's jobs."""

    def __init__(self, states: list[SiteState], grid: Grid, workload: Workload, policy: BrokeragePolicy,
                 rng: np.random.Generator) -> None:
        self.states = states
        self.grid = grid
        self.wl = workload
        self.policy = policy
        self.rng = rng
        self._static: dict[int, list[SiteState]] = {}
        self.calls = 0
        self._pin: list[int] | None = None
        """Per task, the queue index it is pinned to (-1: not pinned); None unless the policy follows pins."""
        self.pin_refused: set[int] = set()
        """Pinned tasks whose queue cannot hold their jobs (too many cores for its slots): never placed."""
        if getattr(policy, "follows_pins", False) and workload.pinned_site is not None:
            self._pin = self._pin_indices(workload.pinned_site)

    def _pin_indices(self, pinned: list[str | None]) -> list[int]:
        if len(pinned) != self.wl.n_tasks:
            raise ConfigError(f"workload: pinned_site has {len(pinned)} entries for {self.wl.n_tasks} tasks")
        index = {s.name: s.index for s in self.states}
        missing = sorted({p for p in pinned if p is not None and p not in index})
        if missing:
            raise ConfigError(f"workload: pinned to queue(s) the platform lacks: {', '.join(missing[:10])}"
                              + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
        return [-1 if p is None else index[p] for p in pinned]

    def static_candidates(self, task: int) -> list[SiteState]:
        """Queues that pass the static filters for ``task`` (cached)."""
        hit = self._static.get(task)
        if hit is None and self._pin is not None and self._pin[task] >= 0:
            # a pinned task: only its recorded queue, if that queue's slots can hold the job at all
            st = self.states[self._pin[task]]
            cores = int(self.wl.corecount[task])
            hit = [st] if st.site.total_cores >= cores and st.site.accepts_cores(cores) else []
            if not hit:
                self.pin_refused.add(task)
            self._static[task] = hit
        elif hit is None:
            wl = self.wl
            label = wl.categories[wl.category[task]].prodsourcelabel
            hit = [s for s in self.states if passes_static_filters(
                s, label, int(wl.corecount[task]), float(wl.ramcount_mb[task]), float(wl.walltime_estimate_s[task]))]
            self._static[task] = hit
        return hit

    def forget(self, task: int) -> None:
        self._static.pop(task, None)

    def make_chunk(self, task: int, specs: list[int], nucleus: SiteState | None, retry: bool) -> JobChunk:
        wl = self.wl
        cat = wl.categories[wl.category[task]]
        idx = np.asarray(specs, dtype=np.int64)
        ds = int(wl.dataset[task])
        return JobChunk(
            jeditaskid=int(wl.jeditaskid[task]), prodsourcelabel=cat.prodsourcelabel,
            processingtype=cat.processingtype, priority=int(wl.priority[task]), corecount=int(wl.corecount[task]),
            ramcount_mb=int(wl.ramcount_mb[task]), walltime_estimate_s=float(wl.walltime_estimate_s[task]),
            io_intensity=float(wl.io_intensity[task]), n_jobs=len(specs),
            input_dataset=wl.datasets.name[ds] if ds >= 0 else None,
            input_bytes=float(wl.inputbytes[idx].sum()), input_files=int(wl.ninput[idx].sum()),
            nucleus=nucleus.view if nucleus is not None else None, retry=retry, dataset_index=ds,
        )

    def broker(self, task: int, specs: list[int], nucleus: SiteState | None, retry: bool = False) -> list[int]:
        """Queue index per spec (-1: not placed). Raises PolicyError if the policy breaks its protocol."""
        candidates = [s.view for s in self.static_candidates(task) if s.online]
        if not candidates:
            return [-1] * len(specs)
        if self._pin is not None and self._pin[task] >= 0:
            return [self._pin[task]] * len(specs)  # pinned: the recorded queue, no policy
        chunk = self.make_chunk(task, specs, nucleus, retry)
        self.calls += 1
        picks = self.policy.assign(chunk, candidates, self.grid, self.rng)
        if len(picks) != len(specs):
            raise PolicyError(
                f"policy {self.policy.name!r} returned {len(picks)} choices for a chunk of {len(specs)} jobs")
        allowed = {v.index for v in candidates}
        out = []
        for p in picks:
            if p is None:
                out.append(-1)
                continue
            i = getattr(p, "index", None)
            if i not in allowed:
                raise PolicyError(
                    f"policy {self.policy.name!r} chose {p!r}, which is not one of the candidate queues")
            out.append(i)
        return out


@dataclass(frozen=True)
class TaskBrokerParams:
    """Constants of the production task broker (``AtlasProdTaskBroker``)."""

    free_disk_cutoff_tb: float = 1000.0
    io_intensive: float = 500.0
    min_free_tb: float = 10.0


class TaskBroker:
    """Chooses a production task's nucleus: weight = 1/(RW+1) x locality (IO-intensive tasks) x free/total x
    min(cutoff, freeTB), weighted random. RW is the remaining work (core-hours) assigned to each nucleus."""

    def __init__(self, nuclei: list[SiteState], rse_free, rng: np.random.Generator,
                 params: TaskBrokerParams | None = None) -> None:
        # one candidate per ATLAS site: the first nucleus queue (by name) that represents it
        by_site: dict[str, SiteState] = {}
        for s in sorted(nuclei, key=lambda x: x.name):
            by_site.setdefault(s.atlas_site, s)
        self.nuclei = [by_site[k] for k in sorted(by_site)]
        self.rse_free = rse_free  # callable: SiteState -> (free_bytes, total_bytes)
        self.rng = rng
        self.params = params or TaskBrokerParams()
        self.rw: dict[str, float] = {s.atlas_site: 0.0 for s in self.nuclei}

    def weight(self, nucleus: SiteState, io_intensity: float, input_local: bool | None) -> float:
        """The task-broker weight of one nucleus (0 when filtered out)."""
        p = self.params
        free, total = self.rse_free(nucleus)
        free_tb = free / 1e12
        if not nucleus.online or free_tb < p.min_free_tb or total <= 0:
            return 0.0
        w = 1.0 / (self.rw[nucleus.atlas_site] + 1.0)
        if io_intensity > p.io_intensive and input_local is not None:
            w *= 1.0 if input_local else 0.0
        return w * (free / total) * min(p.free_disk_cutoff_tb, free_tb)

    def choose(self, io_intensity: float, local_sites: frozenset[str] | None) -> SiteState | None:
        """Pick a nucleus; ``local_sites`` are the ATLAS sites holding the task's input (None: no input)."""
        ws = [self.weight(n, io_intensity, None if local_sites is None else n.atlas_site in local_sites)
              for n in self.nuclei]
        if sum(ws) <= 0 and local_sites is not None:  # nobody holds the data: drop the locality term
            ws = [self.weight(n, io_intensity, None) for n in self.nuclei]
        total = sum(ws)
        if total <= 0:
            return None
        x = self.rng.random() * total
        for n, w in zip(self.nuclei, ws, strict=True):
            x -= w
            if x <= 0 and w > 0:
                return n
        return next(n for n, w in zip(reversed(self.nuclei), reversed(ws), strict=True) if w > 0)

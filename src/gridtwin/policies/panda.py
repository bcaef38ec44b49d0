"""PanDA's job brokerage as JEDI implements it (reference/panda_rucio.md section 2).

Production (``AtlasProdJobBroker``): the weight of a queue is

    w = (R+1) / (Act+Start+Def+10)                       if the input is fully local, else
    w = (R+1) / (Act+Ass+Start+Def+10) / manyAssigned,   manyAssigned = clamp((Ass+1)/(Act+1), 1, 2)
    w *= (total+localBytes)/total / (nFilesToMove/100 + 1)          (data term)
    w *= t1Weight at the nucleus (4 if ioIntensity > 500 else 1)     (nucleus term)
    w *= 0.5*queueW + 0.5*throughputW                                 (network term)

with queueW = 2 - nFilesQueued/150 on the satellite->nucleus link, throughputW from the link's FTS
MB/s (``convertMBpsToWeight``) or 1 + (11 - closeness)/11 without metrics, and 2.5 at the nucleus
itself. Queues with queued > max(20, 2 x running) are skipped, the top 10 kept, and each job picks a
queue by weighted random choice; the pick's weight then decays by (q+1)/(q+2) (``InputChunk``).

Analysis (``AtlasAnalJobBroker``): a strict data-locality filter (relaxed for priority >= 2000 or an
IO intensity below the cutoff, or when no candidate holds the data), weight
(R+1)/(Act+Ass+Def+Start+1) x (1 + localGB/10) with the same R as production, the same caps, top 10
and weighted random choice.
R is max(running, min(nWorkers, 20)). gridtwin has no Harvester; it takes nWorkers as the queue's idle
slots (``SiteView.workers``, free cores // corecount), the pilots Harvester keeps waiting there, so an
idle queue looks like one running 20 jobs and is not starved by busy ones.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridtwin.policies.base import GridView, JobChunk, SiteView

_MBPS_THRESHOLDS = (1, 2, 10, 20, 50, 75, 100, 200)
_MBPS_WEIGHTS = (1.0, 1.1, 1.2, 1.3, 1.5, 1.6, 1.8, 1.9, 2.0)


def convert_mbps_to_weight(mbps: float) -> float:
    """JEDI's ``convertMBpsToWeight``: FTS throughput (MB/s) to a weight in 1..2 (strictly above each threshold)."""
    return _MBPS_WEIGHTS[bisect.bisect_left(_MBPS_THRESHOLDS, mbps)]


@dataclass(frozen=True)
class PandaParams:
    """Constants of JEDI's brokerage, with the values of the reference."""

    top_n: int = 10
    nqueued_sat_cap: int = 150
    queue_cap_min: int = 20
    queue_cap_factor: float = 2.0
    io_intensity_t1: float = 500.0
    t1_weight_io: float = 4.0
    nucleus_network_weight: float = 2.5
    network_active: bool = True
    analysis_priority_relax: int = 2000
    io_intensity_cutoff: float = 200.0


def many_assigned(site: SiteView) -> float:
    """clamp((nAssigned+1)/(nActivated+1), 1, 2)."""
    return min(2.0, max(1.0, (site.assigned + 1) / (site.activated + 1)))


def network_throughput_weight(site: SiteView, nucleus: SiteView, grid: GridView) -> float:
    """throughputW of the satellite->nucleus link: from FTS MB/s if measured, else from closeness."""
    mbps = grid.link_mbps(site, nucleus)
    if mbps is not None:
        return convert_mbps_to_weight(mbps)
    return 1.0 + (11 - grid.closeness(site, nucleus)) / 11.0


def production_weight(site: SiteView, chunk: JobChunk, grid: GridView, params: PandaParams = PandaParams(),
                      local: float | None = None, throughput_w: float | None = None) -> float:
    """The weight of one candidate queue for a production chunk (the formula of the module docstring).

    ``local`` (input bytes already at the queue) and ``throughput_w`` may be passed when the caller
    has them at hand; they are computed otherwise."""
    r = max(site.running, min(site.workers, 20))
    act, sta, dfn = site.activated, site.starting, site.defined
    total = chunk.input_bytes
    if total > 0 and local is None:
        local = grid.local_bytes(chunk, site)
    fully_local = total <= 0 or local >= total
    if fully_local:
        w = (r + 1) / (act + sta + dfn + 10)
    else:
        ass = site.assigned
        w = (r + 1) / (act + ass + sta + dfn + 10) / min(2.0, max(1.0, (ass + 1) / (act + 1)))
    if total > 0:
        files_to_move = 0 if fully_local else chunk.input_files
        w *= (total + local) / total / (files_to_move / 100.0 + 1.0)
    nucleus = chunk.nucleus
    if nucleus is not None:
        if site.atlas_site == nucleus.atlas_site:
            if chunk.io_intensity > params.io_intensity_t1:
                w *= params.t1_weight_io
            if params.network_active:
                w *= params.nucleus_network_weight
        elif params.network_active:
            queue_w = 2.0 - grid.link_queued_files(site, nucleus) / params.nqueued_sat_cap
            if throughput_w is None:
                throughput_w = network_throughput_weight(site, nucleus, grid)
            w *= 0.5 * queue_w + 0.5 * throughput_w
    return w


def analysis_weight(site: SiteView, chunk: JobChunk, grid: GridView, local: float | None = None) -> float:
    """The weight of one candidate queue for an analysis chunk."""
    r = max(site.running, min(site.workers, 20))
    w = (r + 1) / (site.activated + site.assigned + site.defined + site.starting + 1)
    if chunk.input_bytes > 0:
        if local is None:
            local = grid.local_bytes(chunk, site)
        w *= 1.0 + local / 1e9 / 10.0
    return w


class PandaPolicy:
    """JEDI's production and analysis job brokerage."""

    name = "panda"

    def __init__(self, params: PandaParams | None = None) -> None:
        self.params = params or PandaParams()
        self._throughput_w: dict[str, dict[str, float]] = {}

    def reset(self) -> None:
        """Forget what was cached from a previous run's grid (link weights per nucleus)."""
        self._throughput_w.clear()

    def queue_cap(self, site: SiteView) -> float:
        """Maximum queued jobs before a queue is skipped: max(20, 2 x running)."""
        cap = self.params.queue_cap_factor * site.running
        return cap if cap > self.params.queue_cap_min else self.params.queue_cap_min

    def weights(self, chunk: JobChunk, candidates: Sequence[SiteView], grid: GridView) -> list[tuple[SiteView, float]]:
        """Candidates that pass the caps, with their weights, best first, at most top_n."""
        p = self.params
        out: list[tuple[SiteView, float]] = []
        has_input = chunk.input_bytes > 0
        if has_input:  # one set lookup per candidate instead of a call each
            lset = grid.local_site_indices(chunk)
            nbytes = chunk.input_bytes
            local = {s.index: (nbytes if s.index in lset else 0.0) for s in candidates}
        if chunk.prodsourcelabel == "user":
            cands = candidates
            if has_input and chunk.priority < p.analysis_priority_relax and chunk.io_intensity >= p.io_intensity_cutoff:
                with_data = [s for s in candidates if local[s.index] >= chunk.input_bytes]
                if with_data:
                    cands = with_data
            for s in cands:
                if s.activated + s.starting + s.assigned > self.queue_cap(s):
                    continue
                out.append((s, analysis_weight(s, chunk, grid, local[s.index] if has_input else 0.0)))
        else:
            return self._production_weights(chunk, candidates, grid)
        out.sort(key=lambda x: (-x[1], x[0].name))
        return out[: p.top_n]

    def _production_weights(self, chunk: JobChunk, candidates: Sequence[SiteView],
                            grid: GridView) -> list[tuple[SiteView, float]]:
        """``production_weight`` for every candidate at once, with numpy (it is the hot path of a run)."""
        p = self.params
        n = len(candidates)
        if n == 0:
            return []
        run = np.fromiter((s.running for s in candidates), np.float64, n)
        workers = np.fromiter((s.workers for s in candidates), np.float64, n)
        act = np.fromiter((s.activated for s in candidates), np.float64, n)
        sta = np.fromiter((s.starting for s in candidates), np.float64, n)
        dfn = np.fromiter((s.defined for s in candidates), np.float64, n)
        ass = np.fromiter((s.assigned for s in candidates), np.float64, n)
        ok = act + sta <= np.maximum(p.queue_cap_min, p.queue_cap_factor * run)
        total = chunk.input_bytes
        if total > 0:
            lset = grid.local_site_indices(chunk)
            full = np.fromiter((s.index in lset for s in candidates), np.bool_, n)
        else:
            full = np.ones(n, dtype=np.bool_)
        many = np.clip((ass + 1) / (act + 1), 1.0, 2.0)
        r = np.maximum(run, np.minimum(workers, 20.0))
        w = np.where(full, (r + 1) / (act + sta + dfn + 10), (r + 1) / (act + ass + sta + dfn + 10) / many)
        if total > 0:
            local = np.where(full, total, 0.0)
            w *= (total + local) / total / (np.where(full, 0, chunk.input_files) / 100.0 + 1.0)
        nucleus = chunk.nucleus
        if nucleus is not None:
            nuc_site = nucleus.atlas_site
            at_nuc = np.fromiter((s.atlas_site == nuc_site for s in candidates), np.bool_, n)
            nuc_factor = 1.0
            if chunk.io_intensity > p.io_intensity_t1:
                nuc_factor *= p.t1_weight_io
            if p.network_active:
                nuc_factor *= p.nucleus_network_weight
                thr_map = self._throughput_w.get(nuc_site)
                if thr_map is None:  # link metrics are static in a run: once per nucleus
                    thr_map = self._throughput_w[nuc_site] = {
                        s.atlas_site: network_throughput_weight(s, nucleus, grid) for s in grid.sites()
                        if s.atlas_site != nuc_site}
                q_to = grid.queued_files_to(nucleus)
                queued = np.fromiter((q_to.get(s.atlas_site, 0) for s in candidates), np.float64, n)
                thr = np.fromiter((thr_map.get(s.atlas_site, 1.0) for s in candidates), np.float64, n)
                ok &= at_nuc | (queued <= p.nqueued_sat_cap)
                w *= np.where(at_nuc, nuc_factor, 0.5 * (2.0 - queued / p.nqueued_sat_cap) + 0.5 * thr)
            else:
                w *= np.where(at_nuc, nuc_factor, 1.0)
        idx = np.flatnonzero(ok)
        order = idx[np.argsort(-w[idx], kind="stable")][: p.top_n]  # ties: candidate (name) order
        return [(candidates[i], float(w[i])) for i in order.tolist()]

    def assign(self, chunk: JobChunk, candidates: Sequence[SiteView], grid: GridView,
               rng: np.random.Generator) -> list[SiteView | None]:
        ranked = self.weights(chunk, candidates, grid)
        if not ranked:
            return [None] * chunk.n_jobs
        sites = [s for s, _ in ranked]
        w = [x for _, x in ranked]
        # queued count per candidate, as InputChunk tracks nQueuedJobs while it hands out sub-chunks
        queued = [s.activated + s.starting + (s.assigned if chunk.prodsourcelabel == "user" else 0) for s in sites]
        caps = [self.queue_cap(s) for s in sites]
        out: list[SiteView | None] = []
        n = len(sites)
        eligible = [queued[i] <= caps[i] for i in range(n)]
        eff = [w[i] if eligible[i] else 0.0 for i in range(n)]  # weights of eligible sites, 0 elsewhere
        draws = rng.random(chunk.n_jobs).tolist()
        for u in draws:
            total = sum(eff)  # C-level sum in index order; adding the zeros changes nothing
            if total <= 0.0:
                out.append(None)
                continue
            x = u * total
            pick = -1
            for i in range(n):
                if eligible[i]:
                    pick = i
                    x -= w[i]
                    if x <= 0.0:
                        break
            q = queued[pick]
            w[pick] *= (q + 1) / (q + 2)
            queued[pick] = q + 1
            if q + 1 > caps[pick]:
                eligible[pick] = False
                eff[pick] = 0.0
            else:
                eff[pick] = w[pick]
            out.append(sites[pick])
        return out

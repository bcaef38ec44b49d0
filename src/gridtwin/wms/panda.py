"""The PanDA server: job lifecycle from creation to a final state, dispatch to slots, downtimes.

Per job the heap sees a handful of events: the payload's end, and the output transfer to the
nucleus; an input transfer for jobs whose input is not local. Intermediate states (sent, starting,
running) are logged with their exact times when the attempt ends, so nothing is logged ahead of the
clock, and a killed attempt logs only what happened before the kill.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from gridtwin.ddm.catalog import Catalog
from gridtwin.ddm.requests import ACT_ANA_IN, ACT_PROD_IN, ACT_PROD_OUT
from gridtwin.ddm.rucio import RucioServer
from gridtwin.kernel import Engine, RandomStreams, UniformBuffer
from gridtwin.network.plain import PlainBandwidth
from gridtwin.platform.model import Platform
from gridtwin.policies.base import BrokeragePolicy
from gridtwin.wms import failures as F
from gridtwin.wms.brokerage import JobBroker, TaskBroker, TaskBrokerParams
from gridtwin.wms.jedi import Jedi, JediParams
from gridtwin.wms.jobs import JobTable, log_file_bytes
from gridtwin.wms.pilot import Attempt, PilotLatency, PilotParams, run_attempt, truncate
from gridtwin.wms.sitestate import Grid, SiteState
from gridtwin.wms.states import (
    ACTIVATED,
    ASSIGNED,
    CLOSED,
    DEFINED,
    FAILED,
    FINISHED,
    RUNNING,
    SENT,
    STARTING,
    TRANSFERRING,
    JobStatus,
)
from gridtwin.workload.generator import REFERENCE_COREPOWER
from gridtwin.workload.spec import Workload


def _input_rse(platform: Platform, site) -> str:
    """The RSE a queue reads input from: its DATADISK, else its first DISK RSE that is not a scratch disk."""
    disks = [r.name for r in platform.disk_rses_of(site) if "SCRATCH" not in r.name]
    return next((r for r in disks if "DATADISK" in r), disks[0] if disks else "")


@dataclass(frozen=True)
class Downtime:
    """A queue (or every queue of an ATLAS site) is offline during [start_s, end_s)."""

    site: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class WmsParams:
    """Everything that steers the workload system."""

    pilot: PilotParams = field(default_factory=PilotParams)
    jedi: JediParams = field(default_factory=JediParams)
    failures: F.FailureRates = field(default_factory=F.FailureRates)
    network: PlainBandwidth = field(default_factory=PlainBandwidth)
    taskbroker: TaskBrokerParams = field(default_factory=TaskBrokerParams)
    metrics_interval_s: float = 600.0
    enforce_requests: bool = True
    """A first attempt over the job's own memory or walltime request (when the workload has them) is killed."""


class PandaServer:
    """Owns the job table and the live queue states; JEDI generates jobs into it."""

    def __init__(self, engine: Engine, platform: Platform, workload: Workload, catalog: Catalog,
                 policy: BrokeragePolicy, params: WmsParams, streams: RandomStreams,
                 downtimes: list[Downtime] | None = None, metrics_sink=None, ddm: RucioServer | None = None) -> None:
        self.engine = engine
        self.platform = platform
        self.wl = workload
        self.catalog = catalog
        self.params = params
        self.site_names = sorted(platform.sites)
        self.atlas_names = sorted({s.atlas_site for s in platform.sites.values()})
        atlas_idx = {n: i for i, n in enumerate(self.atlas_names)}
        self.states: list[SiteState] = []
        for i, name in enumerate(self.site_names):
            site = platform.sites[name]
            rses = [platform.rses[r] for r in site.rses if r in platform.rses]
            disk = [r for r in rses if r.rse_type == "DISK"]
            scratch = next((r.name for r in disk if "SCRATCH" in r.name), disk[0].name if disk else "")
            self.states.append(SiteState(i, site, atlas_idx[site.atlas_site],
                                         sum(r.capacity_bytes for r in disk), scratch))
        self.grid = Grid(platform, self.states, catalog.local_sites, lambda: engine.now)
        self.broker = JobBroker(self.states, self.grid, workload, policy, streams.stream("brokerage"))
        self.taskbroker = TaskBroker([s for s in self.states if s.site.is_nucleus], self._rse_free,
                                     streams.stream("taskbrokerage"), params.taskbroker)
        self.jobs = JobTable()
        self.jedi = Jedi(self, params.jedi)
        self.failure_model = F.FailureModel(params.failures)
        self._u_fail = UniformBuffer(streams.stream("failures"))
        self._u_pilot = UniformBuffer(streams.stream("pilot"))
        pp = params.pilot
        self._latency = (PilotLatency(pp.latency_median_s, pp.latency_sigma, streams.stream("pilot latency"))
                         if pp.latency_median_s > 0 else None)
        self._ready_at: dict[int, float] = {}  # row -> when a pilot could take it (with a pilot latency)
        self.downtimes = list(downtimes or [])
        self.metrics_sink = metrics_sink
        self.ddm = ddm
        self._pending_activation: dict[int, int] = {}  # row -> handle of its input-arrival event (no ddm)
        self._dis_groups: dict = {}  # row -> LockGroup of its _dis rule, while the job lives (ddm)
        self.n_active = 0
        self.failed_attempts: dict[int, int] = {}
        # hot-path copies of per-spec and per-task columns as Python lists
        self._task = workload.task.tolist()
        self._work = workload.work_hs06s.tolist()
        self._eff = workload.cpu_eff.tolist()
        self._rss = workload.maxrss_kb.tolist()
        self._inb = workload.inputbytes.tolist()
        self._outb = workload.outputbytes.tolist()
        self._cores = workload.corecount.tolist()
        self._prio = workload.priority.tolist()
        self._ds = workload.dataset.tolist()
        self._is_user = [workload.categories[c].prodsourcelabel == "user" for c in workload.category.tolist()]
        self._wt_est = workload.walltime_estimate_s.tolist()
        # per-job requests (a resource predictor's), enforced on first attempts; None: the queue's limits
        enforce = params.enforce_requests
        self._req_rss = workload.request_rss_kb.tolist() if enforce and workload.request_rss_kb is not None else None
        self._req_wall = (workload.request_wall_s.tolist() if enforce and workload.request_wall_s is not None
                          else None)
        self._has_requests = self._req_rss is not None or self._req_wall is not None
        self._nucleus_rw: dict[int, float] = {}
        self._rse_by_atlas: dict[str, list[str]] = {}
        for r in sorted(platform.rses.values(), key=lambda x: x.name):
            if r.rse_type == "DISK" and "SCRATCH" not in r.name:
                self._rse_by_atlas.setdefault(r.atlas_site, []).append(r.name)
        self._source_cache: dict[tuple[int, int], tuple[int, float]] = {}
        self._out_rse: dict[tuple[int, bool], str] = {}
        # the catalog index of each queue's input storage (its DATADISK), -1 for a queue without storage
        self._in_rse = [catalog.rse_index.get(_input_rse(platform, st.site), -1) for st in self.states]
        self._placement_reads = ddm is not None and ddm.placement is not None and ddm.placement.name != "none"
        self._nf = list(catalog.ds_nfiles)
        self._ff = list(catalog.ds_first_fid)
        self._first_file = workload.first_file.tolist()
        self._ninput = workload.ninput.tolist()
        self.n_input_stuck = 0
        self.sub_base = 10 ** max(3, len(str(len(self.states))))
        """``_sub`` dataset key = task x sub_base + queue index (1000 unless there are 1000 queues or more)."""
        self.n_output_stuck = 0

    # ------------------------------------------------------------------ setup
    def start(self) -> None:
        """Schedule task arrivals, the JEDI cycle, metric ticks and downtimes."""
        eng = self.engine
        for t, at in enumerate(self.wl.arrival.tolist()):
            eng.schedule_at(max(at, eng.now), self.jedi.on_task_arrival, t)
        eng.schedule(self.params.jedi.cycle_s, self._on_jedi_cycle)
        if self.metrics_sink is not None:
            eng.schedule(0.0, self._on_metrics)
        by_name = {s.name: s for s in self.states}
        for d in self.downtimes:
            targets = [by_name[d.site]] if d.site in by_name else [s for s in self.states if s.atlas_site == d.site]
            for st in targets:
                eng.schedule_at(max(d.start_s, eng.now), self._on_downtime_start, st)
                eng.schedule_at(max(d.end_s, eng.now), self._on_downtime_end, st)

    def busy(self) -> bool:
        """Whether anything is left to happen (arrivals, jobs to generate, jobs not final)."""
        return self.jedi.arrived < self.wl.n_tasks or self.jedi.has_work() or self.n_active > 0

    def _on_jedi_cycle(self, _=None) -> None:
        self.jedi.cycle()
        if self.busy():
            self.engine.schedule(self.params.jedi.cycle_s, self._on_jedi_cycle)

    def _on_metrics(self, _=None) -> None:
        # sample after everything else already due now (a JEDI cycle often is): a zero-delay event
        # goes behind them in the heap, so ticks do not always see the queues just before brokering
        self.engine.schedule(0.0, self._sample_metrics)
        if self.busy():
            self.engine.schedule(self.params.metrics_interval_s, self._on_metrics)

    def _sample_metrics(self, _=None) -> None:
        self.metrics_sink(self.engine.now, self.states, self._storage_used)
        if self.ddm is not None:
            self.ddm.sample(self.engine.now)

    # ------------------------------------------------------------------ storage
    def _storage_used(self, st: SiteState) -> int:
        rses = self.platform.rses
        return sum(rses[r].used_bytes for r in st.site.rses if r in rses and rses[r].rse_type == "DISK")

    def _rse_free(self, st: SiteState) -> tuple[float, float]:
        used = self._storage_used(st)
        return float(st.storage_total - used), float(st.storage_total)

    # ------------------------------------------------------------------ task brokerage
    def choose_nucleus(self, task: int) -> SiteState | None:
        ds = int(self.wl.dataset[task])
        local = None
        if ds >= 0:
            local = frozenset(self.states[q].atlas_site for q in self.catalog.local_sites(ds))
        nuc = self.taskbroker.choose(float(self.wl.io_intensity[task]), local)
        if nuc is not None:
            rw = float(self.wl.njobs[task]) * self._wt_est[task] * self._cores[task] / 3600.0
            self.taskbroker.rw[nuc.atlas_site] += rw
        return nuc

    def _release_rw(self, row: int) -> None:
        spec = self.jobs.spec[row]
        task = self._task[spec]
        nuc = self.jedi.nucleus[task]
        if nuc >= 0:
            key = self.states[nuc].atlas_site
            rw = self.taskbroker.rw
            rw[key] = max(0.0, rw[key] - self._wt_est[task] * self._cores[task] / 3600.0)

    # ------------------------------------------------------------------ job creation
    def _best_source(self, ds: int, st: SiteState) -> tuple[int, float]:
        """(ATLAS-site index, closeness) of the replica of ``ds`` closest to queue ``st``, as Rucio sorts."""
        key = (ds, st.atlas_index)
        hit = self._source_cache.get(key)
        if hit is None:
            best = None
            for rse in self.catalog.replicas(ds):
                src = self.platform.rses[rse].atlas_site
                link = self.grid.link_between(src, st.atlas_site)
                k = (link.closeness, -link.bandwidth_bps, src)
                if best is None or k < best[0]:
                    best = (k, src)
            if best is None:
                hit = (-1, 0.0)
            else:
                hit = (self.atlas_names.index(best[1]) if best[1] in self.atlas_names else -1, float(best[0][0]))
            self._source_cache[key] = hit
        return hit

    def create_jobs(self, task: int, todo: list[tuple[int, int, int]], sites: list[int]) -> int:
        """Create the jobs that brokerage placed; return how many."""
        jobs = self.jobs
        now = self.engine.now
        states = self.states
        ds = self._ds[task]
        local = self.catalog.local_sites(ds) if ds >= 0 else None
        touched: dict[int, None] = {}
        placed_todo = [t for t, s in zip(todo, sites, strict=True) if s >= 0]
        placed_sites = [s for s in sites if s >= 0]
        placed = len(placed_sites)
        if not placed:
            return 0
        first = jobs.new_batch([t[0] for t in placed_todo], [t[1] for t in placed_todo],
                               [t[2] for t in placed_todo], placed_sites, now)
        self.n_active += placed
        log = jobs.log
        for row, (spec, _parent, _attempt), s in zip(range(first, first + placed), placed_todo, placed_sites,
                                                     strict=True):
            log(row, now, DEFINED, s)
            st = states[s]
            if self._placement_reads and ds >= 0:
                self.ddm.dataset_read(ds, st.atlas_site)
            if local is None:
                self._activate_now(row, st, now)
                touched[s] = None
            elif s in local:
                jobs.source[row] = st.atlas_index
                self._activate_now(row, st, now)
                touched[s] = None
            elif self.ddm is not None:
                self._stage_input(row, spec, ds, st, now, touched)
            else:
                # input elsewhere: a _dis dataset is transferred to the site; the job waits in assigned
                src, _ = self._best_source(ds, st)
                jobs.source[row] = src
                jobs.dis[row] = True
                jobs.status[row] = ASSIGNED
                log(row, now, ASSIGNED, s)
                st.assigned += 1
                if src >= 0:
                    link = self.grid.link_between(self.atlas_names[src], st.atlas_site)
                    delay = self.params.network.wan_time(self._inb[spec], link)
                else:
                    delay = 0.0
                self._pending_activation[row] = self.engine.schedule(delay, self._on_input_arrived, row)
        for s in touched:
            self._dispatch(states[s])
        return placed

    def input_fids(self, spec: int, ds: int) -> list[int]:
        """Catalog file ids of a job spec's input files."""
        nf = self._nf[ds]
        base = self._ff[ds]
        first = self._first_file[spec]
        return [base + (first + k) % nf for k in range(self._ninput[spec])]

    def _stage_input(self, row: int, spec: int, ds: int, st: SiteState, now: float, touched: dict) -> None:
        """Input not complete at the queue: stream it (direct access, or no storage), or dispatch the
        missing files by a ``_dis`` rule and wait in assigned."""
        jobs = self.jobs
        src, _ = self._best_source(ds, st)
        jobs.source[row] = src
        rse = self._in_rse[st.index]
        if st.site.direct_access or rse < 0:
            jobs.direct[row] = 2  # streamed from a remote replica
            self._activate_now(row, st, now)
            touched[st.index] = None
            return
        missing = self.ddm.missing_at(self.input_fids(spec, ds), rse)
        if not missing:  # the files are there already (cached by earlier jobs): no _dis dataset
            jobs.source[row] = st.atlas_index
            self._activate_now(row, st, now)
            touched[st.index] = None
            return
        jobs.dis[row] = True
        jobs.status[row] = ASSIGNED
        jobs.log(row, now, ASSIGNED, st.index)
        st.assigned += 1
        act = ACT_ANA_IN if self._is_user[self._task[spec]] else ACT_PROD_IN
        group = self.ddm.dispatch(row, missing, rse, act, self._on_dis_ok, self._on_dis_stuck)
        self._dis_groups[row] = group
        if group.pending == 0:  # every missing file was being copied there and is now complete
            group.done = True
            st.assigned -= 1
            self._activate_now(row, st, now)
            touched[st.index] = None

    def _on_dis_ok(self, row: int) -> None:
        """``datasetlock_ok`` on the job's ``_dis`` dataset: assigned -> activated."""
        st = self.states[self.jobs.site[row]]
        st.assigned -= 1
        self._activate_now(row, st, self.engine.now)
        self._dispatch(st)

    def _on_dis_stuck(self, row: int) -> None:
        """A transfer of the ``_dis`` dataset gave up: the job fails with a DDM error (setupper)."""
        st = self.states[self.jobs.site[row]]
        st.assigned -= 1
        self.jobs.ddm_error[row] = F.DDM_DISPATCH_FAILED
        self.n_input_stuck += 1
        self._fail(row, st, self.engine.now)

    def _activate_now(self, row: int, st: SiteState, now: float) -> None:
        jobs = self.jobs
        jobs.status[row] = ACTIVATED
        jobs.t_mod[row] = now
        jobs.log(row, now, ACTIVATED, st.index)
        st.activated += 1
        if self._latency is not None:
            self.engine.schedule(self._latency.draw(), self._pilot_arrives, row)
            return
        self._enqueue(row, st)

    def _enqueue(self, row: int, st: SiteState) -> None:
        """Put an activated job in its queue's pilot queue (1-core or multi-core) by priority."""
        spec = self.jobs.spec[row]
        entry = (-self._prio[self._task[spec]], row)
        if self._cores[self._task[spec]] > 1:
            heapq.heappush(st.queue_mcore, entry)
        else:
            heapq.heappush(st.queue_score, entry)

    def _pilot_arrives(self, row: int) -> None:
        """A pilot is there for an activated job (after the pilot latency): it may start if a core is free."""
        jobs = self.jobs
        if jobs.status[row] != ACTIVATED:
            return  # closed meanwhile (a downtime)
        st = self.states[jobs.site[row]]
        self._ready_at[row] = self.engine.now
        self._enqueue(row, st)
        self._dispatch(st)

    def _on_input_arrived(self, row: int) -> None:
        del self._pending_activation[row]
        st = self.states[self.jobs.site[row]]
        st.assigned -= 1
        self._activate_now(row, st, self.engine.now)
        self._dispatch(st)

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, st: SiteState) -> None:
        """Pilots take activated jobs by priority (then age) while cores are free. A multi-core job that
        does not fit lets 1-core jobs use the free cores (backfill) until it has waited
        ``pilot.mcore_drain_after_s``; then the queue drains cores for it, as sites do for multi-core
        pilots, so it cannot starve. Stale heap entries (closed jobs) are dropped here."""
        if not st.online:
            return
        jobs = self.jobs
        status = jobs.status
        site = jobs.site
        sidx = st.index
        qs, qm = st.queue_score, st.queue_mcore
        pop = heapq.heappop
        activated = ACTIVATED
        drain_after = self.params.pilot.mcore_drain_after_s
        while st.free_cores > 0:
            while qs and (status[qs[0][1]] != activated or site[qs[0][1]] != sidx):
                pop(qs)
            while qm and (status[qm[0][1]] != activated or site[qm[0][1]] != sidx):
                pop(qm)
            if qm:
                row = qm[0][1]
                cores = self._cores[self._task[jobs.spec[row]]]
                ready = jobs.t_mod[row] if self._latency is None else self._ready_at.get(row, jobs.t_mod[row])
                starving = self.engine.now - ready >= drain_after  # t_mod: when it was activated
                if cores <= st.free_cores and (starving or not qs or qm[0] < qs[0]):
                    pop(qm)
                    self._start(row, st, cores)
                    continue
                if starving:
                    return  # keep the free cores for it
            if qs:
                self._start(pop(qs)[1], st, 1)
            else:
                return

    def _start(self, row: int, st: SiteState, cores: int) -> None:
        jobs = self.jobs
        now = self.engine.now
        spec = jobs.spec[row]
        site = st.site
        if self._latency is not None:
            self._ready_at.pop(row, None)
        jobs.status[row] = SENT
        jobs.t_sent[row] = now
        st.activated -= 1
        st.running += 1
        st.free_cores -= cores
        pp = self.params.pilot
        if pp.jitter:
            up = self._u_pilot.next
            g = pp.getjob_s * (0.5 + up())
            su = pp.setup_s * (0.5 + up())
        else:
            g, su = pp.getjob_s, pp.setup_s
        net = self.params.network
        inb = self._inb[spec]
        direct = (site.direct_access and inb > 0) or jobs.direct[row] == 2
        if direct and not jobs.direct[row]:
            jobs.direct[row] = 1
        stagein = 0.0 if direct or inb <= 0 else net.lan_time(inb)
        eff = self._eff[spec]
        if jobs.direct[row] == 2:
            # remote streaming: the payload waits on the WAN read; CPU time is unchanged, wall time grows
            t_cpu = self._work[spec] / (site.corepower * cores * eff * site.efficiency)
            rate = self.ddm.params.direct_read_bps  # direct[row] == 2 is set by data management only
            src = jobs.source[row]
            if src >= 0:
                rate = min(rate, self.grid.link_between(self.atlas_names[src], st.atlas_site).bandwidth_bps)
            eff *= t_cpu / (t_cpu + inb / rate)
        elif self.ddm is not None and jobs.dis[row]:
            self.ddm.read(self.input_fids(spec, self._ds[self._task[spec]]), self._in_rse[st.index])
        uf = self._u_fail.next
        kind = self.failure_model.kind(uf())
        frac = uf()  # drawn for every attempt: memory and time limits may turn an OK draw into a failure
        exe_code = self.failure_model.exe_code(uf()) if kind == F.PAYLOAD else 0
        mem_limit = site.maxrss_mb * 1024.0 * cores / site.corecount
        maxtime = site.maxtime_s
        if self._has_requests and jobs.attempt[row] == 1:  # requests bind first attempts only
            if self._req_rss is not None and 0 < self._req_rss[spec] < mem_limit:
                mem_limit = self._req_rss[spec]
            if self._req_wall is not None:
                w = self._req_wall[spec] * REFERENCE_COREPOWER / site.corepower
                if w < maxtime:  # False for NaN: no request
                    maxtime = w
        a = run_attempt(  # positional: keyword passing costs measurably in this hot path
            self._work[spec], cores, eff, self._rss[spec], stagein, net.lan_time(self._outb[spec]),
            site.corepower, site.efficiency, mem_limit, maxtime, g, su, kind, frac, exe_code,
        )
        a.row = row
        a.cores = cores
        st.running_jobs[row] = a
        a.handle = self.engine.schedule(a.duration, self._on_end, a)

    # ------------------------------------------------------------------ end of an attempt
    def _log_progress(self, row: int, a: Attempt, st: SiteState) -> None:
        """Log sent / starting / running with the times they happened, and set start time and timing."""
        jobs = self.jobs
        t0 = jobs.t_sent[row]
        s = st.index
        t_start = t0 + a.getjob
        jobs.t_start[row] = t_start
        t_run = t_start + a.setup + a.stagein
        if (a.kind != F.STAGEIN or a.exe > 0) and t_run <= self.engine.now:
            jobs._extend((row, t0, SENT, s, row, t_start, STARTING, s, row, t_run, RUNNING, s))
        else:
            jobs._extend((row, t0, SENT, s, row, t_start, STARTING, s))
        jobs.record_attempt(row, a)

    def _log_killed(self, row: int, a: Attempt, st: SiteState, now: float) -> None:
        """Log and time an attempt killed at ``now``: only the phases it reached; no start time if its
        pilot had not finished getJob."""
        jobs = self.jobs
        t0 = jobs.t_sent[row]
        s = st.index
        jobs._extend((row, t0, SENT, s))
        t_start = t0 + a.getjob
        if t_start <= now:
            jobs.t_start[row] = t_start
            jobs.log(row, t_start, STARTING, s)
            t_run = t_start + a.setup + a.stagein
            if t_run <= now:
                jobs.log(row, t_run, RUNNING, s)
        jobs.record_attempt(row, truncate(a, now - t0, a.cores))

    def _on_end(self, a: Attempt) -> None:
        jobs = self.jobs
        now = self.engine.now
        row = a.row
        st = self.states[jobs.site[row]]
        del st.running_jobs[row]
        st.running -= 1
        st.free_cores += a.cores
        self._log_progress(row, a, st)
        jobs.t_end[row] = now
        if a.kind != F.OK:
            jobs.pilot_error[row] = a.piloterrorcode
            jobs.exe_error[row] = a.exeerrorcode
            self._fail(row, st, now)
        else:
            self._payload_done(row, st, now)
        self._dispatch(st)

    def _payload_done(self, row: int, st: SiteState, now: float) -> None:
        if self.ddm is not None:
            self._stage_out(row, st, now)
            return
        jobs = self.jobs
        spec = jobs.spec[row]
        task = self._task[spec]
        nuc = self.jedi.nucleus[task]
        if nuc >= 0 and self.states[nuc].atlas_site != st.atlas_site:
            dst = self.states[nuc].atlas_site
            jobs.status[row] = TRANSFERRING
            jobs.t_mod[row] = now
            jobs.log(row, now, TRANSFERRING, st.index)
            self.grid.add_queued_files(st.atlas_site, dst, 1)
            delay = self.params.network.wan_time(self._outb[spec], self.grid.link_between(st.atlas_site, dst))
            self.engine.schedule(delay, self._on_output_arrived, row)
        else:
            self._store_output(row, st)
            self._finish(row, FINISHED, now, st.index)
            self._release_rw(row)

    def _stage_out(self, row: int, st: SiteState, now: float) -> None:
        """The pilot writes output and log to the queue's storage; production output then goes to the
        nucleus through the task's ``_sub`` dataset while the job is transferring."""
        jobs = self.jobs
        ddm = self.ddm
        spec = jobs.spec[row]
        task = self._task[spec]
        user = self._is_user[task]
        rse = self.catalog.rse_index.get(self._output_rse(st, user), -1)
        log_bytes = log_file_bytes(jobs.first_pandaid + row)
        if user or rse < 0:
            if rse < 0 or ddm.write_bytes(rse, self._outb[spec] + log_bytes):
                self._finish(row, FINISHED, now, st.index)
                self._release_rw(row)
            else:
                self._stage_out_refused(row, st, now)
            return
        nuc = self.jedi.nucleus[task]
        remote = nuc >= 0 and self.states[nuc].atlas_site != st.atlas_site
        cat = self.catalog
        out = cat.new_file(self._outb[spec], row, 1)
        log = cat.new_file(log_bytes, row, 2)
        if not (ddm.write_output(out, rse, not remote) and ddm.write_output(log, rse, not remote)):
            self._stage_out_refused(row, st, now)
            return
        if not remote:
            self._finish(row, FINISHED, now, st.index)
            self._release_rw(row)
            return
        dst = cat.rse_index.get(self._output_rse(self.states[nuc], False), -1)
        jobs.status[row] = TRANSFERRING
        jobs.t_mod[row] = now
        jobs.log(row, now, TRANSFERRING, st.index)
        group = ddm.ship_output(row, task * self.sub_base + st.index, [out, log], dst, ACT_PROD_OUT, self._on_sub_ok,
                                self._on_sub_stuck)
        if group.pending == 0:
            self._on_sub_ok(row)

    def _stage_out_refused(self, row: int, st: SiteState, now: float) -> None:
        """The queue's storage is full: the pilot's stage-out fails (1137)."""
        self.jobs.pilot_error[row] = F.STAGEOUT_FAILED
        self._fail(row, st, now)

    def _on_sub_ok(self, row: int) -> None:
        """Output and log are at the nucleus: transferring -> finished."""
        self._finish(row, FINISHED, self.engine.now, self.jobs.site[row])
        self._release_rw(row)

    def _on_sub_stuck(self, row: int) -> None:
        """An output transfer gave up: the job fails with a DDM error (adder)."""
        self.jobs.ddm_error[row] = F.DDM_OUTPUT_FAILED
        self.n_output_stuck += 1
        self._fail(row, self.states[self.jobs.site[row]], self.engine.now)

    def _output_rse(self, st: SiteState, user: bool) -> str:
        """Where a job's output lands at queue ``st``: the scratch disk (analysis) or a DATADISK (production)."""
        key = (st.index, user)
        name = self._out_rse.get(key)
        if name is None:
            if user:
                name = st.scratch_rse
            else:
                cands = self._rse_by_atlas.get(st.atlas_site, [])
                name = next((r for r in cands if "DATADISK" in r), cands[0] if cands else st.scratch_rse)
            self._out_rse[key] = name
        return name

    def _store_output(self, row: int, st_dest: SiteState) -> None:
        spec = self.jobs.spec[row]
        rse = self.platform.rses.get(self._output_rse(st_dest, self._is_user[self._task[spec]]))
        if rse is not None:
            rse.used_bytes += self._outb[spec]

    def _on_output_arrived(self, row: int) -> None:
        jobs = self.jobs
        spec = jobs.spec[row]
        st = self.states[jobs.site[row]]
        nuc = self.states[self.jedi.nucleus[self._task[spec]]]
        self.grid.add_queued_files(st.atlas_site, nuc.atlas_site, -1)
        self._store_output(row, nuc)
        self._finish(row, FINISHED, self.engine.now, st.index)
        self._release_rw(row)

    def _finish(self, row: int, status: int, now: float, site: int) -> None:
        jobs = self.jobs
        jobs.status[row] = status
        jobs.t_mod[row] = now
        jobs.log(row, now, status, site)
        self.n_active -= 1
        if self._dis_groups:
            group = self._dis_groups.pop(row, None)
            if group is not None:
                self.ddm.release(group)

    def _fail(self, row: int, st: SiteState, now: float) -> None:
        """Mark ``row`` failed and queue a retry unless the job has used all its attempts."""
        jobs = self.jobs
        self._finish(row, FAILED, now, st.index)
        spec = jobs.spec[row]
        n = self.failed_attempts.get(spec, 0) + 1
        self.failed_attempts[spec] = n
        if n < self.params.failures.max_attempts:
            self.jedi.add_retry(self._task[spec], spec, row, jobs.attempt[row] + 1)
        else:
            self._release_rw(row)

    # ------------------------------------------------------------------ downtimes
    def _on_downtime_start(self, st: SiteState) -> None:
        """The queue goes offline: running jobs are killed (pilot 1201), queued ones closed and rebrokered.

        Windows may overlap (a queue's own and its ATLAS site's): the queue is back only when all ended."""
        st.downtimes += 1
        if st.downtimes > 1 or not st.online:
            return
        st.online = False
        jobs = self.jobs
        now = self.engine.now
        for row, running in sorted(st.running_jobs.items()):
            self.engine.cancel(running.handle)
            st.running -= 1
            st.free_cores += running.cores
            self._log_killed(row, running, st, now)
            jobs.t_end[row] = now
            jobs.pilot_error[row] = F.SIGTERM
            self._fail(row, st, now)
        st.running_jobs.clear()
        for row in [r for r in self._pending_activation if jobs.site[r] == st.index]:
            self.engine.cancel(self._pending_activation.pop(row))
            st.assigned -= 1
            self._close_and_rebroker(row, st, now)
        for row in [r for r, g in self._dis_groups.items() if jobs.site[r] == st.index and not g.done]:
            st.assigned -= 1
            self._close_and_rebroker(row, st, now)  # closing releases its _dis rule
        for heap in (st.queue_score, st.queue_mcore):
            for _, row in sorted(heap, key=lambda e: e[1]):
                if jobs.status[row] == ACTIVATED and jobs.site[row] == st.index:
                    st.activated -= 1
                    self._close_and_rebroker(row, st, now)
            heap.clear()

    def _close_and_rebroker(self, row: int, st: SiteState, now: float) -> None:
        jobs = self.jobs
        jobs.tb_error[row] = F.TB_REASSIGNED
        self._finish(row, CLOSED, now, st.index)
        spec = jobs.spec[row]
        self.jedi.add_retry(self._task[spec], spec, row, jobs.attempt[row] + 1)

    def _on_downtime_end(self, st: SiteState) -> None:
        st.downtimes -= 1
        if st.downtimes == 0:
            st.online = st.site.status == "online"
            self._dispatch(st)

    # ------------------------------------------------------------------ end of a run
    def finish_run(self) -> None:
        """At the end of a run, bring attempts still in flight up to date: log the phases they reached
        by now (sent, starting, running) and set their status and start time to match."""
        jobs = self.jobs
        now = self.engine.now
        for st in self.states:
            for row, a in sorted(st.running_jobs.items()):
                t0 = jobs.t_sent[row]
                jobs.log(row, t0, SENT, st.index)
                status, t_mod = SENT, t0
                t_start = t0 + a.getjob
                if t_start <= now:
                    jobs.t_start[row] = t_start
                    jobs.log(row, t_start, STARTING, st.index)
                    status, t_mod = STARTING, t_start
                    t_run = t_start + a.setup + a.stagein
                    if t_run <= now and (a.kind != F.STAGEIN or a.exe > 0):
                        jobs.log(row, t_run, RUNNING, st.index)
                        status, t_mod = RUNNING, t_run
                jobs.record_attempt(row, truncate(a, now - t0, a.cores))
                jobs.status[row] = status
                jobs.t_mod[row] = t_mod

    def specs_never_created(self) -> int:
        """Job specs for which no job was ever created (broken tasks, or still pending at the end)."""
        created = np.unique(self.jobs.column("spec")).size if len(self.jobs) else 0
        return self.wl.n_jobs - created

    # ------------------------------------------------------------------ summaries
    def counts_by_status(self) -> dict[str, int]:
        c = np.bincount(self.jobs.column("status").astype(np.int64), minlength=len(JobStatus))
        return {s.name: int(c[s]) for s in JobStatus if c[s]}

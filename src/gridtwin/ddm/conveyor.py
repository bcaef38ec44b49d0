"""The conveyor: transfer requests from QUEUED to DONE or FAILED, over per-link FTS queues.

Daemon order as in Rucio (``docs/operator_transfers/transfers_overview.md``):

1. the *submitter* runs every ``submitter_interval_s``; for each QUEUED request the *preparer*
   step picks a source through the source-selection plugin (NO_SOURCES if none is AVAILABLE) and
   hands the request to FTS: ``submitted_at`` is set and it joins the FTS queue of its link;
   a request whose source is TAPE first waits for a drive of that tape system (bring-online),
   ``staging_started_at`` / ``staging_finished_at``;
2. FTS starts queued transfers of a link while its active count is below the link's optimizer
   limit (``started_at``); the optimizer ticks every 60 s on links with a queue;
3. the flow model moves the bytes; a random share of attempts fail part-way with an FTS reason;
4. the *finisher*: DONE makes the destination replica AVAILABLE; FAILED makes a retry request
   (``previous_request_id``) until ``max_retries``, then the lock is STUCK.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from gridtwin.ddm.catalog import Catalog
from gridtwin.ddm.fts_optimizer import LinkOptimizer, OptimizerParams
from gridtwin.ddm.reaper import Reaper
from gridtwin.ddm.requests import (
    DONE,
    FAILED,
    NO_SOURCES,
    PREPARING,
    R_NO_FILE,
    R_NO_SPACE,
    RANDOM_REASONS,
    SUBMITTED,
    RequestTable,
)
from gridtwin.errors import ConfigError
from gridtwin.kernel import Engine, UniformBuffer
from gridtwin.network.flow import FlowModel, PlatformRoutes
from gridtwin.platform.model import Platform
from gridtwin.policies.source_selection import SourceCandidate, SourceSelector


@dataclass(frozen=True)
class TapeParams:
    """A Tier-1 tape system: drives recall files one at a time each."""

    drives: int = 16
    drive_rate_bps: float = 300e6
    mount_s: float = 60.0
    """Mount, positioning and bring-online overhead per recalled file, seconds."""

    def __post_init__(self) -> None:
        if self.drives < 1:
            raise ConfigError(f"tape: drives must be >= 1, got {self.drives}")
        if not self.drive_rate_bps > 0:
            raise ConfigError(f"tape: drive rate must be > 0, got {self.drive_rate_bps}")


@dataclass(frozen=True)
class ConveyorParams:
    """Steering of the conveyor and of the FTS links."""

    submitter_interval_s: float = 30.0
    max_retries: int = 3
    """Retries after a failed attempt before the lock is STUCK (Rucio's default is 3)."""
    failure_rate: float = 0.03
    """Probability that an attempt fails (FTS error), on top of full destinations."""
    reason_weights: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)
    """Weights of the random failure reasons ``requests.RANDOM_REASONS``."""
    optimizer: OptimizerParams = field(default_factory=OptimizerParams)
    lan_min_active: int = 10
    """FTS's minimum active transfers on a LAN (same-site) link."""
    tape: TapeParams = field(default_factory=TapeParams)

    def __post_init__(self) -> None:
        if not 0 <= self.failure_rate < 1:
            raise ConfigError(f"conveyor: failure_rate must be in [0, 1), got {self.failure_rate}")
        if len(self.reason_weights) != len(RANDOM_REASONS) or min(self.reason_weights) < 0 \
                or sum(self.reason_weights) <= 0:
            raise ConfigError(f"conveyor: reason_weights must be {len(RANDOM_REASONS)} weights >= 0 with a "
                              f"positive sum, got {list(self.reason_weights)}")
        if self.max_retries < 0:
            raise ConfigError(f"conveyor: max_retries must be >= 0, got {self.max_retries}")
        if not self.submitter_interval_s > 0:
            raise ConfigError(f"conveyor: submitter_interval_s must be > 0, got {self.submitter_interval_s}")


class LinkState:
    """One FTS link (source site -> destination site): its queue, active transfers and optimizer."""

    __slots__ = ("active", "bytes_done", "bytes_failed", "dst", "files_done", "files_failed", "index", "n_obs", "opt",
                 "queue", "route", "sampled", "src")

    def __init__(self, index: int, src: str, dst: str, route, opt: LinkOptimizer) -> None:
        self.index = index
        self.src = src
        self.dst = dst
        self.route = route
        self.opt = opt
        self.queue: deque[int] = deque()
        self.active = 0
        self.bytes_done = 0  # since the run started
        self.files_done = 0
        self.bytes_failed = 0
        self.files_failed = 0
        self.n_obs = 0
        self.sampled = (0, 0, 0)  # (bytes_done, files_done, files_failed) at the last sample


class _Tape:
    __slots__ = ("free", "queue", "rse")

    def __init__(self, rse: int, drives: int) -> None:
        self.rse = rse
        self.free = drives
        self.queue: deque[int] = deque()


class Conveyor:
    """Submitter, FTS link queues with optimizers, tape recall, flow model, finisher."""

    def __init__(self, engine: Engine, platform: Platform, catalog: Catalog, requests: RequestTable,
                 flow_factory: Callable[[Engine, Callable], FlowModel], selector: SourceSelector,
                 params: ConveyorParams, rng: np.random.Generator, reaper: Reaper,
                 queued_hook: Callable[[str, str, int], None] | None = None) -> None:
        self.engine = engine
        self.platform = platform
        self.catalog = catalog
        self.req = requests
        self.params = params
        self.selector = selector
        self.flow = flow_factory(engine, self._on_flow_complete)
        self.routes = PlatformRoutes(platform)
        self.links: dict[tuple[str, str], LinkState] = {}
        self.link_list: list[LinkState] = []
        self._req_link: dict[int, LinkState] = {}  # active request -> its link
        self._backlogged: dict[LinkState, None] = {}
        self.dirty: dict[LinkState, None] = {}  # links whose counters changed since the last metrics sample
        self.watch: dict[LinkState, None] | None = None
        """Links touched since an observer (the live dashboard) last emptied it; None: nobody watches."""
        self._tick_handle: int | None = None
        self._pending: list[int] = []
        self._submit_handle: int | None = None
        self._tapes: dict[int, _Tape] = {}
        self._src_cache: dict[tuple, int] = {}
        self._u = UniformBuffer(rng)
        w = np.asarray(params.reason_weights, dtype=np.float64)
        self._reason_cdf = (np.cumsum(w) / w.sum()).tolist()
        self.queued_hook = queued_hook
        self.judge = None  # set by the judge: attempt_ended(req, ok, final)
        self.reaper = reaper
        self.in_flight = 0
        """Requests created and not yet ended for good (queued, staging, queued at FTS, active, retrying)."""
        self.bytes_delivered = 0
        self.n_done = 0
        self.n_failed_attempts = 0
        self.n_stuck = 0

    # ------------------------------------------------------------------ submitter + preparer
    def submit(self, rid: int) -> None:
        """A QUEUED request: the next submitter cycle prepares and submits it."""
        self._pending.append(rid)
        if self._submit_handle is None:
            iv = self.params.submitter_interval_s
            t = (math.floor(self.engine.now / iv) + 1) * iv
            self._submit_handle = self.engine.schedule_at(t, self._on_submitter)

    def _on_submitter(self, _=None) -> None:
        self._submit_handle = None
        batch, self._pending = self._pending, []
        now = self.engine.now
        req = self.req
        for rid in batch:
            src = self._choose_source(rid)
            if src < 0:
                req.state[rid] = NO_SOURCES
                req.reason[rid] = R_NO_FILE
                req.transferred[rid] = now
                self.n_stuck += 1
                self.in_flight -= 1
                self.judge.attempt_ended(rid, False, True)
                continue
            req.src[rid] = src
            req.submitted[rid] = now
            req.state[rid] = SUBMITTED
            self._hold_source(rid)
            if self.catalog.rse_is_tape[src]:
                self._stage(rid, src)
            else:
                self._enqueue(rid)

    def _source_slot(self, rid: int) -> int | None:
        """The file-replica slot a submitted request reads from (None for a bulk replica)."""
        cat = self.catalog
        return cat._rep.get(self.req.fid[rid] * cat.n_rse + self.req.src[rid])

    def _hold_source(self, rid: int) -> None:
        """The request reads from its source until its attempt ends: the reaper leaves that replica alone."""
        s = self._source_slot(rid)
        if s is not None:
            use = self.catalog.r_src_use
            use[s] = use.get(s, 0) + 1

    def _release_source(self, rid: int) -> None:
        s = self._source_slot(rid)
        if s is not None:
            use = self.catalog.r_src_use
            n = use[s] - 1
            if n:
                use[s] = n
            else:
                del use[s]

    def _choose_source(self, rid: int) -> int:
        cat = self.catalog
        fid = self.req.fid[rid]
        srcs = cat.available_sources(fid)
        if not srcs:
            return -1
        dst = self.req.dst[rid]
        if len(srcs) == 1:
            return srcs[0]
        if self.selector.static:
            key = (tuple(srcs), cat.rse_site[dst])
            hit = self._src_cache.get(key)
            if hit is None:
                hit = self._src_cache[key] = srcs[self._select(srcs, dst, fid)]
            return hit
        return srcs[self._select(srcs, dst, fid)]

    def _select(self, srcs: list[int], dst: int, fid: int) -> int:
        cat = self.catalog
        dsite = cat.rse_site[dst]
        cands = []
        for s in srcs:
            ssite = cat.rse_site[s]
            lk = self.platform.link(ssite, dsite)
            st = self.links.get((ssite, dsite))
            cands.append(SourceCandidate(cat.rse_names[s], ssite, cat.rse_is_tape[s], lk.closeness, lk.mbps,
                                         lk.bandwidth_bps, len(st.queue) if st else 0, st.active if st else 0))
        i = self.selector.choose(cands, cat.rse_names[dst], cat.f_size[fid])
        if not 0 <= i < len(cands):
            raise ConfigError(f"source selection {self.selector.name!r}: chose index {i!r} among {len(cands)} "
                              "candidates")
        return i

    # ------------------------------------------------------------------ tape recall
    def _stage(self, rid: int, tape_rse: int) -> None:
        tape = self._tapes.get(tape_rse)
        if tape is None:
            tape = self._tapes[tape_rse] = _Tape(tape_rse, self.params.tape.drives)
        self.req.state[rid] = PREPARING
        tape.queue.append(rid)
        self._start_recalls(tape)

    def _start_recalls(self, tape: _Tape) -> None:
        tp = self.params.tape
        req = self.req
        now = self.engine.now
        while tape.free > 0 and tape.queue:
            rid = tape.queue.popleft()
            tape.free -= 1
            req.stage_start[rid] = now
            dur = tp.mount_s + self.catalog.f_size[req.fid[rid]] / tp.drive_rate_bps
            self.engine.schedule(dur, self._on_staged, rid)

    def _on_staged(self, rid: int) -> None:
        req = self.req
        req.stage_end[rid] = self.engine.now
        req.state[rid] = SUBMITTED
        tape = self._tapes[req.src[rid]]
        tape.free += 1
        self._enqueue(rid)
        self._start_recalls(tape)

    # ------------------------------------------------------------------ FTS links
    def link(self, src_site: str, dst_site: str) -> LinkState:
        key = (src_site, dst_site)
        lk = self.links.get(key)
        if lk is None:
            p = self.params.optimizer
            lan = self.params.lan_min_active
            if src_site == dst_site and p.min_active < lan:
                p = replace(p, min_active=lan, se_limit=max(p.se_limit, lan),
                            max_active=None if p.max_active is None else max(p.max_active, lan))
            lk = LinkState(len(self.link_list), src_site, dst_site, self.routes.route(src_site, dst_site),
                           LinkOptimizer(p, f"{src_site}->{dst_site}"))
            self.links[key] = lk
            self.link_list.append(lk)
        return lk

    def _enqueue(self, rid: int) -> None:
        cat = self.catalog
        req = self.req
        lk = self.link(cat.rse_site[req.src[rid]], cat.rse_site[req.dst[rid]])
        lk.queue.append(rid)
        self.dirty[lk] = None
        if self.watch is not None:
            self.watch[lk] = None
        started = self._pump(lk, False)
        if started != 1 and self.queued_hook is not None:
            self.queued_hook(lk.src, lk.dst, 1 - started)
        if lk.queue and lk not in self._backlogged:
            self._backlogged[lk] = None
            self._arm_ticks()

    def _pump(self, lk: LinkState, report: bool = True) -> int:
        """Start queued transfers while the link is below its optimizer limit; return how many left the
        queue (``report``: tell the queued-files hook)."""
        q = lk.queue
        limit = lk.opt.limit
        if not q or lk.active >= limit:
            return 0
        req = self.req
        cat = self.catalog
        now = self.engine.now
        u = self._u.next
        fail_p = self.params.failure_rate
        cdf = self._reason_cdf
        rep_get = cat._rep.get
        nr = cat.n_rse
        acc = cat.r_acc
        fast_limit = self.reaper.fast_limit
        n = 0
        while q and lk.active < limit:
            rid = q.popleft()
            n += 1
            size = cat.f_size[req.fid[rid]]
            slot = req.slot[rid]
            if cat.r_bytes[slot] == 0:
                dst = req.dst[rid]
                r = cat.rses[dst]
                if r.used_bytes + size > fast_limit[dst] and not self.reaper.make_room(dst, size, now):
                    req.started[rid] = now
                    req.reason[rid] = R_NO_SPACE
                    self.fail(rid, now, lk)
                    continue
                cat.reserve(slot)
            lk.active += 1
            req.started[rid] = now
            s_src = rep_get(req.fid[rid] * nr + req.src[rid])
            if s_src is not None:
                acc[s_src] = now  # the source replica is read: accessed_at
            if fail_p and u() < fail_p:
                x = u()
                req.reason[rid] = RANDOM_REASONS[min(bisect_right(cdf, x), len(cdf) - 1)]
                size = size * u()  # the attempt dies part-way
            self._req_link[rid] = lk
            self.flow.start(rid, lk.route, size)
        if report and n and self.queued_hook is not None:
            self.queued_hook(lk.src, lk.dst, -n)
        return n

    def _arm_ticks(self) -> None:
        if self._tick_handle is None:
            tick = self.params.optimizer.tick_s
            t = (math.floor(self.engine.now / tick) + 1) * tick
            self._tick_handle = self.engine.schedule_at(t, self._on_tick)

    def _on_tick(self, _=None) -> None:
        """FTS optimizer pass over the links with a queue (a link with an empty queue would hold anyway)."""
        self._tick_handle = None
        now = self.engine.now
        for lk in list(self._backlogged):
            if not lk.queue:  # emptied since it joined: FTS would hold it; it is not ticked
                del self._backlogged[lk]
                continue
            lk.opt.tick(now, len(lk.queue), lk.active)
            self._pump(lk)
            if not lk.queue:
                del self._backlogged[lk]
        if self._backlogged:
            self._arm_ticks()

    # ------------------------------------------------------------------ finisher
    def _on_flow_complete(self, rid: int, now: float) -> None:
        req = self.req
        lk = self._req_link.pop(rid)
        lk.active -= 1
        self.dirty[lk] = None
        if self.watch is not None:
            self.watch[lk] = None
        req.transferred[rid] = now
        size = self.catalog.f_size[req.fid[rid]]
        ok = req.reason[rid] == 0
        opt = lk.opt
        opt._done.append((now, now - req.started[rid], size, ok, rid in req.retry))  # observe_transfer, inlined
        lk.n_obs += 1
        if lk.n_obs % 2048 == 0 and lk not in self._backlogged:
            opt.measure(now)  # prunes observations older than its window on links that are not ticked
        if ok:
            self._release_source(rid)
            req.state[rid] = DONE
            lk.bytes_done += size
            lk.files_done += 1
            self.bytes_delivered += size
            self.n_done += 1
            self.in_flight -= 1
            self.judge.attempt_ended(rid, True, True)
        else:
            self.fail(rid, now, lk)
        if lk.queue:
            self._pump(lk)

    def fail(self, rid: int, now: float, lk: LinkState | None = None) -> None:
        """An attempt failed (its reason is set): retry it as a new request, or give up (STUCK)."""
        self._release_source(rid)
        req = self.req
        req.state[rid] = FAILED
        if math.isnan(req.transferred[rid]):
            req.transferred[rid] = now
        if lk is not None:
            lk.files_failed += 1
            lk.bytes_failed += self.catalog.f_size[req.fid[rid]]
        self.n_failed_attempts += 1
        retry = req.retry.get(rid, 0)
        final = retry >= self.params.max_retries
        self.judge.attempt_ended(rid, False, final)
        if final:
            self.n_stuck += 1
            self.in_flight -= 1
        else:
            new = req.new(req.fid[rid], req.dst[rid], req.slot[rid], req.rule[rid], req.activity[rid], now,
                          previous=rid, retry=retry + 1)
            self.submit(new)

    # ------------------------------------------------------------------ state
    def busy(self) -> bool:
        return self.in_flight > 0

    def active_transfers(self) -> int:
        return self.flow.active()

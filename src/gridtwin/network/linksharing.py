"""``LinkSharing``: the fast default flow model, O(log n) per start or finish.

Every resource is a processor-sharing server. The flows whose route is that one resource ("local"
flows, the default: one platform link per transfer) all get the same rate::

    rate_r = min(window_cap_r, (bandwidth_factor * capacity_r - transit_r) / n_local_r)

where ``window_cap_r = bandwidth_factor * window_bytes / (2 * latency_r)`` is the TCP-window bound
(every local flow of a resource has the same route, hence the same bound) and ``transit_r`` is the
rate taken by multi-resource flows crossing ``r`` (zero with the default routes). This is exact
processor sharing, and it equals SimGrid's LV08 max-min solution on single-link routes.

Speed trick, virtual time: because all local flows of a resource progress at the same rate, a
resource keeps one clock ``vt`` (bytes served to each of its flows so far) advancing at ``rate_r``.
A flow arriving when the clock reads ``vt`` finishes when it reads ``vt + size``; these finish
readings sit in a heap, so a start or a finish costs one heap operation plus one engine reschedule,
never a pass over the resource's flows. Each resource keeps at most one pending engine event (its
earliest finish); when an arrival moves that finish later the event stays and, firing early, moves
itself on; it is cancelled and rescheduled only when the finish moves earlier.

Approximation for multi-resource routes ("transit" flows): a transit flow gets the bottleneck share
of its route, ``min(window_cap, min_r bandwidth_factor * capacity_r / n_r)`` with ``n_r`` counting
every active flow on ``r``; it is re-evaluated whenever a flow arrives at or leaves one of its
resources, and the local flows of each resource share what transit flows leave. Capacity a
bottlenecked transit flow leaves unused on its other resources goes to their local flows, never to
other transit flows (true max-min would give it to them), so transit flows can finish later than in
:class:`~gridtwin.network.maxmin.MaxMin`; no resource is ever oversubscribed. The cost of an event
grows by the number of transit flows on the resources it touches (zero with the default routes).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

from gridtwin.kernel.engine import Engine, EventHandle
from gridtwin.network.flow import (
    CompletionCallback,
    EarliestEvent,
    FlowId,
    FlowModel,
    Resource,
    route_latency,
)

_LATENT, _LOCAL, _TRANSIT, _DONE = 0, 1, 2, 3


class _Flow:
    """One flow's bookkeeping (slots: millions of these may exist in a day-long run)."""

    __slots__ = ("cap", "fid", "finish_vt", "rate", "remaining", "res", "route", "size", "state", "t_last", "version")

    def __init__(self, fid: FlowId, route: tuple[Resource, ...], size: float) -> None:
        self.fid = fid
        self.route = route
        self.size = size
        self.state = _LATENT
        self.res: list[_Res] = []
        self.finish_vt = 0.0  # local flows: the resource clock reading at which the flow is done
        self.cap = math.inf  # transit flows: effective window bound
        self.rate = 0.0  # transit flows: current rate
        self.remaining = size  # transit flows: bytes left at t_last
        self.t_last = 0.0
        self.version = 0  # transit flows: bumps on every rate change; older heap entries are stale


class _Res:
    """Per-resource state: the processor-sharing clock of its local flows plus its transit flows."""

    __slots__ = (
        "cap_total",
        "event",
        "event_flow",
        "event_target",
        "event_time",
        "heap",
        "local_cap",
        "n_all",
        "n_local",
        "rate",
        "resource",
        "t_last",
        "transit",
        "transit_sum",
        "vt",
    )

    def __init__(self, resource: Resource, cap_total: float, local_cap: float) -> None:
        self.resource = resource
        self.cap_total = cap_total  # bandwidth_factor * capacity
        self.local_cap = local_cap  # window bound of a local flow (same for all: same route)
        self.n_local = 0
        self.n_all = 0  # local + transit active flows, the divisor of the transit bottleneck share
        self.vt = 0.0  # virtual time: bytes served to each local flow since the resource last idled
        self.t_last = 0.0
        self.rate = 0.0  # current rate of each local flow
        self.heap: list[tuple[float, int, _Flow]] = []  # (finish_vt, seq, flow); cancelled flows left in
        self.transit: dict[_Flow, None] = {}  # insertion-ordered set: deterministic float sums
        self.transit_sum = 0.0
        self.event: EventHandle | None = None
        self.event_flow: _Flow | None = None  # the head flow the pending event will complete
        self.event_time = math.inf  # when the pending engine event fires
        self.event_target = math.inf  # when the head flow finishes at the current rate (>= event_time)


class LinkSharing(FlowModel):
    """Per-resource processor sharing with a TCP-window cap; see the module docstring."""

    def __init__(self, engine: Engine, on_complete: CompletionCallback, **factors: float) -> None:
        """``factors``: ``bandwidth_factor``, ``latency_factor``, ``window_bytes`` (see :class:`FlowModel`)."""
        super().__init__(engine, on_complete, **factors)
        self._flows: dict[FlowId, _Flow] = {}
        self._res: dict[Resource, _Res] = {}
        self._seq = 0
        self._latent: dict[tuple, list[_Flow]] = {}  # (activation time, route) -> flows paying their latency
        self._theap: list[tuple[float, int, int, _Flow]] = []  # transit finishes: (time, seq, version, flow)
        self._tevent = EarliestEvent(engine, self._on_transit_event,
                                     lambda e: e[3].state == _TRANSIT and e[2] == e[3].version)

    # ------------------------------------------------------------------ public API
    def start(self, flow_id: FlowId, route: Sequence[Resource], size_bytes: float) -> None:
        self._check_start(flow_id, route, size_bytes)
        if flow_id in self._flows:
            raise ValueError(f"flow {flow_id!r} is already active")
        f = _Flow(flow_id, tuple(route), float(size_bytes))
        self._flows[flow_id] = f
        # fast path for the default one-link route: no fsum over a generator
        delay = self.latency_factor * (f.route[0].latency_s if len(f.route) == 1 else route_latency(f.route))
        if delay > 0:
            # flows of one route starting together end their latency together: one event for all of them
            key = (self.engine.now + delay, f.route)
            batch = self._latent.get(key)
            if batch is None:
                self._latent[key] = [f]
                self.engine.schedule_at(key[0], self._activate_batch, key)
            else:
                batch.append(f)
        else:
            self._activate(f)

    def cancel(self, flow_id: FlowId) -> float:
        f = self._flows.pop(flow_id)
        now = self.engine.now
        if f.state == _LATENT:
            f.state = _DONE  # its activation event finds it done and does nothing
            return 0.0
        if f.state == _LOCAL:
            rs = f.res[0]
            self._advance(rs, now)
            left = f.finish_vt - rs.vt
            f.state = _DONE  # lazy deletion: its heap entry is skipped when it surfaces
            rs.n_local -= 1
            rs.n_all -= 1
            if rs.event_flow is f:
                rs.event_flow = None
            self._counts_changed(f.res, now)
        else:
            left = f.remaining - f.rate * (now - f.t_last)
            f.state = _DONE
            self._drop_transit(f, now)
        return f.size - max(left, 0.0)

    def rate(self, flow_id: FlowId) -> float:
        f = self._flows[flow_id]
        if f.state == _LOCAL:
            return f.res[0].rate
        return f.rate if f.state == _TRANSIT else 0.0

    def remaining(self, flow_id: FlowId) -> float:
        f = self._flows[flow_id]
        now = self.engine.now
        if f.state == _LOCAL:
            rs = f.res[0]
            return max(f.finish_vt - (rs.vt + rs.rate * (now - rs.t_last)), 0.0)
        if f.state == _TRANSIT:
            return max(f.remaining - f.rate * (now - f.t_last), 0.0)
        return f.size

    def active(self) -> int:
        return len(self._flows)

    # ------------------------------------------------------------------ internals
    def _state(self, resource: Resource) -> _Res:
        rs = self._res.get(resource)
        if rs is None:
            bwf = self.bandwidth_factor
            rs = _Res(resource, bwf * resource.capacity_bps, bwf * self.window_bound(resource.latency_s))
            self._res[resource] = rs
        return rs

    @staticmethod
    def _advance(rs: _Res, now: float) -> None:
        """Move the resource clock to ``now`` (must precede any change of ``rs.rate``)."""
        if rs.n_local:
            rs.vt += rs.rate * (now - rs.t_last)
        rs.t_last = now

    def _activate_batch(self, key: tuple) -> None:
        """End of the latency phase of flows that share a route and a start time."""
        flows = self._latent.pop(key)
        if len(key[1]) == 1:
            self._activate_local(self._state(key[1][0]), flows)
        else:
            for f in flows:
                self._activate(f)

    def _activate_local(self, rs: _Res, flows: list[_Flow]) -> None:
        """Flows whose route is ``rs`` alone end their latency phase now: they join its sharing (one
        re-rate for all of them); zero-size ones complete at once, after it."""
        now = self.engine.now
        self._advance(rs, now)
        added = 0
        done: list[_Flow] = []
        for f in flows:
            if f.state != _LATENT:
                continue  # cancelled while paying its latency
            if f.size <= 0.0:
                f.state = _DONE
                done.append(f)
                continue
            if rs.n_local == 0 and added == 0:
                rs.vt = 0.0  # rebase the idle clock: keeps vt small, so finish readings stay precise
                rs.heap.clear()  # only cancelled flows can be left in it
            f.state = _LOCAL
            f.res = [rs]
            f.finish_vt = rs.vt + f.size
            self._seq += 1
            heapq.heappush(rs.heap, (f.finish_vt, self._seq, f))
            added += 1
        if added:
            rs.n_local += added
            rs.n_all += added
            self._counts_changed([rs], now)
        self._deliver(done, now)

    def _activate(self, f: _Flow) -> None:
        """End of the latency phase: the flow joins its resources' sharing."""
        if f.state != _LATENT:
            return  # cancelled while paying its latency
        if len(f.route) == 1:
            self._activate_local(self._state(f.route[0]), [f])
            return
        now = self.engine.now
        if f.size <= 0.0:
            f.state = _DONE
            self._deliver([f], now)
            return
        res = list(dict.fromkeys(self._state(r) for r in f.route))  # a resource listed twice counts once
        f.state = _TRANSIT
        f.res = res
        f.cap = self.bandwidth_factor * self.window_bound(route_latency(f.route))
        f.t_last = now
        f.rate = 0.0
        for rs in res:
            self._advance(rs, now)
            rs.n_all += 1
            rs.transit[f] = None
        self._counts_changed(res, now)  # sets f.rate: f is now in the transit set of its resources

    def _counts_changed(self, changed: list[_Res], now: float) -> None:
        """Flows arrived at or left ``changed``: re-rate their transit flows, then their local flows."""
        if len(changed) == 1 and not changed[0].transit:  # fast path: default routes have no transit flows
            self._rerate(changed[0], now)
            return
        dirty: dict[_Res, None] = dict.fromkeys(changed)
        for rs in changed:
            if not rs.transit:
                continue
            for f in rs.transit:
                new = f.cap
                for r2 in f.res:
                    share = r2.cap_total / r2.n_all
                    if share < new:
                        new = share
                if new == f.rate:
                    continue
                f.remaining -= f.rate * (now - f.t_last)
                f.t_last = now
                for r2 in f.res:
                    self._advance(r2, now)
                    r2.transit_sum += new - f.rate
                    dirty[r2] = None
                f.rate = new
                f.version += 1
                self._seq += 1
                heapq.heappush(self._theap, (now + max(f.remaining, 0.0) / new, self._seq, f.version, f))
            self._schedule_transit()
        for rs in dirty:
            self._rerate(rs, now)

    def _rerate(self, rs: _Res, now: float) -> None:
        """Recompute the local rate of ``rs`` (clock already at ``now``) and reschedule its event."""
        if not rs.transit:
            rs.transit_sum = 0.0  # drop accumulated rounding once no transit flow is left
        if rs.n_local == 0:
            rs.rate = 0.0
            if rs.event is not None:
                self.engine.cancel(rs.event)
                rs.event = None
                rs.event_flow = None
                rs.event_time = math.inf
                rs.event_target = math.inf
            return
        avail = rs.cap_total - rs.transit_sum
        rate = avail / rs.n_local
        if rate > rs.local_cap:
            rate = rs.local_cap
        rs.rate = rate if rate > 0.0 else 0.0
        heap = rs.heap
        while heap[0][2].state != _LOCAL:  # surface cancelled flows lazily (n_local > 0: a live one exists)
            heapq.heappop(heap)
        fvt, _, head = heap[0]
        t = now + (fvt - rs.vt) / rs.rate if rs.rate > 0.0 else math.inf
        if rs.event is not None:
            if t >= rs.event_time and t < math.inf:
                # same time or later (a flow arrived and shares slow down): keep the pending event, which
                # moves itself to the target when it fires early; saves a heap push per arrival
                rs.event_flow = head
                rs.event_target = t
                return
            self.engine.cancel(rs.event)
            rs.event = None
        if t < math.inf:
            rs.event = self.engine.schedule_at(t, self._on_res_event, rs)
            rs.event_flow = head
            rs.event_time = t
            rs.event_target = t

    def _on_res_event(self, rs: _Res) -> None:
        """The head local flow of ``rs`` is done, and so is every flow with the same finish reading."""
        now = self.engine.now
        if rs.event_target > now:  # fired early: arrivals since it was scheduled moved the finish later
            rs.event = self.engine.schedule_at(rs.event_target, self._on_res_event, rs)
            rs.event_time = rs.event_target
            return
        rs.event = None
        rs.event_time = math.inf
        rs.event_target = math.inf
        head = rs.event_flow
        rs.event_flow = None
        if head is None or head.state != _LOCAL:  # defensive: cancel() reschedules, so this should not happen
            self._rerate(rs, now)
            return
        fvt = head.finish_vt
        rs.vt = fvt  # snap the clock to the reading the event was computed for: no drift, no tiny leftovers
        rs.t_last = now
        done: list[_Flow] = []
        heap = rs.heap
        tol = fvt * 1e-12
        while heap and heap[0][0] <= fvt + tol:
            f = heapq.heappop(heap)[2]
            if f.state != _LOCAL:
                continue
            f.state = _DONE
            done.append(f)
        rs.n_local -= len(done)
        rs.n_all -= len(done)
        self._counts_changed([rs], now)
        self._deliver(done, now)  # callbacks last: they may start new flows on this very resource

    def _drop_transit(self, f: _Flow, now: float) -> None:
        """Remove a transit flow (completed or cancelled) from its resources."""
        for rs in f.res:
            self._advance(rs, now)
            rs.n_all -= 1
            rs.transit_sum -= f.rate
            del rs.transit[f]
        f.rate = 0.0
        self._counts_changed(f.res, now)
        self._schedule_transit()

    def _schedule_transit(self) -> None:
        """Keep one engine event at the earliest valid transit finish (stale heap entries are skipped)."""
        self._tevent.reschedule(self._theap)

    def _on_transit_event(self, _: object) -> None:
        """Complete every transit flow whose current finish time has come."""
        now = self.engine.now
        self._tevent.fired()
        done: list[_Flow] = self._tevent.pop_due(self._theap, now)
        for f in done:
            f.state = _DONE
            f.remaining = 0.0
        for f in done:
            self._drop_transit(f, now)
        self._schedule_transit()
        self._deliver(done, now)

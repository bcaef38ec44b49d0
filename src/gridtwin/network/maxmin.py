"""``MaxMin``: multi-resource max-min fair sharing with SimGrid's LV08 semantics (the accurate model).

Per flow ``f`` on route ``R`` (``L = sum of latencies``, capacities ``C_r`` in bytes/s), as SimGrid
3.32's ``NetworkCm02Model`` configured by ``network/model:LV08`` does:

- latency phase: no data and no share for ``latency_factor * L`` seconds (13.01 * L);
- sharing penalty (SimGrid's RTT weighting) ``w_f = L + sum_r S / C_r`` with ``S = weight_s``
  (20537 bytes); when ``latency_factor * L == 0`` SimGrid keeps its default penalty 1, and so do we;
- bound ``b_f = min(min_r C_r, window_bytes / (2 L))`` (``TCP-gamma``: 4194304 bytes), no window when ``L == 0``;
- the solver finds the weighted max-min allocation: progressive filling raises a level ``t``, every
  unfrozen flow runs at ``t / w_f``; a flow freezes at ``b_f`` when ``b_f * w_f`` is the lowest
  level reached, and the flows of a resource freeze when ``sum k_rf x_f = C_r`` (``k_rf``: how many
  times ``R`` lists ``r``). Longer-RTT flows thus get proportionally less of a shared link;
- the flow's rate is ``bandwidth_factor * x_f`` (0.97 ``x_f``).

Crosstraffic (SimGrid's default ``network/crosstraffic:1``, which loads the reverse route with 5 % of
each flow) is not modelled; the SimGrid agreement test runs SimGrid with ``network/crosstraffic:0``.

Rates are recomputed on every activation, completion and cancellation, but only for the connected
component (flows linked through shared resources) of the resources touched: the max-min solution
of the other components cannot change, so this is exact, and SimGrid's selective update does the
same. Completions sit in one model-level heap with lazily invalidated entries and one pending
engine event at its head.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

from gridtwin.errors import ConfigError
from gridtwin.kernel.engine import Engine
from gridtwin.network.flow import (
    CompletionCallback,
    EarliestEvent,
    FlowId,
    FlowModel,
    Resource,
    route_latency,
)

LV08_WEIGHT_S = 20537.0
"""SimGrid's ``network/weight-S`` for LV08: the payload, bytes, used to weight flows by their RTT."""

_LATENT, _ACTIVE, _DONE = 0, 1, 2


class _MFlow:
    __slots__ = ("bound", "fid", "links", "rate", "remaining", "route", "size", "state", "t_last", "version", "weight")

    def __init__(self, fid: FlowId, route: tuple[Resource, ...], size: float) -> None:
        self.fid = fid
        self.route = route
        self.size = size
        self.state = _LATENT
        self.links: dict[_MRes, int] = {}  # resource -> how many times the route lists it
        self.weight = 1.0  # SimGrid's sharing penalty
        self.bound = math.inf  # raw bound on the max-min variable
        self.rate = 0.0  # bytes/s, bandwidth factor applied
        self.remaining = size  # bytes left at t_last
        self.t_last = 0.0
        self.version = 0  # bumps when the rate changes: older heap entries are stale


class _MRes:
    __slots__ = ("capacity", "flows", "resource")

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.capacity = resource.capacity_bps
        self.flows: dict[_MFlow, int] = {}  # active flows -> consumption weight (insertion-ordered)


class MaxMin(FlowModel):
    """Weighted multi-resource max-min sharing, LV08 corrections; see the module docstring."""

    def __init__(self, engine: Engine, on_complete: CompletionCallback, *, weight_s: float = LV08_WEIGHT_S,
                 **factors: float) -> None:
        """``weight_s``: SimGrid's RTT weight payload; ``factors`` as for :class:`FlowModel`."""
        super().__init__(engine, on_complete, **factors)
        if not 0 <= weight_s < math.inf:
            raise ConfigError(f"network: weight_s must be >= 0, got {weight_s}")
        self.weight_s = float(weight_s)
        self._flows: dict[FlowId, _MFlow] = {}
        self._res: dict[Resource, _MRes] = {}
        self._seq = 0
        self._heap: list[tuple[float, int, int, _MFlow]] = []  # (finish time, seq, version, flow)
        self._event = EarliestEvent(engine, self._on_event, lambda e: e[3].state == _ACTIVE and e[2] == e[3].version)
        self.solves = 0
        """Component solves run so far (for benchmarks)."""

    # ------------------------------------------------------------------ public API
    def start(self, flow_id: FlowId, route: Sequence[Resource], size_bytes: float) -> None:
        self._check_start(flow_id, route, size_bytes)
        if flow_id in self._flows:
            raise ValueError(f"flow {flow_id!r} is already active")
        f = _MFlow(flow_id, tuple(route), float(size_bytes))
        self._flows[flow_id] = f
        lat = route_latency(f.route)
        delay = self.latency_factor * lat
        for r in f.route:
            ms = self._res.get(r)
            if ms is None:
                ms = self._res[r] = _MRes(r)
            f.links[ms] = f.links.get(ms, 0) + 1
        if delay > 0:
            # SimGrid: penalty = latency + S / bandwidth over the route, applied once the latency is paid
            f.weight = lat + math.fsum(self.weight_s / r.capacity_bps for r in f.route)
            self.engine.schedule(delay, self._activate, f)
        else:
            f.weight = 1.0  # SimGrid creates a zero-latency flow with penalty 1 and never updates it
        f.bound = min(min(r.capacity_bps for r in f.route), self.window_bound(lat))
        if delay <= 0:
            self._activate(f)

    def cancel(self, flow_id: FlowId) -> float:
        f = self._flows.pop(flow_id)
        if f.state == _LATENT:
            f.state = _DONE
            return 0.0
        now = self.engine.now
        left = f.remaining - f.rate * (now - f.t_last)
        f.state = _DONE
        for ms in f.links:
            del ms.flows[f]
        self._resolve(list(f.links), now)
        return f.size - max(left, 0.0)

    def rate(self, flow_id: FlowId) -> float:
        return self._flows[flow_id].rate

    def remaining(self, flow_id: FlowId) -> float:
        f = self._flows[flow_id]
        return max(f.remaining - f.rate * (self.engine.now - f.t_last), 0.0)

    def active(self) -> int:
        return len(self._flows)

    # ------------------------------------------------------------------ internals
    def _activate(self, f: _MFlow) -> None:
        if f.state != _LATENT:
            return  # cancelled during its latency phase
        now = self.engine.now
        f.state = _ACTIVE
        f.t_last = now
        if f.size <= 0.0:
            f.state = _DONE
            self._deliver([f], now)
            return
        for ms, k in f.links.items():
            ms.flows[f] = k
        self._resolve(list(f.links), now)

    def _component(self, seeds: list[_MRes]) -> tuple[list[_MFlow], list[_MRes]]:
        """Flows and resources connected to ``seeds`` through shared resources (deterministic order)."""
        res: dict[_MRes, None] = dict.fromkeys(seeds)
        flows: dict[_MFlow, None] = {}
        queue = list(res)
        while queue:
            ms = queue.pop()
            for f in ms.flows:
                if f in flows:
                    continue
                flows[f] = None
                for m2 in f.links:
                    if m2 not in res:
                        res[m2] = None
                        queue.append(m2)
        return list(flows), list(res)

    def _resolve(self, seeds: list[_MRes], now: float) -> None:
        """Advance the component of ``seeds`` to ``now``, solve it, push the finish times that moved."""
        flows, res = self._component(seeds)
        self.solves += 1
        for f in flows:
            f.remaining -= f.rate * (now - f.t_last)
            f.t_last = now
        values = solve_maxmin(flows, res)
        bwf = self.bandwidth_factor
        heap = self._heap
        for f in flows:
            rate = bwf * values[f]
            if rate == f.rate:
                continue  # its heap entry is still right
            f.rate = rate
            f.version += 1
            if rate > 0.0:
                self._seq += 1
                heapq.heappush(heap, (now + max(f.remaining, 0.0) / rate, self._seq, f.version, f))
        if len(heap) > 64 + 4 * len(self._flows):  # drop stale entries now and then: keeps the heap small
            self._heap = heap = [e for e in heap if e[3].state == _ACTIVE and e[2] == e[3].version]
            heapq.heapify(heap)
        self._schedule()

    def _schedule(self) -> None:
        """Keep one engine event at the earliest valid finish time."""
        self._event.reschedule(self._heap)

    def _on_event(self, _: object) -> None:
        """Complete every flow whose current finish time has come, then re-solve what they left."""
        now = self.engine.now
        self._event.fired()
        done: list[_MFlow] = self._event.pop_due(self._heap, now)
        seeds: dict[_MRes, None] = {}
        for f in done:
            f.state = _DONE
            f.remaining = 0.0
            for ms in f.links:
                del ms.flows[f]
                seeds[ms] = None
        if seeds:
            self._resolve(list(seeds), now)
        else:
            self._schedule()
        self._deliver(done, now)


def solve_maxmin(flows: list[_MFlow], res: list[_MRes]) -> dict[_MFlow, float]:
    """Weighted max-min fair values ``x_f`` (before the bandwidth factor) of one component.

    Progressive filling as in SimGrid's ``lmm`` solver: a level ``t`` rises; an unfrozen flow runs
    at ``t / weight``; the next event is either a flow reaching its bound (``bound * weight``) or a
    resource filling up (``remaining / usage`` with ``usage = sum k / weight`` over its unfrozen
    flows). Every round freezes at least one flow.

    Speed trick: resource levels sit in a heap with versioned entries (a resource's entry is
    replaced when one of its flows freezes), and bounds are sorted once, so a solve costs
    O((sum of route lengths) * log(resources)) instead of a pass over every resource per round.
    """
    n = len(res)
    index = {ms: i for i, ms in enumerate(res)}
    rem = [ms.capacity for ms in res]
    use = [0.0] * n
    unf = [0] * n  # unfrozen flows per resource
    ver = [0] * n  # version of each resource's valid heap entry
    for i, ms in enumerate(res):
        u = 0.0
        for f, k in ms.flows.items():
            u += k / f.weight
        use[i] = u
        unf[i] = len(ms.flows)
    heap = [(rem[i] / use[i], 0, i) for i in range(n) if unf[i]]  # weights are > 0, so usage is too
    heapq.heapify(heap)
    by_bound = sorted((f for f in flows if f.bound < math.inf), key=lambda f: f.bound * f.weight)
    nb = len(by_bound)
    bi = 0
    values: dict[_MFlow, float] = {}
    left = len(flows)
    while left:
        while heap and heap[0][1] != ver[heap[0][2]]:
            heapq.heappop(heap)
        t_c = heap[0][0] if heap else math.inf
        while bi < nb and by_bound[bi] in values:
            bi += 1
        t_b = by_bound[bi].bound * by_bound[bi].weight if bi < nb else math.inf
        if t_b <= t_c:  # flows reach their bound before any resource fills up
            limit = t_b * (1 + 1e-12)
            freeze: list[tuple[_MFlow, float]] = []
            j = bi
            while j < nb and by_bound[j].bound * by_bound[j].weight <= limit:
                g = by_bound[j]
                if g not in values:
                    freeze.append((g, g.bound))
                j += 1
        else:  # the resources at the lowest level fill up: freeze all their flows at t_c / weight
            limit = t_c * (1 + 1e-12)
            picked: dict[_MFlow, None] = {}
            while heap and heap[0][0] <= limit:
                _, v, i = heapq.heappop(heap)
                if v != ver[i]:
                    continue
                for g in res[i].flows:
                    if g not in values:
                        picked[g] = None
            freeze = [(g, t_c / g.weight) for g in picked]
        touched: dict[int, None] = {}
        for g, x in freeze:
            values[g] = x
            left -= 1
            for ms, k in g.links.items():
                i = index[ms]
                rem[i] -= k * x
                use[i] -= k / g.weight
                unf[i] -= 1
                touched[i] = None
        for i in touched:
            ver[i] += 1
            if unf[i]:
                if use[i] <= 0.0:  # cancellation ate the usage of the flows left: recount it exactly
                    use[i] = sum(k / g.weight for g, k in res[i].flows.items() if g not in values)
                heapq.heappush(heap, (max(rem[i], 0.0) / use[i], ver[i], i))
    return values

"""The ``FlowModel`` interface: how concurrent transfers share the network, driven by the kernel engine.

A *flow* is one transfer of ``size_bytes`` over a *route*, a sequence of :class:`Resource` objects
(each a capacity in bytes/s and a latency in s). A model decides every active flow's rate and
schedules its own completion events on the :class:`~gridtwin.kernel.engine.Engine`; when a flow has
delivered its last byte the model calls ``on_complete(flow_id, now)``.

Latency accounting (both built-in models, as SimGrid's CM02/LV08 models do): a flow started at
``t0`` moves no data and takes no share of any resource until ``t0 + latency_factor * L``, where
``L`` is the sum of the route's latencies; from then on it moves data at the rate the model gives
it. A lone flow therefore completes at ``t0 + latency_factor * L + size / rate``.

By default a transfer between two ATLAS sites uses the single directed platform :class:`Link`
between them (:class:`PlatformRoutes`); longer routes (site uplinks, shared backbones) are plain
sequences of resources and need no change in the models.
"""

from __future__ import annotations

import heapq
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence

from gridtwin.errors import ConfigError
from gridtwin.kernel.engine import Engine
from gridtwin.platform.model import Link, Platform

FlowId = Hashable
"""Any hashable key the caller chooses (a transfer request id, typically)."""

CompletionCallback = Callable[[FlowId, float], object]
"""``on_complete(flow_id, now)``: called once per flow, after its last byte is delivered."""

TCP_GAMMA_BYTES = 4194304.0
"""SimGrid's default ``network/TCP-gamma``: the maximal TCP window size, bytes."""


class Resource:
    """A network resource shared by flows: a capacity (bytes/s) and a one-way latency (s).

    Resources compare by identity: two flows share a resource only when their routes hold the very
    same object, so build routes through one :class:`PlatformRoutes` (or your own cache).
    """

    __slots__ = ("capacity_bps", "latency_s", "name")

    def __init__(self, name: str, capacity_bps: float, latency_s: float = 0.0) -> None:
        if not capacity_bps > 0 or math.isinf(capacity_bps):
            raise ConfigError(f"network resource {name}: capacity must be a finite number > 0 B/s, got {capacity_bps}")
        if not latency_s >= 0 or math.isinf(latency_s):
            raise ConfigError(f"network resource {name}: latency must be a finite number >= 0 s, got {latency_s}")
        self.name = name
        self.capacity_bps = float(capacity_bps)
        self.latency_s = float(latency_s)

    def __repr__(self) -> str:
        return f"Resource({self.name!r}, {self.capacity_bps:g} B/s, {self.latency_s:g} s)"


Route = tuple[Resource, ...]
"""The resources a flow crosses, in order (the order does not change any rate)."""


def route_latency(route: Sequence[Resource]) -> float:
    """Sum of the one-way latencies along ``route``, seconds."""
    return math.fsum(r.latency_s for r in route)


def link_resource(link: Link) -> Resource:
    """A fresh resource for one directed platform link (named ``src->dst``)."""
    return Resource(f"{link.src}->{link.dst}", link.bandwidth_bps, link.latency_s)


class PlatformRoutes:
    """Routes between ATLAS sites of a :class:`Platform`, with one shared :class:`Resource` per link.

    The route of a transfer from ``src`` to ``dst`` is the single directed link ``src->dst``
    (``Platform.link``, which falls back on the documented defaults for pairs the network matrix
    does not list, and on the LAN link inside one site). The resource is created on first use and
    reused afterwards, so every transfer on a link shares it.
    """

    __slots__ = ("_cache", "platform")

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._cache: dict[tuple[str, str], Route] = {}

    def route(self, src: str, dst: str) -> Route:
        """The route from ATLAS site ``src`` to ATLAS site ``dst``."""
        key = (src, dst)
        found = self._cache.get(key)
        if found is None:
            found = (link_resource(self.platform.link(src, dst)),)
            self._cache[key] = found
        return found

    def resources(self) -> list[Resource]:
        """Every resource handed out so far, in first-use order."""
        seen: dict[Resource, None] = {}
        for route in self._cache.values():
            for r in route:
                seen[r] = None
        return list(seen)


def route_between(platform: Platform, src: str, dst: str) -> Route:
    """A one-off route between two ATLAS sites; use :class:`PlatformRoutes` when flows must share links."""
    return (link_resource(platform.link(src, dst)),)


class FlowModel(ABC):
    """How concurrent flows share resources; completion events go on the engine.

    Subclasses implement :meth:`start`, :meth:`cancel`, :meth:`rate`, :meth:`remaining` and
    :meth:`active`. ``bandwidth_factor`` scales every capacity and window bound (SimGrid's LV08 uses
    0.97), ``latency_factor`` scales the route latency before data moves (LV08: 13.01) and
    ``window_bytes`` bounds a flow's rate by ``window_bytes / (2 * route latency)`` (SimGrid's
    ``TCP-gamma`` bound; 0 disables it).
    """

    def __init__(
        self,
        engine: Engine,
        on_complete: CompletionCallback,
        *,
        bandwidth_factor: float = 0.97,
        latency_factor: float = 13.01,
        window_bytes: float = TCP_GAMMA_BYTES,
    ) -> None:
        if not 0 < bandwidth_factor < math.inf:
            raise ConfigError(f"network: bandwidth_factor must be > 0, got {bandwidth_factor}")
        if not 0 <= latency_factor < math.inf:
            raise ConfigError(f"network: latency_factor must be >= 0, got {latency_factor}")
        if not 0 <= window_bytes < math.inf:
            raise ConfigError(f"network: window_bytes must be >= 0 (0 disables the bound), got {window_bytes}")
        self.engine = engine
        self.on_complete = on_complete
        self.bandwidth_factor = float(bandwidth_factor)
        self.latency_factor = float(latency_factor)
        self.window_bytes = float(window_bytes)
        self.completed = 0
        """Flows completed so far."""
        self._flows: dict[FlowId, object] = {}  # active flows by id (latency phase included)

    def window_bound(self, latency_s: float) -> float:
        """The raw TCP-window bound of a flow on a route of one-way latency ``latency_s`` (before the factor)."""
        if latency_s > 0 and self.window_bytes > 0:
            return self.window_bytes / (2.0 * latency_s)
        return math.inf

    def _deliver(self, done: Sequence, now: float) -> None:
        """Completed flows (objects with ``fid``) leave the model; ``on_complete`` is called for each, in
        order. Subclasses keep their active flows in ``self._flows`` (flow id -> flow)."""
        flows = self._flows
        for f in done:
            del flows[f.fid]
            self.completed += 1
            self.on_complete(f.fid, now)

    @staticmethod
    def _check_start(flow_id: FlowId, route: Sequence[Resource], size_bytes: float) -> None:
        if not route:
            raise ValueError(f"flow {flow_id!r}: empty route")
        if not size_bytes >= 0 or math.isinf(size_bytes):
            raise ValueError(f"flow {flow_id!r}: size must be a finite number >= 0 bytes, got {size_bytes!r}")

    @abstractmethod
    def start(self, flow_id: FlowId, route: Sequence[Resource], size_bytes: float) -> None:
        """Start a flow now; ``on_complete(flow_id, t)`` follows once its bytes are delivered."""

    @abstractmethod
    def cancel(self, flow_id: FlowId) -> float:
        """Stop a flow now without calling ``on_complete``; return the bytes it had delivered."""

    @abstractmethod
    def rate(self, flow_id: FlowId) -> float:
        """The flow's current rate, bytes/s (0 while it pays its latency)."""

    @abstractmethod
    def remaining(self, flow_id: FlowId) -> float:
        """Bytes the flow has still to deliver, now."""

    @abstractmethod
    def active(self) -> int:
        """Flows started and neither completed nor cancelled (latency phase included)."""


class EarliestEvent:
    """One pending engine event at the earliest valid entry of a heap of ``(time, seq, version, flow)``.

    Rates change at every start and finish, so heap entries go stale (``is_valid`` says which are
    current); rather than removing them, stale heads are dropped here and the single engine event is
    moved only when the earliest valid time changed.
    """

    __slots__ = ("callback", "engine", "handle", "is_valid", "time")

    def __init__(self, engine: Engine, callback: Callable[[object], object],
                 is_valid: Callable[[tuple], bool]) -> None:
        self.engine = engine
        self.callback = callback
        self.is_valid = is_valid
        self.handle: int | None = None
        self.time = math.inf

    def fired(self) -> None:
        """Call at the start of the callback: the event has run and is no longer pending."""
        self.handle = None
        self.time = math.inf

    def pop_due(self, heap: list, now: float) -> list:
        """Pop every entry due at or before ``now``; return the flows (fourth item) of the valid ones, in
        heap order (stale entries are dropped)."""
        valid = self.is_valid
        due = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if valid(entry):
                due.append(entry[3])
        return due

    def reschedule(self, heap: list) -> None:
        """Point the engine event at the heap's earliest valid entry (or at nothing)."""
        valid = self.is_valid
        while heap and not valid(heap[0]):
            heapq.heappop(heap)
        t = heap[0][0] if heap else math.inf
        if t == self.time:
            return
        if self.handle is not None:
            self.engine.cancel(self.handle)
            self.handle = None
        self.time = t
        if heap:
            self.handle = self.engine.schedule_at(max(t, self.engine.now), self.callback, None)

"""A discrete-event engine: one heap of ``(time, seq, callback, argument)``.

Ties at the same time break by ``seq`` (insertion order), so runs are deterministic. Callbacks,
not generator processes: a callback is called as ``callback(argument)``. An exception raised by a
callback stops the run and propagates; nothing is swallowed.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

EventHandle = int
"""An opaque handle returned by :meth:`Engine.schedule`, accepted by :meth:`Engine.cancel`."""


class Engine:
    """Clock plus event heap. ``now`` is in seconds from the scenario epoch."""

    __slots__ = ("_cancelled", "_heap", "_seq", "events_processed", "now")

    def __init__(self, start: float = 0.0) -> None:
        self.now: float = float(start)
        self._heap: list[tuple[float, int, Callable[[Any], object], Any]] = []
        self._seq: int = 0
        self._cancelled: set[int] = set()
        self.events_processed: int = 0

    def schedule(self, delay: float, callback: Callable[[Any], object], argument: Any = None) -> EventHandle:
        """Call ``callback(argument)`` after ``delay`` seconds; return a handle for :meth:`cancel`."""
        if not delay >= 0.0:  # also rejects NaN
            raise ValueError(f"delay must be a non-negative number, got {delay!r}")
        seq = self._seq
        self._seq = seq + 1
        heapq.heappush(self._heap, (self.now + delay, seq, callback, argument))
        return seq

    def schedule_at(self, time: float, callback: Callable[[Any], object], argument: Any = None) -> EventHandle:
        """Call ``callback(argument)`` at absolute ``time`` (not before ``now``)."""
        if not time >= self.now:
            raise ValueError(f"cannot schedule at {time!r}, before now={self.now!r}")
        seq = self._seq
        self._seq = seq + 1
        heapq.heappush(self._heap, (time, seq, callback, argument))
        return seq

    def cancel(self, handle: EventHandle) -> None:
        """Cancel a scheduled event; cancelling an event that already ran is a no-op."""
        if 0 <= handle < self._seq:
            self._cancelled.add(handle)

    def pending(self) -> int:
        """Number of events on the heap, cancelled ones included."""
        return len(self._heap)

    def peek(self) -> float:
        """Time of the next event that will run, or ``inf`` when none is left."""
        heap = self._heap
        cancelled = self._cancelled
        while heap and heap[0][1] in cancelled:  # drop cancelled heads, so they do not count as pending
            cancelled.discard(heapq.heappop(heap)[1])
        return heap[0][0] if heap else math.inf

    def run(self, until: float = math.inf) -> float:
        """Process events in time order while their time is <= ``until``; return the final clock.

        The clock ends at ``until`` when it is finite, else at the time of the last event.
        """
        heap = self._heap
        pop = heapq.heappop  # local names: this loop is the hottest code in the project
        cancelled = self._cancelled
        n = 0
        try:
            while heap and heap[0][0] <= until:
                time, seq, callback, argument = pop(heap)
                if cancelled and seq in cancelled:
                    cancelled.discard(seq)
                    continue
                self.now = time
                n += 1
                callback(argument)
        finally:
            self.events_processed += n
        if until != math.inf and until > self.now:
            self.now = until
        return self.now

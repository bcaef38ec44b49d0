"""Source-selection plugins (DESIGN.md section 5): given a file, its replicas and a destination,
return the source RSE.

Rucio's preparer sorts the candidate sources of a request; ATLAS ranks disk before tape, then by
the distance (closeness) of the source to the destination, then by measured throughput. That is
``closeness``, the default. ``queue-aware`` ranks by the estimated time to drain the link's queue
plus the file itself, the "TransferWaitTime" ranking proposed in rucio PR #6415.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class SourceCandidate:
    """One AVAILABLE replica that could feed a transfer, with what the conveyor knows of its link."""

    rse: str
    site: str
    """ATLAS site of the RSE."""
    is_tape: bool
    closeness: int
    """CRIC closeness of the source site to the destination site: 0 same site, 11 farthest."""
    mbps: float | None
    """Measured FTS throughput on the link (MB/s), if the network matrix has one."""
    bandwidth_bps: float
    queued: int
    """Files waiting in the link's FTS queue now."""
    active: int
    """Transfers active on the link now."""


@runtime_checkable
class SourceSelector(Protocol):
    """Chooses the source replica of one transfer request."""

    name: str
    static: bool
    """True if the choice depends only on closeness, throughput and type (the conveyor may cache it)."""

    def choose(self, candidates: Sequence[SourceCandidate], dst_rse: str, file_bytes: int) -> int:
        """Index into ``candidates`` (never empty) of the source to use."""
        ...


class ClosenessSelector:
    """Disk before tape, then the closest source, then the highest measured throughput, then the name."""

    name = "closeness"
    static = True

    def choose(self, candidates: Sequence[SourceCandidate], dst_rse: str, file_bytes: int) -> int:
        def key(c: SourceCandidate) -> tuple:
            return (c.is_tape, c.closeness, -(c.mbps if c.mbps is not None else c.bandwidth_bps / 1e6), c.rse)

        return _best(candidates, key)


class QueueAwareSelector:
    """Disk before tape, then the shortest estimated wait: (files ahead + 1) x size / link throughput."""

    name = "queue-aware"
    static = False

    def choose(self, candidates: Sequence[SourceCandidate], dst_rse: str, file_bytes: int) -> int:
        def key(c: SourceCandidate) -> tuple:
            rate = (c.mbps * 1e6) if c.mbps else c.bandwidth_bps
            return (c.is_tape, (c.queued + c.active + 1) * max(file_bytes, 1) / rate, c.closeness, c.rse)

        return _best(candidates, key)


def _best(candidates: Sequence[SourceCandidate], key: Callable[[SourceCandidate], tuple]) -> int:
    """Index of the candidate with the smallest key (the first one on ties)."""
    return min(range(len(candidates)), key=lambda i: key(candidates[i]))


BUILTIN_SOURCE_SELECTORS = {"closeness": ClosenessSelector, "queue-aware": QueueAwareSelector}

"""The reaper's choice: which replicas an RSE short of space deletes, least recently used first.

Rucio's reaper (``lib/rucio/daemons/reaper/reaper.py`` with ``core/replica.py``'s
``list_and_mark_unlocked_replicas``) deletes replicas with ``lock_cnt == 0`` and a tombstone in
the past, oldest tombstone first (``touch_replica`` moves the tombstone to the access time, so that
order is least recently used), until the needed space is freed. gridtwin adds the issue's
guarantees: nothing happens below the high watermark, deletion stops at the low watermark, and the
last available replica of a DID is never deleted (Rucio deletes an unlocked last replica that no
transfer request needs). ``docs/ddm.md`` lists the rules.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

from gridtwin.errors import ConfigError

__all__ = ["ReplicaCandidate", "is_deletable", "lru_key", "select_replicas_to_delete"]


@dataclass(frozen=True, slots=True)
class ReplicaCandidate:
    """An AVAILABLE replica on the RSE being cleaned.

    ``did`` is any orderable key of the file (``"scope:name"``, a catalog index, ...), the same
    kind for every candidate. Times are simulation seconds; ``accessed_at`` None means never read.
    """

    did: Hashable
    bytes: int
    lock_cnt: int = 0
    tombstone: float | None = None
    accessed_at: float | None = None


def lru_key(r: ReplicaCandidate) -> tuple:
    """Deletion order: never accessed first, then least recently accessed, then oldest tombstone,
    then the DID key, so the result does not depend on the order of the input."""
    accessed = -math.inf if r.accessed_at is None else r.accessed_at
    tomb = math.inf if r.tombstone is None else r.tombstone
    return (accessed, tomb, r.did)


def is_deletable(r: ReplicaCandidate, now: float) -> bool:
    """Unlocked, with a tombstone at or before ``now`` (copies are checked separately)."""
    return r.lock_cnt == 0 and r.tombstone is not None and r.tombstone <= now


def select_replicas_to_delete(
    rse_used_bytes: int,
    rse_capacity: int,
    high_watermark: float,
    low_watermark: float,
    replicas: Iterable[ReplicaCandidate],
    n_copies: Mapping[Hashable, int],
    *,
    now: float,
) -> list[ReplicaCandidate]:
    """The replicas to delete from one RSE, in deletion order.

    - Nothing unless ``rse_used_bytes > high_watermark * rse_capacity`` (watermarks are fractions
      of the capacity, ``0 <= low <= high``); an RSE of unknown capacity (0) is left alone.
    - Candidates are taken in ``lru_key`` order; one is deleted if ``is_deletable`` and its DID
      still has another AVAILABLE replica: ``n_copies[did]`` counts them grid-wide, including this
      one, and goes down by one per deletion (a DID missing from ``n_copies`` is never deleted).
    - It stops as soon as used bytes are at or below ``low_watermark * rse_capacity``, or when no
      candidate is left.
    """
    if not 0 <= low_watermark <= high_watermark:
        raise ConfigError(
            f"reaper: watermarks must satisfy 0 <= low <= high, got low={low_watermark}, high={high_watermark}"
        )
    if rse_capacity <= 0 or rse_used_bytes <= high_watermark * rse_capacity:
        return []
    target = low_watermark * rse_capacity
    used = rse_used_bytes
    copies: dict[Hashable, int] = {}
    chosen: list[ReplicaCandidate] = []
    for r in sorted((r for r in replicas if is_deletable(r, now)), key=lru_key):
        if used <= target:
            break
        left = copies.get(r.did)
        if left is None:
            left = n_copies.get(r.did, 0)
        if left <= 1:
            continue
        copies[r.did] = left - 1
        chosen.append(r)
        used -= r.bytes
    return chosen

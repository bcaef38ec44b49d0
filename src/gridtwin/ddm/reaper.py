"""The reaper's choice: which replicas an RSE short of space deletes, least recently used first.

Rucio's reaper (``lib/rucio/daemons/reaper/reaper.py`` with ``core/replica.py``'s
``list_and_mark_unlocked_replicas``) deletes replicas with ``lock_cnt == 0`` and a tombstone in
the past, oldest tombstone first (``touch_replica`` moves the tombstone to the access time, so that
order is least recently used), until the needed space is freed. gridtwin adds the issue's
guarantees: nothing happens below the high watermark, deletion stops at the low watermark, and the
last available replica of a DID is never deleted (Rucio deletes an unlocked last replica that no
transfer request needs). A replica that a transfer is reading from is not a candidate (Rucio does
not mark a replica used as a source BEING_DELETED). ``docs/ddm.md`` lists the rules.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gridtwin.errors import ConfigError

if TYPE_CHECKING:
    from gridtwin.ddm.catalog import Catalog

__all__ = ["Reaper", "ReaperParams", "ReplicaCandidate", "is_deletable", "lru_key", "select_replicas_to_delete"]


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


@dataclass(frozen=True, slots=True)
class ReaperParams:
    """Watermarks as fractions of an RSE's capacity, and how often one RSE may be scanned."""

    high_watermark: float = 0.95
    low_watermark: float = 0.90
    interval_s: float = 300.0
    """After a pass that could not get below the high watermark, the RSE is not scanned again for this long."""

    def __post_init__(self) -> None:
        if not 0 <= self.low_watermark <= self.high_watermark <= 1:
            raise ConfigError(f"reaper: watermarks must satisfy 0 <= low <= high <= 1, got low={self.low_watermark}, "
                              f"high={self.high_watermark}")
        if not self.interval_s >= 0:
            raise ConfigError(f"reaper: interval_s must be >= 0, got {self.interval_s}")


class Reaper:
    """Frees space on RSEs of a :class:`~gridtwin.ddm.catalog.Catalog` with :func:`select_replicas_to_delete`.

    Only file replicas are candidates (bulk replicas are locked by their primary rules). Every deletion
    is kept (time, RSE, fid, bytes) for the ``deletions`` record table, as Rucio's deletion-done events.
    """

    def __init__(self, catalog: Catalog, params: ReaperParams | None = None) -> None:
        self.catalog = catalog
        self.params = params or ReaperParams()
        self._next_scan = [0.0] * catalog.n_rse
        self.d_time = array("d")
        self.d_rse = array("i")
        self.d_fid = array("q")
        self.d_bytes = array("q")
        self.passes = 0
        # bytes an RSE may hold before make_room needs a look (high watermark; unlimited if capacity unknown)
        hw = self.params.high_watermark
        self.fast_limit = [hw * r.capacity_bytes if r.capacity_bytes > 0 else math.inf for r in catalog.rses]

    def make_room(self, rse: int, nbytes: int, now: float) -> bool:
        """Whether ``nbytes`` more fit on ``rse``; cleans it first when that would pass the high watermark.
        An RSE of unknown capacity (0) takes anything."""
        r = self.catalog.rses[rse]
        cap = r.capacity_bytes
        if cap <= 0:
            return True
        if r.used_bytes + nbytes > self.params.high_watermark * cap and now >= self._next_scan[rse]:
            self.clean(rse, now, nbytes)
        return r.used_bytes + nbytes <= cap

    def clean(self, rse: int, now: float, incoming: int = 0) -> int:
        """One reaper pass on ``rse`` counting ``incoming`` bytes as already there; return bytes freed."""
        cat = self.catalog
        p = self.params
        self.passes += 1
        st, lk, tb, ac, by, fi = cat.r_state, cat.r_lock, cat.r_tomb, cat.r_acc, cat.r_bytes, cat.r_fid
        in_use = cat.r_src_use  # sources of transfers under way: Rucio's reaper leaves them out too
        cands = []
        copies: dict[int, int] = {}
        for s in cat.slots_on(rse).tolist():
            if st[s] == 0 and lk[s] == 0 and tb[s] <= now and s not in in_use:
                acc = ac[s]
                cands.append(ReplicaCandidate(s, by[s], 0, tb[s], None if acc != acc else acc))
                copies[s] = cat.n_available(fi[s])
        r = cat.rses[rse]
        chosen = select_replicas_to_delete(r.used_bytes + incoming, r.capacity_bytes, p.high_watermark,
                                           p.low_watermark, cands, copies, now=now)
        freed = 0
        for c in chosen:
            s = c.did
            self.d_time.append(now)
            self.d_rse.append(rse)
            self.d_fid.append(fi[s])
            self.d_bytes.append(by[s])
            freed += by[s]
            cat.deleted_bytes[rse] += by[s]
            cat.deleted_files[rse] += 1
            cat.remove_replica(s)
        if r.used_bytes + incoming > p.high_watermark * r.capacity_bytes:
            self._next_scan[rse] = now + p.interval_s
        return freed

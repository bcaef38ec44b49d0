"""The reaper's selection: watermarks, LRU order, never a locked or last replica."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridtwin.ddm.reaper import ReplicaCandidate, is_deletable, lru_key, select_replicas_to_delete
from gridtwin.errors import ConfigError

R = ReplicaCandidate
NOW = 100.0

CANDIDATES = [
    R("a", 100, 0, tombstone=0, accessed_at=10),
    R("b", 50, 1, tombstone=None, accessed_at=1),  # locked
    R("c", 60, 0, tombstone=0, accessed_at=5),  # last replica of its DID
    R("d", 40, 0, tombstone=0, accessed_at=20),
    R("e", 30, 0, tombstone=200, accessed_at=0),  # tombstone in the future
    R("f", 70, 0, tombstone=0, accessed_at=None),  # never accessed: first to go
    R("g", 10, 0, tombstone=None, accessed_at=0),  # no tombstone: kept
]
COPIES = {"a": 2, "b": 2, "c": 1, "d": 3, "e": 2, "f": 2, "g": 5}


def _names(chosen: list[ReplicaCandidate]) -> list[str]:
    return [r.did for r in chosen]  # type: ignore[misc]


def test_deletes_lru_until_low_watermark() -> None:
    # capacity 1000, high 90%, low 80%: from 950 bytes, f (70) -> 880, then a (100) -> 780 <= 800
    chosen = select_replicas_to_delete(950, 1000, 0.9, 0.8, CANDIDATES, COPIES, now=NOW)
    assert _names(chosen) == ["f", "a"]


def test_nothing_below_or_at_high_watermark() -> None:
    assert select_replicas_to_delete(900, 1000, 0.9, 0.8, CANDIDATES, COPIES, now=NOW) == []
    assert select_replicas_to_delete(0, 1000, 0.9, 0.8, CANDIDATES, COPIES, now=NOW) == []
    assert _names(select_replicas_to_delete(901, 1000, 0.9, 0.8, CANDIDATES, COPIES, now=NOW)) == ["f", "a"]


def test_stops_when_nothing_else_is_deletable() -> None:
    chosen = select_replicas_to_delete(5000, 1000, 0.9, 0.8, CANDIDATES, COPIES, now=NOW)
    assert _names(chosen) == ["f", "a", "d"]  # never b (locked), c (last), e (future), g (no tombstone)


def test_tombstone_at_now_counts_and_later_ones_do_not() -> None:
    assert _names(select_replicas_to_delete(5000, 1000, 0.9, 0.8, CANDIDATES, COPIES, now=200)) == [
        "f",
        "e",
        "a",
        "d",
    ]


def test_ties_are_broken_by_did_whatever_the_input_order() -> None:
    same = [R("z", 10, 0, 0, 5), R("m", 10, 0, 0, 5), R("q", 10, 0, 0, 5)]
    copies = {"z": 2, "m": 2, "q": 2}
    for order in (same, same[::-1], [same[1], same[2], same[0]]):
        assert _names(select_replicas_to_delete(100, 100, 0.5, 0.0, order, copies, now=0)) == ["m", "q", "z"]
        assert _names(select_replicas_to_delete(100, 100, 0.9, 0.8, order, copies, now=0)) == ["m", "q"]


def test_copies_are_counted_down_as_replicas_are_deleted() -> None:
    # the same DID listed twice (as a caller might when sweeping several RSEs): only one may go
    twice = [R("x", 10, 0, 0, 1), R("x", 10, 0, 0, 2), R("y", 10, 0, 0, 3)]
    chosen = select_replicas_to_delete(100, 100, 0.5, 0.0, twice, {"x": 2, "y": 2}, now=0)
    assert [(r.did, r.accessed_at) for r in chosen] == [("x", 1), ("y", 3)]
    # a DID missing from n_copies is treated as having no other copy
    assert select_replicas_to_delete(100, 100, 0.5, 0.0, [R("w", 10, 0, 0, 1)], {}, now=0) == []


def test_unknown_capacity_and_bad_watermarks() -> None:
    assert select_replicas_to_delete(10**9, 0, 0.9, 0.8, CANDIDATES, COPIES, now=NOW) == []
    with pytest.raises(ConfigError, match="low <= high"):
        select_replicas_to_delete(950, 1000, 0.8, 0.9, CANDIDATES, COPIES, now=NOW)
    with pytest.raises(ConfigError, match="0 <= low"):
        select_replicas_to_delete(950, 1000, 0.8, -0.1, CANDIDATES, COPIES, now=NOW)


# --- properties -----------------------------------------------------------------------------------


_ROW = st.tuples(
    st.integers(0, 500),  # bytes
    st.sampled_from([0, 0, 0, 1, 2]),  # lock_cnt
    st.one_of(st.none(), st.integers(0, 200)),  # tombstone
    st.one_of(st.none(), st.integers(0, 50)),  # accessed_at
    st.sampled_from([-1, 0, 1, 2, 2, 3]),  # AVAILABLE copies grid-wide; -1: DID not listed
)


@st.composite
def _rse_state(draw: st.DrawFn) -> tuple:
    rows = draw(st.lists(_ROW, max_size=30))
    replicas = [R(i, b, lock, tomb, acc) for i, (b, lock, tomb, acc, _) in enumerate(rows)]
    copies = {i: row[4] for i, row in enumerate(rows) if row[4] >= 0}
    capacity = draw(st.integers(0, 3000))
    high = draw(st.floats(0, 1))
    low = high * draw(st.floats(0, 1))
    used = draw(st.integers(0, capacity + 10) | st.integers(int(high * capacity), capacity + 2000))
    now = float(draw(st.integers(100, 200)))
    return used, capacity, high, low, replicas, copies, now


@settings(max_examples=200, deadline=None)
@given(_rse_state())
def test_properties(state: tuple) -> None:
    used, capacity, high, low, replicas, copies, now = state
    chosen = select_replicas_to_delete(used, capacity, high, low, replicas, copies, now=now)
    if capacity <= 0 or used <= high * capacity:
        assert chosen == []
        return
    ids = [r.did for r in chosen]
    assert len(ids) == len(set(ids))
    for r in chosen:
        assert r.lock_cnt == 0, "never a locked replica"
        assert r.tombstone is not None and r.tombstone <= now, "only expired tombstones"
        assert copies.get(r.did, 0) >= 2, "never the last replica"
    keys = [lru_key(r) for r in chosen]
    assert keys == sorted(keys), "least recently used first"
    after = used - sum(r.bytes for r in chosen)
    eligible = [r for r in replicas if is_deletable(r, now) and copies.get(r.did, 0) >= 2]
    left = [r for r in eligible if r.did not in set(ids)]
    assert after <= low * capacity or not left, "stops only at the low watermark or when nothing is left"
    if chosen:
        assert after + chosen[-1].bytes > low * capacity, "no deletion past the low watermark"
        last = keys[-1]
        assert all(lru_key(r) > last for r in left), "no eligible replica skipped in LRU order"

"""The event engine: time order, deterministic ties, cancel, run(until), argument checks, errors."""

from __future__ import annotations

import math

import pytest

from gridtwin.kernel import Engine


def recorder(eng: Engine, log: list):
    """A callback that appends ``(now, argument)`` to ``log``."""
    return lambda arg: log.append((eng.now, arg))


def test_events_run_in_time_order():
    eng = Engine()
    log: list = []
    cb = recorder(eng, log)
    for delay, tag in ((5.0, "e"), (1.0, "a"), (3.0, "c"), (2.0, "b"), (4.0, "d")):
        eng.schedule(delay, cb, tag)
    assert eng.run() == 5.0
    assert log == [(1.0, "a"), (2.0, "b"), (3.0, "c"), (4.0, "d"), (5.0, "e")]
    assert eng.events_processed == 5


def test_ties_break_by_insertion_order():
    eng = Engine()
    log: list = []
    cb = recorder(eng, log)
    eng.schedule(2.0, cb, "first")
    eng.schedule_at(2.0, cb, "second")
    eng.schedule(1.0, cb, "early")
    eng.schedule(2.0, cb, "third")
    eng.run()
    assert [tag for _, tag in log] == ["early", "first", "second", "third"]


def test_zero_delay_event_from_a_callback_runs_after_queued_ties():
    eng = Engine()
    log: list = []
    cb = recorder(eng, log)

    def spawn(_):
        log.append((eng.now, "spawn"))
        eng.schedule(0.0, cb, "child")

    eng.schedule(1.0, spawn)
    eng.schedule(1.0, cb, "sibling")
    eng.run()
    assert log == [(1.0, "spawn"), (1.0, "sibling"), (1.0, "child")]


def test_same_schedule_gives_same_order_twice():
    def trace() -> list:
        eng = Engine()
        log: list = []
        cb = recorder(eng, log)
        for i in range(50):
            eng.schedule(float(i % 7), cb, i)
        eng.run()
        return log

    first = trace()
    assert first == trace()
    # within each time, insertion order
    assert [tag for t, tag in first if t == 3.0] == [3, 10, 17, 24, 31, 38, 45]


def test_schedule_is_relative_schedule_at_is_absolute():
    eng = Engine(start=10.0)
    log: list = []
    cb = recorder(eng, log)
    eng.schedule(5.0, cb, "relative")
    eng.schedule_at(12.0, cb, "absolute")
    eng.run()
    assert log == [(12.0, "absolute"), (15.0, "relative")]


def test_callback_receives_argument_default_none():
    eng = Engine()
    got = []
    eng.schedule(1.0, got.append)
    eng.schedule(1.0, got.append, {"k": 1})
    eng.run()
    assert got == [None, {"k": 1}]


def test_cancelled_event_never_runs():
    eng = Engine()
    log: list = []
    cb = recorder(eng, log)
    eng.schedule(1.0, cb, "a")
    h = eng.schedule(2.0, cb, "b")
    eng.schedule(3.0, cb, "c")
    eng.cancel(h)
    eng.run()
    assert [tag for _, tag in log] == ["a", "c"]
    assert eng.events_processed == 2


def test_cancel_from_a_callback_of_the_same_time():
    eng = Engine()
    log: list = []
    cb = recorder(eng, log)
    handles = {}
    eng.schedule(1.0, lambda _: eng.cancel(handles["victim"]))
    handles["victim"] = eng.schedule(1.0, cb, "victim")
    eng.run()
    assert log == []


def test_cancel_of_a_past_event_is_a_no_op():
    eng = Engine()
    log: list = []
    cb = recorder(eng, log)
    h = eng.schedule(1.0, cb, "a")
    eng.run()
    eng.cancel(h)  # already ran
    eng.cancel(h)  # twice is fine too
    eng.cancel(10_000)  # never issued
    eng.schedule(1.0, cb, "b")
    eng.schedule(2.0, cb, "c")
    eng.run()
    assert [tag for _, tag in log] == ["a", "b", "c"]
    assert log[-1][0] == 3.0


def test_run_until_stops_at_until_and_sets_now():
    eng = Engine()
    log: list = []
    cb = recorder(eng, log)
    for t in (1.0, 2.0, 3.0):
        eng.schedule(t, cb, t)
    assert eng.run(until=2.0) == 2.0  # events at exactly `until` run
    assert [t for t, _ in log] == [1.0, 2.0]
    assert eng.now == 2.0
    assert eng.run(until=2.5) == 2.5
    assert eng.now == 2.5 and len(log) == 2
    assert eng.peek() == 3.0 and eng.pending() == 1
    eng.schedule(1.0, cb, "from 2.5")  # relative to the new clock: t = 3.5
    eng.run()
    assert log[-2:] == [(3.0, 3.0), (3.5, "from 2.5")]
    assert eng.now == 3.5


def test_run_until_with_empty_heap_advances_clock():
    eng = Engine()
    assert eng.run(until=100.0) == 100.0
    assert eng.now == 100.0
    assert eng.peek() == math.inf
    assert eng.run() == 100.0  # nothing to do, no infinite clock


def test_run_until_in_the_past_leaves_the_clock():
    eng = Engine(start=50.0)
    eng.schedule(10.0, lambda _: None)
    assert eng.run(until=20.0) == 50.0
    assert eng.pending() == 1


@pytest.mark.parametrize("delay", [-1.0, -1e-9, math.nan, -math.inf])
def test_bad_delay_raises(delay):
    eng = Engine()
    with pytest.raises(ValueError, match="delay"):
        eng.schedule(delay, lambda _: None)
    assert eng.pending() == 0


@pytest.mark.parametrize("time", [4.999, math.nan, -math.inf])
def test_schedule_at_before_now_raises(time):
    eng = Engine(start=5.0)
    with pytest.raises(ValueError):
        eng.schedule_at(time, lambda _: None)
    assert eng.pending() == 0


def test_schedule_at_now_is_allowed():
    eng = Engine(start=5.0)
    got = []
    eng.schedule_at(5.0, got.append, "x")
    eng.run()
    assert got == ["x"] and eng.now == 5.0


def test_callback_exception_propagates_and_run_can_resume():
    eng = Engine()
    log: list = []
    cb = recorder(eng, log)

    def boom(_):
        raise RuntimeError("payload exploded")

    eng.schedule(1.0, cb, "before")
    eng.schedule(2.0, boom)
    eng.schedule(3.0, cb, "after")
    with pytest.raises(RuntimeError, match="payload exploded"):
        eng.run()
    assert eng.now == 2.0
    assert [tag for _, tag in log] == ["before"]
    assert eng.events_processed == 2  # the failing event counts as processed
    eng.run()  # nothing was swallowed or lost: the rest of the heap is intact
    assert [tag for _, tag in log] == ["before", "after"]


def test_pending_counts_cancelled_events_until_popped():
    eng = Engine()
    h = eng.schedule(1.0, lambda _: None)
    eng.schedule(2.0, lambda _: None)
    eng.cancel(h)
    assert eng.pending() == 2
    eng.run()
    assert eng.pending() == 0
    assert eng.events_processed == 1

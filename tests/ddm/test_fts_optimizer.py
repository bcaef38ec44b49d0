"""The FTS optimizer: first decision, AIMD rules, success-rate gates, queue rules, EMA arithmetic."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridtwin.ddm.fts_optimizer import (
    InFlight,
    LinkOptimizer,
    OptimizerParams,
    ema_update,
    measurement_window,
)
from gridtwin.errors import ConfigError

GB = 1e9
BIG_QUEUE = 10_000


def _feed(opt: LinkOptimizer, tick_end: float, n_ok: int, n_failed: int = 0, size: float = GB,
          duration: float = 10.0, retries: int = 0) -> None:
    """n_ok successes and n_failed failures ending 30 s before ``tick_end`` (inside a 60 s window)."""
    for i in range(n_ok):
        opt.observe_transfer(tick_end - 30, size, duration, True, is_retry=i < retries)
    for _ in range(n_failed):
        opt.observe_transfer(tick_end - 30, size, duration, False)


def test_first_decision_configured_max_or_halfway() -> None:
    assert LinkOptimizer(OptimizerParams(max_active=20)).limit == 20
    assert LinkOptimizer(OptimizerParams()).limit == 2 + (60 - 2) // 2
    assert LinkOptimizer(OptimizerParams(se_limit=31)).limit == 2 + 29 // 2
    opt = LinkOptimizer(OptimizerParams(max_active=20))
    assert opt.tick(60, BIG_QUEUE, 0) == 20
    assert opt.decisions[-1].reason.startswith("no information: use configured range max")
    opt = LinkOptimizer(OptimizerParams(se_limit=30))
    assert opt.tick(60, BIG_QUEUE, 0) == 16
    assert "halfway" in opt.last_reason


@pytest.mark.parametrize(("mode", "step"), [("conservative", 1), ("normal", 2), ("aggressive", 2)])
def test_limit_rises_while_throughput_grows(mode: str, step: int) -> None:
    opt = LinkOptimizer(OptimizerParams(se_limit=30, mode=mode))
    limits = []
    for k in range(1, 20):
        _feed(opt, 60 * k, n_ok=k)  # more bytes every tick: the windowed throughput grows
        limits.append(opt.tick(60 * k, BIG_QUEUE, opt.limit))
    assert limits[0] == 16
    expected = [min(16 + step * i, 30) for i in range(len(limits))]
    assert limits == expected
    assert all(d.ema > p.ema for p, d in zip(list(opt.decisions)[:-1], list(opt.decisions)[1:], strict=True))
    assert "throughput rising" in opt.decisions[1].reason
    assert opt.decisions[-1].reason.endswith("hit range max")


def test_limit_lowers_under_failures_down_to_min() -> None:
    opt = LinkOptimizer(OptimizerParams(max_active=20))
    limits = []
    for k in range(1, 30):
        _feed(opt, 60 * k, n_ok=5, n_failed=5)
        limits.append(opt.tick(60 * k, BIG_QUEUE, opt.limit))
    assert limits[:5] == [20, 19, 18, 17, 16]
    assert limits[-1] == 2 and min(limits) == 2
    assert all(b <= a for a, b in itertools.pairwise(limits))
    assert opt.decisions[1].success_rate == 50 and "low success rate: decrease" in opt.decisions[1].reason


def _gate_run(rates: list[tuple[int, int, int]]) -> LinkOptimizer:
    """Ticks with (ok, failed, retries) per 60 s window; returns the optimizer."""
    opt = LinkOptimizer(OptimizerParams(max_active=20, window_s=60))
    for k, (ok, failed, retries) in enumerate(rates, start=1):
        _feed(opt, 60 * k, ok, failed, retries=retries)
        opt.tick(60 * k, BIG_QUEUE, opt.limit)
    return opt


def test_holds_between_96_and_97_percent_when_improving() -> None:
    opt = _gate_run([(10, 0, 0), (9, 1, 0), (24, 1, 0)])
    d = list(opt.decisions)
    assert [x.success_rate for x in d] == [100, 90, 96]
    assert [x.value for x in d] == [20, 19, 19]
    assert "improving: hold" in d[2].reason


def test_decreases_at_96_percent_when_retries_rise_or_not_improving() -> None:
    rising_retries = _gate_run([(10, 0, 0), (9, 1, 0), (24, 1, 3)])
    assert [x.value for x in rising_retries.decisions] == [20, 19, 18]
    from_above = _gate_run([(10, 0, 0), (24, 1, 0)])  # 100% -> 96%: worse, not improving
    assert [x.value for x in from_above.decisions] == [20, 19]
    below_base = _gate_run([(10, 0, 0), (9, 1, 0), (19, 1, 0)])  # 90% -> 95%: improving but < 96%
    assert [x.value for x in below_base.decisions] == [20, 19, 18]


def test_success_rate_is_rounded_up_as_fts_does() -> None:
    opt = LinkOptimizer(OptimizerParams(window_s=60))
    _feed(opt, 60, 29, 1)  # 96.67% -> 97: not a low success rate
    assert opt.measure(60).success_rate == 97
    assert opt.measure(200).success_rate == 100  # nothing ended in the window


def test_respects_min_and_max() -> None:
    params = OptimizerParams(min_active=4, max_active=9, mode="aggressive")
    up = LinkOptimizer(params)
    for k in range(1, 8):
        _feed(up, 60 * k, k)
        assert 4 <= up.tick(60 * k, BIG_QUEUE, 0) <= 9
    assert up.limit == 9
    down = LinkOptimizer(params)
    for k in range(1, 12):
        _feed(down, 60 * k, 1, 9)
        assert 4 <= down.tick(60 * k, BIG_QUEUE, 0) <= 9
    assert down.limit == 4 and down.decisions[-1].reason.endswith("hit range min")
    fixed = LinkOptimizer(OptimizerParams(min_active=5, max_active=5))
    for k in range(1, 4):
        _feed(fixed, 60 * k, 1, 9)
        assert fixed.tick(60 * k, BIG_QUEUE, 0) == 5
    assert fixed.decisions[-1].reason == "range fixed"


def _ramp(params: OptimizerParams, queues: list[int]) -> LinkOptimizer:
    opt = LinkOptimizer(params)
    for k, q in enumerate(queues, start=1):
        _feed(opt, 60 * k, k)
        opt.tick(60 * k, q, 0)
    return opt


def test_queue_shorter_than_limit_holds() -> None:
    opt = _ramp(OptimizerParams(se_limit=30), [BIG_QUEUE, BIG_QUEUE, 5])
    assert [d.value for d in opt.decisions] == [16, 17, 17]
    assert "queue shorter than the limit" in opt.decisions[-1].reason


def test_conservative_never_raises_above_queue_size() -> None:
    opt = _ramp(OptimizerParams(se_limit=30), [BIG_QUEUE, 17, 17, 17])
    assert [d.value for d in opt.decisions] == [16, 17, 17, 17]
    assert "not enough files in the queue" in opt.decisions[-1].reason
    normal = _ramp(OptimizerParams(se_limit=30, mode="normal"), [BIG_QUEUE, 17, 18])
    assert [d.value for d in normal.decisions] == [16, 18, 20]  # normal mode may pass the queue size
    streams = _ramp(OptimizerParams(se_limit=30, mode="normal", max_streams=1), [BIG_QUEUE, 18, 18])
    assert [d.value for d in streams.decisions] == [16, 18, 18]
    assert "too many streams" in streams.decisions[-1].reason


def test_ema_arithmetic_by_hand() -> None:
    opt = LinkOptimizer(OptimizerParams(max_active=20, window_s=60))
    opt.observe_transfer(50, 6 * GB, 30, True)  # all inside (0, 60]: 6e9 / 60 = 1e8 B/s
    opt.tick(60, BIG_QUEUE, 0)
    opt.observe_transfer(110, 12 * GB, 30, True)  # 12e9 / 60 = 2e8 B/s
    opt.tick(120, BIG_QUEUE, 0)
    opt.observe_transfer(170, 9 * GB, 90, True)  # ran 80..170: 50 s of 90 in (120, 180] -> 5e9 B
    opt.tick(180, BIG_QUEUE, 0)
    d = list(opt.decisions)
    assert [x.throughput for x in d] == pytest.approx([1e8, 2e8, 5e9 / 60])
    assert d[0].ema == pytest.approx(1e8)  # first sample seeds the EMA
    assert d[1].ema == pytest.approx(0.1 * 2e8 + 0.9 * 1e8)  # 1.1e8
    assert d[2].ema == pytest.approx(0.1 * (5e9 / 60) + 0.9 * 1.1e8)  # 1.0733e8
    # EMA fell, but neither log10(file size) (10 -> 10) nor log10(EMA) (8 -> 8) changed order: hold
    assert d[2].value == d[1].value == 20 and "small throughput deterioration" in d[2].reason
    # no sample (0 B/s) leaves the EMA as it is; with the success rate unchanged FTS skips the tick
    assert opt.tick(240, BIG_QUEUE, 0) == 20
    assert opt.skipped == 1 and len(opt.decisions) == 3 and opt.last_reason.startswith("steady")
    # after the steady interval (300 s since the last decision) it decides again
    opt.tick(480, BIG_QUEUE, 0)
    assert len(opt.decisions) == 4 and opt.decisions[-1].ema == pytest.approx(d[2].ema)
    assert ema_update(0.0, 0.1, 5.0) == 5.0


def test_falling_throughput_rules_on_log_scale() -> None:
    # smaller files explain the fall: increase
    opt = LinkOptimizer(OptimizerParams(se_limit=30, window_s=60))
    _feed(opt, 60, 10, size=10 * GB)
    opt.tick(60, BIG_QUEUE, 0)
    _feed(opt, 120, 10, size=0.1 * GB)
    assert opt.tick(120, BIG_QUEUE, 0) == 17
    assert "smaller files" in opt.last_reason
    # same file sizes, EMA drops an order of magnitude (log10 rounds 9 -> 8): decrease
    opt = LinkOptimizer(OptimizerParams(se_limit=30, window_s=60, ema_alpha=1.0))
    _feed(opt, 60, 60, size=GB)  # 1e9 B/s
    opt.tick(60, BIG_QUEUE, 0)
    _feed(opt, 120, 6, size=GB)  # 1e8 B/s
    assert opt.tick(120, BIG_QUEUE, 0) == 15
    assert "order of magnitude" in opt.last_reason


def test_no_throughput_information_holds() -> None:
    opt = LinkOptimizer(OptimizerParams(max_active=20, window_s=60))
    opt.tick(60, BIG_QUEUE, 0)
    _feed(opt, 120, 0, 1)  # only a failure: success 0% -> decrease, though no throughput
    assert opt.tick(120, BIG_QUEUE, 0) == 19
    opt.tick(180, BIG_QUEUE, 0)  # nothing ended: success 100%, EMA 0
    assert opt.last_reason.startswith("not enough throughput information")


def test_storage_throughput_limit_forces_a_decrease() -> None:
    opt = LinkOptimizer(OptimizerParams(max_active=20))
    opt.tick(60, BIG_QUEUE, 0)
    assert opt.tick(120, BIG_QUEUE, 0, throughput_limited=True) == 19
    assert "storage throughput limit" in opt.last_reason


def test_measurement_window_and_in_flight_bytes() -> None:
    assert [measurement_window(x) for x in (0, 10, 30, 100, 900, 5000)] == [1800, 300, 1800, 900, 1800, 1800]
    opt = LinkOptimizer()
    for _ in range(3):
        opt.observe_transfer(100, GB, 10, True)
    assert opt.measure(110).window_s == 300  # short transfers: 5 min window
    opt2 = LinkOptimizer(OptimizerParams(window_s=60))
    # running for 90 s with 9e9 bytes done: 1e8 B/s, 60 s of it inside the window
    m = opt2.measure(1000, [InFlight(910, 9 * GB, 20 * GB)])
    assert m.throughput == pytest.approx(1e8) and m.filesize_avg == 20 * GB
    m = opt2.measure(1000, [(980, 2 * GB, 4 * GB)])  # 20 s in: 1e8 B/s x 20 s over 60 s
    assert m.throughput == pytest.approx(2 * GB / 60)


def test_old_records_are_dropped() -> None:
    opt = LinkOptimizer()
    opt.observe_transfer(0, GB, 100, True)
    opt.tick(60, 0, 0)
    opt.tick(5000, 0, 0)
    assert opt._done == []


def test_history_is_bounded() -> None:
    opt = LinkOptimizer(OptimizerParams(max_active=5, history_limit=3))
    for k in range(1, 10):
        _feed(opt, 60 * k, k)
        opt.tick(60 * k, BIG_QUEUE, 0)
    assert len(opt.decisions) == 3 and opt.decisions[-1].time == 540


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"mode": "turbo"}, "mode must be one of"),
        ({"min_active": 0}, "min_active"),
        ({"min_active": 5, "max_active": 4}, "below min_active"),
        ({"ema_alpha": 0}, "ema_alpha"),
        ({"tick_s": 0}, "tick_s"),
        ({"window_s": -1}, "window_s"),
        ({"decrease_step": 0}, "step sizes"),
    ],
)
def test_bad_params(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        OptimizerParams(**kwargs)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["conservative", "normal", "aggressive"]),
    st.integers(1, 10),
    st.integers(0, 40),
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 5), st.integers(0, 60)), min_size=1, max_size=25),
)
def test_limit_always_in_range(mode: str, lo: int, extra: int, ticks: list[tuple[int, int, int]]) -> None:
    opt = LinkOptimizer(OptimizerParams(min_active=lo, max_active=lo + extra, mode=mode))
    for k, (ok, failed, queued) in enumerate(ticks, start=1):
        _feed(opt, 60 * k, ok, failed)
        assert lo <= opt.tick(60 * k, queued, 0) <= lo + extra

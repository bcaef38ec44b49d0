"""The FTS optimizer: a per-link controller of the number of active transfers, like a TCP window.

It follows FTS's ``OptimizerConnections.cpp`` (``optimizeConnectionsForPair``), the measurements of
its database data source (``getThroughputInfo``, ``getSuccessRateForPair``, ``getAverageDuration``)
and the defaults of ``OptimizerConstants.h`` and the server configuration; ``docs/ddm.md`` lists the
rules and where the twin had to choose. Times are seconds, sizes bytes, throughput bytes per second.

Use: the conveyor calls ``observe_transfer`` when an attempt on the link ends, ``tick`` every
``params.tick_s`` seconds, and starts new transfers while ``active < optimizer.limit``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from gridtwin.errors import ConfigError

__all__ = [
    "MODES",
    "Decision",
    "InFlight",
    "LinkOptimizer",
    "Measurement",
    "OptimizerParams",
    "ema_update",
    "measurement_window",
]

MODES = ("conservative", "normal", "aggressive")
"""FTS optimizer modes 1, 2, 3. FTS falls back to 1 (conservative) when nothing is configured."""

AVG_DURATION_WINDOW_S = 1800.0
"""Finished transfers of the last 30 min give the average duration that picks the window."""


def measurement_window(avg_duration_s: float) -> float:
    """FTS's ``calculateTimeFrame``: 5 min for short transfers, 15 min for medium, else 30 min.

    As in FTS the bounds are exclusive, so an average of exactly 30 s (or none at all) gives 30 min.
    """
    if 0 < avg_duration_s < 30:
        return 300.0
    if 30 < avg_duration_s < 900:
        return 900.0
    return 1800.0


def _round_half_away(x: float) -> float:
    """C's ``round``: halves go away from zero (Python's ``round`` goes to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def _log10_order(x: float) -> float | None:
    """``round(log10(x))`` as FTS compares it; None for x <= 0, where FTS would compare -inf/NaN."""
    return _round_half_away(math.log10(x)) if x > 0 else None


def _fell(cur: float | None, prev: float | None) -> bool:
    return cur is not None and prev is not None and cur < prev


def ema_update(sample: float, alpha: float, current: float) -> float:
    """FTS's irregular EMA: a sample of 0 (no throughput information) leaves the average unchanged."""
    return sample * alpha + (1 - alpha) * current if sample > 0 else current


@dataclass(frozen=True, slots=True)
class OptimizerParams:
    """Settings of one link's optimizer; defaults are FTS's.

    ``max_active`` is the configured link maximum. Without it (None) the range top is ``se_limit``
    (FTS: the smaller of the source's and destination's storage limits, default 60) and the first
    decision is the middle of the range instead of its top.
    """

    tick_s: float = 60.0
    """OptimizerInterval: seconds between ticks (the conveyor schedules them)."""
    min_active: int = 2
    """DEFAULT_MIN_ACTIVE (FTS uses 10 for LAN pairs; give it here for a same-site link)."""
    max_active: int | None = None
    se_limit: int = 60
    """DEFAULT_MAX_ACTIVE_ENDPOINT_LINK: the range top when ``max_active`` is not configured."""
    ema_alpha: float = 0.1
    mode: str = "conservative"
    low_success_rate: float = 97.0
    base_success_rate: float = 96.0
    increase_step: int = 1
    aggressive_increase_step: int = 2
    """Step used in normal and aggressive modes (OptimizerAggressiveIncreaseStep)."""
    decrease_step: int = 1
    max_streams: int = 16
    """OptimizerMaxStreams: normal/aggressive modes hold below queued x max_streams."""
    steady_interval_s: float = 300.0
    """OptimizerSteadyInterval: with success rate and EMA unchanged, skip until this much time passed."""
    window_s: float | None = None
    """Fixed measurement window; None lets the average duration choose 5, 15 or 30 min as FTS does."""
    history_limit: int | None = 1440
    """Decisions kept in ``LinkOptimizer.decisions`` (one day of 60 s ticks); None keeps all."""

    def __post_init__(self) -> None:
        where = "FTS optimizer"
        if self.mode not in MODES:
            raise ConfigError(f"{where}: mode must be one of {MODES}, got {self.mode!r}")
        if self.min_active < 1:
            raise ConfigError(f"{where}: min_active must be >= 1, got {self.min_active}")
        if self.max_active is not None and self.max_active < self.min_active:
            raise ConfigError(f"{where}: max_active ({self.max_active}) is below min_active ({self.min_active})")
        if self.se_limit < 1:
            raise ConfigError(f"{where}: se_limit must be >= 1, got {self.se_limit}")
        if not 0 < self.ema_alpha <= 1:
            raise ConfigError(f"{where}: ema_alpha must be in (0, 1], got {self.ema_alpha}")
        if not self.tick_s > 0:
            raise ConfigError(f"{where}: tick_s must be > 0, got {self.tick_s}")
        if self.window_s is not None and not self.window_s > 0:
            raise ConfigError(f"{where}: window_s must be > 0, got {self.window_s}")
        if min(self.increase_step, self.aggressive_increase_step, self.decrease_step, self.max_streams) < 1:
            raise ConfigError(f"{where}: step sizes and max_streams must be >= 1")
        if self.history_limit is not None and self.history_limit < 0:
            raise ConfigError(f"{where}: history_limit must be >= 0 or None, got {self.history_limit}")

    @property
    def max_configured(self) -> bool:
        return self.max_active is not None

    def active_range(self) -> tuple[int, int]:
        """(min, max) active transfers; max never below min (FTS raises it to min)."""
        top = self.max_active if self.max_active is not None else max(self.se_limit, self.min_active)
        return self.min_active, top

    def first_decision(self) -> int:
        """The configured max, else halfway through the range (FTS: min + (max - min) / 2)."""
        lo, hi = self.active_range()
        return hi if self.max_configured else lo + (hi - lo) // 2


class InFlight(NamedTuple):
    """A transfer still running on the link: when it started, bytes done so far, its file size."""

    started_at: float
    bytes_done: float
    file_bytes: float


class Measurement(NamedTuple):
    """What one tick measured over its window."""

    window_s: float
    throughput: float
    """Bytes moved inside the window by finished and running transfers, over the window length."""
    filesize_avg: float
    success_rate: float
    """Percent, rounded up (FTS's ``ceil``); 100 when no attempt ended in the window."""
    retry_count: int
    avg_duration: float


@dataclass(frozen=True, slots=True)
class Decision:
    """One optimizer decision, for ``link_metrics`` and for explaining the limit afterwards."""

    time: float
    value: int
    previous: int
    reason: str
    ema: float
    throughput: float
    success_rate: float
    retry_count: int
    queued: int
    active: int
    filesize_avg: float
    window_s: float


@dataclass(slots=True)
class _State:
    time: float
    ema: float
    success_rate: float
    retry_count: int
    filesize_avg: float


class LinkOptimizer:
    """The active-transfer limit of one (source, destination) link, adjusted on every tick."""

    def __init__(self, params: OptimizerParams | None = None, link: str = "") -> None:
        self.params = params or OptimizerParams()
        self.link = link
        self.limit = self.params.first_decision()
        """The current maximum of active transfers (FTS's optimizer value)."""
        self.last_reason = "not evaluated yet"
        self.decisions: deque[Decision] = deque(maxlen=self.params.history_limit)
        self.skipped = 0
        """Ticks skipped because nothing changed within the steady interval."""
        self._prev: _State | None = None
        # finished attempts: (end, duration, bytes, success, is_retry)
        self._done: list[tuple[float, float, float, bool, bool]] = []

    # --- inputs -------------------------------------------------------------------------------

    def observe_transfer(
        self, now: float, bytes: float, duration_s: float, success: bool, is_retry: bool = False
    ) -> None:
        """Record an attempt that ended at ``now`` after ``duration_s`` (bytes = file size).

        A failed attempt counts against the success rate; ``is_retry`` marks an attempt that
        re-tries an earlier failure and feeds the retry count.
        """
        self._done.append((float(now), max(float(duration_s), 0.0), float(bytes), bool(success), bool(is_retry)))

    def measure(self, now: float, in_flight: Iterable[InFlight | tuple[float, float, float]] = ()) -> Measurement:
        """Throughput, file size, success rate and retries over the window ending at ``now``."""
        keep_s = max(AVG_DURATION_WINDOW_S, self.params.window_s or 0.0)
        self._done = done = [r for r in self._done if r[0] >= now - keep_s]

        durations = [d for end, d, _, ok, _ in done if ok and d > 0 and end > now - AVG_DURATION_WINDOW_S]
        avg_duration = sum(durations) / len(durations) if durations else 0.0
        window = self.params.window_s or measurement_window(avg_duration)
        start_w = now - window

        moved = 0.0
        sizes: list[float] = []
        ok_n = failed_n = retries = 0
        for end, dur, nbytes, ok, retry in done:
            if end < start_w:
                continue
            retries += retry
            if not ok:
                failed_n += 1
                continue
            ok_n += 1
            if dur > 0:
                moved += nbytes / dur * (end - max(end - dur, start_w))
            else:
                moved += nbytes
            if nbytes > 0:
                sizes.append(nbytes)
        for started, bytes_done, file_bytes in in_flight:
            elapsed = now - started
            if elapsed > 0:
                moved += bytes_done / elapsed * (now - max(started, start_w))
            if file_bytes > 0:
                sizes.append(file_bytes)
        total = ok_n + failed_n
        success = float(-(-100 * ok_n // total)) if total else 100.0
        return Measurement(
            window_s=window,
            throughput=moved / window,
            filesize_avg=sum(sizes) / len(sizes) if sizes else 0.0,
            success_rate=success,
            retry_count=retries,
            avg_duration=avg_duration,
        )

    # --- the decision -------------------------------------------------------------------------

    def tick(
        self,
        now: float,
        queued: int,
        active: int,
        in_flight: Iterable[InFlight | tuple[float, float, float]] = (),
        throughput_limited: bool = False,
    ) -> int:
        """Run one optimizer pass and return the new maximum of active transfers.

        ``queued`` is the link's queue (FTS: SUBMITTED), ``active`` its running transfers and
        ``in_flight`` their (started_at, bytes_done, file_bytes), which count towards throughput.
        ``throughput_limited`` says the source or destination storage is above its configured
        throughput limit, which forces a decrease as in FTS.
        """
        p = self.params
        m = self.measure(now, in_flight)
        previous = self.limit
        lo, hi = p.active_range()

        if self._prev is None:
            self._prev = _State(now, m.throughput, m.success_rate, m.retry_count, m.filesize_avg)
            why = "no information: use configured range max" if p.max_configured else "no information: start halfway"
            return self._decide(now, previous, why, m, self._prev.ema, queued, active)

        prev = self._prev
        new_ema = ema_update(m.throughput, p.ema_alpha, prev.ema)
        cur = _State(now, new_ema, m.success_rate, m.retry_count, m.filesize_avg)

        if lo == hi:
            self._prev = cur
            return self._decide(now, lo, "range fixed", m, cur.ema, queued, active)

        if throughput_limited:
            self._prev = cur
            why = "storage throughput limit reached: decrease"
            return self._decide(now, max(previous - p.decrease_step, lo), why, m, cur.ema, queued, active, previous)

        if (
            cur.success_rate == prev.success_rate
            and cur.ema == prev.ema
            and now - prev.time < p.steady_interval_s
        ):
            self.skipped += 1
            self.last_reason = "steady: same success rate and throughput EMA, skipped"
            return previous

        step_up = p.increase_step if p.mode == "conservative" else p.aggressive_increase_step
        if cur.success_rate < p.low_success_rate:
            if (
                cur.success_rate > prev.success_rate
                and cur.success_rate >= p.base_success_rate
                and cur.retry_count <= prev.retry_count
            ):
                decision, why = previous, "low success rate but improving: hold"
            else:
                decision, why = previous - p.decrease_step, "low success rate: decrease"
        elif cur.ema == 0:
            decision, why = previous, "not enough throughput information: hold"
        elif queued < previous:
            decision, why = previous, "queue shorter than the limit: hold"
        elif cur.ema < prev.ema:
            if _fell(_log10_order(cur.filesize_avg), _log10_order(prev.filesize_avg)):
                decision, why = previous + step_up, "throughput falling with smaller files: increase"
            elif _fell(_log10_order(cur.ema), _log10_order(prev.ema)):
                decision, why = previous - p.decrease_step, "throughput fell an order of magnitude: decrease"
            else:
                decision, why = previous, "small throughput deterioration: hold"
        elif cur.ema > prev.ema:
            decision, why = previous + step_up, "throughput rising: increase"
        else:
            decision, why = previous + step_up, "throughput steady: increase"

        if decision < lo:
            decision, why = lo, why + "; hit range min"
        elif decision > hi:
            decision, why = hi, why + "; hit range max"
        if p.mode == "conservative" and decision > previous and queued < decision:
            decision, why = previous, why + "; not enough files in the queue"
        if p.mode != "conservative" and decision > queued * p.max_streams:
            decision, why = previous, why + "; too many streams for the queue"

        self._prev = cur
        return self._decide(now, decision, why, m, cur.ema, queued, active, previous)

    def _decide(
        self,
        now: float,
        value: int,
        why: str,
        m: Measurement,
        ema_value: float,
        queued: int,
        active: int,
        previous: int | None = None,
    ) -> int:
        prev_value = self.limit if previous is None else previous
        self.limit = value
        self.last_reason = why
        self.decisions.append(
            Decision(
                time=now,
                value=value,
                previous=prev_value,
                reason=why,
                ema=ema_value,
                throughput=m.throughput,
                success_rate=m.success_rate,
                retry_count=m.retry_count,
                queued=queued,
                active=active,
                filesize_avg=m.filesize_avg,
                window_s=m.window_s,
            )
        )
        return value

    @property
    def ema(self) -> float:
        """The throughput EMA of the last decision (0 before the first tick)."""
        return self._prev.ema if self._prev is not None else 0.0

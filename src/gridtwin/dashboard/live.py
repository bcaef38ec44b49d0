"""Frames of a running simulation, pushed to the dashboard without ever waiting for it.

Two halves, joined by messages ``("meta", dict)``, ``("frame", text, wall_time)``, ``("stats", frame,
dict)`` and ``("end", run_dir)``:

- :class:`LiveSampler`, on the simulation's side, puts an event on the engine every ``interval_s``
  simulated seconds. The event reads the live counters into a frame (the quantities
  :mod:`gridtwin.dashboard.frames` reads off the Parquet files: with the interval of
  ``metrics_interval_s`` the two agree) and hands the JSON text to its ``sink``, which never blocks.
- :class:`LiveFeed`, on the server's side, keeps the frames (for the series, seeks after the fact and the
  queue drill-downs) and tells the websocket clients. Each client has a bounded queue of frame numbers; a
  client that falls that far behind, or whose socket takes nothing for a while, is dropped, so a slow or
  vanished client costs the simulation nothing.

``simulate --dashboard`` runs the feed and the web server in another process
(:mod:`gridtwin.dashboard.process`): the simulation then spends one queue put per frame on it. In one
process, ``sampler.sink = feed.receive`` joins the halves directly (tests do that).

Counting jobs by queue for a drill-down is O(jobs), so the sampler does it only when asked (``wanted``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from gridtwin.analytics.kpi import ERROR_KINDS
from gridtwin.dashboard.frames import SITE_COLS, SITE_INFO, RunFrames, display_order, error_rows, frame_dict, site_jobs
from gridtwin.wms.states import FAILED, FINISHED, TRANSFERRING, JobStatus

CLIENT_QUEUE = 65_536
"""Frames a client may have waiting before it is dropped as too slow (the queue holds frame numbers, not
texts; a client whose socket takes nothing for ``server.SEND_TIMEOUT_S`` is dropped before that)."""
JOB_ERROR_ARRAYS = {"pilot": "pilot_error", "exe": "exe_error", "ddm": "ddm_error", "taskbuffer": "tb_error"}
"""The job table's array of each kind of error code (``analytics.kpi.ERROR_KINDS``)."""
END, DROPPED = -1, -2
"""What a client's queue holds besides frame numbers: the run ended; the client was dropped as too slow."""


class LiveSampler:
    """The simulation's half: frames every ``interval_s`` simulated seconds, handed to ``sink(*message)``."""

    def __init__(self, interval_s: float = 600.0, sink: Callable[..., object] | None = None,
                 wanted: Any = None) -> None:
        if not interval_s > 0:
            raise ValueError(f"dashboard interval must be > 0 s, got {interval_s}")
        self.interval_s = float(interval_s)
        self.sink = sink or (lambda *msg: None)
        self.wanted = wanted if wanted is not None else SimpleNamespace(value=0)
        """Anything with a ``value``: set to 1 by the feed when a drill-down wants job counts by queue."""
        self.frames = 0
        self.publish_s = 0.0
        """Simulation-thread seconds spent building and handing over frames."""

    def attach(self, sim: Any) -> None:
        """Read ``sim`` (a :class:`gridtwin.scenario.Simulation`) every ``interval_s`` from its start."""
        self.sim = sim
        sc = sim.scenario
        epoch = sc.epoch if sc.epoch.tzinfo else sc.epoch.replace(tzinfo=UTC)
        self.epoch = epoch
        plat = sim.platform
        self.sites = display_order([{"site": s.name, **{k: getattr(s, k) for k in SITE_INFO}}
                                    for s in plat.sites.values()])
        index = {s["site"]: i for i, s in enumerate(self.sites)}
        link_sites = sorted({s.atlas_site for s in plat.sites.values()})
        self._link_index = {s: i for i, s in enumerate(link_sites)}
        states = {st.site.name: st for st in sim.server.states}
        self._states = [states[s["site"]] for s in self.sites]
        self._site_of_row = np.array([index[st.site.name] for st in sim.server.states], dtype=np.int64)
        self._link_bytes: dict[Any, tuple[int, int, int]] = {}  # bytes, files done, files failed at the last frame
        self._carry: set[Any] = set()
        self._last_t: float | None = None
        self._last_finished = 0
        if sim.ddm is not None:
            sim.ddm.conveyor.watch = {}
        self.sink("meta", {"mode": "live", "run": sc.name, "epoch": epoch.isoformat(), "interval_s": self.interval_s,
                           "sites": self.sites, "link_sites": link_sites, "anomalies": None,
                           "kpis": {"scenario": sc.name, "seed": sc.seed,
                                    "horizon_h": round(sim.horizon_s / 3600, 2)}})
        sim.engine.schedule_at(0.0, self._on_tick)

    def _on_tick(self, _: Any = None) -> None:
        # sample after everything else due now, as the site metrics are sampled
        self.sim.engine.schedule(0.0, self._sample)
        if self.sim.busy() or self.sim.engine.now == 0.0:
            self.sim.engine.schedule(self.interval_s, self._on_tick)

    def _sample(self, _: Any = None) -> None:
        t0 = time.perf_counter()
        now = self.sim.engine.now
        used = self.sim.server._storage_used
        st = self._states
        rows = [[s.running for s in st], [s.activated + s.assigned for s in st],
                [s.total_cores - s.free_cores for s in st], [s.total_cores for s in st], [used(s) for s in st],
                [s.storage_total for s in st]]
        jobs = self.sim.server.jobs
        status = np.frombuffer(jobs.status, dtype=np.int8) if len(jobs) else np.zeros(0, np.int8)
        finished, failed, transferring = (int(np.count_nonzero(status == k)) for k in (FINISHED, FAILED, TRANSFERRING))
        del status  # release the buffer before the simulation appends again
        dt = now - self._last_t if self._last_t is not None else 0.0
        per_h = (finished - self._last_finished) * 3600.0 / dt if dt > 0 else 0.0
        self._last_t, self._last_finished = now, finished
        links, mbps, active = self._links(dt)
        totals = {"running": sum(rows[0]), "queued": sum(rows[1]), "transferring": transferring,
                  "finished": finished, "failed": failed, "jobs_per_h": round(per_h, 3),
                  "transfer_mbps": round(mbps, 3), "transfers_active": active}
        made = time.time()
        frame = frame_dict(self.frames, now, self.epoch, dict(zip(SITE_COLS, rows, strict=True)), totals, links, made)
        self.sink("frame", json.dumps(frame, separators=(",", ":")), made)
        if self.wanted.value:  # a drill-down asked: count jobs by queue at this frame
            self.wanted.value = 0
            self.sink("stats", self.frames, self._job_stats(jobs))
        self.frames += 1
        self.publish_s += time.perf_counter() - t0

    def _links(self, dt: float) -> tuple[list[list[float]], float, int]:
        """Links active, queued or moving bytes now: the ones touched since the last frame (``dt`` ago), and those
        busy then."""
        ddm = self.sim.ddm
        if ddm is None:
            return [], 0.0, 0
        conveyor = ddm.conveyor
        look = set(conveyor.watch) | self._carry
        conveyor.watch.clear()
        carry, out, total, active = set(), [], 0.0, 0
        for lk in sorted(look, key=lambda x: x.index):
            b0, f0, x0 = self._link_bytes.get(lk, (0, 0, 0))
            db = lk.bytes_done - b0
            if lk.active or lk.queue:
                carry.add(lk)
            elif lk.files_done == f0 and lk.files_failed == x0:  # the link-metrics recorder's rule
                continue
            self._link_bytes[lk] = (lk.bytes_done, lk.files_done, lk.files_failed)
            rate = db / dt / 1e6 if dt > 0 else 0.0
            out.append([self._link_index.get(lk.src, -1), self._link_index.get(lk.dst, -1), int(lk.active),
                        len(lk.queue), round(rate, 3)])
            total += rate
            active += lk.active
        self._carry = carry
        return out, total, active

    def _job_stats(self, jobs: Any) -> dict[str, Any]:
        """Per queue: its jobs by state and its error codes so far."""
        if len(jobs) == 0:
            return {}
        site = np.frombuffer(jobs.site, dtype=np.int32).copy()
        status = np.frombuffer(jobs.status, dtype=np.int8).copy()
        errs = {c: np.frombuffer(getattr(jobs, JOB_ERROR_ARRAYS[kind]), dtype=np.int32).copy()
                for kind, c in ERROR_KINDS}
        ok = site >= 0
        idx = self._site_of_row[np.where(ok, site, 0)]
        out: dict[str, Any] = {}
        values, counts = np.unique(idx[ok] * 16 + status[ok], return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist(), strict=True):
            states = out.setdefault(self.sites[v // 16]["site"], {"states": {}, "errors": {}})["states"]
            states[JobStatus(v % 16).name] = c
        for col, codes in errs.items():
            m = ok & (codes != 0)
            if not m.any():
                continue
            pairs, counts = np.unique(np.stack([idx[m], codes[m]]), axis=1, return_counts=True)
            for (si, code), c in zip(pairs.T.tolist(), counts.tolist(), strict=True):
                out.setdefault(self.sites[si]["site"], {"states": {}, "errors": {}})["errors"][f"{col} {code}"] = c
        return out

    def finish(self, run_dir: Path | None) -> None:
        """The run is over (and written to ``run_dir``, when given)."""
        self.sink("end", None if run_dir is None else str(run_dir))


class LiveFeed:
    """The server's half: frames received from a :class:`LiveSampler`, served to websocket clients."""

    live = True

    def __init__(self, client_queue: int = CLIENT_QUEUE, request_stats: Callable[[], object] | None = None) -> None:
        self.client_queue = client_queue
        self.request_stats = request_stats or (lambda: None)
        self.meta_base: dict[str, Any] = {"mode": "live", "run": "", "sites": [], "link_sites": [], "kpis": {},
                                          "anomalies": None, "interval_s": 0.0, "epoch": None}
        self.sites: list[dict[str, Any]] = []
        self._index: dict[str, int] = {}
        self.texts: list[str] = []
        self.times: list[float] = []
        self.published_at: list[float] = []
        """Wall-clock time (``time.time()``) each frame was made (for latency measurements)."""
        self._site_rows: list[np.ndarray] = []
        self._totals: list[dict[str, float]] = []
        self._stats: tuple[int, dict[str, Any]] = (-1, {})
        """The frame the per-queue job statistics were counted at (-1: never), and the statistics."""
        self.ended = False
        self.run_frames: RunFrames | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clients: set[asyncio.Queue] = set()
        self.dropped_clients = 0
        self._lock = threading.Lock()

    def receive(self, kind: str, *payload: Any) -> None:
        """One message from the sampler (any thread)."""
        if kind == "meta":
            self.meta_base = payload[0]
            self.sites = self.meta_base["sites"]
            self._index = {s["site"]: i for i, s in enumerate(self.sites)}
        elif kind == "frame":
            text, made = payload
            f = json.loads(text)
            with self._lock:
                self.texts.append(text)
                self.times.append(f["t"])
                self.published_at.append(made)
                self._site_rows.append(np.array([f["sites"][c] for c in SITE_COLS], dtype=np.int64))
                self._totals.append(f["totals"])
            self._notify(len(self.texts) - 1)
        elif kind == "stats":
            self._stats = (payload[0], payload[1])  # one assignment: readers never see half of it
        elif kind == "end":
            run_dir = payload[0]
            if run_dir is not None and (Path(run_dir) / "run.json").is_file():
                self.run_frames = RunFrames(Path(run_dir))
            self.ended = True
            self._notify(END)

    def _notify(self, seq: int) -> None:
        """Tell the server's event loop (never blocks; nothing to do before a server is attached)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(self._fanout, seq)

    # ------------------------------------------------------------------ event loop thread
    def _fanout(self, seq: int) -> None:
        for q in list(self.clients):
            try:
                q.put_nowait(seq)
            except asyncio.QueueFull:  # too slow: drop it rather than wait for it
                self.clients.discard(q)
                self.dropped_clients += 1
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(DROPPED)

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=self.client_queue)
        self.clients.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.clients.discard(q)

    # ------------------------------------------------------------------ what the server asks
    def meta(self) -> dict[str, Any] | None:
        """The run's description (None until the sampler's first message). The frames stay the live ones after
        the end, so their queue and link indices keep their meaning; the written run adds its KPIs and
        anomalies."""
        if not self.sites:
            return None
        out = {**self.meta_base, "n_frames": len(self.texts), "ended": self.ended}
        if self.run_frames is not None:
            written = self.run_frames.meta()
            out.update({"kpis": written["kpis"], "anomalies": written["anomalies"], "run": written["run"]})
        return out

    def n_frames(self) -> int:
        return len(self.texts)

    def frame_text(self, i: int) -> str:
        return self.texts[i]

    def series(self) -> dict[str, list[float]]:
        with self._lock:
            totals = list(self._totals)
            times = list(self.times)
        out: dict[str, list[float]] = {"t": times}
        for k in ("running", "queued", "transferring", "jobs_per_h", "transfer_mbps"):
            out[k] = [t[k] for t in totals]
        return out

    def site(self, name: str) -> dict[str, Any] | None:
        """A queue's drill-down: its series from the live frames; its job states and error codes counted at
        a frame (``states_as_of_frame``), or from the written run once it is over."""
        i = self._index.get(name)
        if i is None:
            return None
        with self._lock:
            rows = list(self._site_rows)
            times = list(self.times)
        series = {"t": times, **{c: [int(r[k, i]) for r in rows] for k, c in enumerate(SITE_COLS)}}
        if self.run_frames is not None:
            states, errors = site_jobs(self.run_frames.run_dir / "jobs.parquet", name)
            as_of = len(rows) - 1
        else:
            as_of, all_stats = self._stats
            stats = all_stats.get(name, {"states": {}, "errors": {}})
            states, errors = dict(stats["states"]), error_rows(stats["errors"])
        return {"site": name, "info": self.sites[i], "states": states, "errors": errors, "series": series,
                "states_as_of_frame": as_of}

    async def site_fresh(self, name: str, wait_s: float = 3.0) -> dict[str, Any] | None:
        """:meth:`site` with job counts of a frame made after the call: asks the sampler to count them at its
        next frame and waits for them (at most ``wait_s``: the run may be between frames for longer)."""
        if self.run_frames is None and not self.ended and self._index.get(name) is not None:
            asked_at = len(self.texts)  # counted at this frame or a later one (an earlier request may be served)
            self.request_stats()
            t0 = time.monotonic()
            while self._stats[0] < asked_at and not self.ended and time.monotonic() - t0 < wait_s:
                await asyncio.sleep(0.02)
        return self.site(name)


def joined(interval_s: float, client_queue: int = CLIENT_QUEUE) -> tuple[LiveSampler, LiveFeed]:
    """A sampler and a feed in one process (``sampler.sink = feed.receive``)."""
    sampler = LiveSampler(interval_s)
    feed = LiveFeed(client_queue, request_stats=lambda: setattr(sampler.wanted, "value", 1))
    sampler.sink = feed.receive
    return sampler, feed

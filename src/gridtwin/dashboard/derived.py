"""Dashboard frames of a folder without sampled metrics: real records brought in by ``gridtwin import``.

A simulated run samples its queues and links (``site_metrics``, ``link_metrics``); real PanDA and Rucio
records do not. Here the same frame quantities are read off the records themselves, every
``interval_s`` from the first creation time (rounded down to the hour):

- a job is *queued* at its queue from ``creationtime`` to ``starttime`` and *running* from ``starttime`` to
  ``endtime`` (a job without ``starttime`` stays queued until its ``endtime``); used cores are the running
  jobs' ``actualcorecount`` (else ``corecount``, else 1); total cores come from ``sites.parquet`` when the
  import had a CRIC file; storage is unknown (0);
- finished and failed jobs so far: final ``jobstatus`` with ``endtime`` at or before ``t``; ``transferring``
  from ``job_status_log.parquet`` when there is one, else 0;
- a transfer is active on the link between the sites of its RSEs (the name up to the last ``_``) from
  ``started_at`` to ``transferred_at``; a link's MB/s is the bytes of the transfers done in the frame's
  interval over the interval.

Each state holds over ``[start, end)``: a job that starts exactly at ``t`` counts as running at ``t``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gridtwin.analytics.kpi import numbers
from gridtwin.dashboard.frames import site_list
from gridtwin.errors import InputError

INTERVAL_S = 600.0
MAX_FRAMES = 20_000
"""A span longer than this many intervals gets a longer interval (frames stay a few MB)."""


def _in_state(start: np.ndarray, end: np.ndarray, where: np.ndarray, weight: np.ndarray, times: np.ndarray,
              n_where: int) -> np.ndarray:
    """(frames, n_where): the summed ``weight`` of the intervals ``[start, end)`` holding each frame time."""
    n = len(times)
    ok = np.isfinite(start)
    end = np.where(np.isfinite(end), end, np.inf)
    a = np.searchsorted(times, start[ok], side="left")
    b = np.searchsorted(times, end[ok], side="left")
    delta = np.zeros((n + 1, n_where))
    np.add.at(delta, (a, where[ok]), weight[ok])
    np.add.at(delta, (b, where[ok]), -weight[ok])
    return np.cumsum(delta, axis=0)[:n]


class DerivedMetrics:
    """Per-frame queue and link numbers derived from a folder's ``jobs`` (and ``transfers``) records."""

    def __init__(self, folder: Path) -> None:
        jobs_path = folder / "jobs.parquet"
        if not jobs_path.is_file():
            raise InputError(f"{folder}: no site_metrics.parquet and no jobs.parquet (expected a run folder from "
                             "gridtwin simulate or replay, or an import folder from gridtwin import)")
        jobs = pq.read_table(jobs_path)
        created, started, ended = (numbers(jobs, c) for c in ("creationtime", "starttime", "endtime"))
        if not np.isfinite(created).any():
            raise InputError(f"{jobs_path}: no job has a creationtime; the dashboard places jobs in time by it")
        first = float(np.nanmin(created))
        self.epoch = datetime.fromtimestamp((first // 3_600_000) * 3600.0, tz=UTC)
        epoch_ms = self.epoch.timestamp() * 1000.0
        last = float(np.nanmax(np.concatenate([created, started, ended])))
        span_s = (last - epoch_ms) / 1000.0
        self.interval_s = max(INTERVAL_S, float(np.ceil(span_s / MAX_FRAMES / 60.0)) * 60.0)
        self.times = np.arange(0.0, span_s + self.interval_s, self.interval_s)
        self.times_ms = epoch_ms + self.times * 1000.0
        self.sites = site_list(folder, jobs.column("computingsite").to_pylist())
        index = {s["site"]: i for i, s in enumerate(self.sites)}
        names = [s or "" for s in jobs.column("computingsite").to_pylist()]
        where = np.array([index[s] for s in names], dtype=np.int64)
        ns = len(self.sites)
        cores = np.ones(jobs.num_rows)
        for c in ("corecount", "actualcorecount"):
            v = np.nan_to_num(numbers(jobs, c))
            cores = np.where(v > 0, v, cores)
        ones = np.ones(jobs.num_rows)
        run_end = np.where(np.isfinite(started), ended, np.nan)
        queue_end = np.where(np.isfinite(started), started, ended)
        running = _in_state(started, run_end, where, ones, self.times_ms, ns)
        total = np.array([s["total_cores"] or 0 for s in self.sites], dtype=np.int64)
        self.site_cols = {
            "running": running.astype(np.int64),
            "queued": _in_state(created, queue_end, where, ones, self.times_ms, ns).astype(np.int64),
            "used_cores": _in_state(started, run_end, where, cores, self.times_ms, ns).astype(np.int64),
            "total_cores": np.tile(total, (len(self.times), 1)),
            "storage_used": np.zeros((len(self.times), ns), dtype=np.int64),
            "storage_total": np.zeros((len(self.times), ns), dtype=np.int64),
        }
        status = np.array(jobs.column("jobstatus").to_pylist(), dtype=object)
        self.done = {s: _in_state(np.where(status == s, ended, np.nan), np.full(len(ended), np.inf),
                                  np.zeros(len(ended), np.int64), ones, self.times_ms, 1)[:, 0].astype(np.int64)
                     for s in ("finished", "failed")}
        self.link_sites, self.frame_links = self._links(folder)

    def _links(self, folder: Path) -> tuple[list[str], list[list[list[float]]]]:
        n = len(self.times)
        frames: list[list[list[float]]] = [[] for _ in range(n)]
        path = folder / "transfers.parquet"
        if not path.is_file():
            return [], frames
        t = pq.read_table(path)
        if t.num_rows == 0:
            return [], frames
        t = t.filter(pc.equal(t.column("event_type"), "transfer-done"))
        src = [(r or "").rsplit("_", 1)[0] for r in t.column("src_rse").to_pylist()]
        dst = [(r or "").rsplit("_", 1)[0] for r in t.column("dst_rse").to_pylist()]
        sites = sorted(set(src) | set(dst))
        idx = {s: i for i, s in enumerate(sites)}
        pair = np.array([idx[a] * len(sites) + idx[b] for a, b in zip(src, dst, strict=True)], dtype=np.int64)
        started, done = numbers(t, "started_at"), numbers(t, "transferred_at")
        nbytes = np.nan_to_num(numbers(t, "bytes"))
        pairs, pair_i = np.unique(pair, return_inverse=True)
        active = _in_state(started, done, pair_i, np.ones(len(pair)), self.times_ms, len(pairs))
        f = np.searchsorted(self.times_ms, done, side="left")  # the frame closing the interval it ended in
        ok = np.isfinite(done) & (f < n)
        moved = np.zeros((n, len(pairs)))
        np.add.at(moved, (f[ok], pair_i[ok]), nbytes[ok])
        rate = moved / self.interval_s / 1e6
        for i in range(n):
            for k in np.flatnonzero((active[i] > 0) | (moved[i] > 0)):
                p = int(pairs[k])
                frames[i].append([p // len(sites), p % len(sites), int(active[i, k]), 0, round(float(rate[i, k]), 3)])
        return sites, frames

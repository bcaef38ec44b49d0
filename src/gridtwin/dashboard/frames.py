"""Dashboard frames: the state of the grid at one instant, from a run folder's Parquet files.

A *frame* is what the browser draws at one sample time ``t`` (seconds from the run's epoch): per queue
(aligned with ``meta.sites``) running jobs, queued jobs (activated + assigned), used and total cores and
storage, from ``site_metrics.parquet``; per busy link its active and queued transfers and throughput, from
``link_metrics.parquet`` (a link sample goes to the first frame at or after it; the run's closing sample,
after its last frame, is left out); and totals: running and
queued (sums over queues), jobs in the PanDA state ``transferring``, finished and failed so far (the
state each job is in at ``t``, from ``job_status_log.parquet``), finished jobs per hour over the last
interval, and the summed throughput and active transfers of the links. :mod:`gridtwin.dashboard.live`
builds the same frames from a running simulation.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gridtwin.analytics.kpi import ERROR_KINDS, as_float, numbers
from gridtwin.errors import InputError

SITE_COLS = ("running", "queued", "used_cores", "total_cores", "storage_used", "storage_total")
"""Per-queue arrays of a frame, in this order."""
KPI_LABELS = (
    ("jobs", lambda k, r: r.get("n_jobs")),
    ("finished", lambda k, r: (r.get("jobs_by_status") or {}).get("finished", 0)),
    ("failed", lambda k, r: (r.get("jobs_by_status") or {}).get("failed", 0)),
    ("cpu_efficiency", lambda k, r: k.get("cpu_efficiency")),
    ("core_utilisation", lambda k, r: k.get("core_utilisation")),
    ("queue_time_median_s", lambda k, r: (k.get("queue_time_s") or {}).get("median")),
    ("wall_time_median_s", lambda k, r: (k.get("wall_time_s") or {}).get("median")),
    ("transfers_done", lambda k, r: (k.get("transfers") or {}).get("n_done")),
    ("transfer_failure_share", lambda k, r: (k.get("transfers") or {}).get("failure_share")),
    ("makespan_h", lambda k, r: None if k.get("makespan_s") is None else k["makespan_s"] / 3600.0),
)
"""KPI cards: label and how to read it off run.json's ``kpis`` (``k``) and the rest of run.json (``r``)."""


def kpi_cards(run: dict[str, Any]) -> dict[str, Any]:
    """The KPI cards of a run.json (labels whose value is known)."""
    k = run.get("kpis") or {}
    out = {}
    for label, get in KPI_LABELS:
        v = get(k, run)
        if v is not None and not (isinstance(v, float) and not math.isfinite(v)):
            out[label] = v
    return out


def record_cards(folder: Path) -> dict[str, Any]:
    """KPI cards read off a folder's records alone (an import of real data has no run.json): jobs by final
    state, median queue time, wall time and CPU efficiency, transfers done."""
    cards: dict[str, Any] = {}
    jobs_path = folder / "jobs.parquet"
    if jobs_path.is_file():
        names = pq.read_schema(jobs_path).names
        t = _read(jobs_path, [c for c in ("jobstatus", "queue_time", "wall_time", "cpu_eff") if c in names])
        status = t.column("jobstatus").to_pylist() if "jobstatus" in t.column_names else []
        cards.update({"jobs": t.num_rows, "finished": status.count("finished"), "failed": status.count("failed")})
        for col, label in (("queue_time", "queue_time_median_s"), ("wall_time", "wall_time_median_s"),
                           ("cpu_eff", "cpu_efficiency")):
            if col in t.column_names:
                v = numbers(t, col)
                if np.isfinite(v).any():
                    cards[label] = float(np.nanmedian(v))
    transfers = folder / "transfers.parquet"
    if transfers.is_file():
        kinds = _read(transfers, ["event_type"]).column("event_type").to_pylist()
        cards["transfers_done"] = kinds.count("transfer-done")
    return cards


SITE_INFO = ("atlas_site", "cloud", "tier", "total_cores", "corepower")
"""What a frame's ``meta.sites`` says of each queue, besides its name."""


def display_order(sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Queues as the page lists them: by tier, cloud, then name."""
    return sorted(sites, key=lambda s: (s["tier"] or 0, s["cloud"] or "", s["site"]))


def site_list(folder: Path, names: list[str | None]) -> list[dict[str, Any]]:
    """The queues ``names``, described from the folder's ``sites.parquet`` when it has one (else tier 2, no
    cloud, no cores), in display order."""
    info = {s: {"site": s, "atlas_site": s, "cloud": "", "tier": 2, "total_cores": 0, "corepower": None}
            for s in {n or "" for n in names}}
    path = folder / "sites.parquet"
    if path.is_file():
        for row in _read(path).to_pylist():
            if row.get("site") in info:
                info[row["site"]].update({k: row.get(k) for k in SITE_INFO})
    return display_order(list(info.values()))


def frame_dict(seq: int, t: float, epoch: datetime, sites: dict[str, list[int]], totals: dict[str, float],
               links: list[list[float]], made: float | None = None) -> dict[str, Any]:
    """One frame as the browser reads it (see the module docstring); a live frame also carries ``made``, the
    wall-clock time (epoch seconds) it was made, so a client can tell how late it arrived."""
    when = (epoch + timedelta(seconds=t)).isoformat()
    head = {"type": "frame", "seq": seq, "t": t, "time": when}
    if made is not None:
        head["made"] = made
    return {**head, "sites": sites, "totals": totals, "links": links}


def _read(path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except Exception as exc:  # any reader failure is bad input
        raise InputError(f"{path.name}: cannot be read as the dashboard expects ({exc})") from None


def _state_counts(log: pa.Table, times_ms: np.ndarray, states: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per state, the number of jobs in it at each frame time (a job is in the state of its last change at
    or before ``t``; changes at the same millisecond are in file order)."""
    n = len(times_ms)
    out = {s: np.zeros(n, dtype=np.int64) for s in states}
    if log.num_rows == 0:
        return out
    pid = np.asarray(log.column("pandaid").to_numpy(zero_copy_only=False), dtype=np.int64)
    t = as_float(log.column("modificationtime"))
    status = np.asarray(log.column("jobstatus").to_pylist(), dtype=object)
    order = np.lexsort((np.arange(len(pid)), t, pid))
    pid, t, status = pid[order], t[order], status[order]
    nxt = np.full(len(pid), np.inf)
    same = pid[1:] == pid[:-1]
    nxt[:-1][same] = t[1:][same]
    for s in states:
        m = status == s
        start = np.searchsorted(times_ms, t[m], side="left")  # first frame at or after the change
        end = np.searchsorted(times_ms, nxt[m], side="left")  # first frame at or after the next change
        delta = np.bincount(start, minlength=n + 1)[: n + 1] - np.bincount(end, minlength=n + 1)[: n + 1]
        out[s] = np.cumsum(delta)[:n]
    return out


class RunFrames:
    """A finished run folder served as frames, series, queue drill-downs and anomalies."""

    live = False

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir).resolve()
        run_json = self.run_dir / "run.json"
        self.derived = not (self.run_dir / "site_metrics.parquet").is_file()
        """No sampled metrics (real records from ``gridtwin import``): frames come from the records themselves."""
        if not run_json.is_file() and not (self.run_dir / "jobs.parquet").is_file():
            raise InputError(f"{self.run_dir}: no run.json and no jobs.parquet here (expected a folder written by "
                             "gridtwin simulate, replay or import)")
        self.run: dict[str, Any] = {}
        if run_json.is_file():
            try:
                self.run = json.loads(run_json.read_text())
                self.epoch = datetime.fromisoformat(self.run["epoch"])
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{run_json}: not a gridtwin run.json ({exc})") from None
            if self.epoch.tzinfo is None:
                self.epoch = self.epoch.replace(tzinfo=UTC)
        if self.derived:
            self._from_records()
        else:
            self._from_metrics()
        self._totals()
        self._anomalies = self._read_anomalies()

    def _from_metrics(self) -> None:
        epoch_ms = round(self.epoch.timestamp() * 1000)
        sm = _read(self.run_dir / "site_metrics.parquet")
        self._site_info(sm)
        t_ms = as_float(sm.column("time"))
        self.times_ms = np.unique(t_ms[np.isfinite(t_ms)])
        self.times = (self.times_ms - epoch_ms) / 1000.0
        n, ns = len(self.times_ms), len(self.sites)
        fi = np.searchsorted(self.times_ms, t_ms)
        si = np.array([self._index[s] for s in sm.column("site").to_pylist()], dtype=np.int64)
        self.site_cols: dict[str, np.ndarray] = {}
        for c in SITE_COLS:
            a = np.zeros((n, ns), dtype=np.int64)
            if c == "queued":
                v = (np.asarray(sm.column("activated").to_numpy(zero_copy_only=False), dtype=np.int64)
                     + np.asarray(sm.column("assigned").to_numpy(zero_copy_only=False), dtype=np.int64))
            else:
                v = np.asarray(sm.column(c).to_numpy(zero_copy_only=False), dtype=np.int64)
            a[fi, si] = v
            self.site_cols[c] = a
        self._links(n)

    def _from_records(self) -> None:
        from gridtwin.dashboard.derived import DerivedMetrics

        d = DerivedMetrics(self.run_dir)
        if not self.run:
            self.epoch = d.epoch
        self.times_ms, self.times = d.times_ms, d.times
        if self.run:  # a run folder without metrics: keep its epoch for the clock
            self.times = (d.times_ms - self.epoch.timestamp() * 1000.0) / 1000.0
        self.sites = d.sites
        self._index = {s["site"]: i for i, s in enumerate(self.sites)}
        self.site_cols = d.site_cols
        self.link_sites, self.frame_links = d.link_sites, d.frame_links
        self.link_totals = np.array([[sum(x[4] for x in f), sum(x[2] for x in f)] for f in self.frame_links]
                                    ).reshape(len(self.times), 2)
        self._done = d.done

    # ------------------------------------------------------------------ building
    def _site_info(self, sm: pa.Table) -> None:
        self.sites = site_list(self.run_dir, sm.column("site").to_pylist())
        self._index = {s["site"]: i for i, s in enumerate(self.sites)}

    def _links(self, n: int) -> None:
        self.link_sites: list[str] = []
        self.frame_links: list[list[list[float]]] = [[] for _ in range(n)]
        self.link_totals = np.zeros((n, 2))  # throughput MB/s, active transfers
        path = self.run_dir / "link_metrics.parquet"
        if not path.is_file() or n == 0:
            return
        lm = _read(path)
        if lm.num_rows == 0:
            return
        self.link_sites = sorted(set(lm.column("src").to_pylist()) | set(lm.column("dst").to_pylist()))
        idx = {s: i for i, s in enumerate(self.link_sites)}
        fi = np.searchsorted(self.times_ms, as_float(lm.column("time")), side="left")
        for f, src, dst, act, que, mbps in zip(fi.tolist(), lm.column("src").to_pylist(), lm.column("dst").to_pylist(),
                                               lm.column("active").to_pylist(), lm.column("queued").to_pylist(),
                                               lm.column("throughput_mbps").to_pylist(), strict=True):
            if f >= n:  # the run's closing link sample, after its last tick
                continue
            self.frame_links[f].append([idx[src], idx[dst], int(act), int(que), round(float(mbps), 3)])
            self.link_totals[f, 0] += mbps
            self.link_totals[f, 1] += act

    def _totals(self) -> None:
        n = len(self.times_ms)
        log_path = self.run_dir / "job_status_log.parquet"
        log = (_read(log_path, ["pandaid", "modificationtime", "jobstatus"]) if log_path.is_file()
               else pa.table({"pandaid": pa.array([], pa.int64()), "modificationtime": pa.array([], pa.int64()),
                              "jobstatus": pa.array([], pa.string())}))
        counts = _state_counts(log, self.times_ms, ("transferring", "finished", "failed"))
        if self.derived:  # real records: final states and end times (a status log, when present, gives the rest)
            counts.update(self._done)
        fin = counts["finished"].astype(np.float64)
        dt = np.diff(self.times, prepend=self.times[0] if n else 0.0)
        per_h = np.zeros(n)
        if n > 1:
            per_h[1:] = np.diff(fin) * 3600.0 / np.where(dt[1:] > 0, dt[1:], np.inf)
        self.totals = {
            "running": self.site_cols["running"].sum(axis=1), "queued": self.site_cols["queued"].sum(axis=1),
            "transferring": counts["transferring"], "finished": counts["finished"], "failed": counts["failed"],
            "jobs_per_h": per_h, "transfer_mbps": self.link_totals[:, 0], "transfers_active": self.link_totals[:, 1],
        }

    def _read_anomalies(self) -> dict[str, Any] | None:
        folder = self.run_dir / "analysis" / "anomalies"
        if not folder.is_dir():
            return None
        classes, by_site, rows = [], {}, []
        for path in sorted(folder.glob("*.parquet")):
            t = _read(path)
            name = path.stem
            nbytes = pc.sum(t.column("bytes")).as_py() if "bytes" in t.column_names and t.num_rows else 0
            classes.append({"name": name, "count": t.num_rows, "bytes": nbytes or 0})
            if "site" in t.column_names:
                for s in t.column("site").to_pylist():
                    if s:
                        by_site[s] = by_site.get(s, 0) + 1
            for r in t.slice(0, 25).to_pylist():
                rows.append({"class": name, "site": r.get("site"), "name": r.get("name"), "bytes": r.get("bytes"),
                             "detail": r.get("detail")})
        top = sorted(by_site.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
        return {"classes": classes, "by_site": [{"site": s, "count": c} for s, c in top], "rows": rows[:100]}

    # ------------------------------------------------------------------ what the server asks
    def meta(self) -> dict[str, Any]:
        interval = float(np.median(np.diff(self.times))) if len(self.times) > 1 else 0.0
        return {"mode": "replay", "run": self.run_dir.name, "epoch": self.epoch.isoformat(), "interval_s": interval,
                "n_frames": len(self.times), "sites": self.sites, "link_sites": self.link_sites,
                "kpis": kpi_cards(self.run) if self.run else record_cards(self.run_dir), "anomalies": self._anomalies}

    def n_frames(self) -> int:
        return len(self.times)

    def frame_text(self, i: int) -> str:
        """Frame ``i`` as the JSON text the websocket sends."""
        return json.dumps(self.frame(i), separators=(",", ":"))

    def frame(self, i: int) -> dict[str, Any]:
        """Frame ``i`` (0-based)."""
        sites = {c: self.site_cols[c][i].tolist() for c in SITE_COLS}
        totals = {k: (round(float(v[i]), 3) if k in ("jobs_per_h", "transfer_mbps") else int(v[i]))
                  for k, v in self.totals.items()}
        return frame_dict(i, float(self.times[i]), self.epoch, sites, totals, self.frame_links[i])

    def series(self) -> dict[str, list[float]]:
        out = {"t": self.times.tolist()}
        for k in ("running", "queued", "transferring", "jobs_per_h", "transfer_mbps"):
            out[k] = [round(float(x), 3) for x in self.totals[k]]
        return out

    def site(self, name: str) -> dict[str, Any] | None:
        """A queue's drill-down: its info, the final states and error codes of its jobs, its series."""
        i = self._index.get(name)
        if i is None:
            return None
        states, errors = site_jobs(self.run_dir / "jobs.parquet", name)
        series = {"t": self.times.tolist(), **{c: self.site_cols[c][:, i].tolist() for c in SITE_COLS}}
        return {"site": name, "info": self.sites[i], "states": states, "errors": errors, "series": series}


def site_jobs(jobs_path: Path, site: str) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Final job states at a queue, and its error codes, most frequent first (from a jobs table)."""
    if not jobs_path.is_file():
        return {}, []
    cols = ["computingsite", "jobstatus"] + [c for _, c in ERROR_KINDS]
    names = pq.read_schema(jobs_path).names
    t = _read(jobs_path, [c for c in cols if c in names])
    t = t.filter(pc.equal(t.column("computingsite"), site))
    states: dict[str, int] = {}
    for s in t.column("jobstatus").to_pylist():
        states[s] = states.get(s, 0) + 1
    errors: dict[str, int] = {}
    for _, col in ERROR_KINDS:
        if col not in t.column_names:
            continue
        for v in t.column(col).to_pylist():
            if v:
                key = f"{col} {v}"
                errors[key] = errors.get(key, 0) + 1
    return states, error_rows(errors)


def error_rows(counts: dict[str, int]) -> list[dict[str, Any]]:
    """``{"code", "n", "diag"}`` rows, most frequent first, with the PanDA meaning of known codes."""
    from gridtwin.dashboard.codes import diag

    return [{"code": k, "n": n, "diag": diag(k)} for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

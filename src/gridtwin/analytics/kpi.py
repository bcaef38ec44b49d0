"""Key performance indicators of a run folder (simulated or imported real records).

Reads only the columns it needs from ``jobs``, ``site_metrics`` and ``sites`` (DESIGN.md section 4)
and returns a JSON-serialisable dict; :func:`kpi_table` renders it for a terminal.

When the run folder holds ``transfers.parquet`` (data management on, or imported Rucio records), the
KPIs also get the ``transfers`` and ``data_waiting`` blocks (the latter from ``job_status_log``), and
``busiest_links`` when ``link_metrics.parquet`` is there. Without those files the KPIs are unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.table import Table

from gridtwin.errors import InputError

JOB_COLUMNS = (
    "jobstatus",
    "computingsite",
    "creationtime",
    "starttime",
    "endtime",
    "cpuconsumptiontime",
    "corecount",
    "actualcorecount",
    "inputfilebytes",
    "sourcesite",
    "transfertype",
    "piloterrorcode",
    "exeerrorcode",
    "ddmerrorcode",
    "taskbuffererrorcode",
    "wall_time",
    "queue_time",
)
SITE_METRICS_COLUMNS = ("time", "site", "running", "activated", "assigned", "used_cores", "total_cores")
SITES_COLUMNS = ("site", "atlas_site", "tier")
TRANSFER_COLUMNS = (
    "event_type",
    "previous_request_id",
    "bytes",
    "src_type",
    "activity",
    "submitted_at",
    "started_at",
    "transferred_at",
    "duration",
    "reason",
    "staging_started_at",
    "staging_finished_at",
)
LINK_METRICS_COLUMNS = ("time", "src", "dst", "active", "queued", "bytes_done", "files_done", "files_failed",
                        "throughput_mbps")
STATUS_LOG_COLUMNS = ("pandaid", "modificationtime", "jobstatus")

FAILED_STATES = ("failed", "closed")
ERROR_KINDS = (
    ("pilot", "piloterrorcode"),
    ("exe", "exeerrorcode"),
    ("ddm", "ddmerrorcode"),
    ("taskbuffer", "taskbuffererrorcode"),
)
TOP_SITES = 20
UNKNOWN_TIER = "unknown"

TRANSFER_DONE = "transfer-done"
TRANSFER_FAILED = "transfer-failed"
TAPE = "TAPE"
# A job waits for its input data from ``assigned`` until it is ``activated`` (or ends without that).
WAIT_START_STATE = "assigned"
WAIT_END_STATES = ("activated", "finished", "failed", "cancelled", "closed")
TOP_REASONS = 10
TOP_LINKS = 10
UNKNOWN = "unknown"


@dataclass(frozen=True)
class RunTables:
    """The columns of one run folder that the KPIs and the report need."""

    jobs: pa.Table
    site_metrics: pa.Table
    sites: pa.Table
    transfers: pa.Table | None = None
    link_metrics: pa.Table | None = None
    job_status_log: pa.Table | None = None


def read_record(run_dir: Path, name: str, columns: Iterable[str]) -> pa.Table:
    """Read ``columns`` of ``run_dir/<name>.parquet``; a missing or malformed file is an InputError."""
    path = Path(run_dir) / f"{name}.parquet"
    if not path.is_file():
        raise InputError(f"{path}: missing record table {name}.parquet in run folder {run_dir}")
    columns = list(columns)
    try:
        present = set(pq.read_schema(path).names)
        missing = [c for c in columns if c not in present]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)} expected in {name}")
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read {name}.parquet as Parquet: {exc}") from exc


def load_run(run_dir: Path) -> RunTables:
    """Read the needed columns of ``jobs``, ``site_metrics`` and ``sites`` from a run folder, and of the
    data-management tables when the folder has ``transfers.parquet`` (``job_status_log`` is read only then)."""
    run_dir = Path(run_dir)

    def optional(name: str, columns: Iterable[str]) -> pa.Table | None:
        return read_record(run_dir, name, columns) if (run_dir / f"{name}.parquet").is_file() else None

    data_management = (run_dir / "transfers.parquet").is_file()
    return RunTables(
        jobs=read_record(run_dir, "jobs", JOB_COLUMNS),
        site_metrics=read_record(run_dir, "site_metrics", SITE_METRICS_COLUMNS),
        sites=read_record(run_dir, "sites", SITES_COLUMNS),
        transfers=optional("transfers", TRANSFER_COLUMNS),
        link_metrics=optional("link_metrics", LINK_METRICS_COLUMNS),
        job_status_log=optional("job_status_log", STATUS_LOG_COLUMNS) if data_management else None,
    )


def utilisation_window_from_run(run_dir: Path) -> float | None:
    """The arrival window (s) of a simulated run, from its run.json; None for imported records."""
    path = Path(run_dir) / "run.json"
    if not path.exists():
        return None
    try:
        cfg = json.loads(path.read_text()).get("config", {})
        return float(cfg["workload"]["duration_h"]) * 3600.0
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def compute_kpis(run_dir: Path, window_s: float | None = None) -> dict[str, Any]:
    """KPIs of the run folder ``run_dir`` as a JSON-serialisable dict (NaN becomes None).

    Core utilisation is averaged over the ticks of the first ``window_s`` seconds (default: the run's
    arrival window from run.json, else every tick), so a long drain does not dilute it."""
    from gridtwin.analytics.requests import request_kpis

    if window_s is None:
        window_s = utilisation_window_from_run(run_dir)
    kpis = kpis_from_tables(load_run(run_dir), window_s)
    requests = request_kpis(run_dir)
    if requests is not None:
        kpis["resource_requests"] = _jsonable(requests)
    return kpis


def kpis_from_tables(tables: RunTables, window_s: float | None = None) -> dict[str, Any]:
    """KPIs computed from already loaded tables (see :func:`load_run`)."""
    jobs = tables.jobs
    ran = pc.fill_null(pc.is_valid(jobs["starttime"]), False)
    ticks, by_tier = core_utilisation_series(tables.site_metrics, tables.sites)
    if window_s is not None and len(ticks):
        keep = ticks < ticks[0] + window_s * 1000.0
        by_tier = {k: v[keep] for k, v in by_tier.items()}
    kpis: dict[str, Any] = {
        "n_jobs": jobs.num_rows,
        "jobs_by_status": _jobs_by_status(jobs),
        "queue_time_s": _stats(jobs["queue_time"]),
        "wall_time_s": _stats(jobs["wall_time"]),
        "cpu_efficiency": _cpu_efficiency(jobs),
        "core_utilisation": _nanmean(by_tier.pop("all")),
        "core_utilisation_window_s": window_s,
        "core_utilisation_by_tier": {tier: _nanmean(series) for tier, series in by_tier.items()},
        **_input_bytes(jobs.filter(ran), tables.sites),
        "failures_by_code": _failures_by_code(jobs),
        "jobs_per_site": _jobs_per_site(jobs),
        "makespan_s": _makespan(jobs),
        **data_management_kpis(tables),
    }
    return _jsonable(kpis)


def data_management_kpis(tables: RunTables) -> dict[str, Any]:
    """The ``transfers``, ``data_waiting`` and ``busiest_links`` KPI blocks of the tables present (JSON-ready);
    empty without data-management records."""
    kpis: dict[str, Any] = {}
    if tables.transfers is not None:
        kpis["transfers"] = _transfer_kpis(tables.transfers)
        if tables.job_status_log is not None:
            kpis["data_waiting"] = _data_waiting(tables.job_status_log)
    if tables.link_metrics is not None:
        kpis["busiest_links"] = busiest_links(tables.link_metrics)
    return _jsonable(kpis)


# --- helpers shared with the report ---------------------------------------------------------------


def to_ms(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Timestamps as float milliseconds since the Unix epoch (NaN for nulls)."""
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("ms", tz=column.type.tz)).cast(pa.int64())
    return as_float(column)


def tier_labels(site: pa.ChunkedArray, sites: pa.Table) -> np.ndarray:
    """Tier label (``T0`` ... ``T3``, or ``unknown``) of each queue name in ``site``."""
    per_queue = [UNKNOWN_TIER if t is None else f"T{t}" for t in sites["tier"].to_pylist()]
    lookup = np.array([*per_queue, UNKNOWN_TIER], dtype=object)
    index = pc.index_in(site, value_set=sites["site"].combine_chunks())
    return lookup[as_float(pc.fill_null(index, len(per_queue))).astype(np.int64)]


def core_utilisation_series(
    site_metrics: pa.Table, sites: pa.Table
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Ticks (ms) and, per tier and for ``all``, sum(used_cores)/sum(total_cores) at each tick.

    A tier without cores at a tick gets NaN there, so its time average skips that tick.
    """
    times = to_ms(site_metrics["time"])
    valid = ~np.isnan(times)
    ticks, inverse = np.unique(times[valid], return_inverse=True)
    used = np.nan_to_num(as_float(site_metrics["used_cores"]))[valid]
    total = np.nan_to_num(as_float(site_metrics["total_cores"]))[valid]
    labels = tier_labels(site_metrics["site"], sites)[valid]
    series = {"all": _ratio_per_tick(inverse, used, total, len(ticks))}
    for tier in sorted(set(labels.tolist()), key=_tier_key):
        mask = labels == tier
        series[tier] = _ratio_per_tick(inverse[mask], used[mask], total[mask], len(ticks))
    return ticks, series


def sum_per_tick(site_metrics: pa.Table, columns: Iterable[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Ticks (ms) and the sum over sites of each column at each tick."""
    times = to_ms(site_metrics["time"])
    valid = ~np.isnan(times)
    ticks, inverse = np.unique(times[valid], return_inverse=True)
    sums = {
        name: np.bincount(
            inverse, weights=np.nan_to_num(as_float(site_metrics[name]))[valid], minlength=len(ticks)
        )
        for name in columns
    }
    return ticks, sums


def transfer_durations(transfers: pa.Table) -> np.ndarray:
    """Seconds from started_at to transferred_at of each done transfer; the ``duration`` column (unless -1)
    where a timestamp is missing. Transfers without either are left out."""
    seconds = (to_ms(transfers["transferred_at"]) - to_ms(transfers["started_at"])) / 1000.0
    recorded = as_float(transfers["duration"])
    recorded = np.where(recorded < 0, np.nan, recorded)
    seconds = np.where(np.isnan(seconds), recorded, seconds)
    seconds = seconds[_is(transfers["event_type"], TRANSFER_DONE)]
    return seconds[~np.isnan(seconds)]


def transfer_queue_waits(transfers: pa.Table) -> np.ndarray:
    """Seconds from submitted_at to started_at of every transfer that started (done or failed); for tape
    sources this includes the staging."""
    seconds = (to_ms(transfers["started_at"]) - to_ms(transfers["submitted_at"])) / 1000.0
    return seconds[~np.isnan(seconds)]


def staging_times(transfers: pa.Table) -> tuple[int, np.ndarray]:
    """Number of tape recalls (tape source or staging started) and the seconds each staging took."""
    started = to_ms(transfers["staging_started_at"])
    recall = _is(transfers["src_type"], TAPE) | ~np.isnan(started)
    seconds = (to_ms(transfers["staging_finished_at"]) - started)[recall] / 1000.0
    return int(recall.sum()), seconds[~np.isnan(seconds)]


def data_wait_times(job_status_log: pa.Table) -> tuple[int, int, np.ndarray]:
    """From the status log: (jobs in it, jobs that went through ``assigned``, seconds each such job waited).

    A job's wait runs from its first ``assigned`` entry to the next ``activated`` entry, or to its end
    (finished, failed, cancelled, closed) if it was never activated; jobs still waiting when the records end
    have no wait time. Entries are ordered by pandaid and time, ties in their recorded order."""
    pid = pc.fill_null(job_status_log["pandaid"], -1).to_numpy()
    times = to_ms(job_status_log["modificationtime"])
    status = pc.fill_null(job_status_log["jobstatus"], "")
    start = _mask(pc.equal(status, WAIT_START_STATE))
    end = _mask(pc.is_in(status, value_set=pa.array(WAIT_END_STATES)))
    n = len(pid)
    if n == 0:
        return 0, 0, np.zeros(0)
    in_order = np.all((np.diff(pid) > 0) | ((np.diff(pid) == 0) & (np.diff(times) >= 0)))
    if not in_order:
        order = np.lexsort((np.arange(n), times, pid))
        pid, times, start, end = pid[order], times[order], start[order], end[order]
    job = np.cumsum(np.r_[True, pid[1:] != pid[:-1]]) - 1
    starts = np.flatnonzero(start)
    first = starts[np.r_[True, job[starts][1:] != job[starts][:-1]]] if starts.size else starts
    # index of the next end state at or after every entry (n if none), then keep those of the same job
    following = np.minimum.accumulate(np.where(end, np.arange(n), n)[::-1])[::-1]
    stop = following[first]
    ended = stop < n
    ended[ended] = job[stop[ended]] == job[first[ended]]
    waits = (times[stop[ended]] - times[first[ended]]) / 1000.0
    return int(job[-1] + 1), int(first.size), waits[~np.isnan(waits)]


def busiest_links(link_metrics: pa.Table, top: int = TOP_LINKS) -> list[dict[str, Any]]:
    """The ``top`` links by bytes done over the run: src, dst, bytes, files done and failed, and the highest
    sampled throughput (MB/s)."""
    numbers = ("bytes_done", "files_done", "files_failed")
    table = pa.table(
        {
            "src": pc.fill_null(link_metrics["src"], UNKNOWN),
            "dst": pc.fill_null(link_metrics["dst"], UNKNOWN),
            **{name: pc.fill_null(link_metrics[name], 0) for name in numbers},
            "throughput_mbps": link_metrics["throughput_mbps"],
        }
    )
    grouped = table.group_by(["src", "dst"]).aggregate(
        [*((name, "sum") for name in numbers), ("throughput_mbps", "max")]
    )
    rows = [
        {
            "src": row["src"],
            "dst": row["dst"],
            "bytes": int(row["bytes_done_sum"] or 0),
            "files_done": int(row["files_done_sum"] or 0),
            "files_failed": int(row["files_failed_sum"] or 0),
            "max_throughput_mbps": row["throughput_mbps_max"],
        }
        for row in grouped.to_pylist()
    ]
    rows.sort(key=lambda r: (-r["bytes"], r["src"], r["dst"]))
    return rows[:top]


def link_sums_per_tick(
    link_metrics: pa.Table, columns: Iterable[str], ticks: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sample times (ms) and the sum over links of each column at each of them.

    link_metrics has rows only for links with something to do, so a time without rows means zero: the
    times are those of link_metrics together with ``ticks`` (e.g. the site_metrics sample times)."""
    grid, position, valid = _link_grid(link_metrics, ticks)
    sums = {
        name: np.bincount(position, weights=np.nan_to_num(as_float(link_metrics[name]))[valid], minlength=grid.size)
        for name in columns
    }
    return grid, sums


def link_throughput_per_tick(
    link_metrics: pa.Table, links: Iterable[tuple[str, str]], ticks: np.ndarray | None = None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sample times (ms, as in :func:`link_sums_per_tick`) and the throughput (MB/s) of each (src, dst) link."""
    grid, position, valid = _link_grid(link_metrics, ticks)
    throughput = np.nan_to_num(as_float(link_metrics["throughput_mbps"]))[valid]
    series = []
    for src, dst in links:
        mask = (_is(link_metrics["src"], src) & _is(link_metrics["dst"], dst))[valid]
        series.append(np.bincount(position[mask], weights=throughput[mask], minlength=grid.size))
    return grid, series


def _link_grid(link_metrics: pa.Table, ticks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    times = to_ms(link_metrics["time"])
    valid = ~np.isnan(times)
    extra = np.zeros(0) if ticks is None else np.asarray(ticks, dtype=np.float64)
    grid = np.unique(np.concatenate([times[valid], extra[~np.isnan(extra)]]))
    return grid, np.searchsorted(grid, times[valid]), valid


# --- KPI pieces -----------------------------------------------------------------------------------


def _jobs_by_status(jobs: pa.Table) -> dict[str, int]:
    status = pc.fill_null(jobs["jobstatus"], "unknown")
    counts = _value_counts(status)
    return {name: counts[name] for name in sorted(counts)}


def _stats(column: pa.ChunkedArray) -> dict[str, float | None]:
    return _array_stats(as_float(column))


def _array_stats(values: np.ndarray) -> dict[str, float | None]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"mean": None, "median": None, "p95": None}
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "p95": float(np.percentile(values, 95)),
    }


def _cpu_efficiency(jobs: pa.Table) -> float | None:
    """Core-weighted: sum(cpu) / sum(wall x cores), cores = actualcorecount, else corecount, else 1."""
    wall = as_float(jobs["wall_time"])
    ran = np.nan_to_num(wall) > 0
    cores = as_float(pc.coalesce(jobs["actualcorecount"], jobs["corecount"]))
    cores = np.where(np.isnan(cores), 1.0, cores)
    cpu = np.nan_to_num(as_float(jobs["cpuconsumptiontime"]))
    denominator = float(np.sum(wall[ran] * cores[ran]))
    return float(np.sum(cpu[ran]) / denominator) if denominator > 0 else None


def _input_bytes(ran: pa.Table, sites: pa.Table) -> dict[str, int]:
    """Input bytes of jobs that ran, read locally (same ATLAS site), remotely, and streamed directly."""
    index = pc.index_in(ran["computingsite"], value_set=sites["site"].combine_chunks())
    atlas_site = pc.take(sites["atlas_site"], index)
    same = pc.fill_null(pc.equal(ran["sourcesite"], atlas_site), False)
    local = pc.or_(pc.is_null(ran["sourcesite"]), same)
    direct = pc.fill_null(pc.equal(ran["transfertype"], "direct"), False)
    nbytes = pc.fill_null(ran["inputfilebytes"], 0)
    return {
        "input_bytes_local": _int_sum(pc.filter(nbytes, local)),
        "input_bytes_remote": _int_sum(pc.filter(nbytes, pc.invert(local))),
        "input_bytes_direct": _int_sum(pc.filter(nbytes, direct)),
    }


def _failures_by_code(jobs: pa.Table) -> list[dict[str, Any]]:
    failed = jobs.filter(pc.fill_null(pc.is_in(jobs["jobstatus"], pa.array(FAILED_STATES)), False))
    rows: list[dict[str, Any]] = []
    for kind, column in ERROR_KINDS:
        codes = pc.drop_null(failed[column])
        codes = pc.filter(codes, pc.not_equal(codes, 0))
        rows += [{"kind": kind, "code": int(c), "count": n} for c, n in _value_counts(codes).items()]
    rows.sort(key=lambda r: (-r["count"], r["kind"], r["code"]))
    return rows


def _jobs_per_site(jobs: pa.Table) -> dict[str, int]:
    counts = _value_counts(pc.drop_null(jobs["computingsite"]))
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SITES]
    return dict(top)


def _transfer_kpis(transfers: pa.Table) -> dict[str, Any]:
    done = _is(transfers["event_type"], TRANSFER_DONE)
    n_done, n_failed = int(done.sum()), int(_is(transfers["event_type"], TRANSFER_FAILED).sum())
    moved = pa.table(
        {"activity": pc.fill_null(transfers["activity"], UNKNOWN), "bytes": pc.fill_null(transfers["bytes"], 0)}
    ).filter(pa.array(done))
    per_activity = moved.group_by("activity").aggregate([("bytes", "sum"), ("bytes", "count")]).to_pylist()
    per_activity.sort(key=lambda r: (-r["bytes_sum"], r["activity"]))
    failed = transfers.filter(pc.equal(transfers["event_type"], TRANSFER_FAILED))
    reasons = pc.if_else(pc.fill_null(pc.equal(failed["reason"], ""), True), UNKNOWN, failed["reason"])
    top_reasons = sorted(_value_counts(reasons).items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
    recalls, staging = staging_times(transfers)
    return {
        "n_done": n_done,
        "n_failed": n_failed,
        "failure_share": n_failed / (n_done + n_failed) if n_done + n_failed else None,
        "n_retries": int(pc.sum(pc.is_valid(transfers["previous_request_id"])).as_py() or 0),
        "bytes_total": _int_sum(moved["bytes"]),
        "bytes_by_activity": {r["activity"]: int(r["bytes_sum"]) for r in per_activity},
        "files_by_activity": {r["activity"]: int(r["bytes_count"]) for r in per_activity},
        "duration_s": _array_stats(transfer_durations(transfers)),
        "queue_wait_s": _array_stats(transfer_queue_waits(transfers)),
        "tape_recalls": recalls,
        "staging_time_s": _array_stats(staging),
        "failure_reasons": [{"reason": r, "count": n} for r, n in top_reasons],
    }


def _data_waiting(job_status_log: pa.Table) -> dict[str, Any]:
    n_jobs, n_waited, waits = data_wait_times(job_status_log)
    return {
        "n_jobs": n_jobs,
        "n_waited": n_waited,
        "waited_share": n_waited / n_jobs if n_jobs else None,
        "n_still_waiting": n_waited - int(waits.size),
        "wait_s": _array_stats(waits),
    }


def _makespan(jobs: pa.Table) -> float | None:
    end = to_ms(jobs["endtime"])
    created = to_ms(jobs["creationtime"])
    if np.all(np.isnan(end)) or np.all(np.isnan(created)):
        return None
    return float((np.nanmax(end) - np.nanmin(created)) / 1000.0)


# --- small utilities ------------------------------------------------------------------------------


def as_float(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Numeric column as float64 numpy array with NaN for nulls; timestamps as epoch milliseconds (finer units
    truncated)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], type=column.type)
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("ms", tz=column.type.tz), safe=False).cast(pa.int64())
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)


def numbers(table: pa.Table, name: str) -> np.ndarray:
    """Column ``name`` of ``table`` by :func:`as_float`; all NaN when the table has no such column."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return as_float(table.column(name))


def _value_counts(column: pa.ChunkedArray | pa.Array) -> dict[Any, int]:
    counts = pc.value_counts(column)
    if len(counts) == 0:
        return {}
    values = counts.field("values").to_pylist()
    return dict(zip(values, counts.field("counts").to_pylist(), strict=True))


def _mask(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Boolean column as a numpy bool array, nulls False."""
    return as_float(pc.fill_null(column, False)).astype(bool)


def _is(column: pa.ChunkedArray | pa.Array, value: str) -> np.ndarray:
    """Where ``column`` equals ``value`` (nulls False)."""
    return _mask(pc.equal(column, value))


def _int_sum(column: pa.ChunkedArray | pa.Array) -> int:
    total = pc.sum(column).as_py()
    return int(total) if total is not None else 0


def _ratio_per_tick(inverse: np.ndarray, used: np.ndarray, total: np.ndarray, nticks: int) -> np.ndarray:
    used_sum = np.bincount(inverse, weights=used, minlength=nticks)
    total_sum = np.bincount(inverse, weights=total, minlength=nticks)
    ratio = np.full(nticks, np.nan)
    np.divide(used_sum, total_sum, out=ratio, where=total_sum > 0)
    return ratio


def _nanmean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


def _tier_key(label: str) -> tuple[int, str]:
    return (1, label) if label == UNKNOWN_TIER else (0, label)


def _jsonable(value: Any) -> Any:
    """Plain Python types, NaN and infinities replaced by None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- human rendering ------------------------------------------------------------------------------


def format_bytes(n: float | None) -> str:
    """Decimal human units: ``1.50 TB``."""
    if n is None:
        return "-"
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def format_seconds(s: float | None) -> str:
    """Seconds, with a larger unit when it reads better: ``5400 s (1.50 h)``."""
    if s is None:
        return "-"
    text = f"{s:.0f} s" if abs(s) >= 100 else f"{s:.3g} s"
    for unit, scale in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if abs(s) >= scale:
            return f"{text} ({s / scale:.2f} {unit})"
    return text


def format_fraction(x: float | None) -> str:
    """A fraction as a percentage with the raw value: ``75.0 % (0.75)``."""
    return "-" if x is None else f"{100 * x:.1f} % ({x:.4g})"


def kpi_sections(kpis: dict[str, Any], top_failures: int = 10) -> list[tuple[str, list[tuple[str, str]]]]:
    """KPIs as titled sections of (label, formatted value) rows, shared by terminal and HTML."""
    from gridtwin.analytics.requests import request_rows  # it reads columns with this module's helpers

    states = [(s, str(n)) for s, n in kpis["jobs_by_status"].items()] + [
        ("total", str(kpis["n_jobs"])),
        ("makespan", format_seconds(kpis["makespan_s"])),
    ]
    win = kpis.get("core_utilisation_window_s")
    label = f"all tiers (first {format_seconds(win)})" if win else "all tiers"
    tiers = [(label, format_fraction(kpis["core_utilisation"]))]
    tiers += [(t, format_fraction(u)) for t, u in kpis["core_utilisation_by_tier"].items()]
    failures = [
        (f"{f['kind']} {f['code']}", str(f["count"])) for f in kpis["failures_by_code"][:top_failures]
    ]
    return [
        ("Jobs by final state", states),
        ("Queue time", [(k, format_seconds(v)) for k, v in kpis["queue_time_s"].items()]),
        ("Walltime", [(k, format_seconds(v)) for k, v in kpis["wall_time_s"].items()]),
        ("CPU efficiency", [("core-weighted", format_fraction(kpis["cpu_efficiency"]))]),
        ("Core utilisation by tier", tiers),
        (
            "Input bytes local vs remote",
            [
                ("local", format_bytes(kpis["input_bytes_local"])),
                ("remote", format_bytes(kpis["input_bytes_remote"])),
                ("direct access", format_bytes(kpis["input_bytes_direct"])),
            ],
        ),
        (f"Failures by error code (top {top_failures})", failures or [("none", "0")]),
        *([("Resource requests", request_rows(kpis["resource_requests"]))] if kpis.get("resource_requests") else []),
    ]


def _shorten(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _stats_rows(stats: dict[str, float | None]) -> list[tuple[str, str]]:
    return [(k, format_seconds(v)) for k, v in stats.items()]


def data_management_sections(kpis: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The data-management KPIs (those present) as titled sections of (label, formatted value) rows."""
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    tr = kpis.get("transfers")
    if tr is not None:
        sections += [
            (
                "Transfers",
                [
                    ("done", str(tr["n_done"])),
                    ("failed", str(tr["n_failed"])),
                    ("failure share", format_fraction(tr["failure_share"])),
                    ("retries", str(tr["n_retries"])),
                    ("bytes moved", format_bytes(tr["bytes_total"])),
                    ("tape recalls", str(tr["tape_recalls"])),
                    ("median staging time", format_seconds(tr["staging_time_s"]["median"])),
                ],
            ),
            ("Transfer time (started → transferred)", _stats_rows(tr["duration_s"])),
            ("Transfer queue wait (submitted → started)", _stats_rows(tr["queue_wait_s"])),
            (
                "Bytes moved by activity",
                [
                    (activity, f"{format_bytes(nbytes)} ({tr['files_by_activity'].get(activity, 0)} files)")
                    for activity, nbytes in tr["bytes_by_activity"].items()
                ]
                or [("none", format_bytes(0))],
            ),
            (
                f"Transfer failure reasons (top {TOP_REASONS})",
                [(_shorten(r["reason"]), str(r["count"])) for r in tr["failure_reasons"]] or [("none", "0")],
            ),
        ]
    dw = kpis.get("data_waiting")
    if dw is not None:
        sections.append(
            (
                "Jobs waiting for input data (assigned)",
                [
                    ("jobs", str(dw["n_jobs"])),
                    ("waited", f"{dw['n_waited']} ({format_fraction(dw['waited_share'])})"),
                    ("still waiting at the end", str(dw["n_still_waiting"])),
                    *((f"wait {k}", v) for k, v in _stats_rows(dw["wait_s"])),
                ],
            )
        )
    links = kpis.get("busiest_links")
    if links is not None:
        sections.append(
            (
                f"Busiest links by bytes (top {TOP_LINKS})",
                [(f"{r['src']} → {r['dst']}", format_bytes(r["bytes"])) for r in links] or [("none", format_bytes(0))],
            )
        )
    return sections


def transfer_summary(kpis: dict[str, Any]) -> list[tuple[str, str]]:
    """A few compact data-management rows for the terminal; empty without data-management KPIs."""

    def median_p95(stats: dict[str, float | None]) -> str:
        return f"{format_seconds(stats['median'])} / {format_seconds(stats['p95'])}"

    rows: list[tuple[str, str]] = []
    tr = kpis.get("transfers")
    if tr is not None:
        staging = format_seconds(tr["staging_time_s"]["median"])
        share = tr["failure_share"]
        failed = "" if share is None else f" ({100 * share:.1f} % failed)"
        rows += [
            ("done / failed", f"{tr['n_done']} / {tr['n_failed']}{failed}"),
            ("bytes moved", format_bytes(tr["bytes_total"])),
            ("transfer time median / p95", median_p95(tr["duration_s"])),
            ("queue wait median / p95", median_p95(tr["queue_wait_s"])),
            ("tape recalls (median staging)", f"{tr['tape_recalls']} ({staging})"),
        ]
    dw = kpis.get("data_waiting")
    if dw is not None:
        rows += [
            ("jobs waited for data", format_fraction(dw["waited_share"])),
            ("data wait median / p95", median_p95(dw["wait_s"])),
        ]
    return rows


def kpi_table(kpis: dict[str, Any]) -> Table:
    """A compact rich table of the KPIs, one section per topic."""
    table = Table(title="gridtwin KPIs", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    sections = kpi_sections(kpis)
    transfers = transfer_summary(kpis)
    if transfers:
        sections.append(("Data management", transfers))
    for title, rows in sections:
        table.add_row(f"[bold cyan]{title}[/]", "")
        for label, value in rows:
            table.add_row(f"  {label}", value)
        table.add_section()
    return table

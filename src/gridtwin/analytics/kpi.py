"""Key performance indicators of a run folder (simulated or imported real records).

Reads only the columns it needs from ``jobs``, ``site_metrics`` and ``sites`` (DESIGN.md section 4)
and returns a JSON-serialisable dict; :func:`kpi_table` renders it for a terminal.
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

FAILED_STATES = ("failed", "closed")
ERROR_KINDS = (
    ("pilot", "piloterrorcode"),
    ("exe", "exeerrorcode"),
    ("ddm", "ddmerrorcode"),
    ("taskbuffer", "taskbuffererrorcode"),
)
TOP_SITES = 20
UNKNOWN_TIER = "unknown"


@dataclass(frozen=True)
class RunTables:
    """The columns of one run folder that the KPIs and the report need."""

    jobs: pa.Table
    site_metrics: pa.Table
    sites: pa.Table


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
    """Read the needed columns of ``jobs``, ``site_metrics`` and ``sites`` from a run folder."""
    run_dir = Path(run_dir)
    return RunTables(
        jobs=read_record(run_dir, "jobs", JOB_COLUMNS),
        site_metrics=read_record(run_dir, "site_metrics", SITE_METRICS_COLUMNS),
        sites=read_record(run_dir, "sites", SITES_COLUMNS),
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
    if window_s is None:
        window_s = utilisation_window_from_run(run_dir)
    return kpis_from_tables(load_run(run_dir), window_s)


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
    }
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


# --- KPI pieces -----------------------------------------------------------------------------------


def _jobs_by_status(jobs: pa.Table) -> dict[str, int]:
    status = pc.fill_null(jobs["jobstatus"], "unknown")
    counts = _value_counts(status)
    return {name: counts[name] for name in sorted(counts)}


def _stats(column: pa.ChunkedArray) -> dict[str, float | None]:
    values = as_float(column)
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


def _makespan(jobs: pa.Table) -> float | None:
    end = to_ms(jobs["endtime"])
    created = to_ms(jobs["creationtime"])
    if np.all(np.isnan(end)) or np.all(np.isnan(created)):
        return None
    return float((np.nanmax(end) - np.nanmin(created)) / 1000.0)


# --- small utilities ------------------------------------------------------------------------------


def as_float(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Numeric column as float64 numpy array with NaN for nulls."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], type=column.type)
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)


def _value_counts(column: pa.ChunkedArray | pa.Array) -> dict[Any, int]:
    counts = pc.value_counts(column)
    if len(counts) == 0:
        return {}
    values = counts.field("values").to_pylist()
    return dict(zip(values, counts.field("counts").to_pylist(), strict=True))


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
    ]


def kpi_table(kpis: dict[str, Any]) -> Table:
    """A compact rich table of the KPIs, one section per topic."""
    table = Table(title="gridtwin KPIs", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for title, rows in kpi_sections(kpis):
        table.add_row(f"[bold cyan]{title}[/]", "")
        for label, value in rows:
            table.add_row(f"  {label}", value)
        table.add_section()
    return table

"""A single self-contained static HTML report of a run folder: metadata, KPI tables and plots.

Plots are matplotlib figures rendered to inline base64 PNGs (no backend, no pyplot, no network), and
the output is byte-identical for identical input. A "Data management" section (transfers, FTS links,
jobs waiting for input data) is added only when the run folder holds the data-management records.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

from gridtwin.analytics.kpi import (
    TOP_LINKS,
    RunTables,
    as_float,
    busiest_links,
    core_utilisation_series,
    data_management_kpis,
    data_management_sections,
    data_wait_times,
    kpi_sections,
    kpis_from_tables,
    link_sums_per_tick,
    link_throughput_per_tick,
    load_run,
    sum_per_tick,
    to_ms,
    transfer_durations,
    transfer_queue_waits,
)
from gridtwin.analytics.requests import predictor_rows
from gridtwin.errors import InputError

REPORT_NAME = "report.html"
HIST_BINS = 60
FIGSIZE = (8.0, 3.6)
DPI = 90
# Keys of run.json shown first, in this order; other scalar keys follow sorted.
METADATA_FIRST = (
    "scenario",
    "seed",
    "version",
    "gridtwin_version",
    "wall_time_s",
    "wall_time",
    "events",
    "event_count",
    "n_events",
)

CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.15em 0.8em; border-bottom: 1px solid #eee; text-align: left; }
td.v { text-align: right; font-variant-numeric: tabular-nums; }
.kpis { display: flex; flex-wrap: wrap; gap: 0 2em; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""


def write_report(run_dir: Path, kpis: dict[str, Any] | None = None) -> Path:
    """Write ``run_dir/report.html`` (KPIs computed from the folder unless given) and return its path."""
    run_dir = Path(run_dir)
    tables = load_run(run_dir)
    if kpis is None:
        kpis = kpis_from_tables(tables)
    metadata = _read_run_json(run_dir)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>gridtwin report: {_e(metadata.get('scenario', run_dir.name))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>gridtwin run report: {_e(metadata.get('scenario', run_dir.name))}</h1>",
        "<h2>Run</h2>",
        _metadata_table(metadata),
        "<h2>Key performance indicators</h2>",
        _kpi_tables(kpis),
        _predictor_table(metadata),
        "<h2>Plots</h2>",
        *_figures(tables, kpis),
        *_data_management(tables, kpis),
        "<h2>KPIs as JSON</h2>",
        f"<details><summary>show</summary><pre>{_e(json.dumps(kpis, indent=2, sort_keys=True))}</pre>"
        "</details>",
        "</body></html>",
        "",
    ]
    path = run_dir / REPORT_NAME
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


# --- HTML pieces ----------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value))


def _read_run_json(run_dir: Path) -> dict[str, Any]:
    """run.json as a dict; absent (e.g. imported real data) gives an empty dict."""
    path = run_dir / "run.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read run.json as JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    return data


def _metadata_table(metadata: dict[str, Any]) -> str:
    if not metadata:
        return "<p>No run.json in this folder.</p>"
    keys = [k for k in METADATA_FIRST if k in metadata]
    keys += sorted(k for k in metadata if k not in keys and k != "kpis")
    rows = []
    for key in keys:
        value = metadata[key]
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        if len(text) > 300:
            text = text[:297] + "..."
        rows.append(f"<tr><th>{_e(key)}</th><td>{_e(text)}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _predictor_table(metadata: dict[str, Any]) -> str:
    """Requests with and without the run's resource predictor, job by job against the workload's truth."""
    resources = metadata.get("resources")
    if not isinstance(resources, dict):
        return ""
    body = "".join(f"<tr><td>{_e(a)}</td><td class='v'>{_e(b)}</td><td class='v'>{_e(c)}</td></tr>"
                   for a, b, c in predictor_rows(resources))
    return (f"<h3>Resource requests with and without the predictor</h3><p>Predictor {_e(resources['predictor'])} "
            f"(upper quantile {_e(resources['quantile'])}); every job specification of the workload, its true "
            "use against the request it would make. The workload's own requests: the task's ramcount, and no "
            "walltime request (the queue's maxtime). The table of this run above shows what the requests "
            f"did.</p><table><tr><th></th><th>workload's requests</th><th>predictor's</th></tr>{body}</table>")


def _kpi_tables(kpis: dict[str, Any]) -> str:
    return _section_tables(kpi_sections(kpis))


def _section_tables(sections: list[tuple[str, list[tuple[str, str]]]]) -> str:
    blocks = []
    for title, rows in sections:
        body = "".join(f'<tr><td>{_e(k)}</td><td class="v">{_e(v)}</td></tr>' for k, v in rows)
        blocks.append(f'<table><tr><th colspan="2">{_e(title)}</th></tr>{body}</table>')
    return '<div class="kpis">' + "".join(blocks) + "</div>"


def _img(fig: Figure, alt: str) -> str:
    """The figure as an inline PNG; metadata cleared so identical input gives identical bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


# --- plots ----------------------------------------------------------------------------------------


def _figures(tables: RunTables, kpis: dict[str, Any]) -> list[str]:
    return [
        _img(_queue_figure(tables), "running and queued jobs over time"),
        _img(_utilisation_figure(tables), "core utilisation over time per tier"),
        _img(_histogram_figure(tables), "queue time and wall time histograms"),
        _img(_states_figure(kpis), "jobs by final state"),
        _img(_failures_figure(kpis), "failures by error code"),
        _img(_sites_figure(kpis), "top 20 sites by jobs"),
    ]


def _new_axes(title: str, ncols: int = 1, left: float = 0.1) -> tuple[Figure, Any]:
    # Fixed margins: automatic layouts measure every label and triple the drawing time.
    fig = Figure(figsize=FIGSIZE)
    fig.subplots_adjust(left=left, right=0.98, bottom=0.15, top=0.88, wspace=0.3)
    axes = fig.subplots(1, ncols)
    if ncols == 1:
        axes.set_title(title)
    else:
        fig.suptitle(title)
    return fig, axes


def _no_data(ax: Any) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")


def _hours_axis(ax: Any, ticks_ms: np.ndarray) -> np.ndarray:
    """Hours since the first tick, labelled with that tick's UTC time."""
    start = datetime.fromtimestamp(ticks_ms[0] / 1000.0, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    ax.set_xlabel(f"hours since {start}")
    return (ticks_ms - ticks_ms[0]) / 3.6e6


def _busy_until_hours(tables: RunTables) -> float | None:
    """Hours after the first tick until running plus queued jobs last reach 1% of their peak: a long
    drain with a handful of stragglers would otherwise squash the busy part of the time plots."""
    ticks, sums = sum_per_tick(tables.site_metrics, ("running", "activated", "assigned"))
    return _active_until_hours(ticks, sums["running"] + sums["activated"] + sums["assigned"])


def _active_until_hours(ticks: np.ndarray, activity: np.ndarray) -> float | None:
    """Hours after the first tick until ``activity`` last reaches 1% of its peak (one tick more)."""
    if ticks.size == 0:
        return None
    if activity.max() <= 0:
        return None
    last = np.flatnonzero(activity >= 0.01 * activity.max())[-1]
    return float((ticks[min(last + 1, ticks.size - 1)] - ticks[0]) / 3.6e6)


def _clip_time(ax: Any, hours: np.ndarray, until: float | None) -> None:
    if until is not None and hours.size and until < hours[-1]:
        ax.set_xlim(0, until * 1.05)
        ax.set_title(ax.get_title() + " (drain below 1% of peak not shown)")


def _queue_figure(tables: RunTables) -> Figure:
    fig, ax = _new_axes("Jobs over time (all sites)")
    ticks, sums = sum_per_tick(tables.site_metrics, ("running", "activated", "assigned"))
    if ticks.size == 0:
        _no_data(ax)
        return fig
    hours = _hours_axis(ax, ticks)
    ax.plot(hours, sums["running"], label="running")
    ax.plot(hours, sums["activated"] + sums["assigned"], label="queued (activated + assigned)")
    _clip_time(ax, hours, _busy_until_hours(tables))
    ax.set_ylabel("jobs")
    ax.legend(loc="best")
    return fig


def _utilisation_figure(tables: RunTables) -> Figure:
    fig, ax = _new_axes("Core utilisation per tier")
    ticks, series = core_utilisation_series(tables.site_metrics, tables.sites)
    if ticks.size == 0:
        _no_data(ax)
        return fig
    hours = _hours_axis(ax, ticks)
    for tier, values in series.items():
        style = {"color": "black", "linestyle": "--", "zorder": 3} if tier == "all" else {}
        ax.plot(hours, values, label=tier, **style)
    ax.set_ylim(0, 1.05)
    _clip_time(ax, hours, _busy_until_hours(tables))
    ax.set_ylabel("used / total cores")
    ax.legend(loc="best")
    return fig


def _histogram_figure(tables: RunTables) -> Figure:
    """Log-x histograms binned with numpy, so only the counts are drawn (fast for millions of jobs)."""
    fig, axes = _new_axes("Queue time and wall time", ncols=2)
    for ax, column, label in zip(
        axes, ("queue_time", "wall_time"), ("queue time [s]", "wall time [s]"), strict=True
    ):
        _log_histogram(ax, as_float(tables.jobs[column]), label, "jobs")
    return fig


def _log_histogram(ax: Any, values: np.ndarray, xlabel: str, ylabel: str, note_zeros: bool = False) -> None:
    """Histogram of the positive finite ``values`` in log-spaced bins; with ``note_zeros`` a note says how
    many zeros a log axis cannot show."""
    finite = values[np.isfinite(values)]
    values = finite[finite > 0]
    zeros = int(np.sum(finite == 0))
    ax.set_xlabel(xlabel)
    if note_zeros and zeros:
        ax.text(0.02, 0.97, f"{zeros} at 0 s not shown", ha="left", va="top", transform=ax.transAxes,
                color="gray", fontsize=8)
    if values.size == 0:
        _no_data(ax)
        return
    low, high = float(values.min()), float(values.max())
    if high <= low:
        low, high = low / 2, high * 2
    edges = np.logspace(np.log10(low), np.log10(high), HIST_BINS + 1)
    counts, _ = np.histogram(values, bins=edges)
    ax.stairs(counts, edges, fill=True, alpha=0.7)
    ax.set_xscale("log")
    ax.set_ylabel(ylabel)


def _bar_figure(title: str, labels: list[str], counts: list[float], xlabel: str) -> Figure:
    fig, ax = _new_axes(title, left=0.25)
    if not labels:
        _no_data(ax)
        return fig
    positions = np.arange(len(labels))
    ax.barh(positions, counts)
    ax.set_yticks(positions, labels=labels, fontsize=7 if len(labels) > 10 else 9)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    return fig


def _states_figure(kpis: dict[str, Any]) -> Figure:
    states = kpis["jobs_by_status"]
    return _bar_figure("Jobs by final state", list(states), list(states.values()), "jobs")


def _failures_figure(kpis: dict[str, Any]) -> Figure:
    top = kpis["failures_by_code"][:20]
    labels = [f"{f['kind']} {f['code']}" for f in top]
    return _bar_figure("Failures by error code (top 20)", labels, [f["count"] for f in top], "jobs")


def _sites_figure(kpis: dict[str, Any]) -> Figure:
    sites = kpis["jobs_per_site"]
    return _bar_figure("Top 20 sites by jobs", list(sites), list(sites.values()), "jobs")


# --- data management ------------------------------------------------------------------------------


def _data_management(tables: RunTables, kpis: dict[str, Any]) -> list[str]:
    """The "Data management" section: KPI tables and plots of transfers, FTS links and jobs waiting for
    input data; nothing when the run folder has no data-management records."""
    if tables.transfers is None and tables.link_metrics is None:
        return []
    if not any(key in kpis for key in ("transfers", "data_waiting", "busiest_links")):
        kpis = data_management_kpis(tables)  # KPIs given without this part (e.g. from an older run.json)
    parts = ["<h2>Data management</h2>", _section_tables(data_management_sections(kpis))]
    if tables.transfers is not None:
        parts += [
            _img(_activity_bytes_figure(kpis), "bytes moved per activity"),
            _img(_transfer_time_figure(tables.transfers), "transfer time and queue wait histograms"),
        ]
    if tables.link_metrics is not None:
        # link_metrics has rows only for busy links: the site_metrics samples fill in the idle times
        site_ticks = to_ms(tables.site_metrics["time"])
        links = tables.link_metrics
        parts += [
            _img(_link_throughput_figure(links, site_ticks), f"throughput of the {TOP_LINKS} busiest links"),
            _img(_link_queue_figure(links, site_ticks), "transfers queued and active over time"),
        ]
    if tables.job_status_log is not None:
        parts.append(_img(_data_waiting_figure(tables.job_status_log), "jobs waiting for input data"))
    return parts


def _byte_unit(largest: float) -> tuple[float, str]:
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if largest >= scale:
            return scale, unit
    return 1.0, "B"


def _activity_bytes_figure(kpis: dict[str, Any]) -> Figure:
    per_activity = (kpis.get("transfers") or {}).get("bytes_by_activity", {})
    ranked = sorted(per_activity.items(), key=lambda kv: (-kv[1], kv[0]))  # run.json sorts the keys
    scale, unit = _byte_unit(max(per_activity.values(), default=0))
    values = [b / scale for _, b in ranked]
    return _bar_figure("Bytes moved per activity (done transfers)", [a for a, _ in ranked], values, f"bytes [{unit}]")


def _transfer_time_figure(transfers: pa.Table) -> Figure:
    fig, axes = _new_axes("Transfer time (done transfers) and queue wait (started transfers)", ncols=2)
    _log_histogram(axes[0], transfer_durations(transfers), "started → transferred [s]", "transfers", True)
    _log_histogram(axes[1], transfer_queue_waits(transfers), "submitted → started [s]", "transfers", True)
    return fig


def _link_throughput_figure(link_metrics: pa.Table, site_ticks: np.ndarray) -> Figure:
    fig, ax = _new_axes(f"Throughput of the {TOP_LINKS} busiest links (by bytes)")
    links = busiest_links(link_metrics)
    ticks, series = link_throughput_per_tick(link_metrics, [(r["src"], r["dst"]) for r in links], site_ticks)
    if not links or ticks.size == 0:
        _no_data(ax)
        return fig
    hours = _hours_axis(ax, ticks)
    for link, values in zip(links, series, strict=True):
        ax.plot(hours, values, label=f"{link['src']} → {link['dst']}", linewidth=1)
    _, sums = link_sums_per_tick(link_metrics, ("active", "queued"), site_ticks)
    _clip_time(ax, hours, _active_until_hours(ticks, sums["active"] + sums["queued"]))
    ax.set_ylabel("MB/s")
    ax.legend(loc="upper right", fontsize=6, ncol=2)
    return fig


def _link_queue_figure(link_metrics: pa.Table, site_ticks: np.ndarray) -> Figure:
    fig, ax = _new_axes("Transfers on FTS links (all links)")
    ticks, sums = link_sums_per_tick(link_metrics, ("queued", "active"), site_ticks)
    if ticks.size == 0:
        _no_data(ax)
        return fig
    hours = _hours_axis(ax, ticks)
    ax.plot(hours, sums["queued"], label="queued")
    ax.plot(hours, sums["active"], label="active")
    _clip_time(ax, hours, _active_until_hours(ticks, sums["queued"] + sums["active"]))
    ax.set_ylabel("files")
    ax.legend(loc="best")
    return fig


def _data_waiting_figure(job_status_log: pa.Table) -> Figure:
    n_jobs, n_waited, waits = data_wait_times(job_status_log)
    share = f"{100 * n_waited / n_jobs:.1f} %" if n_jobs else "-"
    fig, axes = _new_axes(f"Jobs waiting for input data (assigned): {share} of jobs waited", ncols=2)
    counts = [n_jobs - n_waited, int(waits.size), n_waited - int(waits.size)]
    if n_jobs:
        axes[0].bar(["no wait", "waited", "still waiting"], counts)
        axes[0].set_ylabel("jobs")
    else:
        _no_data(axes[0])
    _log_histogram(axes[1], waits, "assigned → activated or end [s]", "jobs", True)
    return fig

"""Simulated against recorded jobs of a replay: distributions per site and overall, QQ plots, worst jobs.

For walltime (``endtime - starttime``), queue time (``starttime - creationtime``), stage-in (the second part
of ``pilottiming``) and CPU efficiency (``cpuconsumptiontime / wall_time``, as the importer and the recorder
both define it), over the jobs where both sides have a value: the median of each side, the relative error of
the medians, the differences of the 10th, 50th and 90th percentiles (simulated minus recorded), the
two-sample Kolmogorov-Smirnov statistic and the Wasserstein (earth mover's) distance. Sites are the recorded
``computingsite`` (a re-brokered job is compared under the queue it ran at in reality).
"""

from __future__ import annotations

import contextlib
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from matplotlib.figure import Figure
from scipy import stats

from gridtwin.analytics.kpi import numbers

METRICS = ("wall_time", "queue_time", "stagein", "cpu_eff")
"""The compared quantities (seconds, except CPU efficiency)."""
QUANTILES = (0.1, 0.5, 0.9)
WORST_N = 20
FEATURES = ("cores", "cpuconsumptiontime", "ninputdatafiles", "inputfilebytes", "outputfilebytes", "maxrss")


def pilottiming_part(pilottiming: pa.Array | pa.ChunkedArray, index: int) -> np.ndarray:
    """Seconds of part ``index`` (0 getJob, 1 stage-in, 2 payload, 3 stage-out, 4 setup) of each
    ``pilottiming``; NaN when absent."""
    out = np.full(len(pilottiming), np.nan)
    for i, s in enumerate(pilottiming.to_pylist()):
        if s:
            parts = s.split("|")
            if len(parts) > index:
                with contextlib.suppress(ValueError):
                    out[i] = float(parts[index])
    return out


def stagein_from_pilottiming(pilottiming: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Seconds of stage-in (second ``|``-separated part) of each ``pilottiming``; NaN when absent."""
    return pilottiming_part(pilottiming, 1)


def paired_jobs(recorded: pa.Table, simulated: pa.Table, mapping: pa.Table) -> dict[str, np.ndarray]:
    """One row per recorded job that the twin ran: the metrics of both sides and the job's features.

    ``mapping`` has ``jeditaskid`` (the replay's pseudo-task) and ``recorded_pandaid``; the simulated job of a
    pseudo-task is its last attempt."""
    rec_pid = numbers(recorded, "pandaid").astype(np.int64)
    rec_pos = {int(p): i for i, p in enumerate(rec_pid)}
    task_to_rec = dict(zip(mapping.column("jeditaskid").to_pylist(), mapping.column("recorded_pandaid").to_pylist(),
                           strict=True))
    sim_task = simulated.column("jeditaskid").to_pylist()
    sim_att = simulated.column("attemptnr").to_pylist()
    last: dict[int, int] = {}
    for i, (t, a) in enumerate(zip(sim_task, sim_att, strict=True)):
        j = last.get(t)
        if j is None or a >= sim_att[j]:
            last[t] = i
    pairs = sorted((rec_pos[task_to_rec[t]], i) for t, i in last.items() if task_to_rec.get(t) in rec_pos)
    ri = np.array([p[0] for p in pairs], dtype=np.int64)
    si = np.array([p[1] for p in pairs], dtype=np.int64)
    rec = recorded.take(pa.array(ri))
    sim = simulated.take(pa.array(si))
    rec_stagein = numbers(rec, "timestagein")
    cores_rec = numbers(rec, "actualcorecount")
    cores_rec = np.where(cores_rec > 0, cores_rec, numbers(rec, "corecount"))
    out: dict[str, Any] = {
        "recorded_pandaid": rec_pid[ri],
        "simulated_pandaid": numbers(sim, "pandaid").astype(np.int64),
        "site": np.array(rec.column("computingsite").to_pylist(), dtype=object),
        "simulated_site": np.array(sim.column("computingsite").to_pylist(), dtype=object),
        "simulated_jobstatus": np.array(sim.column("jobstatus").to_pylist(), dtype=object),
        "cores": np.where(cores_rec > 0, cores_rec, 1.0),
    }
    for name in FEATURES[1:]:
        out[name] = numbers(rec, name)
    for m in ("wall_time", "queue_time", "cpu_eff"):
        out[f"{m}_rec"] = numbers(rec, m)
        out[f"{m}_sim"] = numbers(sim, m)
    out["stagein_rec"] = rec_stagein
    out["stagein_sim"] = stagein_from_pilottiming(sim.column("pilottiming"))
    out["cpu_time_rec"] = numbers(rec, "cpuconsumptiontime")
    out["cpu_time_sim"] = numbers(sim, "cpuconsumptiontime")
    out["setup_rec"] = numbers(rec, "timesetup")
    out["setup_sim"] = pilottiming_part(sim.column("pilottiming"), 4)
    return out


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest distance between the two ECDFs (what
    ``scipy.stats.ks_2samp`` reports, without its p-value, which may warn on tiny or tied samples)."""
    a, b = np.sort(a), np.sort(b)
    x = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, x, side="right") / len(a)
                               - np.searchsorted(b, x, side="right") / len(b))))


def metric_stats(sim: np.ndarray, rec: np.ndarray) -> dict[str, float]:
    """Comparison numbers over the pairs where both values are finite (NaN where there are none)."""
    ok = np.isfinite(sim) & np.isfinite(rec)
    s, r = sim[ok], rec[ok]
    row: dict[str, float] = {"n": int(ok.sum())}
    if not ok.any():
        row.update({"median_sim": math.nan, "median_rec": math.nan, "median_rel_error": math.nan,
                    **{f"p{round(q * 100)}_diff": math.nan for q in QUANTILES}, "ks": math.nan,
                    "wasserstein": math.nan})
        return row
    ms, mr = float(np.median(s)), float(np.median(r))
    row["median_sim"] = ms
    row["median_rec"] = mr
    row["median_rel_error"] = (ms - mr) / mr if mr != 0 else math.nan
    for q in QUANTILES:
        row[f"p{round(q * 100)}_diff"] = float(np.quantile(s, q) - np.quantile(r, q))
    row["ks"] = ks_statistic(s, r)
    row["wasserstein"] = float(stats.wasserstein_distance(s, r))
    return row


def comparison_tables(p: dict[str, np.ndarray]) -> tuple[pa.Table, pa.Table]:
    """The overall table (one row per metric) and the per-site table (site x metric)."""
    overall, per_site = [], []
    for m in METRICS:
        overall.append({"metric": m, **metric_stats(p[f"{m}_sim"], p[f"{m}_rec"])})
    for site in sorted(set(p["site"].tolist())):
        mask = p["site"] == site
        for m in METRICS:
            per_site.append({"site": site, "metric": m, **metric_stats(p[f"{m}_sim"][mask], p[f"{m}_rec"][mask])})
    return _rows_table(overall), _rows_table(per_site)


def _rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    keys = list(rows[0]) if rows else ["metric"]
    cols = {}
    for k in keys:
        vals = [r[k] for r in rows]
        if k in ("metric", "site"):
            cols[k] = pa.array(vals, pa.string())
        elif k == "n":
            cols[k] = pa.array(vals, pa.int64())
        else:
            cols[k] = pa.array(vals, pa.float64())
    return pa.table(cols)


def worst_jobs(p: dict[str, np.ndarray], n: int = WORST_N) -> pa.Table:
    """The ``n`` jobs with the largest |log(simulated / recorded walltime)|, with their features."""
    ws, wr = p["wall_time_sim"], p["wall_time_rec"]
    ok = np.isfinite(ws) & np.isfinite(wr) & (ws > 0) & (wr > 0)
    idx = np.flatnonzero(ok)
    err = np.abs(np.log(ws[idx] / wr[idx]))
    order = idx[np.lexsort((p["recorded_pandaid"][idx], -err))][:n]
    cols = {
        "recorded_pandaid": pa.array(p["recorded_pandaid"][order], pa.int64()),
        "simulated_pandaid": pa.array(p["simulated_pandaid"][order], pa.int64()),
        "site": pa.array(p["site"][order].tolist(), pa.string()),
        "simulated_site": pa.array(p["simulated_site"][order].tolist(), pa.string()),
        "abs_log_wall_ratio": pa.array(np.abs(np.log(ws[order] / wr[order]))),
    }
    for m in METRICS:
        cols[f"{m}_rec"] = pa.array(p[f"{m}_rec"][order])
        cols[f"{m}_sim"] = pa.array(p[f"{m}_sim"][order])
    for f in FEATURES:
        cols[f] = pa.array(p[f][order])
    return pa.table(cols)


def _clean(x: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def write_comparison(folder: Path, recorded: pa.Table, simulated: pa.Table, mapping: pa.Table,
                     header: dict[str, Any]) -> dict[str, Any]:
    """Write ``folder`` (comparison.json, overall.parquet, per_site.parquet, worst_jobs.parquet,
    comparison.html) and return the summary written to comparison.json."""
    folder.mkdir(parents=True, exist_ok=True)
    p = paired_jobs(recorded, simulated, mapping)
    overall, per_site = comparison_tables(p)
    worst = worst_jobs(p)
    pq.write_table(overall, folder / "overall.parquet")
    pq.write_table(per_site, folder / "per_site.parquet")
    pq.write_table(worst, folder / "worst_jobs.parquet")
    summary = {
        **header,
        "jobs_compared": len(p["recorded_pandaid"]),
        "jobs_at_recorded_site": int(np.sum(p["site"] == p["simulated_site"])),
        "simulated_status": {str(k): int(v) for k, v in zip(*np.unique(p["simulated_jobstatus"].astype(str),
                                                                   return_counts=True), strict=True)},
        "overall": {r["metric"]: {k: v for k, v in r.items() if k != "metric"} for r in overall.to_pylist()},
        "per_site": {},
    }
    for r in per_site.to_pylist():
        summary["per_site"].setdefault(r["site"], {})[r["metric"]] = {
            k: v for k, v in r.items() if k not in ("site", "metric")}
    summary = _clean(summary)
    (folder / "comparison.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (folder / "comparison.html").write_text(_html(summary, p, overall, per_site, worst), encoding="utf-8")
    return summary


# --- HTML -----------------------------------------------------------------------------------------

_UNITS = {"wall_time": "s", "queue_time": "s", "stagein": "s", "cpu_eff": ""}


def _qq_figure(p: dict[str, np.ndarray], title: str, sites: list[str] | None = None) -> Figure:
    """One panel per metric: simulated against recorded percentiles 1..99, overall or one series per site."""
    fig = Figure(figsize=(10, 2.8))
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.2, top=0.82, wspace=0.35)
    fig.suptitle(title)
    axes = fig.subplots(1, len(METRICS))
    qs = np.linspace(0.01, 0.99, 99)
    groups = [(None, np.ones(len(p["site"]), dtype=bool))] if sites is None else [(s, p["site"] == s) for s in sites]
    for ax, m in zip(axes, METRICS, strict=True):
        ax.set_title(m, fontsize=9)
        ax.set_xlabel(f"recorded {_UNITS[m]}".strip(), fontsize=8)
        ax.set_ylabel(f"simulated {_UNITS[m]}".strip(), fontsize=8)
        ax.tick_params(labelsize=7)
        lo, hi = math.inf, -math.inf
        for label, mask in groups:
            s, r = p[f"{m}_sim"], p[f"{m}_rec"]
            ok = np.isfinite(s) & np.isfinite(r) & mask
            if not ok.any():
                continue
            qr, qsim = np.quantile(r[ok], qs), np.quantile(s[ok], qs)
            ax.plot(qr, qsim, ".", markersize=3, label=label)
            lo, hi = min(lo, float(qr.min()), float(qsim.min())), max(hi, float(qr.max()), float(qsim.max()))
        if lo > hi:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
            continue
        ax.plot([lo, hi], [lo, hi], "-", color="gray", linewidth=0.8)
    if sites is not None and axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=6, loc="upper left")
    return fig


def _table_html(table: pa.Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.column_names)
    rows = []
    for r in table.to_pylist():
        cells = []
        for v in r.values():
            if isinstance(v, float):
                cells.append(f'<td class="v">{v:.4g}</td>' if math.isfinite(v) else '<td class="v">-</td>')
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _html(summary: dict[str, Any], p: dict[str, np.ndarray], overall: pa.Table, per_site: pa.Table,
          worst: pa.Table) -> str:
    from gridtwin.analytics.report import CSS, _img

    sites = sorted(set(p["site"].tolist()), key=lambda s: (-int(np.sum(p["site"] == s)), s))[:6]
    figs = [_img(_qq_figure(p, "all sites: QQ plots (simulated against recorded percentiles)"), "QQ plots, all sites")]
    if len(sites) > 1:
        figs.append(_img(_qq_figure(p, f"QQ plots of the {len(sites)} sites with most jobs", sites),
                         "QQ plots per site"))
    head = {k: summary.get(k) for k in ("trace", "platform", "policy", "seed", "jobs_compared",
                                         "jobs_at_recorded_site", "simulated_status")}
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', "<title>gridtwin replay comparison</title>",
        f"<style>{CSS}</style></head><body>", "<h1>gridtwin replay: simulated against recorded</h1>",
        "<pre>" + html.escape(json.dumps(head, indent=2, sort_keys=True)) + "</pre>",
        "<h2>Overall</h2>", _table_html(overall),
        "<h2>QQ plots</h2>", *figs,
        "<h2>Per site</h2>", _table_html(per_site),
        f"<h2>The {worst.num_rows} jobs the twin gets most wrong (|log simulated/recorded walltime|)</h2>",
        _table_html(worst), "</body></html>", "",
    ]
    return "\n".join(parts)

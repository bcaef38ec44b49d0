"""``gridtwin analyze DIR``: link jobs to transfers, find what breaks data-to-jobs, measure imbalance,
on a run folder or an import folder alike, and write the tables as Parquet plus an HTML report.

Everything is read from the record tables; ``truth/`` is read only to score the linker on simulated
runs (precision and recall), never to build the results.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gridtwin.analytics.kpi import _jsonable
from gridtwin.errors import ConfigError
from gridtwin.record.recorder import write_tables

ANALYSIS_DIR = "analysis"


def closeness_from_network(path: Path) -> dict[tuple[str, str], int]:
    """(src ATLAS site, dst ATLAS site) -> CRIC closeness from a network-matrix JSON."""
    from gridtwin.platform.cric import read_json
    from gridtwin.platform.netmatrix import links_from_matrix

    links, _ = links_from_matrix(read_json(Path(path)), str(path))
    return {(lk.src, lk.dst): int(lk.closeness) for lk in links.values()}


def analyze_folder(run_dir: Path, out: Path | None = None, *, tolerance_s: float = 60.0,
                   network: Path | None = None, redundant_window_s: float = 86400.0) -> dict[str, Any]:
    """Analyse ``run_dir``; write ``out`` (default ``run_dir/analysis``) and return the summary."""
    from gridtwin.analytics.anomalies import anomaly_summary, find_anomalies
    from gridtwin.analytics.imbalance import imbalance
    from gridtwin.analytics.linker import link_jobs_to_transfers, score_links

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"analyze: {run_dir} is not a folder")
    for need in ("jobs.parquet", "transfers.parquet"):
        if not (run_dir / need).is_file():
            raise ConfigError(f"analyze: {run_dir} has no {need}; a run folder with data management, or an import "
                              "folder made with --jobs and --transfers, was expected")
    out = Path(out) if out is not None else run_dir / ANALYSIS_DIR
    t0 = time.perf_counter()
    closeness = closeness_from_network(network) if network is not None else None
    linked = link_jobs_to_transfers(run_dir, tolerance_s=tolerance_s)
    timings = {"link_s": time.perf_counter() - t0}
    scores = None
    truth = run_dir / "truth" / "job_transfer_links.parquet"
    if truth.is_file():
        scores = score_links(linked.links, pq.read_table(truth))
    t1 = time.perf_counter()
    anomalies = find_anomalies(run_dir, linked.links, redundant_window_s=redundant_window_s, closeness=closeness)
    summary_table = anomaly_summary(anomalies)
    timings["anomalies_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    imb = imbalance(run_dir)
    timings["imbalance_s"] = time.perf_counter() - t2
    tables: list[tuple[str, Any]] = [
        ("links", lambda: linked.links),
        ("unmatched_jobs", lambda: linked.unmatched_jobs),
        ("unmatched_transfers", lambda: linked.unmatched_transfers),
        ("anomaly_summary", lambda: summary_table),
    ]
    tables += [(f"anomalies/{name}", lambda t=t: t) for name, t in sorted(anomalies.items())]
    tables += [(f"imbalance/{name}", lambda t=t: t) for name, t in sorted(imb.items()) if isinstance(t, pa.Table)]
    scalars = {k: v for k, v in imb.items() if not isinstance(v, pa.Table)}
    from gridtwin.scenario import atomic_folder

    with atomic_folder(out) as partial:
        counts = write_tables(partial, tables)
        summary = {
            "run_dir": str(run_dir),
            "links": linked.links.num_rows,
            "unmatched_jobs": linked.unmatched_jobs.num_rows,
            "unmatched_transfers": linked.unmatched_transfers.num_rows,
            "linker_notes": list(linked.notes),
            "linker_score": scores,
            "anomalies": {name: t.num_rows for name, t in sorted(anomalies.items())},
            "imbalance": _jsonable(scalars),
            "rows": counts,
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
        }
        (partial / "analysis.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        _write_html(partial, summary, summary_table, imb)
    return summary


def _table_html(table: pa.Table, limit: int = 30) -> str:
    if table.num_rows == 0:
        return "<p>none</p>"
    rows = table.slice(0, limit).to_pylist()
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.column_names)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in table.column_names) + "</tr>"
                   for r in rows)
    more = f"<p>{table.num_rows - limit:,} more rows in the Parquet file.</p>" if table.num_rows > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _heatmap(table: pa.Table, title: str, limit: int = 60) -> str:
    """A heat map of a wide matrix table: the first column labels the rows, the others are the columns
    (the ``limit`` heaviest rows and columns are shown)."""
    from matplotlib.figure import Figure

    from gridtwin.analytics.report import _img

    if table.num_rows == 0 or table.num_columns < 2:
        return ""
    rows = [str(x) for x in table.column(0).to_pylist()]
    cols = table.column_names[1:]
    m = np.column_stack([np.nan_to_num(table.column(c).to_numpy(zero_copy_only=False).astype(np.float64))
                         for c in cols])
    keep_r = np.sort(np.argsort(-m.sum(axis=1), kind="stable")[:limit])
    keep_c = np.sort(np.argsort(-m.sum(axis=0), kind="stable")[:limit])
    m = m[np.ix_(keep_r, keep_c)]
    fig = Figure(figsize=(9, 7))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.log10(1 + m), aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_title(f"{title}: log10(1 + bytes)", fontsize=10)
    ax.set_yticks(range(len(keep_r)), [rows[i] for i in keep_r], fontsize=5)
    ax.set_xticks(range(len(keep_c)), [cols[i] for i in keep_c], fontsize=5, rotation=90)
    ax.set_ylabel(table.column_names[0])
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return _img(fig, title)


def _write_html(out: Path, summary: dict, anomaly_table: pa.Table, imb: dict) -> None:
    from gridtwin.analytics.report import CSS

    e = html.escape
    score = summary.get("linker_score")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>gridtwin analysis</title>',
             f"<style>{CSS}</style></head><body>", f"<h1>gridtwin analysis: {e(summary['run_dir'])}</h1>",
             "<h2>Jobs and transfers linked</h2>",
             f"<p>{summary['links']:,} links; {summary['unmatched_jobs']:,} jobs expected transfers and got none; "
             f"{summary['unmatched_transfers']:,} transfers fed no job.</p>"]
    if score:
        parts.append(f"<p>Against the run's ground truth: precision {score.get('precision', float('nan')):.4f}, "
                     f"recall {score.get('recall', float('nan')):.4f}.</p>")
    for note in summary.get("linker_notes", []):
        parts.append(f"<p>note: {e(note)}</p>")
    parts += ["<h2>Anomalies</h2>", _table_html(anomaly_table, 60), "<h2>Imbalance</h2>",
              f"<pre>{e(json.dumps(summary['imbalance'], indent=2, sort_keys=True))}</pre>"]
    for name, t in sorted(imb.items()):
        if isinstance(t, pa.Table) and (name == "site_matrix" or name.startswith("hour_site")):
            parts.append(f"<h3>{e(name)}</h3>")
            parts.append(_heatmap(t, name))
        elif isinstance(t, pa.Table):
            parts += [f"<h3>{e(name)}</h3>", _table_html(t, 20)]
    parts += ["</body></html>", ""]
    (out / "analysis.html").write_text("\n".join(parts), encoding="utf-8")

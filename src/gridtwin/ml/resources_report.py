"""What ``ml train-resources`` writes: the model, its metrics as JSON, a console table and an HTML page
comparing the predictor with the scout baseline (numbers with 95% bootstrap intervals, and plots)."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from rich.table import Table

from gridtwin.analytics.report import CSS, _img
from gridtwin.ml.resources import TrainResult

SHOWN = (("mape", "MAPE", "{:.1%}"), ("r2", "R2", "{:.3f}"), ("coverage", "coverage", "{:.1%}"),
         ("fail_share", "would fail", "{:.1%}"), ("waste_share", "would waste", "{:.1%}"),
         ("overrequest_median", "request / actual (median)", "{:.2f}"))


def _fmt(m: dict[str, float], fmt: str, with_ci: bool = True) -> str:
    v = m["value"]
    if not math.isfinite(v):
        return "n/a"
    text = fmt.format(v)
    if with_ci and math.isfinite(m.get("ci_low", float("nan"))):
        text += f" [{fmt.format(m['ci_low'])}, {fmt.format(m['ci_high'])}]"
    return text


def _rows(metrics: dict[str, Any]) -> list[tuple[str, str, str, str, list[str]]]:
    """(target, who, jobs, tasks, formatted metrics) rows: the predictor on all jobs, then both methods on the
    jobs the scout baseline can predict."""
    rows = []
    for name, m in metrics.items():
        label = f"{name} ({m['unit']})"
        rows.append((label, "predictor, all jobs", f"{m['jobs']:,}", f"{m['tasks']:,}",
                     [_fmt(m["predictor"][k], f) for k, _, f in SHOWN]))
        sb = m["scout_baseline"]
        if "metrics" in sb:
            rows.append((label, "predictor, non-scout jobs", f"{sb['jobs']:,}", f"{sb['tasks']:,}",
                         [_fmt(m["predictor_on_baseline_jobs"][k], f) for k, _, f in SHOWN]))
            rows.append((label, f"scouts ({sb['scouts']}/task)", f"{sb['jobs']:,}", f"{sb['tasks']:,}",
                         [_fmt(sb["metrics"][k], f) for k, _, f in SHOWN]))
        else:
            rows.append((label, f"scouts ({sb['scouts']}/task)", "0", "0", ["n/a"] * len(SHOWN)))
    return rows


def metrics_table(metrics: dict[str, Any], quantile: float) -> Table:
    """The cross-validated metrics as a console table."""
    t = Table(title=f"resource predictors: cross-validated by task, upper quantile {quantile:g}, "
                    "95% bootstrap intervals")
    for col in ("target", "method", "jobs", *(label for _, label, _ in SHOWN[:-1])):
        t.add_column(col, overflow="fold")
    for target, who, jobs, _, vals in _rows(metrics):
        t.add_row(target, who, jobs, *vals[:-1])
    return t


def _calibration_figure(name: str, y: np.ndarray, med: np.ndarray, up: np.ndarray, quantile: float) -> Figure:
    fig = Figure(figsize=(9.0, 3.4))
    ax1, ax2 = fig.subplots(1, 2)
    take = np.linspace(0, len(y) - 1, min(len(y), 20000)).astype(np.int64) if len(y) else np.zeros(0, np.int64)
    ax1.scatter(y[take], med[take], s=2, alpha=0.3)
    lo, hi = (float(min(y.min(), med.min())), float(max(y.max(), med.max()))) if len(y) else (1.0, 10.0)
    ax1.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("actual")
    ax1.set_ylabel("predicted median (out of fold)")
    ax1.set_title(name)
    r = np.log10(y / up) if len(y) else np.zeros(0)
    ax2.hist(r, bins=60, color="#4c72b0")
    ax2.axvline(0.0, color="r", lw=1.0)
    ax2.set_xlabel("log10(actual / request)")
    ax2.set_title(f"{np.mean(r <= 0):.1%} within the request (nominal {quantile:.0%})" if len(r) else name)
    fig.tight_layout()
    return fig


def write_training_outputs(out: Path, result: TrainResult, jobs_file: Path, force: bool = False) -> None:
    """Write model.json, metrics.json and report.html into ``out`` atomically."""
    from gridtwin.scenario import atomic_folder, check_output_folder

    out = check_output_folder(out, force, markers=("model.json",), what="a resource model")
    model = result.model
    model.trained_on["records"] = jobs_file.name
    with atomic_folder(out) as tmp:
        model.save(tmp / "model.json")
        (tmp / "metrics.json").write_text(json.dumps(
            {"quantile": model.quantile, "trained_on": model.trained_on, "notes": result.notes,
             "targets": result.metrics}, indent=1, sort_keys=True) + "\n")
        head = "".join(f"<th>{html.escape(c)}</th>" for c in ("target", "method", "jobs", "tasks",
                                                              *(label for _, label, _ in SHOWN)))
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (t, w, j, k, *v)) + "</tr>"
                       for t, w, j, k, v in _rows(result.metrics))
        figs = "".join(_img(_calibration_figure(n, *result.oof[n], model.quantile), n) for n in result.oof)
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
        features = ", ".join(html.escape(n) for n in model.schema.names)
        (tmp / "report.html").write_text(
            f"<!doctype html><html><head><meta charset='utf-8'><title>gridtwin resource predictors</title>"
            f"<style>{CSS}</style></head><body><h1>Resource predictors</h1>"
            f"<p>Trained on {html.escape(jobs_file.name)}: {model.trained_on['jobs']:,} finished jobs. Features: "
            f"{features}. Cross-validation grouped by task; the upper quantile ({model.quantile:g}) is the "
            f"request; a job <em>would fail</em> if its actual value is above the request and <em>would "
            f"waste</em> if the request is above {model.trained_on['waste_factor']:g} times the actual. "
            f"Intervals are 95% bootstrap intervals over tasks.</p>"
            f"<table><tr>{head}</tr>{body}</table><ul>{notes}</ul>{figs}</body></html>\n")

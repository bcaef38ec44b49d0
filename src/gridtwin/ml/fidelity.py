"""How close a generated workload is to real job records: per-feature distances, correlations, arrival
autocorrelation and "train on synthetic, test on real" for the resource predictor, as JSON and HTML.

Both sides go through the same extraction (``job_records.extract_records``): the real side is the
finished jobs of the records, the synthetic side the job specifications of a workload sampled from the
model over the same hours (``workload_sampler.workload_jobs_table``). Distances:

- Kolmogorov-Smirnov statistic (``scipy.stats.ks_2samp``) per job feature;
- Wasserstein-1 distance, on log10(1 + x) for the heavy-tailed features (bytes, events, CPU work,
  memory) and on the raw value for cores, input files and CPU efficiency;
- Spearman correlation matrices of the job features: largest absolute difference and Frobenius norm;
- autocorrelation of the hourly task-arrival counts at lags 1 h and 24 h (the latter needs at least two
  days of records);
- TSTR: the generator is refitted on 70 % of the real tasks, the resource predictor is trained once on a
  synthetic sample of it and once on those real tasks (lighter settings than ``gridtwin ml train``:
  2 folds, 60 rounds, at most 10,000 jobs per booster, the same on both sides), and both are scored on
  the other 30 %.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure
from scipy.stats import ks_2samp, spearmanr, wasserstein_distance

from gridtwin.analytics.report import CSS as REPORT_CSS
from gridtwin.analytics.report import _img
from gridtwin.errors import ConfigError, InputError
from gridtwin.ml.job_records import (
    JOB_FEATURES,
    MAIN_FEATURES,
    JobRecords,
    arrival_hours,
    extract_records,
    task_arrivals,
)
from gridtwin.ml.workload_model import WorkloadModel, fit_records
from gridtwin.ml.workload_sampler import sample_workload, workload_jobs_table
from gridtwin.workload.spec import Workload

KS_TARGET = 0.05
"""The generator's target: KS statistic at most this on every main feature."""
TSTR_TRAIN_SHARE = 0.7
TSTR_MAX_ROWS = 10_000
"""Each TSTR booster learns from at most this many jobs (both sides alike: the comparison stays fair)."""
TSTR_ROUNDS = 60
REPORT_JSON = "fidelity.json"
REPORT_HTML = "fidelity.html"
FIGSIZE = (8.0, 3.2)


# ================================================================== metrics


def feature_distances(real: JobRecords, syn: JobRecords) -> dict[str, dict[str, Any]]:
    """Per job feature, over finished jobs: KS statistic and p-value, Wasserstein distance (on the
    stated scale), sample sizes and medians; ``status: n/a`` with the reason when a side has no values."""
    out: dict[str, dict[str, Any]] = {}
    for f in JOB_FEATURES:
        a, b = _finite(real, f.name), _finite(syn, f.name)
        if f.name in real.absent or not len(a):
            out[f.name] = {"status": "n/a", "reason": "the records have no values for it"}
            continue
        if f.name in syn.absent or not len(b):
            out[f.name] = {"status": "n/a", "reason": "the model had no values for it (sampled as a default)"}
            continue
        ks = ks_2samp(a, b)
        scale = "log10(1+x)" if f.scale == "log" else "linear"
        ta, tb = (np.log10(1.0 + np.maximum(a, 0)), np.log10(1.0 + np.maximum(b, 0))) if f.scale == "log" else (a, b)
        out[f.name] = {
            "status": "ok", "unit": f.unit, "ks": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
            "wasserstein": float(wasserstein_distance(ta, tb)), "wasserstein_scale": scale,
            "real_n": len(a), "synthetic_n": len(b), "real_median": float(np.median(a)),
            "synthetic_median": float(np.median(b)), "main": f.name in MAIN_FEATURES,
        }
    return out


def _finite(rec: JobRecords, name: str) -> np.ndarray:
    v = rec.features[name][rec.finished]
    return v[np.isfinite(v)]


def correlation_difference(real: JobRecords, syn: JobRecords) -> dict[str, Any]:
    """Spearman correlation matrices of the job features both sides have (and that vary on both), and
    their difference: largest absolute entry and Frobenius norm."""
    names = []
    for f in JOB_FEATURES:
        a, b = real.features[f.name][real.finished], syn.features[f.name][syn.finished]
        if f.name in real.absent or f.name in syn.absent:
            continue
        if np.nanstd(a) > 0 and np.nanstd(b) > 0:
            names.append(f.name)
    if len(names) < 2:
        return {"status": "n/a", "reason": "fewer than two features vary on both sides", "features": names}
    cr, cs = _spearman(real, names), _spearman(syn, names)
    diff = cs - cr
    return {"status": "ok", "method": "spearman", "features": names, "real": _r(cr), "synthetic": _r(cs),
            "max_abs_diff": float(np.max(np.abs(diff))), "frobenius": float(np.linalg.norm(diff))}


def _spearman(rec: JobRecords, names: list[str]) -> np.ndarray:
    x = np.column_stack([rec.features[n][rec.finished] for n in names])
    x = x[np.isfinite(x).all(axis=1)]
    c = spearmanr(x).statistic
    return np.atleast_2d(np.asarray(c, dtype=np.float64))


def _r(m: np.ndarray) -> list[list[float]]:
    return [[round(float(v), 4) for v in row] for row in m]


def hourly_arrivals(rec: JobRecords, hours: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Task arrivals per clock hour over ``hours`` (clock-hour indices; default from the first to the
    last arrival's hour; arrivals outside are left out), and the first hour's start (s)."""
    if hours is None:
        hours = arrival_hours(rec)
    arrival, _ = task_arrivals(rec)
    h = np.floor(arrival[np.isfinite(arrival)] / 3600.0).astype(np.int64) - int(hours[0])
    h = h[(h >= 0) & (h < len(hours))]
    return np.bincount(h, minlength=len(hours)), float(hours[0]) * 3600.0


def autocorrelation(counts: np.ndarray, lag: int) -> float | None:
    """Sample autocorrelation of a series at ``lag`` (None when it is too short or constant)."""
    x = np.asarray(counts, dtype=np.float64)
    if len(x) <= lag + 1:
        return None
    d = x - x.mean()
    den = float((d * d).sum())
    return float((d[:-lag] * d[lag:]).sum() / den) if den > 0 else None


def arrival_metrics(real: JobRecords, syn: JobRecords, real_hours: np.ndarray | None = None,
                    syn_hours: np.ndarray | None = None) -> dict[str, Any]:
    """Hourly task-arrival counts (over the given clock hours, default first to last arrival):
    autocorrelation at 1 h and 24 h on both sides, mean arrivals by UTC hour of day."""
    out: dict[str, Any] = {"unit": "task arrivals per hour"}
    for side, rec, hours in (("real", real, real_hours), ("synthetic", syn, syn_hours)):
        counts, t0 = hourly_arrivals(rec, hours)
        hod = (np.arange(len(counts)) + int(t0 // 3600)) % 24
        exposure = np.bincount(hod, minlength=24)
        profile = np.bincount(hod, weights=counts, minlength=24) / np.maximum(exposure, 1)
        entry: dict[str, Any] = {"hours": len(counts), "tasks": int(counts.sum()),
                                 "acf_1h": autocorrelation(counts, 1), "profile_by_hour": _round_list(profile)}
        if len(counts) >= 48:
            entry["acf_24h"] = autocorrelation(counts, 24)
        else:
            entry["acf_24h"] = None
            entry["acf_24h_reason"] = f"needs at least 2 days of arrivals, these cover {len(counts)} h"
        entry["series"] = counts.astype(int).tolist()
        out[side] = entry
    return out


def _round_list(a: np.ndarray, digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in a]


def volume_metrics(real: JobRecords, syn: JobRecords, days: float) -> dict[str, Any]:
    """Jobs and tasks per day and each family's share of the jobs, real against synthetic."""
    def shares(rec: JobRecords) -> dict[str, float]:
        names = [f"{a}/{b}" for a, b in rec.categories]
        counts = np.bincount(rec.category[rec.finished], minlength=len(names))
        total = max(int(counts.sum()), 1)
        return {n: round(int(c) / total, 5) for n, c in zip(names, counts, strict=True) if c}

    return {
        "days": days,
        "real": {"finished_jobs": int(real.finished.sum()), "tasks": len(real.task_keys), "job_share": shares(real)},
        "synthetic": {"jobs": int(syn.finished.sum()), "tasks": len(syn.task_keys), "job_share": shares(syn)},
    }


# ================================================================== TSTR


def tstr(jobs: pa.Table, sites: pa.Table | None, real: JobRecords, *, seed: int = 0, match_volume: bool = True,
         folds: int = 2, source: str = "records", window: tuple[float, float] | None = None) -> dict[str, Any]:
    """Train on synthetic, test on real: split the real tasks 70/30, refit the generator on the 70 %,
    train the resource predictor on a synthetic sample of it and on the 70 % itself, score both on the
    30 %. Per target: the two metric sets and the ratio of their MAE."""
    from gridtwin.ml.resources import evaluate, train_resources

    rng = np.random.default_rng(seed)
    n_tasks = len(real.task_keys)
    if n_tasks < 4:
        return {"status": "n/a", "reason": f"{n_tasks} tasks: too few to split by task"}
    train_task = np.zeros(n_tasks, dtype=bool)
    train_task[rng.permutation(n_tasks)[: round(TSTR_TRAIN_SHARE * n_tasks)]] = True
    row_train = train_task[real.task]
    real_train = jobs.filter(pa.array(row_train))
    real_test = jobs.filter(pa.array(~row_train))
    try:
        model = fit_records(_subset(real, row_train), seed=seed, source=source, window=window)
        days = model.training["hours"] / 24.0
        start_hour = datetime.fromisoformat(model.training["window_start"]).hour
        wl = sample_workload(model, days, np.random.default_rng(seed + 1), start_hour=start_hour,
                             match_volume=match_volume)
        synthetic = workload_jobs_table(wl)
        kw: dict[str, Any] = {"seed": seed, "folds": folds, "n_boot": 20, "rounds": TSTR_ROUNDS,
                              "max_rows": TSTR_MAX_ROWS}
        on_syn = train_resources(synthetic, None, source="synthetic", **kw)
        on_real = train_resources(real_train, sites, source=f"{source} (train split)", **kw)
        m_syn = evaluate(on_syn.model, real_test, sites, source=f"{source} (test split)")
        m_real = evaluate(on_real.model, real_test, sites, source=f"{source} (test split)")
    except InputError as e:
        return {"status": "n/a", "reason": str(e)}
    targets: dict[str, Any] = {}
    for name in sorted(set(m_syn) | set(m_real)):
        a, b = m_syn.get(name), m_real.get(name)
        entry: dict[str, Any] = {"train_synthetic": _clean(a), "train_real": _clean(b)}
        if a and b and b.get("mae"):
            entry["mae_ratio"] = _num(a["mae"] / b["mae"])
        targets[name] = entry
    return {"status": "ok", "train_tasks": int(train_task.sum()), "test_tasks": int((~train_task).sum()),
            "synthetic_jobs": synthetic.num_rows, "real_train_jobs": real_train.num_rows,
            "real_test_jobs": real_test.num_rows, "targets": targets,
            "notes": sorted(set(on_syn.notes) | {f"real: {n}" for n in on_real.notes})}


def _subset(rec: JobRecords, rows: np.ndarray) -> JobRecords:
    """The records restricted to ``rows`` (tasks and categories keep their indices)."""
    idx = np.flatnonzero(rows)
    keep = lambda xs: [xs[i] for i in idx]  # noqa: E731
    used = np.unique(rec.task[idx])
    remap = np.full(len(rec.task_keys), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return JobRecords(
        task=remap[rec.task[idx]], task_keys=[rec.task_keys[t] for t in used], category=rec.category[idx],
        categories=rec.categories, first=rec.first[idx], finished=rec.finished[idx], created_s=rec.created_s[idx],
        features={k: v[idx] for k, v in rec.features.items()}, priority=rec.priority[idx],
        workinggroup=keep(rec.workinggroup), produsername=keep(rec.produsername), proddblock=keep(rec.proddblock),
        transformation=keep(rec.transformation), gshare=keep(rec.gshare), absent=rec.absent, notes=list(rec.notes),
    )


def _num(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _clean(d: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if d is None else {k: _num(v) for k, v in sorted(d.items())}


# ================================================================== the report


def fidelity(model: WorkloadModel, jobs: pa.Table, sites: pa.Table | None = None, *, seed: int = 0,
             match_volume: bool = True, with_tstr: bool = True, source: str = "records",
             window: tuple[float, float] | None = None, workload: tuple[Workload, datetime] | None = None,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Sample the model over the hours the records cover (``window``, else first to last arrival), or
    take ``workload`` (a workload and its epoch), and measure it against the records; returns the
    report's numbers (see the module docstring)."""
    say = progress or (lambda stage: None)
    real = extract_records(jobs, sites, source)
    real_hours = arrival_hours(real, window)
    days = len(real_hours) / 24.0
    start = datetime.fromtimestamp(float(real_hours[0]) * 3600.0, tz=UTC)
    if workload is None:
        say("sampling the model")
        wl = sample_workload(model, days, np.random.default_rng(seed), start_hour=start.hour,
                             match_volume=match_volume)
        epoch = start
    else:
        wl, epoch = workload
    syn = extract_records(workload_jobs_table(wl, epoch=epoch), None, "synthetic")
    syn_hours = arrival_hours(syn, (epoch.timestamp(), epoch.timestamp() + wl.duration_s))
    say("distances")
    feats = feature_distances(real, syn)
    main = {k: v["ks"] for k, v in feats.items() if v["status"] == "ok" and v["main"]}
    worst = max(main.values()) if main else None
    if with_tstr:
        say("train on synthetic, test on real")
        tstr_result = tstr(jobs, sites, real, seed=seed, match_volume=match_volume, source=source, window=window)
    else:
        tstr_result = {"status": "n/a", "reason": "not requested"}
    return {
        "source": source, "window_start": _iso(start),
        "window_end": _iso(start + timedelta(hours=len(real_hours))),
        "synthetic": {"from": "sample" if workload is None else "workload file", "epoch": _iso(epoch),
                      "days": wl.duration_s / 86400.0},
        "seed": seed, "match_volume": match_volume, "model_training": model.training,
        "ks_target": KS_TARGET, "main_features": list(MAIN_FEATURES), "main_ks_max": worst,
        "main_ks_pass": None if worst is None else bool(worst <= KS_TARGET),
        "features": feats, "correlation": correlation_difference(real, syn),
        "arrivals": arrival_metrics(real, syn, real_hours, syn_hours),
        "volume": volume_metrics(real, syn, days), "tstr": tstr_result,
        "_samples": (real, syn),
    }


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def write_fidelity_report(result: dict[str, Any], out: Path) -> Path:
    """Write ``fidelity.json`` and ``fidelity.html`` into the folder ``out`` (replaced atomically; only an
    empty folder or an earlier fidelity report is replaced) and return the HTML path."""
    from gridtwin.scenario import atomic_folder

    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"--out {out}: a file of that name exists; a folder was expected")
        if any(out.iterdir()) and not (out / REPORT_JSON).exists():
            raise ConfigError(f"--out {out}: the folder exists and does not hold a fidelity report; choose another")
    real, syn = result["_samples"]
    numbers = {k: v for k, v in result.items() if not k.startswith("_")}
    with atomic_folder(out) as partial:
        (partial / REPORT_JSON).write_text(json.dumps(numbers, indent=1, sort_keys=True, allow_nan=False) + "\n",
                                           encoding="utf-8")
        (partial / REPORT_HTML).write_text(_html(numbers, real, syn), encoding="utf-8")
    return out / REPORT_HTML


# ================================================================== HTML

CSS = REPORT_CSS + ".bad { color: #b00; font-weight: bold; } .ok { color: #070; }\n"


def _e(v: Any) -> str:
    return html.escape(str(v))


def _f(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) >= 1e4 or (v != 0 and abs(v) < 1e-3) else f"{v:.{digits}f}"
    return str(v)


def _html(n: dict[str, Any], real: JobRecords, syn: JobRecords) -> str:
    ok = n["main_ks_pass"]
    verdict = ("n/a" if ok is None else
               f'<span class="{"ok" if ok else "bad"}">{"met" if ok else "not met"}</span>')
    vol = n["volume"]
    if n["synthetic"]["from"] == "sample":
        how = (f"Synthetic sample over the same hours (seed {n['seed']}, "
               f"{'matched job volume' if n['match_volume'] else 'Poisson task counts'})")
    else:
        how = f"Synthetic: the given workload file ({n['synthetic']['days']:.2f} days from {n['synthetic']['epoch']})"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>gridtwin workload-model fidelity: {_e(n['source'])}</title>", f"<style>{CSS}</style></head><body>",
        f"<h1>Workload-model fidelity: {_e(n['source'])}</h1>",
        f"<p>Records from {_e(n['window_start'])} to {_e(n['window_end'])} ({vol['days']:.2f} days): "
        f"{vol['real']['finished_jobs']:,} finished jobs of {vol['real']['tasks']:,} tasks. {_e(how)}: "
        f"{vol['synthetic']['jobs']:,} jobs of {vol['synthetic']['tasks']:,} tasks.</p>",
        f"<p>Target: KS &le; {n['ks_target']} on {', '.join(n['main_features'])}: {verdict} "
        f"(largest: {_f(n['main_ks_max'])}).</p>",
        "<h2>Per-feature distances (finished jobs)</h2>", _feature_table(n["features"]),
        "<h2>Correlations</h2>", _corr_text(n["correlation"]),
        "<h2>Arrivals</h2>", _arrival_text(n["arrivals"]),
        "<h2>Family mix</h2>", _mix_table(vol),
        "<h2>Train on synthetic, test on real</h2>", _tstr_html(n["tstr"]),
        "<h2>Plots</h2>", *_feature_plots(n["features"], real, syn),
    ]
    if n["correlation"]["status"] == "ok":
        parts.append(_img(_corr_figure(n["correlation"]), "Spearman correlation matrices"))
    parts.append(_img(_arrival_figure(n["arrivals"]), "task arrivals by hour"))
    parts += ["<h2>All numbers</h2>", f"<details><summary>show JSON</summary><pre>"
              f"{_e(json.dumps(n, indent=1, sort_keys=True))}</pre></details>", "</body></html>", ""]
    return "\n".join(parts)


def _feature_table(feats: dict[str, Any]) -> str:
    rows = ["<tr><th>feature</th><th>unit</th><th>KS</th><th>Wasserstein</th><th>on</th><th>median real</th>"
            "<th>median synthetic</th></tr>"]
    for name, d in feats.items():
        if d["status"] != "ok":
            rows.append(f"<tr><td>{_e(name)}</td><td colspan='6'>n/a: {_e(d['reason'])}</td></tr>")
            continue
        cls = ' class="v bad"' if d["main"] and d["ks"] > KS_TARGET else ' class="v"'
        label = f"<b>{_e(name)}</b>" if d["main"] else _e(name)
        rows.append(f"<tr><td>{label}</td><td>{_e(d['unit'])}</td><td{cls}>{d['ks']:.4f}</td>"
                    f"<td class='v'>{d['wasserstein']:.4f}</td><td>{_e(d['wasserstein_scale'])}</td>"
                    f"<td class='v'>{_f(d['real_median'])}</td><td class='v'>{_f(d['synthetic_median'])}</td></tr>")
    return "<table>" + "".join(rows) + "</table><p>Main features in bold.</p>"


def _corr_text(c: dict[str, Any]) -> str:
    if c["status"] != "ok":
        return f"<p>n/a: {_e(c['reason'])}</p>"
    return (f"<p>Spearman correlation of {', '.join(c['features'])}: largest absolute difference "
            f"{c['max_abs_diff']:.4f}, Frobenius norm of the difference {c['frobenius']:.4f}.</p>")


def _arrival_text(a: dict[str, Any]) -> str:
    rows = ["<tr><th></th><th>hours</th><th>tasks</th><th>ACF 1 h</th><th>ACF 24 h</th></tr>"]
    for side in ("real", "synthetic"):
        s = a[side]
        lag24 = _f(s["acf_24h"]) if s["acf_24h"] is not None else f"n/a ({_e(s.get('acf_24h_reason', ''))})"
        rows.append(f"<tr><td>{side}</td><td class='v'>{s['hours']}</td><td class='v'>{s['tasks']:,}</td>"
                    f"<td class='v'>{_f(s['acf_1h'])}</td><td>{lag24}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _mix_table(vol: dict[str, Any]) -> str:
    names = sorted(set(vol["real"]["job_share"]) | set(vol["synthetic"]["job_share"]))
    rows = ["<tr><th>family</th><th>share of real jobs</th><th>share of synthetic jobs</th></tr>"]
    rows += [f"<tr><td>{_e(k)}</td><td class='v'>{vol['real']['job_share'].get(k, 0):.4f}</td>"
             f"<td class='v'>{vol['synthetic']['job_share'].get(k, 0):.4f}</td></tr>" for k in names]
    return "<table>" + "".join(rows) + "</table>"


def _tstr_html(t: dict[str, Any]) -> str:
    if t["status"] != "ok":
        return f"<p>n/a: {_e(t['reason'])}</p>"
    rows = ["<tr><th>target</th><th>trained on</th><th>MAE</th><th>MAPE</th><th>R&sup2;</th><th>coverage</th>"
            "<th>MAE synthetic / real</th></tr>"]
    for name, e in t["targets"].items():
        for label, key in (("synthetic", "train_synthetic"), ("real", "train_real")):
            m = e[key] or {}
            ratio = _f(e.get("mae_ratio")) if key == "train_synthetic" else ""
            rows.append(f"<tr><td>{_e(name)}</td><td>{label}</td><td class='v'>{_f(m.get('mae'))}</td>"
                        f"<td class='v'>{_f(m.get('mape'))}</td><td class='v'>{_f(m.get('r2'))}</td>"
                        f"<td class='v'>{_f(m.get('coverage'))}</td><td class='v'>{ratio}</td></tr>")
    return (f"<p>Real tasks split {t['train_tasks']} / {t['test_tasks']}; {t['synthetic_jobs']:,} synthetic jobs, "
            f"{t['real_train_jobs']:,} real training rows, {t['real_test_jobs']:,} real test rows.</p>"
            "<table>" + "".join(rows) + "</table>")


def _feature_plots(feats: dict[str, Any], real: JobRecords, syn: JobRecords) -> list[str]:
    out = []
    for f in JOB_FEATURES:
        if feats[f.name]["status"] != "ok":
            continue
        a, b = _finite(real, f.name), _finite(syn, f.name)
        log = f.scale == "log"
        if log:
            a, b = np.log10(1.0 + np.maximum(a, 0)), np.log10(1.0 + np.maximum(b, 0))
        fig = Figure(figsize=FIGSIZE)
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.17, top=0.86, wspace=0.25)
        ax1, ax2 = fig.subplots(1, 2)
        fig.suptitle(f"{f.name} ({f.unit}): KS {feats[f.name]['ks']:.3f}")
        lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 50)
        ax1.hist(a, bins=bins, density=True, alpha=0.5, label="real")
        ax1.hist(b, bins=bins, density=True, alpha=0.5, label="synthetic")
        xlabel = f"log10(1 + {f.name})" if log else f.name
        ax1.set_xlabel(xlabel)
        ax1.legend(fontsize=8)
        for v, lab in ((a, "real"), (b, "synthetic")):
            s = np.sort(v)
            ax2.step(s, np.arange(1, len(s) + 1) / len(s), where="post", label=lab)
        ax2.set_xlabel(xlabel)
        ax2.set_ylabel("ECDF")
        out.append(_img(fig, f"{f.name}: histogram and ECDF, real against synthetic"))
    return out


def _corr_figure(c: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(10.0, 3.6))
    fig.subplots_adjust(left=0.1, right=0.92, bottom=0.3, top=0.86, wspace=0.7)
    axes = fig.subplots(1, 3)
    names = c["features"]
    real, syn = np.asarray(c["real"]), np.asarray(c["synthetic"])
    diff = syn - real
    span = max(0.05, float(np.abs(diff).max()))
    for ax, m, title, cmap, v in ((axes[0], real, "real", "RdBu_r", 1.0), (axes[1], syn, "synthetic", "RdBu_r", 1.0),
                                  (axes[2], diff, "synthetic - real", "PuOr_r", span)):
        im = ax.imshow(m, vmin=-v, vmax=v, cmap=cmap)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
    fig.suptitle("Spearman correlation of job features (note the difference's own scale)")
    return fig


def _arrival_figure(a: dict[str, Any]) -> Figure:
    fig = Figure(figsize=FIGSIZE)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.17, top=0.86, wspace=0.25)
    ax1, ax2 = fig.subplots(1, 2)
    for side in ("real", "synthetic"):
        ax1.plot(range(24), a[side]["profile_by_hour"], marker="o", ms=3, label=side)
        ax2.plot(a[side]["series"], lw=0.8, label=side)
    ax1.set_xlabel("UTC hour of day")
    ax1.set_ylabel("tasks per hour (mean)")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("hours since the first arrival")
    ax2.set_ylabel("tasks per hour")
    fig.suptitle("Task arrivals")
    return fig

"""A generative model of the payload stream, fitted on job records, that samples workloads for the twin.

The model is hierarchical, per job family (category = (prodsourcelabel, processingtype)):

- tasks arrive as a Poisson process whose rate depends on the UTC hour of day (the daily cycle),
  estimated as the mean count per hour of day over the hours the records cover;
- each task draws a vector (jobs, cores, median CPU work per core, median memory, events, input
  bytes and files, output bytes, CPU efficiency, priority, working group) from a Gaussian copula with
  the category's empirical marginals, so task-level features keep their rank correlations;
- each job of a task is the task's medians moved by a residual vector (log job value - log task
  median, all features together) resampled from the category's pool, so the spread within a task
  and the correlations between a job's features survive.

The CPU work per job (``work_hs06s``, HS06-seconds) is the hidden computational load: the twin uses it
to time the payload, a broker never sees it. What a broker sees (memory request ``ramcount``, walltime
estimate, I/O intensity) is derived from the task-level medians only. Arrivals and task sizes come
from first attempts; payload features from finished attempts (failures are the twin's failure
model's business). Records are read by ``job_records``, workloads sampled by ``workload_sampler``.
docs/ml_workload.md describes the model, its assumptions and the file format.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.special import ndtri
from scipy.stats import rankdata

from gridtwin import __version__
from gridtwin.errors import InputError
from gridtwin.ml.job_records import (
    JOB_FEATURES,
    Feature,
    JobRecords,
    _mode_str,
    arrival_hours,
    extract_records,
    group_median,
    task_arrivals,
)
from gridtwin.workload.categories import CATEGORIES

FORMAT = "gridtwin-workload-model"
VERSION = 1

TASK_FEATURES: tuple[Feature, ...] = (
    Feature("njobs", "discrete", "jobs", "log"),
    Feature("corecount", "discrete", "cores", "linear"),
    Feature("work_per_core", "continuous", "HS06-s", "log"),
    Feature("maxrss", "continuous", "kB", "log"),
    Feature("nevents", "continuous", "events", "log"),
    Feature("inputfilebytes", "continuous", "bytes", "log"),
    Feature("ninputdatafiles", "discrete", "files", "linear"),
    Feature("outputfilebytes", "continuous", "bytes", "log"),
    Feature("cpu_eff", "continuous", "CPU s per wall s per core", "linear"),
    Feature("priority", "discrete", "PanDA priority", "linear"),
    Feature("workinggroup", "categorical", "index into the category's workinggroups", "linear"),
)
"""Task-level copula dimensions (medians over a task's finished jobs, except njobs, cores, group)."""

RESIDUAL_FEATURES: tuple[Feature, ...] = (
    Feature("work_per_core", "continuous", "log1p difference", "log"),
    Feature("maxrss", "continuous", "log1p difference", "log"),
    Feature("nevents", "continuous", "log1p difference", "log"),
    Feature("inputfilebytes", "continuous", "log1p difference", "log"),
    Feature("ninputdatafiles", "continuous", "log1p difference", "log"),
    Feature("outputfilebytes", "continuous", "log1p difference", "log"),
    Feature("cpu_eff", "continuous", "difference", "linear"),
)
"""Job-level residuals: a job's value against its task's median, per feature."""

MAX_QUANTILES = 1000
"""Largest quantile grid stored per task feature and category (the sorted values when fewer tasks)."""
MAX_RESIDUALS = 4000
"""Largest residual pool stored per category (a seeded random subset of the finished jobs)."""
DEFAULT_RSS_KB_PER_CORE = 1_000_000
"""Memory per core used when the records carry no maxrss (about half the usual 2 GB/core request)."""
MIN_STRATUM_TASKS = 10
"""A core count needs this many tasks in a family to get its own copula (single- and multi-core
payloads differ in memory, work and events far more than a Gaussian copula on a two-valued margin keeps)."""


def _schema_json() -> dict[str, Any]:
    def block(feats: tuple[Feature, ...]) -> list[dict[str, str]]:
        return [{"name": f.name, "kind": f.kind, "unit": f.unit, "scale": f.scale} for f in feats]

    return {"job_features": block(JOB_FEATURES), "task_features": block(TASK_FEATURES),
            "residual_features": block(RESIDUAL_FEATURES)}


# ================================================================== task-level marginals and copula


def _quantile_grid(values: np.ndarray) -> np.ndarray:
    """At most ``MAX_QUANTILES`` order statistics at probabilities (i + 0.5) / K (all of them if fewer)."""
    v = np.sort(values)
    k = min(len(v), MAX_QUANTILES)
    idx = np.minimum(((np.arange(k) + 0.5) / k * len(v)).astype(np.int64), len(v) - 1)
    return v[idx]


def _normal_scores(x: np.ndarray) -> np.ndarray:
    """Rank-based normal scores of a sample (average ranks for ties)."""
    return ndtri(rankdata(x) / (len(x) + 1))


def _copula_correlation(table: np.ndarray) -> np.ndarray:
    """Correlation of the normal scores of each column (identity rows for constant columns)."""
    n, d = table.shape
    corr = np.eye(d)
    if n < 3:
        return corr
    varying = [j for j in range(d) if np.ptp(table[:, j]) > 0]
    if len(varying) < 2:
        return corr
    z = np.column_stack([_normal_scores(table[:, j]) for j in varying])
    c = np.corrcoef(z, rowvar=False)
    for a, i in enumerate(varying):
        for b, j in enumerate(varying):
            corr[i, j] = c[a, b]
    return corr


# ================================================================== the model


@dataclass
class CategoryModel:
    """The fitted parameters of one job family."""

    prodsourcelabel: str
    processingtype: str
    transformation: str
    gshare: str
    output_type: str
    input_type: str
    cores: int
    """The stratum's core count; 0 for the family's rarer core counts together (drawn by the copula)."""
    n_tasks: int
    """Tasks whose arrival was seen (all of them count for the rate)."""
    n_fit_tasks: int
    """Tasks with at least one finished job (the copula and residuals are fitted on these)."""
    n_jobs: int
    rate_per_hour: np.ndarray
    """Mean task arrivals per hour, by UTC hour of day (24 values)."""
    quantiles: list[np.ndarray]
    """Per ``TASK_FEATURES`` entry: the quantile grid of the task-level values."""
    corr: np.ndarray
    """Copula correlation matrix (normal scores), len(TASK_FEATURES) square."""
    residuals: np.ndarray
    """Residual pool, rows x len(RESIDUAL_FEATURES)."""
    workinggroups: list[str | None]
    tasks_per_dataset: np.ndarray
    """Observed number of this family's tasks reading each input dataset (empty: one dataset per task)."""
    user_tasks: np.ndarray
    """Tasks per distinct user, largest first (users are anonymised to user0000, user0001, ...)."""

    @property
    def family(self) -> tuple[str, str]:
        return self.prodsourcelabel, self.processingtype

    @property
    def family_name(self) -> str:
        """The built-in family's name when the labels match one, else ``label:processingtype``."""
        for c in CATEGORIES:
            if (c.prodsourcelabel, c.processingtype) == self.family:
                return c.name
        return f"{self.prodsourcelabel}:{self.processingtype}"

    @property
    def name(self) -> str:
        return f"{self.family_name} ({f'{self.cores}-core' if self.cores else 'other core counts'})"

    @property
    def is_user(self) -> bool:
        return self.prodsourcelabel == "user"

    def to_json(self) -> dict[str, Any]:
        return {
            "prodsourcelabel": self.prodsourcelabel, "processingtype": self.processingtype,
            "transformation": self.transformation, "gshare": self.gshare, "output_type": self.output_type,
            "input_type": self.input_type, "cores": self.cores, "n_tasks": self.n_tasks,
            "n_fit_tasks": self.n_fit_tasks, "n_jobs": self.n_jobs, "rate_per_hour": _round(self.rate_per_hour, 6),
            "copula": {"features": [f.name for f in TASK_FEATURES],
                       "quantiles": [_round(q, 6) for q in self.quantiles],
                       "correlation": _round(self.corr, 4)},
            "residuals": {"features": [f.name for f in RESIDUAL_FEATURES], "values": _round(self.residuals, 4)},
            "workinggroups": self.workinggroups,
            "tasks_per_dataset": self.tasks_per_dataset.astype(int).tolist(),
            "user_tasks": self.user_tasks.astype(int).tolist(),
        }


def _round(a: np.ndarray, digits: int) -> Any:
    """Significant-digit rounding for JSON (keeps files small and byte-stable)."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(a != 0, np.floor(np.log10(np.abs(np.where(a != 0, a, 1.0)))), 0.0)
    scale = 10.0 ** (digits - 1 - mag)
    return (np.round(a * scale) / scale).tolist()


@dataclass
class WorkloadModel:
    """A fitted generative workload model: per-family parameters and a training summary."""

    categories: list[CategoryModel]
    training: dict[str, Any]
    absent: list[str]
    """Job features the records had no values for (sampled as neutral defaults)."""

    def families(self) -> list[tuple[str, str]]:
        """The distinct (prodsourcelabel, processingtype) of the strata, in order of first appearance."""
        return list(dict.fromkeys(c.family for c in self.categories))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION, "gridtwin_version": __version__, "schema": _schema_json(),
            "training": self.training, "absent_features": self.absent,
            "categories": [c.to_json() for c in self.categories],
        }


def _infer_types(label: str, ptype: str) -> tuple[str, str]:
    """(output_type, input_type): the built-in family's with the same labels, else NTUP/DAOD for user
    analysis and AOD/HITS for production."""
    for c in CATEGORIES:
        if (c.prodsourcelabel, c.processingtype) == (label, ptype):
            return c.output_type, c.input_type or "DATA"
    return ("NTUP", "DAOD") if label == "user" else ("AOD", "HITS")


def fit_workload(jobs: pa.Table, sites: pa.Table | None = None, *, seed: int = 0, source: str = "jobs table",
                 window: tuple[float, float] | None = None) -> WorkloadModel:
    """Fit the generative model on a jobs table (simulated run, import folder or any JOBS-like table).

    ``window`` (start, end in s since 1970) is the period the tasks arrived in when it is known (a run
    folder's ``records_window``); by default it is the clock hours from the first to the last arrival."""
    rec = extract_records(jobs, sites, source)
    return fit_records(rec, seed=seed, source=source, window=window)


def fit_records(rec: JobRecords, *, seed: int = 0, source: str = "jobs table",
                window: tuple[float, float] | None = None) -> WorkloadModel:
    """Fit the model on extracted records (see ``extract_records`` and ``fit_workload``)."""
    rng = np.random.default_rng(seed)
    n_tasks = len(rec.task_keys)
    notes = list(rec.notes)
    f = rec.features
    arrival, task_cat = task_arrivals(rec)
    seen = ~np.isnan(arrival)
    if (~seen).any():
        notes.append(f"{int((~seen).sum())} tasks without a creation time do not count for arrivals")
    hours = arrival_hours(rec, window)
    h_first = int(hours[0])
    if window is not None:
        hour_of = np.floor(arrival[seen] / 3600.0)
        late = int(((hour_of < hours[0]) | (hour_of > hours[-1])).sum())
        if late:
            notes.append(f"{late} tasks had their first job created outside the workload's {len(hours)} h (JEDI "
                         "generated them late): they count in their hour of day")
    exposure = np.bincount(hours % 24, minlength=24).astype(np.float64)
    days = len(hours) / 24.0
    if len(hours) < 24:
        notes.append(f"the records cover {len(hours)} hours, less than a day: hours of day not seen get the "
                     "family's mean rate")
    elif (exposure == 0).any():
        notes.append("some hours of day are not covered: they get the family's mean rate")
    task_hod = np.where(seen, np.floor(np.nan_to_num(arrival) / 3600.0) % 24, -1).astype(np.int64)
    # --- task sizes: first attempts (the jobs JEDI generated); else the finished jobs
    n_first = np.bincount(rec.task[rec.first], minlength=n_tasks)
    n_fin = np.bincount(rec.task[rec.finished], minlength=n_tasks)
    njobs = np.where(n_first > 0, n_first, np.maximum(n_fin, 1)).astype(np.float64)
    # --- payload features: task medians over finished jobs
    fin = rec.finished
    tf = rec.task[fin]
    values = {k: v[fin] for k, v in f.items()}
    values["work_per_core"] = values["work_hs06s"] / values["corecount"]
    med = {k: group_median(tf, values[k], n_tasks) for k in
           ("work_per_core", "maxrss", "nevents", "inputfilebytes", "ninputdatafiles", "outputfilebytes", "cpu_eff",
            "corecount")}
    fit_task = n_fin > 0
    fit_task &= ~np.isnan(med["work_per_core"])
    prio = group_median(rec.task, rec.priority, n_tasks)
    wg_task = _mode_str(rec.task, rec.workinggroup, n_tasks)
    # per-task corecount: the cores of its finished jobs (any row if none)
    cores_any = group_median(rec.task, f["corecount"], n_tasks)
    task_cores = np.where(np.isnan(med["corecount"]), cores_any, med["corecount"])
    # --- defaults for features the records lack
    defaults = {"maxrss": DEFAULT_RSS_KB_PER_CORE * task_cores, "nevents": np.zeros(n_tasks),
                "cpu_eff": np.full(n_tasks, 1.0)}
    for name, default in defaults.items():
        if name in rec.absent:
            med[name] = default
    resid_all = _residuals(rec, tf, values, med)
    trans = _mode_str(rec.category, rec.transformation, len(rec.categories))
    gshare = _mode_str(rec.category, rec.gshare, len(rec.categories))
    ds_groups = _tasks_per_dataset(rec, n_tasks)
    user_of_task = _mode_str(rec.task, rec.produsername, n_tasks)

    cats: list[CategoryModel] = []
    for ci, (label, ptype) in enumerate(rec.categories):
        in_cat = task_cat == ci
        fam_fit = np.flatnonzero(in_cat & fit_task)
        if len(fam_fit) == 0:
            notes.append(f"family {label}/{ptype}: no task with a finished job; not modelled "
                         f"({int(in_cat.sum())} tasks dropped)")
            continue
        users = Counter(user_of_task[t] for t in np.flatnonzero(in_cat))
        users.pop(None, None)
        user_counts = np.array(sorted(users.values(), reverse=True), dtype=np.int64)
        out_t, in_t = _infer_types(label, ptype)
        for cores, ts, members in _strata(task_cores, fam_fit, np.flatnonzero(in_cat & seen)):
            counts = np.bincount(task_hod[members], minlength=24).astype(np.float64)
            rate = np.where(exposure > 0, counts / np.maximum(exposure, 1.0), counts.sum() / len(hours))

            def fill(v: np.ndarray, fallback: float, ts: np.ndarray = ts) -> np.ndarray:
                x = v[ts]
                good = ~np.isnan(x)
                return np.where(good, x, np.median(x[good]) if good.any() else fallback)

            wgs = [wg_task[t] for t in ts]
            wg_count = Counter(wgs)
            wg_names = sorted(wg_count, key=lambda w: (-wg_count[w], w or ""))
            wg_pos = {w: i for i, w in enumerate(wg_names)}
            wg_code = np.array([wg_pos[w] for w in wgs], dtype=np.float64)
            table = np.column_stack([
                njobs[ts], task_cores[ts], fill(med["work_per_core"], 0.0),
                fill(med["maxrss"], DEFAULT_RSS_KB_PER_CORE), fill(med["nevents"], 0.0),
                fill(med["inputfilebytes"], 0.0), fill(med["ninputdatafiles"], 0.0), fill(med["outputfilebytes"], 0.0),
                fill(med["cpu_eff"], 1.0), fill(prio, 1000.0 if label == "user" else 900.0), wg_code,
            ])
            in_stratum = np.zeros(n_tasks, dtype=bool)
            in_stratum[ts] = True
            rows = np.flatnonzero(in_stratum[tf])
            if len(rows) > MAX_RESIDUALS:
                rows = np.sort(rng.choice(rows, MAX_RESIDUALS, replace=False))
            cats.append(CategoryModel(
                prodsourcelabel=label, processingtype=ptype, transformation=trans[ci] or "unknown",
                gshare=gshare[ci] or ("User Analysis" if label == "user" else "unknown"), output_type=out_t,
                input_type=in_t, cores=cores, n_tasks=len(members), n_fit_tasks=len(ts),
                n_jobs=int(njobs[members].sum()), rate_per_hour=rate,
                quantiles=[_quantile_grid(table[:, j]) for j in range(table.shape[1])],
                corr=_copula_correlation(table), residuals=resid_all[rows], workinggroups=wg_names,
                tasks_per_dataset=ds_groups.get(ci, np.zeros(0, dtype=np.int64)), user_tasks=user_counts,
            ))
    if not cats:
        raise InputError(f"{source}: no family has a task with a finished job")
    t0 = datetime.fromtimestamp(h_first * 3600.0, tz=UTC)
    training = {
        "source": source, "rows": rec.n, "first_attempt_rows": int(rec.first.sum()),
        "finished_rows": int(rec.finished.sum()), "tasks": n_tasks, "fit_tasks": int(fit_task.sum()),
        "window_start": t0.isoformat().replace("+00:00", "Z"), "hours": len(hours), "days": round(days, 4),
        "window_from": "the records' stated workload period" if window is not None else "first to last arrival",
        "categories": len(cats), "seed": seed, "notes": notes,
    }
    return WorkloadModel(categories=cats, training=training, absent=list(rec.absent))


def _strata(task_cores: np.ndarray, fit: np.ndarray,
            seen: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """A family's tasks split by core count: (cores, tasks to fit on, tasks whose arrivals count) per
    stratum. A core count with at least ``MIN_STRATUM_TASKS`` fitted tasks is a stratum of its own; the
    rest share one with cores 0 (mixed, corecount drawn by the copula). A task that only arrived (no
    finished job) counts in its core count's stratum, else the mixed one, else the largest."""
    values, counts = np.unique(task_cores[fit], return_counts=True)
    own = [int(v) for v, c in zip(values, counts, strict=True) if c >= MIN_STRATUM_TASKS]
    if len(values) == 1:
        own = [int(values[0])]
    keys: list[int] = own + ([0] if len(own) < len(values) else [])
    key_fit = np.where(np.isin(task_cores[fit], own), task_cores[fit], 0).astype(np.int64)
    largest = keys[int(np.argmax([np.sum(key_fit == k) for k in keys]))]
    key_seen = np.where(np.isin(task_cores[seen], own), task_cores[seen], 0 if 0 in keys else largest).astype(np.int64)
    return [(k, fit[key_fit == k], seen[key_seen == k]) for k in keys]


def _residuals(rec: JobRecords, tf: np.ndarray, values: dict[str, np.ndarray],
               med: dict[str, np.ndarray]) -> np.ndarray:
    """Residual vectors of the finished jobs (rows in finished order): log1p(job) - log1p(task median)
    (plain difference for cpu_eff); 0 where either side is unknown."""
    cols = []
    for feat in RESIDUAL_FEATURES:
        job = values[feat.name]
        task = med[feat.name][tf]
        log = feat.scale == "log"
        r = np.log1p(np.maximum(job, 0.0)) - np.log1p(np.maximum(task, 0.0)) if log else job - task
        if feat.name in rec.absent:
            r = np.zeros_like(r)
        cols.append(np.where(np.isnan(r), 0.0, r))
    return np.column_stack(cols)


def _tasks_per_dataset(rec: JobRecords, n_tasks: int) -> dict[int, np.ndarray]:
    """Per category: how many of its tasks (with input) read each input dataset, from proddblock."""
    pairs: dict[int, dict[str, set[int]]] = {}
    nin = rec.features["ninputdatafiles"]
    for t, c, ds, k in zip(rec.task.tolist(), rec.category.tolist(), rec.proddblock, nin.tolist(), strict=True):
        if ds is not None and k == k and k > 0:
            pairs.setdefault(c, {}).setdefault(ds, set()).add(t)
    return {c: np.array(sorted((len(s) for s in by.values()), reverse=True), dtype=np.int64)
            for c, by in pairs.items()}


# ================================================================== save / load


def save_model(model: WorkloadModel, path: Path) -> None:
    """Write the model as JSON (deterministic bytes for the same model)."""
    text = json.dumps(model.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def load_model(path: Path) -> WorkloadModel:
    """Read a model written by ``save_model``; InputError naming the field when the file is not one, has
    another version or a feature schema this gridtwin does not know."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (a workload model JSON was expected)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a JSON file ({e})") from None
    return model_from_json(data, str(path))


def model_from_json(data: Any, where: str = "model") -> WorkloadModel:
    """Build a model from its JSON form, checking format, version, schema and array shapes."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{where}: not a gridtwin workload model ('format' is {got!r}, expected {FORMAT!r})")
    if data.get("version") != VERSION:
        raise InputError(f"{where}: workload model version {data.get('version')!r}; this gridtwin reads version "
                         f"{VERSION}")
    expected = _schema_json()
    schema = data.get("schema")
    if not isinstance(schema, dict):
        raise InputError(f"{where}: 'schema' missing (the feature schema the model was fitted with)")
    for block, feats in expected.items():
        if schema.get(block) != feats:
            got = [x.get("name") if isinstance(x, dict) else x for x in schema.get(block) or []]
            raise InputError(f"{where}: schema.{block} does not match this gridtwin's: the model has {got}, "
                             f"expected {[x['name'] for x in feats]} (with the same kinds and units)")
    try:
        cats = [_category_from_json(c, f"{where}: categories[{i}]") for i, c in enumerate(data["categories"])]
        training = dict(data["training"])
        absent = [str(a) for a in data["absent_features"]]
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{where}: malformed workload model ({type(e).__name__}: {e})") from None
    if not cats:
        raise InputError(f"{where}: 'categories' is empty")
    return WorkloadModel(categories=cats, training=training, absent=absent)


def _category_from_json(c: dict[str, Any], where: str) -> CategoryModel:
    d, r = len(TASK_FEATURES), len(RESIDUAL_FEATURES)
    cop = c["copula"]
    quantiles = [np.asarray(q, dtype=np.float64) for q in cop["quantiles"]]
    corr = np.asarray(cop["correlation"], dtype=np.float64)
    resid = np.asarray(c["residuals"]["values"], dtype=np.float64).reshape(-1, r)
    rate = np.asarray(c["rate_per_hour"], dtype=np.float64)
    if len(quantiles) != d or any(len(q) == 0 or not np.isfinite(q).all() for q in quantiles):
        raise InputError(f"{where}.copula.quantiles: {d} non-empty finite grids expected")
    if corr.shape != (d, d) or not np.isfinite(corr).all():
        raise InputError(f"{where}.copula.correlation: a {d} x {d} finite matrix expected, got {corr.shape}")
    if rate.shape != (24,) or (rate < 0).any() or not np.isfinite(rate).all():
        raise InputError(f"{where}.rate_per_hour: 24 finite non-negative rates expected")
    if len(resid) == 0:
        raise InputError(f"{where}.residuals.values: an empty residual pool")
    wgs = list(c["workinggroups"])
    if not wgs or quantiles[-1].max() >= len(wgs) or quantiles[-1].min() < 0:
        raise InputError(f"{where}.workinggroups: the copula's workinggroup codes do not index it")
    return CategoryModel(
        prodsourcelabel=str(c["prodsourcelabel"]), processingtype=str(c["processingtype"]),
        transformation=str(c["transformation"]), gshare=str(c["gshare"]), output_type=str(c["output_type"]),
        input_type=str(c["input_type"]), cores=int(c["cores"]), n_tasks=int(c["n_tasks"]),
        n_fit_tasks=int(c["n_fit_tasks"]), n_jobs=int(c["n_jobs"]), rate_per_hour=rate, quantiles=quantiles,
        corr=corr, residuals=resid, workinggroups=wgs,
        tasks_per_dataset=np.asarray(c["tasks_per_dataset"], dtype=np.int64),
        user_tasks=np.asarray(c["user_tasks"], dtype=np.int64),
    )

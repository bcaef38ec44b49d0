"""Resource-requirement predictors: wall time, CPU time per event, maximum RSS and output size from what is
known when a job is submitted, each as a median and a safe upper quantile.

Per target, gradient-boosted trees (LightGBM) learn the log of the target. Cross-validation is grouped by
task, so no task's jobs leak across folds: every metric is computed on out-of-fold predictions, what a
model would have said without the job's task. The saved model is one booster trained on all jobs.
The upper quantile is conformal (Mondrian split-conformal on the out-of-fold log residuals, per
processing type when each has enough jobs): its coverage holds whatever the trees get wrong. The
scout baseline (``scouts.py``) is evaluated on the same jobs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from gridtwin import __version__
from gridtwin.errors import InputError
from gridtwin.ml.features import (
    REFERENCE_COREPOWER,
    TARGETS,
    FeatureSchema,
    check_required,
    feature_matrix,
    infer_schema,
    site_columns,
    target_values,
    task_groups,
)
from gridtwin.ml.metrics import metrics_with_ci
from gridtwin.ml.scouts import scout_baseline

FORMAT = "gridtwin-resource-model"
FORMAT_VERSION = 1
MIN_JOBS_PER_CLASS = 200
"""A processing type gets its own conformal offset only with at least this many out-of-fold residuals..."""
MIN_TASKS_PER_CLASS = 20
"""... from at least this many tasks (the residuals of one task move together)."""
MIN_TRAIN_JOBS = 10
SMALL_DATA = 50_000
"""Below this many rows a booster trains on one thread: OpenMP's thread barriers cost more than they save,
and far more on a busy machine."""


def _lgb_params(n_rows: int, seed: int) -> dict[str, Any]:
    return {
        "objective": "regression", "learning_rate": 0.1, "num_leaves": 31, "max_bin": 63,
        "min_data_in_leaf": int(min(100, max(3, n_rows // 50))), "min_data_in_bin": 1,
        "bagging_fraction": 0.7 if n_rows > 50_000 else 1.0, "bagging_freq": 1 if n_rows > 50_000 else 0,
        "lambda_l2": 1.0, "num_threads": 0 if n_rows >= SMALL_DATA else 1, "deterministic": True,
        "force_row_wise": True, "seed": seed, "verbose": -1,
    }


@dataclass
class TargetModel:
    """The fitted model of one target: fold boosters (averaged in log space) and conformal offsets."""

    boosters: list[Any]
    offsets: dict[str, float]
    """Log-space offset added to the median for the upper quantile, per class of ``class_feature``."""
    default_offset: float
    n_train: int

    def predict_log(self, x: np.ndarray) -> np.ndarray:
        return np.mean([b.predict(x) for b in self.boosters], axis=0)


@dataclass
class ResourceModel:
    """Predictors of several targets sharing one feature schema."""

    schema: FeatureSchema
    quantile: float
    targets: dict[str, TargetModel]
    class_feature: str | None
    trained_on: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def predict(self, jobs: pa.Table, sites: pa.Table | None = None, source: str = "jobs",
                corepower: np.ndarray | None = None, site_class: str | None = None
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per target, the (median, upper) predictions per job in the site's units (wall and CPU times at
        the job's ``corepower``: from ``sites`` by ``computingsite``, or given, or a 10-HS06 core);
        ``site_class`` sets every job's tier (for requests made before brokerage chooses a site)."""
        tier, cp = site_columns(jobs, sites)
        if site_class is not None:
            tier = pa.array([site_class] * jobs.num_rows, pa.string())
        if corepower is not None:
            cp = np.asarray(corepower, dtype=np.float64)
        x = feature_matrix(jobs, self.schema, tier, source)
        cls = self._classes(jobs, tier)
        out = {}
        for name, tm in self.targets.items():
            med_log = tm.predict_log(x)
            off = np.array([tm.offsets.get(c, tm.default_offset) for c in cls.tolist()]) if self.class_feature \
                else np.full(len(med_log), tm.default_offset)
            scale = REFERENCE_COREPOWER / cp if TARGETS[name].per_corepower else 1.0
            out[name] = (np.exp(med_log) * scale, np.exp(med_log + off) * scale)
        return out

    def _classes(self, jobs: pa.Table, tier: pa.Array) -> np.ndarray:
        if self.class_feature is None:
            return np.full(jobs.num_rows, "", dtype=object)
        return _class_values(jobs, self.class_feature, tier)

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> None:
        """Write the model as JSON: format and version, feature schema, targets, boosters as LightGBM text."""
        doc = {
            "format": FORMAT, "version": FORMAT_VERSION, "gridtwin_version": __version__,
            "features": self.schema.to_json(), "quantile": self.quantile, "class_feature": self.class_feature,
            "trained_on": self.trained_on,
            "targets": {n: {"unit": TARGETS[n].unit, "normalised_to_corepower": TARGETS[n].per_corepower,
                            "n_train": t.n_train, "offsets": t.offsets, "default_offset": t.default_offset,
                            "boosters": [b.model_to_string() for b in t.boosters]}
                        for n, t in self.targets.items()},
            "metrics": self.metrics,
        }
        Path(path).write_text(json.dumps(doc, indent=1, sort_keys=True, allow_nan=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> ResourceModel:
        """Read a model written by :meth:`save`; a file of another format or version is a clear error."""
        import lightgbm as lgb

        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{path}: not a readable resource model ({e})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise InputError(f"{path}: not a gridtwin resource model (format {FORMAT!r} expected; "
                             f"`gridtwin ml train-resources` writes one)")
        if doc.get("version") != FORMAT_VERSION:
            raise InputError(f"{path}: resource model format version {doc.get('version')!r}, this gridtwin reads "
                             f"version {FORMAT_VERSION}; train it again")
        try:
            targets = {n: TargetModel([lgb.Booster(model_str=s) for s in t["boosters"]],
                                      {k: float(v) for k, v in t["offsets"].items()}, float(t["default_offset"]),
                                      int(t["n_train"])) for n, t in doc["targets"].items()}
            unknown = [n for n in targets if n not in TARGETS]
            if unknown:
                raise KeyError(f"unknown target(s) {unknown}")
            return cls(FeatureSchema.from_json(doc["features"]), float(doc["quantile"]), targets,
                       doc.get("class_feature"), doc.get("trained_on", {}), doc.get("metrics", {}))
        except (KeyError, TypeError, ValueError, lgb.basic.LightGBMError) as e:
            raise InputError(f"{path}: damaged resource model ({e})") from None


def _class_values(jobs: pa.Table, name: str, tier: pa.Array) -> np.ndarray:
    col = tier if name == "tier" else jobs[name] if name in jobs.column_names else pa.nulls(jobs.num_rows)
    return np.asarray([v if v is not None else "" for v in col.cast(pa.string()).to_pylist()], dtype=object)


def _folds(groups: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A fold per job: tasks shuffled, then dealt round-robin into ``k`` folds."""
    uniq = np.unique(groups)
    fold_of_group = np.empty(len(uniq), dtype=np.int64)
    fold_of_group[rng.permutation(len(uniq))] = np.arange(len(uniq)) % k
    return fold_of_group[np.searchsorted(uniq, groups)]


def _cap(rows: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """``rows``, or a sorted random subset of ``max_rows`` of them."""
    if len(rows) <= max_rows:
        return rows
    return np.sort(rng.choice(rows, size=max_rows, replace=False))


def _fit(x: np.ndarray, y: np.ndarray, rows: np.ndarray, schema: FeatureSchema, rounds: int, seed: int) -> Any:
    """One LightGBM booster on ``rows`` of (x, y)."""
    import lightgbm as lgb

    data = lgb.Dataset(x[rows], y[rows], categorical_feature=schema.categorical_indices or "auto",
                       params={"max_bin": 63, "min_data_in_bin": 1, "verbose": -1}, free_raw_data=True)
    return lgb.train(_lgb_params(len(rows), seed), data, num_boost_round=rounds)


def _conformal_offset(scores: np.ndarray, q: float) -> float:
    """The finite-sample conformal quantile of ``scores`` at level ``q``."""
    n = len(scores)
    k = math.ceil((n + 1) * q)  # the k-th smallest score; with too few scores (k > n), the largest
    return float(np.sort(scores)[min(k, n) - 1])


@dataclass
class TrainResult:
    model: ResourceModel
    metrics: dict[str, Any]
    notes: list[str]
    oof: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    """Per target: actual, out-of-fold median and upper prediction per job (site units), for plots."""


def train_resources(jobs: pa.Table, sites: pa.Table | None = None, *, targets: Sequence[str] | None = None,
                    quantile: float = 0.95, folds: int = 5, seed: int = 0, scouts: int = 10,
                    waste_factor: float = 2.0, n_boot: int = 200, rounds: int = 100, max_rows: int = 250_000,
                    source: str = "jobs",
                    progress: Callable[[str], None] | None = None) -> TrainResult:
    """Train the predictors of ``targets`` (all four by default) on the finished jobs of ``jobs``;
    cross-validated metrics of the predictor and of the scout baseline, with bootstrap intervals. Each
    booster learns from at most ``max_rows`` jobs drawn at random (trees gain little beyond that, and
    1M records then train in about a minute); every job is predicted out of fold."""
    if not 0.5 < quantile < 1.0:
        raise InputError(f"quantile: a level in (0.5, 1) was expected, got {quantile}")
    if folds < 2:
        raise InputError(f"folds: at least 2 were expected, got {folds}")
    check_required(jobs, source)
    asked = list(targets) if targets else list(TARGETS)
    bad = [t for t in asked if t not in TARGETS]
    if bad:
        raise InputError(f"unknown target(s) {', '.join(bad)} (known: {', '.join(TARGETS)})")
    if "jobstatus" in jobs.column_names:
        finished = np.asarray(jobs["jobstatus"].cast(pa.string()).to_pylist(), dtype=object) == "finished"
        jobs = jobs.filter(pa.array(finished))
    if jobs.num_rows == 0:
        raise InputError(f"{source}: no finished jobs to learn from")
    notes: list[str] = []
    tier, cp = site_columns(jobs, sites)
    schema, feat_notes = infer_schema(jobs, tier)
    notes += feat_notes
    x = feature_matrix(jobs, schema, tier, source)
    groups = task_groups(jobs)
    class_feature = next((c for c in ("processingtype", "prodsourcelabel") if c in schema.names), None)
    classes = _class_values(jobs, class_feature, tier) if class_feature else np.full(jobs.num_rows, "", object)
    order_key = (jobs["pandaid"].cast(pa.float64()).to_numpy(zero_copy_only=False)
                 if "pandaid" in jobs.column_names else np.arange(jobs.num_rows, dtype=np.float64))
    order_key = np.where(np.isfinite(order_key), order_key, np.inf)
    rng = np.random.default_rng(seed)
    fitted: dict[str, TargetModel] = {}
    oof_out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    metrics: dict[str, Any] = {}
    for name in asked:
        y_all = target_values(jobs, cp, name)
        ok = np.isfinite(y_all)
        n = int(ok.sum())
        if n < MIN_TRAIN_JOBS:
            msg = f"target {name}: {n} finished jobs with a value (at least {MIN_TRAIN_JOBS} are needed)"
            if targets:
                raise InputError(f"{source}: {msg}")
            notes.append(msg + ", not trained")
            continue
        if progress:
            progress(f"{name}: {n:,} jobs")
        xs, ys, gs, cls = x[ok], np.log(y_all[ok]), groups[ok], classes[ok]
        k = min(folds, len(np.unique(gs)))
        if k < 2:
            msg = f"target {name}: all its jobs belong to one task; grouped cross-validation needs at least two"
            if targets:
                raise InputError(f"{source}: {msg}")
            notes.append(msg + ", not trained")
            continue
        fold = _folds(gs, k, rng)
        oof = np.empty(n)
        for f in range(k):
            tr = np.flatnonzero(fold != f)
            b = _fit(xs, ys, _cap(tr, max_rows, rng), schema, rounds, seed + f)
            oof[fold == f] = b.predict(xs[fold == f])
        final = _fit(xs, ys, _cap(np.arange(n), max_rows, rng), schema, rounds, seed + k)
        scores = ys - oof
        default = _conformal_offset(scores, quantile)
        offsets = {}
        if class_feature:
            for c in np.unique(cls).tolist():
                sel = cls == c
                if sel.sum() >= MIN_JOBS_PER_CLASS and len(np.unique(gs[sel])) >= MIN_TASKS_PER_CLASS:
                    offsets[c] = _conformal_offset(scores[sel], quantile)
        fitted[name] = TargetModel([final], offsets, default, n)
        off = np.array([offsets.get(c, default) for c in cls.tolist()])
        y = np.exp(ys)
        scale = REFERENCE_COREPOWER / cp[ok] if TARGETS[name].per_corepower else np.ones(n)
        y_site, med_site, up_site = y * scale, np.exp(oof) * scale, np.exp(oof + off) * scale
        m: dict[str, Any] = {"unit": TARGETS[name].unit, "jobs": n, "tasks": len(np.unique(gs)), "folds": k,
                             "predictor": metrics_with_ci(y_site, med_site, up_site, gs, waste_factor, rng, n_boot)}
        usable, b_med, b_up, _ = scout_baseline(y, gs, order_key[ok], scouts)
        m["scout_baseline"] = {"scouts": scouts, "jobs": int(usable.sum()),
                               "tasks": len(np.unique(gs[usable]))}
        if usable.any():
            u = usable
            m["scout_baseline"]["metrics"] = metrics_with_ci(
                y_site[u], b_med[u] * scale[u], b_up[u] * scale[u], gs[u], waste_factor, rng, n_boot)
            m["predictor_on_baseline_jobs"] = metrics_with_ci(
                y_site[u], med_site[u], up_site[u], gs[u], waste_factor, rng, n_boot)
        else:
            notes.append(f"target {name}: no task has more than {scouts} finished jobs, so the scout baseline "
                         f"has nothing to predict")
        metrics[name] = m
        oof_out[name] = (y_site, med_site, up_site)
    if not fitted:
        raise InputError(f"{source}: no target could be trained: " + "; ".join(n for n in notes
                                                                                if n.startswith("target")))
    model = ResourceModel(schema, quantile, fitted, class_feature,
                          {"jobs": int(jobs.num_rows), "quantile": quantile, "folds": folds, "seed": seed,
                           "scouts": scouts, "waste_factor": waste_factor, "max_rows": max_rows,
                           "rounds": rounds}, metrics)
    return TrainResult(model, metrics, notes, oof_out)


def evaluate(model: ResourceModel, jobs: pa.Table, sites: pa.Table | None = None, *, waste_factor: float = 2.0,
             source: str = "jobs") -> dict[str, dict[str, float]]:
    """Point metrics of ``model`` on the finished jobs of ``jobs`` (held-out data), per target."""
    from gridtwin.ml.metrics import point_metrics

    if "jobstatus" in jobs.column_names:
        finished = np.asarray(jobs["jobstatus"].cast(pa.string()).to_pylist(), dtype=object) == "finished"
        jobs = jobs.filter(pa.array(finished))
    _, cp = site_columns(jobs, sites)
    preds = model.predict(jobs, sites, source)
    out = {}
    for name, (med, up) in preds.items():
        y = target_values(jobs, cp, name)
        scale = REFERENCE_COREPOWER / cp if TARGETS[name].per_corepower else 1.0
        y = y * scale
        ok = np.isfinite(y)
        out[name] = point_metrics(y[ok], med[ok], up[ok], waste_factor) | {"jobs": int(ok.sum())}
    return out

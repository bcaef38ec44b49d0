"""What the resource predictors see: features known when a job is submitted, targets it reveals when it
ends, and the task a job belongs to (for cross-validation that keeps a task's jobs together).

Features and targets use the ``jobs`` table's own column names (DESIGN.md section 4), so simulated and
imported records work alike. The site class (``tier``) comes from the folder's ``sites`` table; wall and
CPU times are normalised to a 10-HS06 core with the site's ``corepower`` when it is known, as JEDI
quotes them (HS06-seconds), and turned back into seconds at the site when predicting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridtwin.errors import InputError
from gridtwin.workload.generator import REFERENCE_COREPOWER

__all__ = ["REFERENCE_COREPOWER", "TARGETS", "FeatureSchema", "Target"]
REQUIRED = ("corecount", "ninputdatafiles", "inputfilebytes")
"""Columns every training table must have: the submission-time facts every PanDA dump carries."""
CATEGORICAL = ("prodsourcelabel", "processingtype", "transformation", "workinggroup", "gshare", "tier")
NUMERIC = ("corecount", "nevents", "ninputdatafiles", "inputfilebytes")
MAX_CATEGORIES = 200
"""Rarer values of a categorical feature are pooled into "other" (keeps the model small and stable)."""


@dataclass(frozen=True)
class Target:
    """A quantity to predict: how to read it from the jobs table, and its unit."""

    name: str
    unit: str
    per_corepower: bool
    """Normalised to a 10-HS06 core for learning (wall and CPU times)."""


TARGETS: dict[str, Target] = {
    "walltime": Target("walltime", "s", True),
    "cputime_per_event": Target("cputime_per_event", "s/event", True),
    "maxrss": Target("maxrss", "kB", False),
    "outputfilebytes": Target("outputfilebytes", "B", False),
}


def _col(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column as float64 with nulls as NaN (all NaN when the column is absent)."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return table[name].cast(pa.float64()).to_numpy(zero_copy_only=False)


def site_columns(jobs: pa.Table, sites: pa.Table | None) -> tuple[pa.Array, np.ndarray]:
    """Per job: its queue's tier as a string (null when unknown) and its corepower (10 when unknown)."""
    n = jobs.num_rows
    if sites is None or "computingsite" not in jobs.column_names or not {"site", "tier"} <= set(sites.column_names):
        return pa.nulls(n, pa.string()), np.full(n, REFERENCE_COREPOWER)
    idx = pc.index_in(jobs["computingsite"], value_set=sites["site"]).to_numpy(zero_copy_only=False)
    idx = np.where(np.isnan(idx.astype(np.float64)), -1, idx).astype(np.int64)
    tiers = np.asarray(sites["tier"].cast(pa.string()).to_pylist(), dtype=object)
    tier = pa.array([tiers[i] if i >= 0 else None for i in idx.tolist()], pa.string())
    cp = np.full(n, REFERENCE_COREPOWER)
    if "corepower" in sites.column_names:
        site_cp = sites["corepower"].cast(pa.float64()).to_numpy(zero_copy_only=False)
        ok = idx >= 0
        cp[ok] = site_cp[idx[ok]]
    cp = np.where(np.isfinite(cp) & (cp > 0), cp, REFERENCE_COREPOWER)
    return tier, cp


def check_required(jobs: pa.Table, source: str, required: tuple[str, ...] = REQUIRED) -> None:
    """Raise if a required column is missing or has no value at all."""
    missing = [c for c in required if c not in jobs.column_names]
    if missing:
        raise InputError(f"{source}: required column(s) {', '.join(missing)} missing (the resource predictors "
                         f"need {', '.join(required)} in the jobs table)")
    empty = [c for c in required if jobs[c].null_count == jobs.num_rows and jobs.num_rows]
    if empty:
        raise InputError(f"{source}: required column(s) {', '.join(empty)} hold only nulls")


def target_values(jobs: pa.Table, cp: np.ndarray, name: str) -> np.ndarray:
    """The normalised target per job (NaN where it is unknown or not positive)."""
    if name == "walltime":
        y = _col(jobs, "wall_time") * cp / REFERENCE_COREPOWER
    elif name == "cputime_per_event":
        ev = _col(jobs, "nevents")
        with np.errstate(divide="ignore", invalid="ignore"):
            y = _col(jobs, "cpuconsumptiontime") * cp / REFERENCE_COREPOWER / np.where(ev > 0, ev, np.nan)
    else:
        y = _col(jobs, name)
    return np.where(np.isfinite(y) & (y > 0), y, np.nan)


def task_groups(jobs: pa.Table) -> np.ndarray:
    """A task key per job for grouped cross-validation: ``jeditaskid``; else the task name (the
    ``jobname`` before its last "/"); else ``destinationdblock``; else the job itself."""
    n = jobs.num_rows
    keys = np.full(n, None, dtype=object)
    if "jeditaskid" in jobs.column_names:
        tid = jobs["jeditaskid"].cast(pa.string()).to_pylist()
        keys = np.asarray(["t" + v if v is not None else None for v in tid], dtype=object)
    for col, fn in (("jobname", lambda s: "n" + s.rsplit("/", 1)[0]), ("destinationdblock", lambda s: "d" + s)):
        if col in jobs.column_names and any(k is None for k in keys):
            vals = jobs[col].cast(pa.string()).to_pylist()
            keys = np.asarray([k if k is not None or v is None else fn(v) for k, v in zip(keys, vals, strict=True)],
                              dtype=object)
    pid = (jobs["pandaid"].cast(pa.string()).to_pylist() if "pandaid" in jobs.column_names
           else [str(i) for i in range(n)])
    keys = np.asarray([k if k is not None else "p" + str(p) for k, p in zip(keys, pid, strict=True)], dtype=object)
    _, codes = np.unique(keys.astype(str), return_inverse=True)
    return codes.astype(np.int64)


@dataclass
class FeatureSchema:
    """The features a model was trained on: names, kinds and the category vocabularies."""

    names: list[str]
    kinds: list[str]
    vocab: dict[str, list[str]]

    def to_json(self) -> list[dict]:
        return [{"name": n, "kind": k, **({"categories": self.vocab[n]} if k == "categorical" else {})}
                for n, k in zip(self.names, self.kinds, strict=True)]

    @classmethod
    def from_json(cls, items: list[dict]) -> FeatureSchema:
        return cls([i["name"] for i in items], [i["kind"] for i in items],
                   {i["name"]: list(i["categories"]) for i in items if i["kind"] == "categorical"})

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, k in enumerate(self.kinds) if k == "categorical"]


def _string_column(jobs: pa.Table, name: str, tier: pa.Array) -> pa.Array:
    if name == "tier":
        return tier
    if name not in jobs.column_names:
        return pa.nulls(jobs.num_rows, pa.string())
    return jobs[name].cast(pa.string()).combine_chunks()


def infer_schema(jobs: pa.Table, tier: pa.Array) -> tuple[FeatureSchema, list[str]]:
    """The features present in ``jobs`` (a column that is absent or all null is left out), and notes."""
    names, kinds, vocab, notes = [], [], {}, []
    for name in CATEGORICAL:
        col = _string_column(jobs, name, tier)
        if col.null_count == len(col):
            notes.append(f"feature {name}: no values, not used")
            continue
        counts = pc.value_counts(col.drop_null()).to_pylist()
        counts.sort(key=lambda d: (-d["counts"], d["values"]))
        vocab[name] = [d["values"] for d in counts[:MAX_CATEGORIES]]
        if len(counts) > MAX_CATEGORIES:
            notes.append(f"feature {name}: {len(counts)} values, the {len(counts) - MAX_CATEGORIES} rarest pooled")
        names.append(name)
        kinds.append("categorical")
    for name in NUMERIC:
        if name not in jobs.column_names or jobs[name].null_count == jobs.num_rows:
            notes.append(f"feature {name}: no values, not used")
            continue
        names.append(name)
        kinds.append("numeric")
    return FeatureSchema(names, kinds, vocab), notes


def feature_matrix(jobs: pa.Table, schema: FeatureSchema, tier: pa.Array, source: str) -> np.ndarray:
    """The float matrix of ``schema``'s features (categories as codes, unknown values and nulls as NaN)."""
    missing = [n for n in schema.names if n != "tier" and n not in jobs.column_names]
    if missing:
        raise InputError(f"{source}: the model was trained with feature(s) {', '.join(missing)}, which this "
                         f"table lacks (expected columns: {', '.join(n for n in schema.names if n != 'tier')})")
    x = np.empty((jobs.num_rows, len(schema.names)), dtype=np.float64)
    for j, (name, kind) in enumerate(zip(schema.names, schema.kinds, strict=True)):
        if kind == "categorical":
            raw = jobs[name].type if name in jobs.column_names else pa.string()
            if pa.types.is_dictionary(raw):
                raw = raw.value_type
            if not (pa.types.is_string(raw) or pa.types.is_large_string(raw) or pa.types.is_null(raw)):
                raise InputError(f"{source}: column {name}: text was expected, got {raw}")
            col = _string_column(jobs, name, tier)
            code = pc.index_in(col, value_set=pa.array(schema.vocab[name], pa.string()))
            x[:, j] = code.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            try:
                x[:, j] = _col(jobs, name)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise InputError(f"{source}: column {name}: numbers were expected, got "
                                 f"{jobs[name].type}") from None
    return x

"""Job records read into per-job arrays for the workload model and its fidelity report.

A jobs table (a simulated run, an import of real PanDA records or any JOBS-like table) is checked and
reduced to what the model learns from: the task and family of every row, first and finished
attempts, creation times and the job features (``JOB_FEATURES``; ``work_hs06s`` is the CPU work, the
hidden load). Group statistics (per-task medians, modes, minima) and the tasks' arrivals and covered
hours are computed on these arrays. docs/ml_workload.md describes what is read from which column.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridtwin.errors import InputError
from gridtwin.workload.generator import REFERENCE_COREPOWER

REQUIRED_COLUMNS: dict[str, str] = {
    "creationtime": "task arrivals",
    "jobstatus": "finished attempts",
    "corecount": "cores per job",
    "cpuconsumptiontime": "CPU work per job",
    "ninputdatafiles": "input files per job",
    "inputfilebytes": "input bytes per job",
    "outputfilebytes": "output bytes per job",
}
"""Columns a jobs table must have, with what each is needed for."""


@dataclass(frozen=True)
class Feature:
    """One modelled quantity: its name (the jobs-table column where there is one), kind and unit."""

    name: str
    kind: str
    """``continuous`` (interpolated between observed quantiles), ``discrete`` or ``categorical``."""
    unit: str
    scale: str
    """``log`` (positive and heavy-tailed: compared and interpolated on a log scale) or ``linear``."""


JOB_FEATURES: tuple[Feature, ...] = (
    Feature("nevents", "discrete", "events", "log"),
    Feature("inputfilebytes", "continuous", "bytes", "log"),
    Feature("ninputdatafiles", "discrete", "files", "linear"),
    Feature("corecount", "discrete", "cores", "linear"),
    Feature("work_hs06s", "continuous", "HS06-s", "log"),
    Feature("maxrss", "continuous", "kB", "log"),
    Feature("outputfilebytes", "continuous", "bytes", "log"),
    Feature("cpu_eff", "continuous", "CPU s per wall s per core", "linear"),
)
"""Job-level features, as the fidelity report compares them; ``work_hs06s`` is the hidden load."""

MAIN_FEATURES = ("nevents", "inputfilebytes", "corecount", "work_hs06s", "maxrss")
"""The features the generator's fidelity target (KS <= 0.05) applies to."""

MIN_CPU_EFF = 0.05


# ================================================================== records -> per-job arrays


@dataclass
class JobRecords:
    """The job-level arrays the model learns from, extracted from a jobs table (one entry per row)."""

    task: np.ndarray
    """int64 index into ``task_keys``."""
    task_keys: list[str]
    category: np.ndarray
    """int64 index into ``categories``."""
    categories: list[tuple[str, str]]
    """(prodsourcelabel, processingtype) per category."""
    first: np.ndarray
    """bool: a first attempt (attemptnr 1 or null)."""
    finished: np.ndarray
    created_s: np.ndarray
    """float64 creation time, s since 1970 (NaN when null)."""
    features: dict[str, np.ndarray]
    """The job features (``JOB_FEATURES`` names), float64 with NaN for unknown."""
    priority: np.ndarray
    workinggroup: list[str | None]
    produsername: list[str | None]
    proddblock: list[str | None]
    transformation: list[str | None]
    gshare: list[str | None]
    absent: list[str]
    """Job features with no value on any finished row."""
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.task)


def _col(jobs: pa.Table, name: str) -> pa.ChunkedArray | None:
    return jobs.column(name) if name in jobs.column_names else None


def _num(jobs: pa.Table, name: str, source: str = "jobs table") -> np.ndarray:
    """A numeric column as float64 with NaN for null (all NaN when absent)."""
    col = _col(jobs, name)
    if col is None:
        return np.full(jobs.num_rows, np.nan)
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.timestamp("ms")).cast(pa.int64())
    try:
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise InputError(f"{source}: column {name!r}: a numeric column was expected, got {col.type} ({e})") from None


def _str(jobs: pa.Table, name: str) -> list[str | None]:
    col = _col(jobs, name)
    if col is None:
        return [None] * jobs.num_rows
    return pc.cast(col, pa.string()).to_pylist()


def _exe_seconds(jobs: pa.Table) -> np.ndarray:
    """Payload execution time per job: ``timeexe`` or the third field of ``pilottiming``, else NaN."""
    exe = _num(jobs, "timeexe")
    timing = _col(jobs, "pilottiming")
    if timing is not None and np.isnan(exe).any():
        padded = pc.binary_join_element_wise(pc.cast(timing, pa.string()), "||", "")  # at least three fields
        third = pc.list_element(pc.split_pattern(padded, "|"), 2)
        parsed = pc.cast(pc.if_else(pc.match_substring_regex(third, r"^\d+(\.\d+)?$"), third, None), pa.float64())
        exe = np.where(np.isnan(exe), parsed.to_numpy(zero_copy_only=False).astype(np.float64), exe)
    return exe


def extract_records(jobs: pa.Table, sites: pa.Table | None = None, source: str = "jobs table") -> JobRecords:
    """Check a jobs table and extract what the model learns from; ``source`` names it in messages.

    Raises InputError when a required column is missing, when no row has a creation time, or when no
    finished row has a CPU time or a core count (the payload cannot be learnt)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in jobs.column_names]
    if missing:
        need = ", ".join(f"{c!r} ({REQUIRED_COLUMNS[c]})" for c in missing)
        raise InputError(f"{source}: the jobs table lacks the required column(s) {need}")
    n = jobs.num_rows
    if n == 0:
        raise InputError(f"{source}: the jobs table has no rows")
    notes: list[str] = []

    def num(name: str) -> np.ndarray:
        return _num(jobs, name, source)

    # --- tasks: jeditaskid, else the task name (jobname before "/"), else one task per job
    taskid = num("jeditaskid")
    jobname = _str(jobs, "jobname")
    pandaid = num("pandaid")
    if not np.isnan(taskid).all():
        keys = [f"{int(t)}" if t == t else None for t in taskid]
    elif any(j is not None for j in jobname):
        keys = [j.rsplit("/", 1)[0] if j is not None else None for j in jobname]  # as ml.features.task_groups
        notes.append("no jeditaskid: tasks are the job names up to their last '/'")
    else:
        raise InputError(f"{source}: cannot group jobs into tasks: column 'jeditaskid' is "
                         f"{'null on every row' if 'jeditaskid' in jobs.column_names else 'missing'} "
                         "and there is no 'jobname' column")
    n_own = sum(k is None for k in keys)
    if n_own:
        keys = [k if k is not None else f"job:{int(p) if p == p else i}" for i, (k, p) in
                enumerate(zip(keys, pandaid, strict=True))]
        notes.append(f"{n_own} rows without a task key are tasks of their own")
    task_keys, task = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
    # --- categories
    label = _str(jobs, "prodsourcelabel")
    ptype = _str(jobs, "processingtype")
    inferred = 0
    for i, (lab, key) in enumerate(zip(label, keys, strict=True)):
        if lab is None and (key.startswith("user.") or key.startswith("group.")):
            label[i] = "user"
            inferred += 1
    if inferred:
        notes.append(f"{inferred} rows without prodsourcelabel whose task name starts with 'user.' or 'group.' "
                     "are taken as user analysis")
    pairs = [(lab or "unknown", pt or "unknown") for lab, pt in zip(label, ptype, strict=True)]
    cats = sorted(set(pairs))
    cat_index = {c: i for i, c in enumerate(cats)}
    category = np.array([cat_index[p] for p in pairs], dtype=np.int64)
    # --- attempts and status
    attempt = num("attemptnr")
    first = np.isnan(attempt) | (attempt == 1)
    status = _str(jobs, "jobstatus")
    finished = np.array([s == "finished" for s in status], dtype=bool)
    created = num("creationtime") / 1000.0
    if np.isnan(created).all():
        raise InputError(f"{source}: column 'creationtime' is null on every row (task arrivals cannot be learnt)")
    if not finished.any():
        raise InputError(f"{source}: no row has jobstatus 'finished' (payload features are learnt from "
                         "finished attempts)")
    # --- CPU work: CPU time x the queue's HS06 per core (10 if unknown)
    cores = num("corecount")
    if np.isnan(cores[finished]).all():
        raise InputError(f"{source}: column 'corecount' is null on every finished row")
    if np.isnan(cores).any():
        notes.append(f"{int(np.isnan(cores).sum())} rows with a null corecount count as 1 core")
        cores = np.where(np.isnan(cores), 1.0, cores)
    cores = np.maximum(cores, 1.0)
    corepower = np.full(n, REFERENCE_COREPOWER)
    site = _str(jobs, "computingsite")
    if sites is not None and {"site", "corepower"} <= set(sites.column_names):
        cp = dict(zip(sites.column("site").to_pylist(), sites.column("corepower").to_pylist(), strict=True))
        corepower = np.array([cp.get(s) or REFERENCE_COREPOWER for s in site], dtype=np.float64)
    else:
        notes.append(f"no site table with corepower: CPU work = CPU time x {REFERENCE_COREPOWER:g} HS06 per core")
    cpu = num("cpuconsumptiontime")
    cpu = np.where(cpu >= 0, cpu, np.nan)  # negative CPU times are broken records
    work = cpu * corepower
    # PanDA's hs06sec is wall-clock based (wall x corepower x cores); x cpu_eff / cores it is CPU work
    alt = num("hs06sec") * num("cpu_eff") / cores
    work = np.where(np.isnan(work), alt, work)
    if np.isnan(work[finished]).all():
        raise InputError(f"{source}: column 'cpuconsumptiontime' is null on every finished row (and no "
                         "hs06sec with cpu_eff to fall back on): the CPU work cannot be learnt")
    # --- payload CPU efficiency per core: CPU time / (payload execution time x cores)
    exe = _exe_seconds(jobs)
    wall = num("wall_time")
    span = np.where(exe > 0, exe, wall)
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(span > 0, cpu / (span * cores), np.nan)
    eff = np.where(np.isnan(eff), eff, np.clip(eff, MIN_CPU_EFF, 1.0))
    feats = {
        "nevents": num("nevents"),
        "inputfilebytes": num("inputfilebytes"),
        "ninputdatafiles": num("ninputdatafiles"),
        "corecount": cores,
        "work_hs06s": work,
        "maxrss": num("maxrss"),
        "outputfilebytes": num("outputfilebytes"),
        "cpu_eff": eff,
    }
    absent = []
    for name, values in feats.items():
        fin = values[finished]
        if np.isnan(fin).all() or (name in ("nevents", "maxrss") and not (fin[~np.isnan(fin)] > 0).any()):
            absent.append(name)
    for name in ("inputfilebytes", "ninputdatafiles", "outputfilebytes"):
        if name in absent:
            raise InputError(f"{source}: column {name!r} is null on every finished row")
    if absent:
        notes.append("no values on finished rows for " + ", ".join(absent) + ": filled with neutral defaults")
    return JobRecords(
        task=task.astype(np.int64), task_keys=[str(k) for k in task_keys], category=category, categories=cats,
        first=first, finished=finished, created_s=created, features=feats, priority=num("currentpriority"),
        workinggroup=_str(jobs, "workinggroup"), produsername=_str(jobs, "produsername"),
        proddblock=_str(jobs, "proddblock"), transformation=_str(jobs, "transformation"), gshare=_str(jobs, "gshare"),
        absent=absent, notes=notes,
    )


# ================================================================== group statistics


def group_median(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of ``values`` per group ``0..n_groups-1``, ignoring NaN (NaN where a group has none)."""
    ok = ~np.isnan(values)
    g, v = group[ok], values[ok]
    order = np.lexsort((v, g))
    v = v[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    out = np.full(n_groups, np.nan)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = 0.5 * (v[lo] + v[hi])
    return out


def _mode_str(group: np.ndarray, values: list[str | None], n_groups: int) -> list[str | None]:
    """Most frequent non-null string per group (ties: the smallest), None when a group has none."""
    counts: list[dict[str, int]] = [{} for _ in range(n_groups)]
    for g, v in zip(group.tolist(), values, strict=True):
        if v is not None:
            counts[g][v] = counts[g].get(v, 0) + 1
    return [min(c, key=lambda k: (-c[k], k)) if c else None for c in counts]


def _group_min(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.full(n_groups, np.inf)
    ok = ~np.isnan(values)
    np.minimum.at(out, group[ok], values[ok])
    return np.where(np.isinf(out), np.nan, out)


# ================================================================== task arrivals and the hours covered


def task_arrivals(rec: JobRecords) -> tuple[np.ndarray, np.ndarray]:
    """Per task: its arrival (earliest creation of a first attempt, of any attempt if none; s since
    1970, NaN if unknown) and its category index."""
    n_tasks = len(rec.task_keys)
    arrival = _group_min(rec.task, np.where(rec.first, rec.created_s, np.nan), n_tasks)
    arrival = np.where(np.isnan(arrival), _group_min(rec.task, rec.created_s, n_tasks), arrival)
    task_cat = np.zeros(n_tasks, dtype=np.int64)
    task_cat[rec.task] = rec.category
    return arrival, task_cat


def arrival_hours(rec: JobRecords, window: tuple[float, float] | None = None) -> np.ndarray:
    """The clock hours (index since 1970) the records cover: those overlapping ``window``, else from
    the first to the last task arrival."""
    if window is not None:
        return np.arange(math.floor(window[0] / 3600.0), max(math.ceil(window[1] / 3600.0),
                                                              math.floor(window[0] / 3600.0) + 1))
    arrival, _ = task_arrivals(rec)
    return np.arange(math.floor(np.nanmin(arrival) / 3600.0), math.floor(np.nanmax(arrival) / 3600.0) + 1)


def records_window(path: Path) -> tuple[float, float] | None:
    """The hours a simulated run's workload arrived in, from the run folder's run.json (epoch and
    ``config.workload.duration_h``), as (start, end) in s since 1970; None for other records."""
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    try:
        meta = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        start = datetime.fromisoformat(str(meta["epoch"]).replace("Z", "+00:00")).timestamp()
        return start, start + float(meta["config"]["workload"]["duration_h"]) * 3600.0
    except (OSError, ValueError, KeyError, TypeError):
        return None

"""Sampling a ``Workload`` from a fitted workload model, and a workload as a jobs-like table.

``sample_workload`` draws tasks per stratum (arrivals with the fitted hourly profile, task vectors from
the Gaussian copula), their jobs (the task's medians moved by resampled residuals), what a broker sees
(derived from the task level only), users, working groups and input datasets. ``workload_jobs_table``
turns a workload into JOBS-schema rows for "train on synthetic" and the fidelity report. The model is
described in ``workload_model`` and docs/ml_workload.md.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.special import ndtr

from gridtwin.errors import InputError
from gridtwin.ml.job_records import MIN_CPU_EFF, Feature
from gridtwin.ml.workload_model import (
    DEFAULT_RSS_KB_PER_CORE,
    RESIDUAL_FEATURES,
    TASK_FEATURES,
    CategoryModel,
    WorkloadModel,
)
from gridtwin.record.schema import JOBS
from gridtwin.workload.categories import Category
from gridtwin.workload.generator import FIRST_TASKID, REFERENCE_COREPOWER
from gridtwin.workload.spec import Datasets, Workload

DEFAULT_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
DEFAULT_RAMCOUNT_MB = 2000
"""ATLAS's usual memory request per core; tasks asking for more go to high-memory queues."""
RAMCOUNT_MARGIN = 1.5
"""ramcount = max(default, task median RSS per core x margin, rounded up to 500 MB)."""
_DEFAULT_USERS = 1.0 / np.arange(1, 601) ** 0.8
"""User popularity when the records name no users: the built-in generator's Zipf law over 600 users."""


# ================================================================== sampling


def _inverse(q: np.ndarray, u: np.ndarray, feat: Feature) -> np.ndarray:
    """Values at probabilities ``u`` from a quantile grid: a step for discrete features, interpolation
    (on the log scale for log features, only between positive neighbours) for continuous ones."""
    k = len(q)
    step = q[np.clip((u * k).astype(np.int64), 0, k - 1)]
    if feat.kind != "continuous" or k == 1:
        return step
    x = np.clip(u * k - 0.5, 0.0, k - 1.0)
    i0 = np.floor(x).astype(np.int64)
    i1 = np.minimum(i0 + 1, k - 1)
    w = x - i0
    a, b = q[i0], q[i1]
    if feat.scale == "log":
        ok = (a > 0) & (b > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            inter = np.exp(np.log(np.where(ok, a, 1.0)) * (1 - w) + np.log(np.where(ok, b, 1.0)) * w)
        return np.where(ok, inter, step)
    return a * (1 - w) + b * w


def _copula_sample(cat: CategoryModel, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` task vectors (columns in ``TASK_FEATURES`` order)."""
    vals, vecs = np.linalg.eigh(cat.corr)
    factor = vecs * np.sqrt(np.clip(vals, 0.0, None))
    z = rng.standard_normal((n, len(TASK_FEATURES))) @ factor.T
    u = ndtr(z)
    return np.column_stack([_inverse(q, u[:, j], f) for j, (q, f) in enumerate(zip(cat.quantiles, TASK_FEATURES,
                                                                                    strict=True))])


def _hour_bins(duration_s: float, start_hour: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clock-aligned hour bins covering [0, duration): (start, end, UTC hour of day) per bin;
    ``start_hour`` is the hour of day (UTC, may be fractional) of time 0."""
    first = (math.ceil(start_hour) - start_hour) * 3600.0
    inner = np.arange(first if first > 0 else 3600.0, duration_s, 3600.0)
    edges = np.concatenate([[0.0], inner, [duration_s]])
    lo, hi = edges[:-1], edges[1:]
    hod = np.floor((start_hour + lo / 3600.0 + 1e-9) % 24).astype(np.int64)
    return lo, hi, hod


def _arrival_times(rate: np.ndarray, duration_s: float, start_hour: float, rng: np.random.Generator,
                   count: int | None = None) -> np.ndarray:
    """Sorted task arrivals with a rate constant within each UTC hour of day: a Poisson process, or
    exactly ``count`` arrivals spread with the same hourly profile."""
    lo, hi, hod = _hour_bins(duration_s, start_hour)
    mean = rate[hod] * (hi - lo) / 3600.0
    if count is None:
        counts = rng.poisson(mean)
    elif mean.sum() > 0:
        counts = rng.multinomial(count, mean / mean.sum())
    else:
        counts = rng.multinomial(count, (hi - lo) / duration_s)
    starts = np.repeat(lo, counts)
    return np.sort(starts + rng.random(len(starts)) * np.repeat(hi - lo, counts))


def _volume_sample(cat: CategoryModel, duration_s: float, start_hour: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Task vectors drawn until the family's expected job volume over the period is reached (the last
    task trimmed to hit it), and their arrivals with the hourly profile."""
    lo, hi, hod = _hour_bins(duration_s, start_hour)
    expected_tasks = float((cat.rate_per_hour[hod] * (hi - lo) / 3600.0).sum())
    target = round(expected_tasks * cat.n_jobs / max(cat.n_tasks, 1))
    mean_size = max(cat.n_jobs / max(cat.n_tasks, 1), 1.0)
    vec = np.zeros((0, len(TASK_FEATURES)))
    drawn = 0.0
    while drawn < target:
        more = _copula_sample(cat, max(16, int(2 * (target - drawn) / mean_size)), rng)
        vec = np.concatenate([vec, more])
        drawn += float(np.rint(more[:, 0]).clip(1).sum())
    if target <= 0:
        return np.zeros(0), vec
    sizes = np.rint(vec[:, 0]).clip(1)
    cut = int(np.searchsorted(np.cumsum(sizes), target)) + 1
    vec = vec[:cut]
    vec[-1, 0] = target - sizes[: cut - 1].sum()
    return _arrival_times(cat.rate_per_hour, duration_s, start_hour, rng, count=len(vec)), vec


def sample_workload(model: WorkloadModel, days: float, rng: np.random.Generator, *,
                    start_hour: float = 0.0, match_volume: bool = True) -> Workload:
    """Draw ``days`` days of tasks and jobs from the model; ``start_hour`` is the UTC hour of day at
    time 0 (so the daily cycle lines up with the epoch). With ``match_volume`` (the default) each
    family and core count gets exactly its expected number of jobs (tasks drawn until it is reached,
    the last one trimmed, as the built-in generator does), spread over the hours with the fitted
    profile; without it, task counts per hour are Poisson, so the volume and mix vary as days do."""
    if not days > 0:
        raise InputError(f"days must be > 0, got {days}")
    duration = float(days) * 86400.0
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for ci, cat in enumerate(model.categories):
        if match_volume:
            arr, vec = _volume_sample(cat, duration, start_hour, rng)
        else:
            arr = _arrival_times(cat.rate_per_hour, duration, start_hour, rng)
            vec = _copula_sample(cat, len(arr), rng)
        parts.append((np.full(len(arr), ci, dtype=np.int64), arr, vec))
    cat_t = np.concatenate([p[0] for p in parts])
    arrival = np.concatenate([p[1] for p in parts])
    vec = np.concatenate([p[2] for p in parts])
    order = np.lexsort((cat_t, arrival))
    return _build_workload(model, cat_t[order], arrival[order], vec[order], duration, rng)


def _build_workload(model: WorkloadModel, cat_t: np.ndarray, arrival: np.ndarray, vec: np.ndarray,
                    duration: float, rng: np.random.Generator) -> Workload:
    col = {f.name: vec[:, j] for j, f in enumerate(TASK_FEATURES)}
    n_tasks = len(cat_t)
    njobs = np.maximum(np.rint(col["njobs"]), 1).astype(np.int64)
    cores = np.maximum(np.rint(col["corecount"]), 1).astype(np.int64)
    first_job = np.cumsum(njobs) - njobs
    n_jobs = int(njobs.sum())
    task = np.repeat(np.arange(n_tasks, dtype=np.int64), njobs)
    cat_j = cat_t[task]
    # residual vectors, resampled from the family's pool
    res = np.zeros((n_jobs, len(RESIDUAL_FEATURES)))
    for ci, cat in enumerate(model.categories):
        rows = np.flatnonzero(cat_j == ci)
        if len(rows):
            res[rows] = cat.residuals[rng.integers(0, len(cat.residuals), len(rows))]
    r = {f.name: res[:, j] for j, f in enumerate(RESIDUAL_FEATURES)}

    def job_value(name: str) -> np.ndarray:
        base = np.maximum(col[name][task], 0.0)
        return np.maximum(np.expm1(np.log1p(base) + r[name]), 0.0)

    work_core = job_value("work_per_core")
    work = work_core * cores[task]
    rss = job_value("maxrss")
    nevents = np.rint(job_value("nevents")).astype(np.int64)
    inbytes = np.rint(job_value("inputfilebytes")).astype(np.int64)
    ninput = np.rint(job_value("ninputdatafiles")).astype(np.int64)
    # a job reads files iff it reads bytes
    ninput = np.where(inbytes > 0, np.maximum(ninput, 1), 0)
    outbytes = np.rint(job_value("outputfilebytes")).astype(np.int64)
    eff = np.clip(col["cpu_eff"][task] + r["cpu_eff"], MIN_CPU_EFF, 1.0)
    if "maxrss" in model.absent:
        rss = DEFAULT_RSS_KB_PER_CORE * cores[task].astype(np.float64)
    if "nevents" in model.absent:
        nevents = np.zeros(n_jobs, dtype=np.int64)
    if "cpu_eff" in model.absent:
        eff = np.ones(n_jobs)
    # what a broker sees: derived from the task level only
    med_rss_core_mb = np.maximum(col["maxrss"], 0.0) / cores / 1024.0
    ramcount = np.maximum(DEFAULT_RAMCOUNT_MB, np.ceil(med_rss_core_mb * RAMCOUNT_MARGIN / 500.0) * 500.0)
    task_eff = np.clip(col["cpu_eff"], MIN_CPU_EFF, 1.0)
    wt_est = np.maximum(col["work_per_core"], 1.0) / REFERENCE_COREPOWER / task_eff
    io = np.maximum(col["inputfilebytes"], 0.0) / 1024.0 / (wt_est * cores)
    # users and working groups
    wg_idx = np.rint(col["workinggroup"]).astype(np.int64)
    username: list[str] = []
    workinggroup: list[str | None] = []
    user_pick = rng.random(n_tasks)
    for ti in range(n_tasks):
        cat = model.categories[cat_t[ti]]
        workinggroup.append(cat.workinggroups[min(wg_idx[ti], len(cat.workinggroups) - 1)])
        if cat.is_user:
            w = cat.user_tasks if len(cat.user_tasks) else _DEFAULT_USERS
            k = int(np.searchsorted(np.cumsum(w) / w.sum(), user_pick[ti], side="right"))
            username.append(f"user{min(k, len(w) - 1):04d}")
        else:
            username.append("atlas-production")
    jeditaskid = FIRST_TASKID + np.arange(n_tasks, dtype=np.int64)
    datasets, ds_task, first_file = _datasets(model, cat_t, first_job, njobs, ninput, inbytes, jeditaskid, rng)
    taskname = []
    for ti in range(n_tasks):
        cat = model.categories[cat_t[ti]]
        tid = int(jeditaskid[ti])
        if cat.is_user:
            taskname.append(f"user.{username[ti]}.gridtwin_synth.{cat.output_type}.{tid}")
        else:
            taskname.append(f"mc23_13p6TeV.gridtwin_synth.{cat.processingtype}.{cat.output_type}.tid{tid:08d}")
    families = model.families()
    fam_index = {f: i for i, f in enumerate(families)}
    family_of = np.array([fam_index[c.family] for c in model.categories], dtype=np.int64)
    categories = tuple(_as_category(f, model) for f in families)
    return Workload(
        jeditaskid=jeditaskid,
        category=family_of[cat_t].astype(np.int16 if len(categories) > 127 else np.int8),
        arrival=arrival.astype(np.float64), priority=np.rint(col["priority"]).astype(np.int32),
        corecount=cores.astype(np.int32), ramcount_mb=ramcount.astype(np.int32), walltime_estimate_s=wt_est,
        io_intensity=io, dataset=ds_task, first_job=first_job, njobs=njobs.astype(np.int32), taskname=taskname,
        username=username, workinggroup=workinggroup, task=task.astype(np.int32), work_hs06s=work, cpu_eff=eff,
        maxrss_kb=np.rint(rss).astype(np.int64), nevents=nevents, ninput=ninput.astype(np.int32),
        first_file=first_file, inputbytes=inbytes, outputbytes=outbytes, datasets=datasets, duration_s=duration,
        categories=categories,
    )


def _datasets(model: WorkloadModel, cat_t: np.ndarray, first_job: np.ndarray, njobs: np.ndarray,
              ninput: np.ndarray, inbytes: np.ndarray, jeditaskid: np.ndarray,
              rng: np.random.Generator) -> tuple[Datasets, np.ndarray, np.ndarray]:
    """Input datasets: one per task, or shared by several tasks of a family as the records showed
    (tasks per dataset resampled); a dataset has as many files as its largest reader reads."""
    n_tasks = len(cat_t)
    files_task = np.add.reduceat(ninput, first_job) if n_tasks else np.zeros(0, np.int64)
    bytes_task = np.add.reduceat(inbytes, first_job) if n_tasks else np.zeros(0, np.int64)
    files_task = np.where(njobs > 0, files_task, 0)
    ds_task = np.full(n_tasks, -1, dtype=np.int32)
    groups: list[np.ndarray] = []
    for ci, cat in enumerate(model.categories):
        readers = np.flatnonzero((cat_t == ci) & (files_task > 0))
        if not len(readers):
            continue
        if len(cat.tasks_per_dataset) == 0 or cat.tasks_per_dataset.max() <= 1:
            groups.extend(readers[i:i + 1] for i in range(len(readers)))
            continue
        perm = readers[rng.permutation(len(readers))]
        sizes = cat.tasks_per_dataset[rng.integers(0, len(cat.tasks_per_dataset), len(readers))]
        ends = np.cumsum(sizes)
        cut = int(np.searchsorted(ends, len(perm))) + 1
        bounds = np.concatenate([[0], np.minimum(ends[:cut], len(perm))])
        groups.extend(np.sort(perm[a:b]) for a, b in pairwise(bounds) if b > a)
    groups.sort(key=lambda g: int(g[0]))
    scope, name, nfiles, fbytes, ftype = [], [], [], [], []
    for k, g in enumerate(groups):
        cat = model.categories[cat_t[g[0]]]
        ds_task[g] = k
        scope.append("mc23_13p6TeV")
        name.append(f"mc23_13p6TeV.gridtwin_synth.{int(jeditaskid[g[0]]) % 10**8:08d}_{k:06d}.{cat.input_type}")
        nfiles.append(int(files_task[g].max()))
        fbytes.append(float(bytes_task[g].sum()) / max(1.0, float(files_task[g].sum())))
        ftype.append(cat.input_type)
    datasets = Datasets(scope=scope, name=name, nfiles=np.asarray(nfiles, dtype=np.int64),
                        file_bytes=np.asarray(fbytes, dtype=np.float64), file_type=ftype)
    # first file per job: a task reads its dataset sequentially; shared datasets from a random offset
    n_jobs = len(ninput)
    cum = np.cumsum(ninput) - ninput
    first_file = cum - np.repeat(cum[first_job] if n_jobs else np.zeros(0, np.int64), njobs)
    shared = np.zeros(n_tasks, dtype=bool)
    for g in groups:
        shared[g] = len(g) > 1
    offsets = np.where(shared, rng.integers(0, 1 << 30, n_tasks), 0)
    first_file = (first_file + np.repeat(offsets, njobs)).astype(np.int64)
    return datasets, ds_task, first_file


def _as_category(family: tuple[str, str], model: WorkloadModel) -> Category:
    """The twin's ``Category`` for a fitted family (its strata together); the built-in generator's
    knobs get values summarising the fit (or neutral ones), they are not used to sample."""
    strata = [c for c in model.categories if c.family == family]
    main = max(strata, key=lambda c: c.n_jobs)
    total = sum(c.n_jobs for c in model.categories) or 1
    q = {f.name: main.quantiles[j] for j, f in enumerate(TASK_FEATURES)}
    multi = sum(c.n_tasks for c in strata if c.cores > 1) / max(sum(c.n_tasks for c in strata), 1)
    return Category(
        name=main.family_name, prodsourcelabel=main.prodsourcelabel, processingtype=main.processingtype,
        transformation=main.transformation, gshare=main.gshare, job_share=sum(c.n_jobs for c in strata) / total,
        jobs_per_task_median=float(np.median(q["njobs"])), jobs_per_task_sigma=0.0, multicore_fraction=multi,
        walltime_median_s=float(np.median(q["work_per_core"])) / REFERENCE_COREPOWER, walltime_sigma=0.0,
        task_walltime_sigma=0.0, cpu_eff_mean=float(np.median(q["cpu_eff"])), ramcount_mb=DEFAULT_RAMCOUNT_MB,
        rss_fraction=0.5, events_per_job=int(np.median(q["nevents"])),
        input_files_per_job=float(np.median(q["ninputdatafiles"])), input_file_mb=0.0, output_file_mb=0.0,
        output_type=main.output_type, input_type=main.input_type, priority=int(np.median(q["priority"])),
        workinggroups=tuple(sorted({w for c in strata for w in c.workinggroups if w})),
    )


# ================================================================== workload -> jobs-like table


def workload_jobs_table(wl: Workload, *, epoch: datetime = DEFAULT_EPOCH) -> pa.Table:
    """A JOBS-schema table with one finished first attempt per job spec of ``wl``, as if every job ran
    on a reference core (10 HS06) at its payload efficiency with no overheads: wall_time = work /
    (10 x cores x cpu_eff), cpuconsumptiontime = work / 10, creation at the task's arrival. For "train
    on synthetic" and the fidelity report; the queue columns are null."""
    n = wl.n_jobs
    task = wl.task.astype(np.int64)
    cats = wl.categories
    cat = wl.category.astype(np.int64)[task]
    cores = wl.corecount[task].astype(np.int64)
    cpu = wl.work_hs06s / REFERENCE_COREPOWER
    wall = cpu / (cores * np.clip(wl.cpu_eff, MIN_CPU_EFF, 1.0))
    epoch_ms = int(epoch.timestamp() * 1000)
    created = epoch_ms + np.rint(wl.arrival[task] * 1000.0).astype(np.int64)
    exe = np.rint(wall).astype(np.int64).astype(str)
    cols: dict[str, pa.Array] = {
        "pandaid": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "jeditaskid": pa.array(wl.jeditaskid[task].astype(np.int64)),
        "attemptnr": pa.array(np.ones(n, dtype=np.int32)),
        "jobstatus": pa.array(["finished"] * n, pa.string()),
        "prodsourcelabel": _pick([c.prodsourcelabel for c in cats], cat),
        "processingtype": _pick([c.processingtype for c in cats], cat),
        "transformation": _pick([c.transformation for c in cats], cat),
        "gshare": _pick([c.gshare for c in cats], cat),
        "workinggroup": _pick(wl.workinggroup, task),
        "produsername": _pick(wl.username, task),
        "currentpriority": pa.array(wl.priority[task].astype(np.int32)),
        "corecount": pa.array(cores.astype(np.int32)),
        "actualcorecount": pa.array(cores.astype(np.int32)),
        "creationtime": pa.array(created, pa.timestamp("ms", tz="UTC")),
        "cpuconsumptiontime": pa.array(np.rint(cpu).astype(np.int64)),
        "hs06sec": pa.array(np.rint(wall * REFERENCE_COREPOWER * cores).astype(np.int64)),
        "maxrss": pa.array(wl.maxrss_kb.astype(np.int64)),
        "nevents": pa.array(wl.nevents.astype(np.int64)),
        "ninputdatafiles": pa.array(wl.ninput.astype(np.int32)),
        "inputfilebytes": pa.array(wl.inputbytes.astype(np.int64)),
        "noutputdatafiles": pa.array(np.ones(n, dtype=np.int32)),
        "outputfilebytes": pa.array(wl.outputbytes.astype(np.int64)),
        "proddblock": _pick(wl.datasets.name, wl.dataset[task].astype(np.int64)),
        "pilottiming": pa.array(np.char.add(np.char.add("0|0|", exe), "|0|0")),
        "wall_time": pa.array(wall),
        "cpu_eff": pa.array(np.where(wall > 0, cpu / np.where(wall > 0, wall, 1.0), np.nan)),
    }
    arrays = [cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in JOBS]
    return pa.Table.from_arrays([a.cast(f.type) for a, f in zip(arrays, JOBS, strict=True)], schema=JOBS)


def _pick(values: list[Any], index: np.ndarray) -> pa.Array:
    """``values[index]`` as a string array, null where index < 0 or the value is None."""
    index = np.asarray(index, dtype=np.int64)
    if not values:
        return pa.nulls(len(index), pa.string())
    arr = pa.array(values, pa.string())
    return arr.take(pa.array(np.where(index >= 0, index, 0), mask=index < 0))

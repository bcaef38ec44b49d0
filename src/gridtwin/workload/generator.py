"""Generate an ATLAS-like day of tasks and jobs, vectorised with numpy.

Per family (``categories.CATEGORIES``): tasks arrive over the day (flat, or with a daily cycle whose
peak is in the European afternoon for user analysis), each task has a lognormal number of jobs, one
core count, a lognormal task-level work per job and memory request; jobs vary around their task.
Production tasks read a dataset of their own (simul reads EVNT, reco and merge read HITS); user
analysis tasks read popular DAOD datasets chosen by a Zipf law, so several tasks share inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridtwin.workload.categories import CATEGORIES, Category
from gridtwin.workload.spec import Datasets, Workload

REFERENCE_COREPOWER = 10.0
"""HS06 per core of the reference core that ``Category.walltime_median_s`` is quoted for."""
JOBS_PER_DAY_AT_SCALE_1 = 1_000_000
FIRST_TASKID = 40_000_000


@dataclass(frozen=True)
class WorkloadParams:
    """Knobs of the generator (validated by the scenario schema)."""

    scale: float = 1.0
    duration_s: float = 86400.0
    n_users: int = 600
    analysis_datasets_per_task: float = 0.3
    peak_hour_utc: float = 15.0
    max_jobs_per_task: int = 20000


def _arrivals(rng: np.random.Generator, n: int, duration: float, amplitude: float, peak_h: float) -> np.ndarray:
    """``n`` sorted arrival times on [0, duration) with density 1 + A cos(2 pi (t - peak) / 1 day)."""
    if n == 0:
        return np.zeros(0)
    if amplitude <= 0:
        return np.sort(rng.uniform(0.0, duration, n))
    grid = np.linspace(0.0, duration, max(2, int(duration / 60.0) + 1))
    dens = 1.0 + amplitude * np.cos(2 * np.pi * (grid - peak_h * 3600.0) / 86400.0)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    return np.sort(np.interp(rng.uniform(0.0, 1.0, n), cdf, grid))


def _task_sizes(rng: np.random.Generator, cat: Category, target_jobs: int, cap: int) -> np.ndarray:
    """Lognormal jobs per task, drawn until ``target_jobs`` jobs exist; the last task is trimmed."""
    if target_jobs <= 0:
        return np.zeros(0, dtype=np.int64)
    mean = cat.jobs_per_task_median * np.exp(cat.jobs_per_task_sigma**2 / 2)
    sizes = np.zeros(0, dtype=np.int64)
    while sizes.sum() < target_jobs:
        batch = int(2 * target_jobs / mean) + 16
        draw = np.clip(np.rint(rng.lognormal(np.log(cat.jobs_per_task_median), cat.jobs_per_task_sigma, batch)), 1, cap)
        sizes = np.concatenate([sizes, draw.astype(np.int64)])
    cut = int(np.searchsorted(np.cumsum(sizes), target_jobs)) + 1
    sizes = sizes[:cut]
    sizes[-1] -= int(sizes.sum()) - target_jobs
    return sizes[sizes > 0]


_PHYSICS = ("PhPy8EG_A14_ttbar_hdamp258p75_nonallhad", "Sh_2214_Zmumu_maxHTpTV2", "PhPy8EG_AZNLO_Wplusenu",
            "MGPy8EG_A14N23LO_SS_direct", "PhPy8EG_PDF4LHC21_ggH125_ZZ4lep", "Py8EG_A14NNPDF23LO_jj_JZ2")
_DERIV = ("DAOD_PHYS", "DAOD_PHYSLITE", "DAOD_JETM1", "DAOD_HIGG1D1", "DAOD_SUSY2", "DAOD_TOPQ1")


def generate_workload(params: WorkloadParams, rng: np.random.Generator) -> Workload:
    """Draw a workload: tasks of every family, their job specs, and the datasets they read."""
    target = round(JOBS_PER_DAY_AT_SCALE_1 * params.scale * params.duration_s / 86400.0)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "category", "arrival", "priority", "corecount", "ramcount", "wt_est", "ioint", "njobs", "task_work",
        "task_eff")}
    for ci, cat in enumerate(CATEGORIES):
        sizes = _task_sizes(rng, cat, round(target * cat.job_share), params.max_jobs_per_task)
        t = len(sizes)
        cols["category"].append(np.full(t, ci, dtype=np.int8))
        cols["arrival"].append(_arrivals(rng, t, params.duration_s, cat.daily_amplitude, params.peak_hour_utc))
        cols["priority"].append((cat.priority + rng.integers(-2, 3, t) * 10).astype(np.int32))
        cores = np.where(rng.random(t) < cat.multicore_fraction, 8, 1).astype(np.int32)
        cols["corecount"].append(cores)
        himem = rng.random(t) < 0.05
        cols["ramcount"].append(np.where(himem, cat.ramcount_mb * 2, cat.ramcount_mb).astype(np.int32))
        med_wall = cat.walltime_median_s * rng.lognormal(0.0, cat.task_walltime_sigma, t)
        cols["task_work"].append(med_wall * REFERENCE_COREPOWER * cores)
        cols["wt_est"].append(med_wall / cat.cpu_eff_mean)
        cols["ioint"].append(cat.io_intensity * rng.lognormal(0.0, 0.3, t))
        cols["njobs"].append(sizes.astype(np.int32))
        cols["task_eff"].append(np.clip(rng.normal(cat.cpu_eff_mean, 0.04, t), 0.1, 0.99))
    c = {k: np.concatenate(v) for k, v in cols.items()}
    # tasks in arrival order; ties by family order, so the order is total and deterministic
    order = np.lexsort((c["category"], c["arrival"]))
    c = {k: v[order] for k, v in c.items()}
    n_tasks = len(order)
    jeditaskid = FIRST_TASKID + np.arange(n_tasks, dtype=np.int64)
    njobs = c["njobs"].astype(np.int64)
    first_job = np.cumsum(njobs) - njobs
    n_jobs = int(njobs.sum())
    task_of_job = np.repeat(np.arange(n_tasks, dtype=np.int32), njobs)
    cat_of_job = c["category"][task_of_job]

    # --- per job: work, efficiency, memory, events
    sig_job = np.array([k.walltime_sigma for k in CATEGORIES])[cat_of_job]
    work = c["task_work"][task_of_job] * rng.lognormal(0.0, 1.0, n_jobs) ** sig_job
    eff = np.clip(c["task_eff"][task_of_job] + rng.normal(0.0, 0.05, n_jobs), 0.05, 1.0)
    rss_frac = np.array([k.rss_fraction for k in CATEGORIES])[cat_of_job]
    cores_job = c["corecount"][task_of_job].astype(np.float64)
    maxrss_kb = (c["ramcount"][task_of_job] * 1024.0 * cores_job * rss_frac * rng.lognormal(0.0, 0.3, n_jobs))
    ev = np.array([k.events_per_job for k in CATEGORIES])[cat_of_job]

    # --- inputs: datasets and files
    files_mean = np.array([k.input_files_per_job for k in CATEGORIES])[cat_of_job]
    ninput = np.where(files_mean == 0, 0, np.maximum(1, rng.poisson(np.maximum(files_mean - 1, 0)) + 1))
    ninput = np.where(files_mean == 1, 1, ninput).astype(np.int32)
    is_user = np.array([k.prodsourcelabel == "user" for k in CATEGORIES])[c["category"]]
    needs_input = np.array([k.input_files_per_job > 0 for k in CATEGORIES])[c["category"]]
    ds_task = np.full(n_tasks, -1, dtype=np.int32)
    ds_scope: list[str] = []
    ds_name: list[str] = []
    ds_nfiles: list[int] = []
    ds_bytes: list[float] = []
    ds_type: list[str] = []
    files_per_task = np.add.reduceat(ninput.astype(np.int64), first_job) if n_tasks else np.zeros(0, np.int64)
    # production: one input dataset per task, sized to what its jobs read
    for ti in np.flatnonzero(needs_input & ~is_user):
        cat = CATEGORIES[c["category"][ti]]
        dsid = 500000 + int(ti) % 300000
        phys = _PHYSICS[int(ti) % len(_PHYSICS)]
        ds_task[ti] = len(ds_name)
        ds_scope.append("mc23_13p6TeV")
        ds_name.append(f"mc23_13p6TeV.{dsid}.{phys}.{cat.input_type.lower()}.{cat.input_type}"
                       f".e8514_s4162_tid{jeditaskid[ti] - 7:08d}_00")
        ds_nfiles.append(int(files_per_task[ti]))
        ds_bytes.append(cat.input_file_mb * 1e6 * float(rng.lognormal(0.0, 0.25)))
        ds_type.append(cat.input_type)
    # analysis: a pool of derivation datasets with Zipf popularity
    user_tasks = np.flatnonzero(needs_input & is_user)
    n_pool = max(1, int(len(user_tasks) * params.analysis_datasets_per_task))
    first_pool = len(ds_name)
    ana = next(k for k in CATEGORIES if k.prodsourcelabel == "user")
    for i in range(n_pool if len(user_tasks) else 0):
        real = i % 3 == 0
        deriv = _DERIV[i % len(_DERIV)]
        if real:
            ds_scope.append("data23_13p6TeV")
            ds_name.append(
                f"data23_13p6TeV.{450000 + i:08d}.physics_Main.deriv.{deriv}.r15774_p6304_tid{35000000 + i}_00")
        else:
            ds_scope.append("mc23_13p6TeV")
            ds_name.append(
                f"mc23_13p6TeV.{700000 + i}.{_PHYSICS[i % len(_PHYSICS)]}.deriv.{deriv}.e8514_s4162_r15540_p6266")
        ds_nfiles.append(int(np.clip(rng.lognormal(np.log(150), 1.0), 5, 20000)))
        ds_bytes.append(ana.input_file_mb * 1e6 * float(rng.lognormal(0.0, 0.3)))
        ds_type.append(deriv)
    if len(user_tasks):
        ranks = np.arange(1, n_pool + 1, dtype=np.float64)
        p = 1.0 / ranks**1.1
        ds_task[user_tasks] = first_pool + rng.choice(n_pool, size=len(user_tasks), p=p / p.sum())
    datasets = Datasets(scope=ds_scope, name=ds_name, nfiles=np.asarray(ds_nfiles, dtype=np.int64),
                        file_bytes=np.asarray(ds_bytes, dtype=np.float64), file_type=ds_type)

    # first file of each job: production reads its dataset sequentially; analysis starts at a random offset
    within = np.arange(n_jobs, dtype=np.int64) - np.repeat(first_job, njobs)
    cum_in = np.cumsum(ninput.astype(np.int64)) - ninput
    first_file = cum_in - np.repeat(cum_in[first_job] if n_jobs else np.zeros(0, np.int64), njobs)
    offsets = np.where(is_user, rng.integers(0, 1 << 30, n_tasks), 0)
    first_file = first_file + np.repeat(offsets, njobs)
    del within
    wl_tmp = Workload(
        jeditaskid=jeditaskid, category=c["category"], arrival=c["arrival"], priority=c["priority"],
        corecount=c["corecount"], ramcount_mb=c["ramcount"], walltime_estimate_s=c["wt_est"],
        io_intensity=c["ioint"], dataset=ds_task, first_job=first_job, njobs=njobs.astype(np.int32),
        taskname=[], username=[], workinggroup=[], task=task_of_job, work_hs06s=work, cpu_eff=eff,
        maxrss_kb=maxrss_kb.astype(np.int64), nevents=ev.astype(np.int64), ninput=ninput,
        first_file=first_file.astype(np.int64), inputbytes=np.zeros(n_jobs, dtype=np.int64),
        outputbytes=np.zeros(n_jobs, dtype=np.int64), datasets=datasets, duration_s=float(params.duration_s),
        categories=CATEGORIES,
    )
    rep, ds, fidx = wl_tmp.input_file_indices(np.flatnonzero(ninput > 0))
    sizes = datasets.file_sizes(ds, fidx)
    np.add.at(wl_tmp.inputbytes, rep, sizes)
    out_mb = np.array([k.output_file_mb for k in CATEGORIES])[cat_of_job]
    wl_tmp.outputbytes = (out_mb * 1e6 * rng.lognormal(0.0, 0.3, n_jobs)).astype(np.int64)
    # analysis events scale with the input read
    ana_job = is_user[task_of_job]
    wl_tmp.nevents = np.where(ana_job, np.maximum(1, (wl_tmp.inputbytes / 40e3).astype(np.int64)), wl_tmp.nevents)

    # --- task names, owners, working groups
    users = [f"user{u:04d}" for u in range(params.n_users)]
    uprob = 1.0 / np.arange(1, params.n_users + 1) ** 0.8
    uidx = rng.choice(params.n_users, size=n_tasks, p=uprob / uprob.sum())
    wg_pick = rng.integers(0, 1 << 16, n_tasks)
    for ti in range(n_tasks):
        cat = CATEGORIES[c["category"][ti]]
        tid = int(jeditaskid[ti])
        if cat.prodsourcelabel == "user":
            user = users[uidx[ti]]
            d = int(ds_task[ti])
            base = ds_name[d] if d >= 0 else "user.analysis"
            wl_tmp.taskname.append(f"user.{user}.{base.split('.')[1]}.{cat.output_type}.{tid}")
            wl_tmp.username.append(user)
            wl_tmp.workinggroup.append(None)
        else:
            wl_tmp.taskname.append(
                f"mc23_13p6TeV.{500000 + ti % 300000}.{_PHYSICS[ti % len(_PHYSICS)]}.{cat.name}"
                f".{cat.output_type}.e8514_s4162_tid{tid:08d}")
            wl_tmp.username.append("atlas-production")
            wl_tmp.workinggroup.append(cat.workinggroups[int(wg_pick[ti]) % len(cat.workinggroups)])
    return wl_tmp

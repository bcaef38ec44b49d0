"""A recorded PanDA trace as a workload the twin can run: one pseudo-task per recorded job.

Each recorded job becomes a task of one job, so it arrives at its own ``creationtime``; the real
``pandaid``/``jeditaskid`` stay in :class:`Trace` (and the run's mapping table). docs/replay.md lists the
rules; in short:

- CPU work = ``cpuconsumptiontime`` x the corepower of the recorded queue (HS06-seconds); or, in the
  ``task`` work mode, the task's work per event over the queues it ran at (:mod:`gridtwin.replay.sitespeed`);
- payload CPU efficiency = ``cpuconsumptiontime`` / (exe seconds of ``pilottiming`` x cores), else
  / (``wall_time`` x cores), else :data:`DEFAULT_CPU_EFF`; clipped to [:data:`MIN_CPU_EFF`, 1];
- memory: ``maxrss`` when known, else half the recorded queue's per-job memory limit;
- input: one dataset per job with ``ninputdatafiles`` files of ``inputfilebytes`` in all; output
  ``outputfilebytes``;
- ``prodsourcelabel`` when recorded, else ``user`` for job names starting ``user.`` or ``group.``, else
  ``managed``.

A job without ``cpuconsumptiontime`` cannot be given work: it is set aside and counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridtwin.analytics.kpi import numbers
from gridtwin.errors import ConfigError, InputError
from gridtwin.platform.model import Platform
from gridtwin.workload.categories import Category
from gridtwin.workload.generator import REFERENCE_COREPOWER
from gridtwin.workload.spec import Datasets, Workload

DEFAULT_CPU_EFF = 0.8
"""Payload CPU efficiency of a job whose record gives neither exe time nor wall time."""
MIN_CPU_EFF = 1e-3
"""Lower clip of the derived CPU efficiency (a job that used no CPU still has a payload)."""
DEFAULT_RAMCOUNT_MB = 2000
"""Requested memory per core (PanDA's usual ramcount) unless the recorded maxrss needs more."""


@dataclass
class Trace:
    """Recorded jobs that can be replayed, and what was set aside on the way."""

    source: str
    table: pa.Table
    """Imported jobs table (``import_panda.IMPORTED_JOBS`` columns) of the replayable jobs, creation order."""
    rejected: int = 0
    """Rows the importer set aside."""
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    set_aside: dict[str, int] = field(default_factory=dict)
    """Imported rows the replay cannot use, by reason."""
    notes: list[str] = field(default_factory=list)

    @property
    def n_jobs(self) -> int:
        return self.table.num_rows


def table_in(path: Path, name: str, expected: str) -> Path:
    """``path`` itself, or for a folder its ``NAME.parquet`` (an :class:`InputError` saying what was expected
    when the folder has none)."""
    if path.is_dir():
        inner = path / f"{name}.parquet"
        if not inner.is_file():
            raise InputError(f"{path}: a folder was given, but it holds no {name}.parquet (expected {expected})")
        return inner
    return path


def load_trace(path: Path) -> Trace:
    """Read recorded jobs: an import folder (its ``jobs.parquet``), a jobs Parquet, or a raw PanDA CSV/Parquet.

    Every input goes through the importer (``gridtwin import``'s loader), so the same rows are set aside for
    the same reasons; a file that cannot be read at all is an :class:`InputError`."""
    from gridtwin.analytics.import_panda import import_panda_jobs

    path = table_in(Path(path), "jobs", "an import folder from `gridtwin import`, or a jobs file")
    res = import_panda_jobs(path)
    reasons: dict[str, int] = {}
    if res.rejected.num_rows:
        for r in res.rejected.column("reason").to_pylist():
            reasons[r] = reasons.get(r, 0) + 1
    table = res.table
    set_aside: dict[str, int] = {}
    cpu_null = np.asarray(pc.is_null(table.column("cpuconsumptiontime")).to_numpy(zero_copy_only=False), dtype=bool)
    if cpu_null.any():
        set_aside["no cpuconsumptiontime (no CPU work to replay)"] = int(cpu_null.sum())
        table = table.filter(pa.array(~cpu_null))
    if table.num_rows == 0:
        raise InputError(f"{path.name}: no replayable job (rows imported: {res.table.num_rows}, set aside by the "
                         f"importer: {res.rejected.num_rows}, without cpuconsumptiontime: {int(cpu_null.sum())})")
    created = table.column("creationtime").cast(pa.int64())
    order = np.lexsort((table.column("pandaid").to_numpy(), created.to_numpy()))
    table = table.take(pa.array(order))
    return Trace(source=path.name, table=table, rejected=res.rejected.num_rows, rejected_by_reason=reasons,
                 set_aside=set_aside, notes=list(res.notes))


def _ints(table: pa.Table, name: str, fill: int) -> np.ndarray:
    return np.asarray(pc.fill_null(table.column(name).cast(pa.int64()), fill).to_numpy(zero_copy_only=False))


def _strings(table: pa.Table, name: str) -> list[str | None]:
    return table.column(name).to_pylist()


def job_cores(table: pa.Table) -> np.ndarray:
    """Cores of each recorded job: ``actualcorecount``, else ``corecount``, else 1."""
    actual = _ints(table, "actualcorecount", 0)
    requested = _ints(table, "corecount", 0)
    return np.maximum(np.where(actual > 0, actual, requested), 1).astype(np.int64)


def trace_epoch(table: pa.Table) -> datetime:
    """The run epoch of a trace: its first creation time, rounded down to the hour (UTC)."""
    first_ms = int(pc.min(table.column("creationtime").cast(pa.int64())).as_py())
    hour_ms = 3_600_000
    return datetime.fromtimestamp((first_ms // hour_ms) * hour_ms / 1000.0, tz=UTC)


def payload_efficiency(table: pa.Table, cpu: np.ndarray, cores: np.ndarray) -> np.ndarray:
    """Each job's payload CPU efficiency: CPU seconds over (exe seconds of ``pilottiming`` x cores), else over
    (``wall_time`` x cores); NaN where neither is known."""
    exe = numbers(table, "timeexe")
    wall = numbers(table, "wall_time")
    with np.errstate(divide="ignore", invalid="ignore"):
        eff_exe = cpu / (exe * cores)
        eff_wall = cpu / (wall * cores)
    return np.where(exe > 0, eff_exe, np.where(wall > 0, eff_wall, np.nan))


def trace_workload(trace: Trace, platform: Platform, work_mode: str = "recorded") -> tuple[Workload, datetime]:
    """The trace as a workload of one-job tasks, and its epoch. Every recorded ``computingsite`` must be a
    queue of ``platform`` (see :func:`gridtwin.replay.sites.resolve_sites`).

    ``work_mode`` ``recorded``: each job's own CPU time x its queue's corepower, and its own efficiency.
    ``task``: its task's work per event and efficiency over the queues the task ran at, given their
    corepower and efficiency factors (:func:`gridtwin.replay.sitespeed.task_work`), so a queue's speed shows
    against the same task's jobs elsewhere: what calibrating queue speeds and re-brokering need."""
    t = trace.table
    n = t.num_rows
    sites = _strings(t, "computingsite")
    missing = sorted({s for s in sites if s not in platform.sites})
    if missing:
        raise InputError(f"{trace.source}: computingsite not in the platform: {', '.join(missing[:10])}")
    epoch = trace_epoch(t)
    epoch_ms = round(epoch.timestamp() * 1000)
    arrival = (_ints(t, "creationtime", 0) - epoch_ms) / 1000.0
    cores = job_cores(t)
    cpu = numbers(t, "cpuconsumptiontime")
    corepower = np.array([platform.sites[s].corepower for s in sites], dtype=np.float64)
    work = cpu * corepower
    eff = payload_efficiency(t, cpu, cores)
    if work_mode == "task":
        from gridtwin.replay.sitespeed import task_work

        work, eff = task_work(t, platform, cpu, eff)
    elif work_mode != "recorded":
        raise ConfigError(f"--work {work_mode}: recorded or task was expected")
    eff = np.clip(np.nan_to_num(eff, nan=DEFAULT_CPU_EFF), MIN_CPU_EFF, 1.0)
    limit_kb = np.array([platform.sites[s].maxrss_mb * 1024.0 / platform.sites[s].corecount for s in sites]) * cores
    rss = _ints(t, "maxrss", -1)
    rss = np.where(rss > 0, rss, np.floor(0.5 * limit_kb)).astype(np.int64)
    ramcount = np.maximum(DEFAULT_RAMCOUNT_MB, np.ceil(rss / 1024.0 / cores)).astype(np.int32)
    ninput = np.maximum(_ints(t, "ninputdatafiles", 0), 0)
    inbytes = np.maximum(_ints(t, "inputfilebytes", 0), 0)
    has_input = (ninput > 0) & (inbytes > 0)
    ninput = np.where(has_input, ninput, 0)
    inbytes = np.where(has_input, inbytes, 0)
    outbytes = np.maximum(_ints(t, "outputfilebytes", 0), 0)
    pandaid = _ints(t, "pandaid", 0)

    names = [s or "" for s in _strings(t, "jobname")]
    labels = []
    for lab, name in zip(_strings(t, "prodsourcelabel"), names, strict=True):
        if lab:
            labels.append(lab)
        else:
            labels.append("user" if name.startswith(("user.", "group.")) else "managed")
    ptypes = [p or "replay" for p in _strings(t, "processingtype")]
    trf = [x or "" for x in _strings(t, "transformation")]
    gshares = [g or "" for g in _strings(t, "gshare")]
    cat_index: dict[tuple[str, str, str, str], int] = {}
    cats: list[Category] = []
    category = np.zeros(n, dtype=np.int32)
    for i, key in enumerate(zip(labels, ptypes, trf, gshares, strict=True)):
        c = cat_index.get(key)
        if c is None:
            c = cat_index[key] = len(cats)
            cats.append(_category(*key))
        category[i] = c
    cat_dtype = np.int8 if len(cats) < 128 else np.int32

    ds_rows = np.flatnonzero(has_input)
    dataset = np.full(n, -1, dtype=np.int32)
    dataset[ds_rows] = np.arange(len(ds_rows), dtype=np.int32)
    datasets = Datasets(
        scope=["replay"] * len(ds_rows),
        name=[f"replay.{int(pandaid[i])}.input" for i in ds_rows],
        nfiles=ninput[ds_rows].astype(np.int64),
        file_bytes=(inbytes[ds_rows] / ninput[ds_rows]).astype(np.float64),
        file_type=["DAOD"] * len(ds_rows),
    )
    prio = _ints(t, "currentpriority", -1)
    prio = np.where(prio >= 0, prio, _ints(t, "assignedpriority", 1000)).astype(np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        wt_est = work / (REFERENCE_COREPOWER * cores * eff)
    wl = Workload(
        jeditaskid=np.arange(1, n + 1, dtype=np.int64),
        category=category.astype(cat_dtype),
        arrival=arrival.astype(np.float64),
        priority=prio,
        corecount=cores.astype(np.int32),
        ramcount_mb=ramcount,
        walltime_estimate_s=wt_est.astype(np.float64),
        io_intensity=np.zeros(n, dtype=np.float64),
        dataset=dataset,
        first_job=np.arange(n, dtype=np.int64),
        njobs=np.ones(n, dtype=np.int32),
        taskname=[nm or f"replay.{int(p)}" for nm, p in zip(names, pandaid, strict=True)],
        username=[u or "" for u in _strings(t, "produsername")],
        workinggroup=_strings(t, "workinggroup"),
        task=np.arange(n, dtype=np.int32),
        work_hs06s=work.astype(np.float64),
        cpu_eff=eff.astype(np.float64),
        maxrss_kb=rss,
        nevents=np.maximum(_ints(t, "nevents", 0), 0),
        ninput=ninput.astype(np.int32),
        first_file=np.zeros(n, dtype=np.int64),
        inputbytes=inbytes.astype(np.int64),
        outputbytes=outbytes.astype(np.int64),
        datasets=datasets,
        duration_s=float(max(1.0, math.floor(float(arrival.max())) + 1.0)),
        categories=tuple(cats),
        pinned_site=list(sites),
    )
    return wl, epoch


def _category(label: str, ptype: str, transformation: str, gshare: str) -> Category:
    """A family of replayed jobs: its PanDA labels only (the generator's fields are 0)."""
    return Category(
        name=f"{label}/{ptype}", prodsourcelabel=label, processingtype=ptype, transformation=transformation,
        gshare=gshare, job_share=0.0, jobs_per_task_median=0.0, jobs_per_task_sigma=0.0, multicore_fraction=0.0,
        walltime_median_s=0.0, walltime_sigma=0.0, task_walltime_sigma=0.0, cpu_eff_mean=0.0,
        ramcount_mb=DEFAULT_RAMCOUNT_MB, rss_fraction=0.0, events_per_job=0, input_files_per_job=0.0,
        input_file_mb=0.0, output_file_mb=0.0, output_type="", input_type="",
    )

"""Per-queue effective corepower and CPU efficiency, read off jobs of the same tasks run at several queues.

A record's CPU time carries the speed of the queue it ran at, so one queue's speed cannot be told from
its own jobs; it shows when the same task ran at several queues. Two two-way fixed-effects models on
the log scale, fitted by alternating means (least squares):

- ``log cpuconsumptiontime = log W[task] + log units - log corepower[queue]``, where ``units`` is the
  job's ``nevents`` when every job of its task has events, else 1; ``W`` is the task's HS06-seconds
  per unit;
- ``log payload efficiency = log E[task] + log efficiency[queue]``, the payload efficiency being
  ``cpuconsumptiontime / (exe seconds x cores)`` (``trace.payload_efficiency``).

Only finished jobs enter the fits: a killed attempt's CPU time is only part of its work.

Only differences between queues linked by shared tasks are identified: in each group of queues
linked by shared tasks (a connected component of the queue-task graph) the fit is scaled on its
*reference* queues, which keep their platform corepower and efficiency: those the
user trusts (e.g. a well-benchmarked Tier-1), else the group's busiest queue. A queue alone in its
group, or with fewer than ``min_jobs`` finished jobs, is reported as not identifiable.

:func:`task_work` is the other direction, the replay's ``task`` work mode: given the queues' corepower
and efficiency factors (the platform's, or a calibration trial's), each job gets its task's work per
unit and efficiency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from gridtwin.analytics.kpi import numbers
from gridtwin.errors import ConfigError
from gridtwin.ml.job_records import group_median
from gridtwin.platform.model import Platform

MIN_JOBS = 10
"""Jobs a queue needs for its speed and efficiency to be estimated."""


@dataclass
class SiteEffects:
    """Fitted task and queue effects of a trace."""

    corepower: dict[str, float]
    """Effective corepower (HS06 per core) of each queue of the trace."""
    efficiency: dict[str, float]
    """The queue's efficiency factor (``Site.efficiency``) on the payload efficiency, relative to the references
    at their platform values."""
    identifiable: list[str]
    """Queues whose effects the trace identifies (shared tasks with other queues, at least ``min_jobs``)."""
    reference: list[str]
    """Queues the fit is scaled on: the user's, else the busiest queue of each group linked by shared tasks."""
    notes: list[str] = field(default_factory=list)


def _group_mean(values: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    counts = np.bincount(groups, minlength=n)
    sums = np.bincount(groups, weights=values, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


def _components(task: np.ndarray, site: np.ndarray, n_sites: int) -> np.ndarray:
    """Connected component of each queue in the bipartite queue-task graph (union-find over tasks)."""
    parent = list(range(n_sites))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    first: dict[int, int] = {}
    for t, s in zip(task.tolist(), site.tolist(), strict=True):
        f = first.setdefault(t, s)
        ra, rb = find(f), find(s)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(s) for s in range(n_sites)], dtype=np.int64)


def fit_two_way(y: np.ndarray, task: np.ndarray, site: np.ndarray, n_tasks: int, n_sites: int,
                comp: np.ndarray, anchor: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``y = a[task] + b[site]``, solved exactly. In each component, the job-weighted mean of
    ``b - anchor`` over its ``reference`` queues (over all its queues when it has none) is 0; a queue
    without jobs keeps its anchor. Returns ``(a, b)``.

    With the task terms eliminated (``a[t]`` is the mean of ``y - b`` over the task's jobs), the queue terms
    solve ``L b = r`` with ``L = diag(n_s) - N diag(1/n_t) N^T`` (``N``: jobs per queue and task) and
    ``r_s = sum_{j at s} (y_j - mean_{task(j)} y)``; ``L`` is singular along each component's common shift,
    which the minimum-norm solution leaves at 0 and the normalisation then sets."""
    import scipy.sparse as sp

    n_job_site = np.bincount(site, minlength=n_sites).astype(np.float64)
    n_job_task = np.bincount(task, minlength=n_tasks).astype(np.float64)
    counts = sp.coo_matrix((np.ones(len(y)), (site, task)), shape=(n_sites, n_tasks)).tocsr()
    scaled = counts.multiply(1.0 / np.maximum(n_job_task, 1.0)).tocsr()
    lap = np.diag(n_job_site) - (scaled @ counts.T).toarray()
    task_mean = _group_mean(y, task, n_tasks)
    r = np.bincount(site, weights=y - task_mean[task], minlength=n_sites)
    b = np.linalg.lstsq(lap, r, rcond=None)[0]
    b = np.where(n_job_site > 0, b, anchor)
    has_ref = np.bincount(comp, weights=(reference & (n_job_site > 0)).astype(np.float64), minlength=n_sites) > 0
    norm_w = np.where(has_ref[comp], n_job_site * reference, n_job_site)
    shift = (np.bincount(comp, weights=norm_w * (b - anchor), minlength=n_sites)
             / np.maximum(np.bincount(comp, weights=norm_w, minlength=n_sites), 1e-300))
    b = np.where(n_job_site > 0, b - shift[comp], anchor)
    return _group_mean(y - b[site], task, n_tasks), b


def site_effects(table: pa.Table, platform: Platform, cpu: np.ndarray, eff: np.ndarray,
                 min_jobs: int = MIN_JOBS, reference: tuple[str, ...] = ()) -> SiteEffects:
    """Fit the effects of the jobs of ``table`` (the trace's rows: ``jeditaskid``, ``jobname``,
    ``computingsite``, ``nevents``, ``jobstatus``) given their CPU seconds ``cpu`` and payload efficiencies
    ``eff``. ``reference`` queues keep their platform corepower and efficiency (their component is scaled
    on them)."""
    sites = [s or "" for s in table.column("computingsite").to_pylist()]
    names = sorted(set(sites))
    index = {s: i for i, s in enumerate(names)}
    unknown = sorted(set(reference) - set(names))
    if unknown:
        raise ConfigError(f"--reference {', '.join(unknown)}: no job of the trace ran at this queue")
    is_ref = np.array([s in reference for s in names], dtype=bool)
    site = np.array([index[s] for s in sites], dtype=np.int64)
    task, n_tasks = payload_groups(table)
    n_sites = len(names)
    nominal = np.array([platform.sites[s].corepower for s in names], dtype=np.float64)
    nominal_eff = np.array([platform.sites[s].efficiency for s in names], dtype=np.float64)
    finished = _finished(table)
    units = _units(table, task, n_tasks, finished)
    ok = np.isfinite(cpu) & (cpu > 0) & finished  # a killed attempt's CPU time is only part of its work
    eff = np.where(finished, eff, np.nan)
    if not ok.any():
        raise ValueError("no finished job with a positive cpuconsumptiontime")
    comp = _components(task[ok], site[ok], n_sites)
    jobs = np.bincount(site[ok], minlength=n_sites)
    comp_size = np.bincount(comp, minlength=n_sites)
    for c in np.unique(comp):  # a group of queues without a reference is scaled on its busiest queue
        members = np.flatnonzero(comp == c)
        if comp_size[c] > 1 and not is_ref[members].any():
            is_ref[members[np.argmax(jobs[members])]] = True
    y = np.log(cpu[ok]) - np.log(units[ok])
    _, b = fit_two_way(-y, task[ok], site[ok], n_tasks, n_sites, comp, np.log(nominal), is_ref)
    # -y = -log W + log cp: the site term is log corepower, the task term -log W
    e_ok = np.isfinite(eff) & (eff > 0)
    comp_e = _components(task[e_ok], site[e_ok], n_sites) if e_ok.any() else np.arange(n_sites)
    _, be = fit_two_way(np.log(eff[e_ok]), task[e_ok], site[e_ok], n_tasks, n_sites, comp_e, np.log(nominal_eff),
                        is_ref)
    ident = [names[i] for i in range(n_sites)
             if comp_size[comp[i]] > 1 and jobs[i] >= min_jobs and not is_ref[i]]
    notes = []
    lonely = [names[i] for i in range(n_sites) if comp_size[comp[i]] <= 1]
    if lonely:
        notes.append(f"{len(lonely)} queue(s) share no task with another queue, so their speed and efficiency "
                     f"cannot be told from the trace: {', '.join(lonely[:10])}")
    few = [names[i] for i in range(n_sites) if comp_size[comp[i]] > 1 and jobs[i] < min_jobs and not is_ref[i]]
    if few:
        notes.append(f"{len(few)} queue(s) have fewer than {min_jobs} finished jobs: {', '.join(few[:10])}")
    corepower = {names[i]: float(np.exp(b[i])) if names[i] in ident else float(nominal[i]) for i in range(n_sites)}
    efficiency = {names[i]: float(np.exp(be[i])) if names[i] in ident else float(nominal_eff[i])
                  for i in range(n_sites)}
    return SiteEffects(corepower=corepower, efficiency=efficiency, identifiable=ident,
                       reference=[names[i] for i in range(n_sites) if is_ref[i] and comp_size[comp[i]] > 1],
                       notes=notes)


def task_work(table: pa.Table, platform: Platform, cpu: np.ndarray, eff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each job's work (HS06-s) and payload efficiency from its task, given the queues' corepower and
    efficiency factors of ``platform``: the task's work per unit is the geometric mean over its finished
    jobs of ``cpu x corepower / units``, its efficiency that of ``eff / efficiency factor``. A job of a task
    without such jobs keeps its own (``cpu x corepower``, ``eff``); NaN where unknown."""
    sites = [s or "" for s in table.column("computingsite").to_pylist()]
    cp = np.array([platform.sites[s].corepower for s in sites], dtype=np.float64)
    fe = np.array([platform.sites[s].efficiency for s in sites], dtype=np.float64)
    task, n_tasks = payload_groups(table)
    finished = _finished(table)
    units = _units(table, task, n_tasks, finished)
    own = cpu * cp
    ok = np.isfinite(own) & (own > 0) & finished
    n_ok = np.bincount(task[ok], minlength=n_tasks)
    log_w = _group_mean(np.log(own[ok] / units[ok]), task[ok], n_tasks)
    work = np.where(n_ok[task] > 0, np.exp(log_w)[task] * units, own)
    e_ok = np.isfinite(eff) & (eff > 0) & finished
    n_e = np.bincount(task[e_ok], minlength=n_tasks)
    log_e = _group_mean(np.log(eff[e_ok] / fe[e_ok]), task[e_ok], n_tasks)
    job_eff = np.where(n_e[task] > 0, np.exp(log_e)[task], eff)
    return work, job_eff


def payload_groups(table: pa.Table) -> tuple[np.ndarray, int]:
    """A payload group per job: its task (``ml.features.task_groups``) and, when recorded, its
    ``transformation`` (a task's merge jobs share its ``jeditaskid`` but not its work per event)."""
    from gridtwin.ml.features import task_groups

    keys = task_groups(table).astype(str).astype(object)
    if "transformation" in table.column_names:
        trf = np.array([x or "" for x in table.column("transformation").to_pylist()], dtype=object)
        keys = keys + "|" + trf
    _, task = np.unique(keys.astype(str), return_inverse=True)
    return task, int(task.max()) + 1


def _units(table: pa.Table, task: np.ndarray, n_tasks: int, finished: np.ndarray) -> np.ndarray:
    """A job's ``nevents`` when every finished job of its group has events, else 1; a job without events in
    such a group (a failed one, typically) gets the group's median."""
    nev = np.nan_to_num(numbers(table, "nevents"))  # no column: no events anywhere, so units of 1
    n_fin = np.bincount(task[finished], minlength=n_tasks)
    with_events = np.bincount(task[finished & (nev > 0)], minlength=n_tasks)
    per_event = (n_fin > 0) & (with_events == n_fin)
    median = np.nan_to_num(group_median(task, np.where(nev > 0, nev, np.nan), n_tasks), nan=1.0)
    return np.where(per_event[task], np.where(nev > 0, nev, median[task]), 1.0)


def _finished(table: pa.Table) -> np.ndarray:
    if "jobstatus" not in table.column_names:
        return np.ones(table.num_rows, dtype=bool)
    return np.array([x == "finished" for x in table.column("jobstatus").to_pylist()], dtype=bool)

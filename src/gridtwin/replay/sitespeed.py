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
*reference* queues, which keep their platform corepower and an efficiency factor of 1: those the
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

from gridtwin.errors import ConfigError
from gridtwin.platform.model import Platform

MIN_JOBS = 10
"""Jobs a queue needs for its speed and efficiency to be estimated."""


@dataclass
class SiteEffects:
    """Fitted task and queue effects of a trace."""

    corepower: dict[str, float]
    """Effective corepower (HS06 per core) of each queue of the trace."""
    efficiency: dict[str, float]
    """Queue factor on the payload efficiency (1 = the queue's tasks run as efficiently as elsewhere)."""
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
                comp: np.ndarray, anchor: np.ndarray, reference: np.ndarray,
                iterations: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``y = a[task] + b[site]``. In each component, the job-weighted mean of ``b - anchor``
    over its ``reference`` queues (over all its queues when it has none) is 0. Returns ``(a, b)``."""
    b = anchor.copy()
    a = np.zeros(n_tasks)
    weight = np.bincount(site, minlength=n_sites).astype(np.float64)
    has_ref = np.bincount(comp, weights=(reference & (weight > 0)).astype(np.float64), minlength=n_sites) > 0
    norm_w = np.where(has_ref[comp], weight * reference, weight)
    for _ in range(iterations):
        a = _group_mean(y - b[site], task, n_tasks)
        b_new = _group_mean(y - a[task], site, n_sites)
        b_new = np.where(weight > 0, b_new, anchor)
        shift = (np.bincount(comp, weights=norm_w * (b_new - anchor), minlength=n_sites)
                 / np.maximum(np.bincount(comp, weights=norm_w, minlength=n_sites), 1e-300))
        b_new = b_new - shift[comp]
        done = np.max(np.abs(b_new - b)) < 1e-10
        b = b_new
        if done:
            break
    return _group_mean(y - b[site], task, n_tasks), b


def site_effects(table: pa.Table, platform: Platform, cpu: np.ndarray, eff: np.ndarray,
                 min_jobs: int = MIN_JOBS, reference: tuple[str, ...] = ()) -> SiteEffects:
    """Fit the effects of the jobs of ``table`` (the trace's rows: ``jeditaskid``, ``jobname``,
    ``computingsite``, ``nevents``, ``jobstatus``) given their CPU seconds ``cpu`` and payload efficiencies
    ``eff``. ``reference`` queues keep their platform corepower and a factor 1 (their component is scaled
    on them)."""
    from gridtwin.ml.features import task_groups

    sites = [s or "" for s in table.column("computingsite").to_pylist()]
    names = sorted(set(sites))
    index = {s: i for i, s in enumerate(names)}
    unknown = sorted(set(reference) - set(names))
    if unknown:
        raise ConfigError(f"--reference {', '.join(unknown)}: no job of the trace ran at this queue")
    is_ref = np.array([s in reference for s in names], dtype=bool)
    site = np.array([index[s] for s in sites], dtype=np.int64)
    _, task = np.unique(task_groups(table), return_inverse=True)
    n_tasks, n_sites = int(task.max()) + 1, len(names)
    nominal = np.array([platform.sites[s].corepower for s in names], dtype=np.float64)
    units = _units(table, task, n_tasks)
    finished = _finished(table)
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
    _, be = fit_two_way(np.log(eff[e_ok]), task[e_ok], site[e_ok], n_tasks, n_sites, comp_e, np.zeros(n_sites),
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
    efficiency = {names[i]: float(np.exp(be[i])) if names[i] in ident else 1.0 for i in range(n_sites)}
    return SiteEffects(corepower=corepower, efficiency=efficiency, identifiable=ident,
                       reference=[names[i] for i in range(n_sites) if is_ref[i] and comp_size[comp[i]] > 1],
                       notes=notes)


def task_work(table: pa.Table, platform: Platform, cpu: np.ndarray, eff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each job's work (HS06-s) and payload efficiency from its task, given the queues' corepower and
    efficiency factors of ``platform``: the task's work per unit is the geometric mean over its finished
    jobs of ``cpu x corepower / units``, its efficiency that of ``eff / efficiency factor``. A job of a task
    without such jobs keeps its own (``cpu x corepower``, ``eff``); NaN where unknown."""
    from gridtwin.ml.features import task_groups

    sites = [s or "" for s in table.column("computingsite").to_pylist()]
    cp = np.array([platform.sites[s].corepower for s in sites], dtype=np.float64)
    fe = np.array([platform.sites[s].efficiency for s in sites], dtype=np.float64)
    _, task = np.unique(task_groups(table), return_inverse=True)
    n_tasks = int(task.max()) + 1
    units = _units(table, task, n_tasks)
    finished = _finished(table)
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


def _units(table: pa.Table, task: np.ndarray, n_tasks: int) -> np.ndarray:
    """A job's ``nevents`` when every job of its task has events, else 1."""
    nev = np.asarray(table.column("nevents").cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False))
    all_events = _group_mean((nev > 0).astype(np.float64), task, n_tasks) == 1.0
    return np.where(all_events[task], np.maximum(nev, 1.0), 1.0)


def _finished(table: pa.Table) -> np.ndarray:
    if "jobstatus" not in table.column_names:
        return np.ones(table.num_rows, dtype=bool)
    return np.array([x == "finished" for x in table.column("jobstatus").to_pylist()], dtype=bool)

"""``gridtwin calibrate``: fit the twin's parameters to a recorded trace with Optuna, trials on Dask.

The trace is split by time: the earlier part (``1 - holdout``) is replayed in every trial, the later part
only to validate the best parameters (and the defaults, for comparison) over several seeds.

Jobs (``JOBS``): a trial replays the training jobs historically with candidate parameters and scores, for
each compared quantity (walltime, queue time, stage-in, CPU efficiency, and the pilot's setup time, the
fifth part of ``pilottiming``), the two-sample KS statistic plus |log(simulated median / recorded
median)|, weighted (stage-in: the jobs with input). With per-queue parameters, each calibrated queue adds
|median log(simulated / recorded)| of its jobs' CPU time and walltime (jobs of tasks that also ran elsewhere),
weighted by its share of the jobs, and the replay takes each job's work from its task (``task`` work
mode): a record's own CPU time carries its queue's speed, so only tasks run at several queues tell the
speeds apart (:mod:`gridtwin.replay.sitespeed`).

Transfers (``--transfers``): a trial replays the training transfers on the network model with candidate
link scales (:mod:`gridtwin.replay.transfers`) and scores each calibrated link by the mean |log(simulated /
recorded duration)| of its transfers (each is replayed on its own, so they pair up), weighted by its share
of the transfers.

Trials run in batches of ``workers`` (asked together, told together in trial order), so the same seed and
the same number of workers give the same study. The study lives in ``OUT/study.db`` (SQLite): an
interrupted calibration resumes where it stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

from gridtwin.analytics.kpi import numbers
from gridtwin.errors import ConfigError
from gridtwin.replay import calibrate_params as cp
from gridtwin.replay.compare import METRICS, metric_stats, paired_jobs
from gridtwin.replay.run import HISTORICAL, _mapping, platform_config, replay_scenario, scenario_knobs
from gridtwin.replay.sites import resolve_sites
from gridtwin.replay.trace import Trace, job_cores, load_trace, payload_efficiency, trace_workload

PARAMS = cp.SCALARS
DEFAULT_WEIGHTS = {"wall_time": 1.0, "queue_time": 1.0, "stagein": 1.0, "setup": 1.0, "cpu_eff": 0.5, "site": 1.0,
                   "transfers": 1.0}
MEDIAN_FLOOR = {"wall_time": 1.0, "queue_time": 1.0, "stagein": 1.0, "setup": 1.0, "cpu_eff": 0.01,
                "cpu_time": 1.0}
"""Added to both medians before their log ratio (s, or CPU efficiency)."""
CAL_METRICS = (*METRICS, "setup")
"""The compared quantities, and the pilot's setup time (the fifth part of ``pilottiming``)."""
SITE_METRICS = ("wall_time", "cpu_time")
"""What each calibrated queue is scored on: job by job, |median log(simulated / recorded)| over its finished
jobs of tasks that also ran elsewhere (weighted by 10 x its share of the jobs). Not a KS: a replay in task work
gives the jobs of a task the same work per event, so it narrows the spread by design."""


@dataclass(frozen=True)
class CalibrationTask:
    """What a worker needs to score parameters (plain values, so it travels to Dask workers)."""

    jobs: str | None
    platform: str
    missing_sites: str = "error"
    holdout: float = 0.3
    ddm: bool = False
    weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_WEIGHTS.items())
    transfers: str | None = None
    work: str = "recorded"
    """Work mode of the job replay (``task`` when queue speeds are calibrated)."""
    reference: tuple[str, ...] = ()
    """Queues whose corepower and efficiency are taken as right (:mod:`gridtwin.replay.sitespeed`)."""


def _split(trace: Trace, holdout: float, part: str) -> Trace:
    """The earlier (``train``) or later (``test``) part of a trace in creation order."""
    n_train = round(trace.n_jobs * (1.0 - holdout))
    table = trace.table.slice(0, n_train) if part == "train" else trace.table.slice(n_train)
    return dataclasses.replace(trace, table=table)


@functools.lru_cache(maxsize=4)
def _base(task: CalibrationTask) -> tuple[Any, dict[str, Any]]:
    """Platform and base scenario mapping (cached per worker process)."""
    from gridtwin.config import load_scenario, scenario_from_dict
    from gridtwin.scenario import build_platform

    knobs = scenario_knobs(task.platform)
    if task.jobs is None:
        sc = scenario_from_dict({"platform": platform_config(task.platform).model_dump(exclude_none=True),
                                 **knobs}, "calibration")
        if str(task.platform).lower().endswith((".yaml", ".yml")):
            sc = sc.model_copy(update={"ddm": load_scenario(Path(task.platform)).ddm})
        return build_platform(sc), sc.model_dump()
    trace = load_trace(Path(task.jobs))
    sc = replay_scenario(trace, platform_config(task.platform), HISTORICAL, 1, task.ddm, knobs)
    return build_platform(sc), sc.model_dump()


@functools.lru_cache(maxsize=4)
def _context(task: CalibrationTask, part: str) -> tuple[Trace, Any, Any, Any, dict[str, Any]]:
    """Trace part, platform, workload, epoch and base scenario mapping (cached per worker process)."""
    plat, data = _base(task)
    if task.jobs is None:
        raise ConfigError("no recorded jobs were given")
    trace = _split(load_trace(Path(task.jobs)), task.holdout, part)
    if trace.n_jobs == 0:
        raise ConfigError(f"--holdout {task.holdout}: the {part} part of the trace has no job")
    plat = copy.deepcopy(plat)
    resolve_sites(trace, plat, task.missing_sites)
    wl, epoch = trace_workload(trace, plat, task.work)
    data = copy.deepcopy(data)
    data["epoch"] = epoch
    data["workload"]["duration_h"] = wl.duration_s / 3600.0
    return trace, plat, wl, epoch, data


@functools.lru_cache(maxsize=4)
def _transfers(task: CalibrationTask, part: str) -> Any:
    """The training or held-out part of the recorded transfers (cached per worker process)."""
    from gridtwin.replay.transfers import load_transfers

    tt = load_transfers(Path(str(task.transfers)), _base(task)[0]).split(task.holdout, part)
    if tt.n == 0:
        raise ConfigError(f"--holdout {task.holdout}: the {part} part of the transfers has no transfer")
    return tt


@functools.lru_cache(maxsize=4)
def site_effects_of(task: CalibrationTask) -> Any:
    """Queue speeds and efficiencies fitted on the training jobs (:mod:`gridtwin.replay.sitespeed`)."""
    from gridtwin.replay.sitespeed import site_effects

    trace, plat = _context(dataclasses.replace(task, work="recorded"), "train")[:2]
    t = trace.table
    cpu = numbers(t, "cpuconsumptiontime")
    try:
        return site_effects(t, plat, cpu, payload_efficiency(t, cpu, job_cores(t)), reference=task.reference)
    except ValueError as exc:
        raise ConfigError(f"site.corepower, site.efficiency: {exc}") from None


def candidates(task: CalibrationTask, sites_wanted: bool = True, links_wanted: bool = True
               ) -> tuple[list[str], list[str]]:
    """Queues of the platform whose speed the training jobs identify, busiest first (a queue derived from the
    trace is not among them: ``calibrated.yaml`` could not name it), and links busy enough to calibrate."""
    sites: list[str] = []
    if task.jobs is not None and sites_wanted:
        fx = site_effects_of(task)
        trace = _context(dataclasses.replace(task, work="recorded"), "train")[0]
        counts: dict[str, int] = {}
        for s in trace.table.column("computingsite").to_pylist():
            counts[s] = counts.get(s, 0) + 1
        known = _base(task)[0].sites
        sites = sorted((q for q in fx.identifiable if q in known), key=lambda s: (-counts.get(s, 0), s))
    links: list[str] = []
    if task.transfers is not None and links_wanted:
        from gridtwin.replay.transfers import busy_links

        links = busy_links(_transfers(task, "train"))
    return sites, links


def defaults(task: CalibrationTask, names: list[str] | None = None) -> dict[str, float]:
    """The values the scenario (or the built-in defaults) gives the parameters: scalars from the scenario,
    factors 1 for queues and links."""
    data = _base(task)[1]
    out = {k: float(data[k.split(".")[0]][k.split(".")[1]]) for k in PARAMS}
    for n in names or []:
        if cp.member(n) is not None:
            out[n] = 1.0
    return out


def _apply(plat: Any, data: dict[str, Any], theta: dict[str, float]) -> dict[str, float]:
    """Set ``theta`` on a platform copy and a scenario mapping; returns the link scales."""
    scales: dict[str, float] = {}
    for key, value in theta.items():
        fam, what = cp.family(key), cp.member(key)
        if what is None:
            block, name = key.split(".")
            data[block][name] = float(value)
        elif fam == "site.corepower":
            plat.sites[what].corepower *= float(value)
        elif fam == "site.efficiency":
            plat.sites[what].efficiency *= float(value)
        else:
            scales[what] = float(value)
    return scales


def _term(sim: np.ndarray, rec: np.ndarray, floor: float) -> dict[str, float]:
    """Comparison numbers with ``abs_log_median_ratio`` (when there is anything to compare)."""
    st = metric_stats(sim, rec)
    if st["n"]:
        st["abs_log_median_ratio"] = abs(math.log((st["median_sim"] + floor) / (st["median_rec"] + floor)))
    return st


def score(task: CalibrationTask, theta: dict[str, float], seed: int, part: str = "train") -> dict[str, Any]:
    """Replay the ``part`` of the trace (jobs and/or transfers) with parameters ``theta`` and seed ``seed``;
    the loss and the comparison numbers."""
    weights = dict(task.weights)
    loss, out = 0.0, {"metrics": {}, "sites": {}, "links": {}, "jobs": 0, "transfers": 0}
    if task.jobs is not None and any(cp.family(k) in cp.JOB_FAMILIES for k in theta):
        job_loss, job_out = _score_jobs(task, theta, seed, part, weights)
        loss += job_loss
        out.update(job_out)
    links = [cp.member(k) for k in theta if cp.family(k) == "link.bandwidth_scale"]
    if task.transfers is not None and links:
        from gridtwin.replay.transfers import link_loss, replay_transfers

        tt = _transfers(task, part)
        plat, data = _base(task)
        ddm = data["ddm"]
        sim = replay_transfers(tt, plat, {k: theta[f"link.bandwidth_scale[{k}]"] for k in links}, ddm["flow_model"])
        t_loss, per = link_loss(sim, tt, links)
        loss += weights.get("transfers", 1.0) * t_loss
        out["links"], out["transfers"], out["transfer_loss"] = per, int(tt.done.sum()), t_loss
    out["loss"] = loss
    return out


def _score_jobs(task: CalibrationTask, theta: dict[str, float], seed: int, part: str,
                weights: dict[str, float]) -> tuple[float, dict[str, Any]]:
    from gridtwin.config import scenario_from_dict
    from gridtwin.scenario import apply_link_scales, run_scenario

    trace, plat, wl, _, base = _context(task, part)
    data = copy.deepcopy(base)
    data["seed"] = seed
    plat = copy.deepcopy(plat)
    apply_link_scales(plat, _apply(plat, data, theta))
    if task.work == "task":  # each task's work follows the trial's queue speeds
        wl = trace_workload(trace, plat, "task")[0]
    sc = scenario_from_dict(data, "calibration trial")
    with tempfile.TemporaryDirectory() as tmp:
        run_scenario(sc, Path(tmp) / "run", workload=copy.deepcopy(wl) if task.work != "task" else wl,
                     platform=plat, report=False)
        simulated = pq.read_table(Path(tmp) / "run" / "jobs.parquet")
    p = paired_jobs(trace.table, simulated, _mapping(trace, simulated))
    metrics, loss = {}, 0.0
    for m in CAL_METRICS:
        sim, rec = p[f"{m}_sim"], p[f"{m}_rec"]
        if m == "stagein":  # jobs without input copy nothing on either side: they would only dilute the KS
            has_input = np.nan_to_num(p["inputfilebytes"]) > 0
            sim, rec = sim[has_input], rec[has_input]
        st = metrics[m] = _term(sim, rec, MEDIAN_FLOOR[m])  # a median of 0 (rounded seconds) must still count
        if st["n"]:
            loss += weights.get(m, 0.0) * (st["ks"] + st["abs_log_median_ratio"])
    sites: dict[str, dict[str, Any]] = {}
    shared = np.isin(p["recorded_pandaid"], _shared_task_jobs(task, part))
    n = max(len(p["site"]), 1)
    for q in sorted({cp.member(k) for k in theta if cp.family(k) in ("site.corepower", "site.efficiency")}):
        mask = shared & (p["site"] == q)
        sites[q] = {m: _log_ratio(p[f"{m}_sim"][mask], p[f"{m}_rec"][mask]) for m in SITE_METRICS}
        for st in sites[q].values():
            if st["n"]:
                loss += weights.get("site", 1.0) * 10.0 * (p["site"] == q).sum() / n * abs(st["median_log_ratio"])
    return loss, {"metrics": metrics, "sites": sites, "jobs": len(p["recorded_pandaid"])}


def _log_ratio(sim: np.ndarray, rec: np.ndarray) -> dict[str, float]:
    """Job by job: the median of log(simulated / recorded) and its exponential, over positive pairs."""
    ok = np.isfinite(sim) & np.isfinite(rec) & (sim > 0) & (rec > 0)
    if not ok.any():
        return {"n": 0, "median_log_ratio": math.nan, "median_ratio": math.nan}
    med = float(np.median(np.log(sim[ok] / rec[ok])))
    return {"n": int(ok.sum()), "median_log_ratio": med, "median_ratio": math.exp(med)}


@functools.lru_cache(maxsize=4)
def _shared_task_jobs(task: CalibrationTask, part: str) -> np.ndarray:
    """Recorded pandaids of the part's finished jobs whose payload group (task and transformation, as the fit
    groups them) ran at several queues: the jobs that show a queue's speed against the others (a group seen
    at one queue fits any speed)."""
    from gridtwin.replay.sitespeed import payload_groups

    t = _context(task, part)[0].table
    tg = payload_groups(t)[0]
    sites = np.unique(np.array(t.column("computingsite").to_pylist(), dtype=object), return_inverse=True)[1]
    finished = np.array([x == "finished" for x in t.column("jobstatus").to_pylist()], dtype=bool)
    pairs = np.unique(np.stack([tg[finished], sites[finished]]), axis=1)
    n_sites = np.bincount(pairs[0], minlength=int(tg.max()) + 1)
    keep = finished & (n_sites[tg] > 1)
    return numbers(t, "pandaid")[keep].astype(np.int64)


def estimates(task: CalibrationTask, names: list[str]) -> dict[str, tuple[float, float, float]]:
    """Per parameter, (low, first guess, high) read off the training part of the records. The search stays
    within these data-driven bounds (clipped to the parameter's own range) and starts from the guesses:

    - pilot latency: the recorded queue-time median and log spread; setup: the recorded setup median;
      LAN rate: the recorded bytes over stage-in seconds;
    - a queue's corepower factor and efficiency: the fixed-effects fit over tasks shared with other queues;
    - a link's scale: where the median simulated/recorded duration ratio is 1 (:func:`_link_guesses`)."""
    out: dict[str, tuple[float, float, float]] = {}
    if task.jobs is not None:
        out.update(_job_estimates(task))
    if any(cp.family(n) in ("site.corepower", "site.efficiency") for n in names):
        fx = site_effects_of(task)
        plat = _base(task)[0]
        for q in sorted({cp.member(n) for n in names if cp.family(n) in ("site.corepower", "site.efficiency")}):
            g = fx.corepower[q] / plat.sites[q].corepower
            out[f"site.corepower[{q}]"] = cp.clip_bounds(f"site.corepower[{q}]", g / 3.0, g, g * 3.0)
            e = fx.efficiency[q] / plat.sites[q].efficiency
            out[f"site.efficiency[{q}]"] = cp.clip_bounds(f"site.efficiency[{q}]", e / 3.0, e, e * 3.0)
    links = [cp.member(n) for n in names if cp.family(n) == "link.bandwidth_scale"]
    if links:
        for k, g in _link_guesses(_transfer_task(task), tuple(links))[0].items():
            out[f"link.bandwidth_scale[{k}]"] = cp.clip_bounds(f"link.bandwidth_scale[{k}]", g / 5.0, g, g * 5.0)
    return out


def _transfer_task(task: CalibrationTask) -> CalibrationTask:
    """The part of a task the transfer replay depends on (so its cached results are shared)."""
    return dataclasses.replace(task, jobs=None, work="recorded", reference=())


@functools.lru_cache(maxsize=4)
def _link_guesses(task: CalibrationTask, links: tuple[str, ...], rounds: int = 16
                  ) -> tuple[dict[str, float], tuple[str, ...]]:
    """Per link, the scale at which the median simulated/recorded duration ratio is 1, and the links whose
    durations do not follow the scale at all.

    That ratio falls as the scale grows: as 1/scale where the link limits the rate, more steeply when a
    slower link piles up transfers, not at all where the latency phase or the TCP window limits it. Each
    link's root is bracketed in log scale (steps as if the ratio went as 1/scale, at least a factor 2) and
    then found by false position with the Illinois rule. A link whose log ratio moves by less than 5% of the
    step in log scale (a link-bound transfer moves by all of it) is not calibrated: the records cannot tell
    its bandwidth. Links do not interact, so one replay
    per round moves them all."""
    from gridtwin.replay.transfers import replay_transfers

    tt = _transfers(task, "train")
    plat, data = _base(task)
    keys, rec = np.array(tt.link_keys(), dtype=object), tt.durations()
    masks = {k: (keys == k) & tt.done & (rec > 0) for k in links}
    fam = cp.FAMILIES["link.bandwidth_scale"]
    x_min, x_max = math.log(fam.low), math.log(fam.high)
    x = dict.fromkeys(links, 0.0)  # log scale
    lo: dict[str, list[float]] = {}  # [x, f] with f > 0: simulated too slow, the scale must grow
    hi: dict[str, list[float]] = {}  # [x, f] with f < 0
    last_side: dict[str, str] = {}
    previous: dict[str, tuple[float, float]] = {}
    flat: set[str] = set()
    active = set(links)
    for _ in range(rounds):
        sim = replay_transfers(tt, plat, {k: math.exp(v) for k, v in x.items()}, data["ddm"]["flow_model"])
        for k in sorted(active):
            ok = masks[k] & np.isfinite(sim) & (sim > 0)
            if not ok.any():
                active.discard(k)
                continue
            f = float(np.median(np.log(sim[ok] / rec[ok])))
            if abs(f) < 1e-3:
                active.discard(k)
                continue
            if not (k in lo and k in hi) and k in previous:
                x_prev, f_prev = previous[k]
                if abs(f - f_prev) < 0.05 * abs(x[k] - x_prev):  # a bandwidth-bound link would move by |dx|
                    flat.add(k)
                    active.discard(k)
                    continue
            previous[k] = (x[k], f)
            side = "lo" if f > 0 else "hi"
            ends = lo if side == "lo" else hi
            other = hi if side == "lo" else lo
            if last_side.get(k) == side and k in other:  # Illinois: the other end was kept twice, halve its f
                other[k][1] /= 2.0
            ends[k] = [x[k], f]
            last_side[k] = side
            if k in lo and k in hi:
                (x0, f0), (x1, f1) = lo[k], hi[k]
                x[k] = x0 - f0 * (x1 - x0) / (f1 - f0)
            else:
                step = math.copysign(max(abs(f), math.log(2.0)), f)
                x[k] = min(max(x[k] + step, x_min), x_max)
                if x[k] in (x_min, x_max):
                    active.discard(k)
        if not active:
            break
    return {k: (1.0 if k in flat else math.exp(v)) for k, v in x.items()}, tuple(sorted(flat))


def _job_estimates(task: CalibrationTask) -> dict[str, tuple[float, float, float]]:
    trace = _context(dataclasses.replace(task, work="recorded"), "train")[0]
    t = trace.table

    col = functools.partial(numbers, t)
    queue = (col("starttime") - col("creationtime")) / 1000.0
    queue = queue[np.isfinite(queue) & (queue > 0)]
    q_med = float(np.median(queue)) if len(queue) else 600.0
    q_sig = float(np.std(np.log(queue))) if len(queue) > 1 else 1.0
    setup = col("timesetup")
    setup = setup[np.isfinite(setup)]
    s_med = float(np.median(setup)) if len(setup) else 60.0
    stagein, nbytes = col("timestagein"), col("inputfilebytes")
    ok = np.isfinite(stagein) & (stagein > 0) & np.isfinite(nbytes) & (nbytes > 0)
    lan = float(nbytes[ok].sum() / stagein[ok].sum() / 1e6) if ok.any() else 200.0
    guess = {
        "pilot.latency_median_s": (q_med / 20.0, q_med, q_med * 5.0),
        "pilot.latency_sigma": (0.0, min(q_sig, 2.0), 2.5),
        "pilot.setup_s": (0.0, s_med, max(60.0, 4.0 * s_med)),
        "network.lan_rate_mbps": (lan / 10.0, lan, lan * 10.0),
    }
    return {name: cp.clip_bounds(name, *g) for name, g in guess.items()}


def _distributions(names: list[str], bounds: dict[str, tuple[float, float, float]]) -> dict[str, Any]:
    import optuna

    return {n: optuna.distributions.FloatDistribution(bounds[n][0], bounds[n][2], log=cp.spec(n).log)
            for n in names}


def _sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, multivariate=True)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, restart_strategy=None, warn_independent_sampling=False)
    raise ConfigError(f"--sampler {name}: tpe or cmaes was expected")


def calibrate(task: CalibrationTask, out: Path, *, trials: int = 100, sampler: str = "tpe",
              params: list[str] | None = None, seed: int = 0, seeds: int = 3, workers: int = 1,
              scheduler: str | None = None, progress: Callable[[int, int, float], None] | None = None
              ) -> dict[str, Any]:
    """Run (or resume) the study in ``out``; validate the best parameters on the held-out part; write
    calibration.json, trials.parquet and calibrated.yaml. Returns the calibration summary."""
    import optuna
    from optuna.trial import TrialState

    if not 0.0 < task.holdout < 1.0:
        raise ConfigError(f"--holdout {task.holdout}: a fraction in (0, 1) was expected")
    if trials < 1 or workers < 1 or seeds < 1:
        raise ConfigError("--trials, --workers and --seeds must be at least 1")
    task, names, notes = plan(task, params)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = defaults(task, names)
    if task.jobs is not None:
        _context(task, "test")  # checks the held-out part before any trial
    if task.transfers is not None:
        _transfers(task, "test")
    study = optuna.create_study(study_name="gridtwin-calibrate", storage=f"sqlite:///{out / 'study.db'}",
                                sampler=_sampler(sampler, seed), direction="minimize", load_if_exists=True)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)  # interrupted: asked, never told
    bounds = estimates(task, names)
    dists = _distributions(names, bounds)
    if not study.trials:  # a new study starts from what the trace says directly
        study.enqueue_trial({n: bounds[n][1] for n in names})
    client = _client(workers, scheduler)
    try:
        while (done := len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))) < trials:
            # a sampler seeded by the trials done so far: a resumed study asks what an uninterrupted one would
            study.sampler = _sampler(sampler, seed + done)
            batch = [study.ask(dists) for _ in range(min(workers, trials - done))]
            thetas = [{**{k: v for k, v in base.items() if k not in names}, **t.params} for t in batch]
            if client is None:
                results = [score(task, th, seed) for th in thetas]
            else:
                futures = client.map(score, [task] * len(thetas), thetas, [seed] * len(thetas), pure=False)
                results = client.gather(futures)
            for t, r in zip(batch, results, strict=True):
                study.tell(t, r["loss"])
            if progress:
                progress(done + len(batch), trials, study.best_value)
    finally:
        if client is not None:
            client.close()
    best = {**base, **study.best_params}
    summary = _validate(task, base, best, names, seed, seeds, study, sampler)
    summary["notes"] = notes
    _write_outputs(out, task, study, best, names, summary)
    return summary


def plan(task: CalibrationTask, params: list[str] | None) -> tuple[CalibrationTask, list[str], list[str]]:
    """The concrete parameters of a calibration, the task reduced to the parts they need (jobs, transfers,
    work mode), and notes on what the records could not calibrate."""
    if task.jobs is None and task.transfers is None:
        raise ConfigError("nothing to calibrate against: give recorded jobs (JOBS), --transfers, or both")
    default = [*PARAMS, "site.corepower", "site.efficiency"] if task.jobs else []
    fams = list(params or [*default, *(["link.bandwidth_scale"] if task.transfers else [])])
    cp.check_families(fams)
    needs_jobs = [f for f in fams if cp.family(f) in cp.JOB_FAMILIES]
    if needs_jobs and task.jobs is None:
        raise ConfigError(f"--param {', '.join(needs_jobs)}: needs recorded jobs (JOBS)")
    if "link.bandwidth_scale" in {cp.family(f) for f in fams} and task.transfers is None:
        raise ConfigError("--param link.bandwidth_scale: needs recorded transfers (--transfers)")
    fam_of = {cp.family(f) for f in fams}
    sites, links = candidates(task, bool(fam_of & {"site.corepower", "site.efficiency"}),
                              "link.bandwidth_scale" in fam_of)
    names = cp.expand(fams, sites, links)
    for n in names:  # a member named on the command line must be one the records can calibrate
        what = cp.member(n)
        if what is not None and what not in (links if cp.family(n) == "link.bandwidth_scale" else sites):
            raise ConfigError(f"--param {n}: {what} cannot be calibrated from these records (calibrable: "
                              f"{', '.join((links if n.startswith('link.') else sites)[:10]) or 'none'})")
    notes: list[str] = []
    if any(f.startswith("site.") for f in fams):
        fx = site_effects_of(task)
        notes += fx.notes
        if not sites:
            notes.append("site.corepower, site.efficiency: no queue of the trace can be calibrated (its speed "
                         "shows only against the same tasks run at other queues)")
        elif len(sites) > cp.MAX_SITES:
            notes.append(f"site.*: the {cp.MAX_SITES} busiest of {len(sites)} identifiable queues are calibrated")
    if "link.bandwidth_scale" in fams:
        from gridtwin.replay.transfers import MIN_TRANSFERS

        if not links:
            notes.append(f"link.bandwidth_scale: no link has {MIN_TRANSFERS} done transfers in the training part")
        elif len(links) > cp.MAX_LINKS:
            notes.append(f"link.bandwidth_scale: the {cp.MAX_LINKS} busiest of {len(links)} links with at least "
                         f"{MIN_TRANSFERS} done transfers are calibrated")
    link_names = tuple(cp.member(n) for n in names if cp.family(n) == "link.bandwidth_scale")
    if link_names:
        flat = _link_guesses(_transfer_task(task), link_names)[1]
        if flat:
            names = [n for n in names if cp.member(n) not in flat or cp.family(n) != "link.bandwidth_scale"]
            notes.append(f"link.bandwidth_scale: {len(flat)} link(s) not calibrated, their durations do not follow "
                         f"the bandwidth (latency or TCP window bound): {', '.join(flat[:10])}")
    if not names:
        raise ConfigError("nothing to calibrate: " + "; ".join(notes))
    fam_set = {cp.family(n) for n in names}
    task = dataclasses.replace(
        task, jobs=task.jobs if fam_set & set(cp.JOB_FAMILIES) else None,
        transfers=task.transfers if "link.bandwidth_scale" in fam_set else None,
        work="task" if fam_set & {"site.corepower", "site.efficiency"} else "recorded")
    return task, names, notes


def _client(workers: int, scheduler: str | None) -> Any:
    """A Dask client: the given scheduler, a local cluster of ``workers`` processes, or None (inline)."""
    if scheduler is None and workers == 1:
        return None
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        return Client(scheduler)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    return Client(cluster)


def _validate(task: CalibrationTask, base: dict[str, float], best: dict[str, float], names: list[str], seed: int,
              seeds: int, study: Any, sampler: str) -> dict[str, Any]:
    """Held-out numbers of the default and the best parameters over ``seeds`` seeds (mean and spread)."""
    def mean_sd(runs: list[dict[str, Any]], get: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for k in ("n", "ks", "median_sim", "median_rec", "median_rel_error", "wasserstein"):
            vals = np.array([get(r).get(k, math.nan) for r in runs], dtype=np.float64)
            out[k] = float(np.mean(vals))
            out[f"{k}_sd"] = float(np.std(vals))
        return out

    def over_seeds(theta: dict[str, float]) -> dict[str, Any]:
        runs = [score(task, theta, seed + 1000 + s, part="test") for s in range(seeds)]
        out: dict[str, Any] = {"loss_mean": float(np.mean([r["loss"] for r in runs])),
                               "loss_sd": float(np.std([r["loss"] for r in runs])), "jobs": runs[0]["jobs"],
                               "transfers": runs[0]["transfers"]}
        for m in runs[0]["metrics"]:
            out[m] = mean_sd(runs, lambda r, m=m: r["metrics"][m])
        out["sites"] = {q: {m: {k: float(np.mean([r["sites"][q][m][k] for r in runs]))
                                for k in ("n", "median_log_ratio", "median_ratio")} for m in SITE_METRICS}
                        for q in runs[0]["sites"]}
        out["links"] = {k: {**mean_sd(runs, lambda r, k=k: r["links"][k]),
                            **{x: runs[0]["links"][k][x] for x in ("mean_abs_log_ratio", "median_ratio")}}
                        for k in runs[0]["links"]}
        return out

    complete = [t for t in study.trials if t.value is not None]
    return {
        "trace": Path(task.jobs).name if task.jobs else None,
        "transfers": Path(task.transfers).name if task.transfers else None,
        "platform": Path(task.platform).name, "holdout": task.holdout, "work": task.work,
        "sampler": sampler, "seed": seed, "seeds": seeds, "trials": len(complete), "calibrated": names,
        "weights": dict(task.weights), "defaults": {k: base[k] for k in names}, "best": {k: best[k] for k in names},
        "best_train_loss": study.best_value,
        "held_out": {"before": over_seeds(base), "after": over_seeds(best)},
    }


def _write_outputs(out: Path, task: CalibrationTask, study: Any, best: dict[str, float], names: list[str],
                   summary: dict[str, Any]) -> None:
    import pyarrow as pa

    rows = [t for t in study.trials if t.value is not None]
    cols: dict[str, Any] = {"number": pa.array([t.number for t in rows], pa.int64()),
                            "loss": pa.array([t.value for t in rows], pa.float64())}
    for name in sorted({k for t in rows for k in t.params}):
        cols[name] = pa.array([t.params.get(name) for t in rows], pa.float64())
    pq.write_table(pa.table(cols), out / "trials.parquet")
    platform = _base(task)[0]
    scenario: dict[str, Any] = {
        "platform": platform_config(task.platform).model_dump(mode="json", exclude_defaults=True),
        **{k: dict(block) for k, block in scenario_knobs(task.platform).items()},
    }
    pconf = scenario["platform"]
    for key in names:
        value, fam, what = float(best[key]), cp.family(key), cp.member(key)
        if what is None:
            block, name = key.split(".")
            scenario.setdefault(block, {})[name] = round(value, 6)
        elif fam == "site.corepower":  # the platform's corepower already holds any earlier override
            pconf.setdefault("overrides", {}).setdefault(what, {})["corepower"] = round(
                platform.sites[what].corepower * value, 4)
        elif fam == "site.efficiency":
            pconf.setdefault("overrides", {}).setdefault(what, {})["efficiency"] = round(value, 4)
        else:
            scales = pconf.setdefault("link_scales", {})
            scales[what] = round(float(scales.get(what, 1.0)) * value, 6)
    source = " and ".join(Path(x).name for x in (task.jobs, task.transfers) if x)
    header = (f"# calibrated by gridtwin calibrate on {source} ({summary['trials']} trials, "
              f"{summary['sampler']}); use with gridtwin simulate or gridtwin replay --platform\n")
    (out / "calibrated.yaml").write_text(header + yaml.safe_dump(scenario, sort_keys=True))
    (out / "calibration.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=float) + "\n")

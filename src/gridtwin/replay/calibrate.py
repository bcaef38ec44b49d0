"""``gridtwin calibrate``: fit the twin's parameters to a recorded trace with Optuna, trials on Dask.

The trace is split by time: the earlier part (``1 - holdout``) is replayed in every trial, the later part
only to validate the best parameters (and the defaults, for comparison) over several seeds. A trial replays
the training part historically with candidate parameters and scores the distance between simulated and
recorded jobs: for each compared quantity (walltime, queue time, stage-in, CPU efficiency), the two-sample
KS statistic plus |log(simulated median / recorded median)|, weighted (stage-in: the jobs with input);
and the pilot's setup time, the fifth part of ``pilottiming``.

The calibrated parameters are those a historical replay can identify: the pilot latency distribution
(median and sigma: queue time), the pilot's setup time (walltime of short jobs) and the LAN copy rate
(stage-in). A queue's corepower and efficiency are not among them: a replay turns each record's own CPU
time into work, so the record already carries the speed of the queue it ran at (docs/replay.md).

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

from gridtwin.errors import ConfigError
from gridtwin.replay.compare import METRICS, metric_stats, numbers, paired_jobs
from gridtwin.replay.run import HISTORICAL, _mapping, platform_config, replay_scenario, scenario_knobs
from gridtwin.replay.sites import resolve_sites
from gridtwin.replay.trace import Trace, load_trace, trace_workload


@dataclass(frozen=True)
class Param:
    """A calibrated parameter: the scenario key it sets, its search range and scale."""

    key: str
    low: float
    high: float
    log: bool


PARAMS: dict[str, Param] = {
    "pilot.latency_median_s": Param("pilot.latency_median_s", 1.0, 50_000.0, True),
    "pilot.latency_sigma": Param("pilot.latency_sigma", 0.0, 2.5, False),
    "pilot.setup_s": Param("pilot.setup_s", 0.0, 600.0, False),
    "network.lan_rate_mbps": Param("network.lan_rate_mbps", 1.0, 5_000.0, True),
}
DEFAULT_WEIGHTS = {"wall_time": 1.0, "queue_time": 1.0, "stagein": 1.0, "setup": 1.0, "cpu_eff": 0.5}
MEDIAN_FLOOR = {"wall_time": 1.0, "queue_time": 1.0, "stagein": 1.0, "setup": 1.0, "cpu_eff": 0.01}
CAL_METRICS = (*METRICS, "setup")
"""The compared quantities, and the pilot's setup time (the fifth part of ``pilottiming``)."""
"""Added to both medians before their log ratio (s, or CPU efficiency)."""


@dataclass(frozen=True)
class CalibrationTask:
    """What a worker needs to score parameters (plain values, so it travels to Dask workers)."""

    jobs: str
    platform: str
    missing_sites: str = "error"
    holdout: float = 0.3
    ddm: bool = False
    weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_WEIGHTS.items())


def _split(trace: Trace, holdout: float, part: str) -> Trace:
    """The earlier (``train``) or later (``test``) part of a trace in creation order."""
    n_train = round(trace.n_jobs * (1.0 - holdout))
    table = trace.table.slice(0, n_train) if part == "train" else trace.table.slice(n_train)
    return dataclasses.replace(trace, table=table)


@functools.lru_cache(maxsize=4)
def _context(task: CalibrationTask, part: str) -> tuple[Trace, Any, Any, Any, dict[str, Any]]:
    """Trace part, platform, workload, epoch and base scenario mapping (cached per worker process)."""
    from gridtwin.scenario import build_platform

    trace = _split(load_trace(Path(task.jobs)), task.holdout, part)
    if trace.n_jobs == 0:
        raise ConfigError(f"--holdout {task.holdout}: the {part} part of the trace has no job")
    sc = replay_scenario(trace, platform_config(task.platform), HISTORICAL, 1, task.ddm,
                         scenario_knobs(task.platform))
    plat = build_platform(sc)
    resolve_sites(trace, plat, task.missing_sites)
    wl, epoch = trace_workload(trace, plat)
    data = sc.model_dump()
    data["epoch"] = epoch
    data["workload"]["duration_h"] = wl.duration_s / 3600.0
    return trace, plat, wl, epoch, data


def defaults(task: CalibrationTask) -> dict[str, float]:
    """The values the scenario (or the built-in defaults) gives the calibrated parameters."""
    data = _context(task, "train")[4]
    return {k: float(data[k.split(".")[0]][k.split(".")[1]]) for k in PARAMS}


def score(task: CalibrationTask, theta: dict[str, float], seed: int, part: str = "train") -> dict[str, Any]:
    """Replay the ``part`` of the trace with parameters ``theta`` and seed ``seed``; the loss and the
    comparison numbers per quantity."""
    from gridtwin.config import scenario_from_dict
    from gridtwin.scenario import run_scenario

    trace, plat, wl, _, base = _context(task, part)
    data = copy.deepcopy(base)
    data["seed"] = seed
    for key, value in theta.items():
        block, name = key.split(".")
        data[block][name] = float(value)
    sc = scenario_from_dict(data, "calibration trial")
    with tempfile.TemporaryDirectory() as tmp:
        run_scenario(sc, Path(tmp) / "run", workload=copy.deepcopy(wl), platform=copy.deepcopy(plat), report=False)
        simulated = pq.read_table(Path(tmp) / "run" / "jobs.parquet")
    p = paired_jobs(trace.table, simulated, _mapping(trace, simulated))
    weights = dict(task.weights)
    metrics, loss = {}, 0.0
    for m in CAL_METRICS:
        sim, rec = p[f"{m}_sim"], p[f"{m}_rec"]
        if m == "stagein":  # jobs without input copy nothing on either side: they would only dilute the KS
            has_input = np.nan_to_num(p["inputfilebytes"]) > 0
            sim, rec = sim[has_input], rec[has_input]
        st = metric_stats(sim, rec)
        if not st["n"]:
            metrics[m] = st
            continue  # nothing to compare (e.g. no stage-in recorded)
        eps = MEDIAN_FLOOR[m]  # a median of 0 (rounded pilottiming seconds) must still count
        st["abs_log_median_ratio"] = abs(math.log((st["median_sim"] + eps) / (st["median_rec"] + eps)))
        metrics[m] = st
        loss += weights.get(m, 0.0) * (st["ks"] + st["abs_log_median_ratio"])
    return {"loss": loss, "metrics": metrics, "jobs": len(p["recorded_pandaid"])}


def trace_estimates(task: CalibrationTask) -> dict[str, tuple[float, float, float]]:
    """Per parameter, (low, first guess, high) read off the training part of the trace: the recorded
    queue-time median for the pilot latency, the recorded setup median, and the recorded bytes over
    stage-in seconds for the LAN rate. The search stays within these data-driven bounds (clipped to the
    parameter's own range) and starts from the guesses."""
    trace = _context(task, "train")[0]
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
    out = {}
    for name, (lo, mid, hi) in guess.items():
        p = PARAMS[name]
        lo, hi = max(p.low, lo), min(p.high, hi)
        if not lo < hi:
            lo, hi = p.low, p.high
        out[name] = (lo, min(max(mid, lo), hi), hi)
    return out


def _distributions(names: list[str], bounds: dict[str, tuple[float, float, float]]) -> dict[str, Any]:
    import optuna

    return {n: optuna.distributions.FloatDistribution(bounds[n][0], bounds[n][2], log=PARAMS[n].log)
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

    names = list(params or PARAMS)
    unknown = [n for n in names if n not in PARAMS]
    if unknown:
        raise ConfigError(f"--param {', '.join(unknown)}: unknown (calibrated parameters: {', '.join(PARAMS)})")
    if not 0.0 < task.holdout < 1.0:
        raise ConfigError(f"--holdout {task.holdout}: a fraction in (0, 1) was expected")
    if trials < 1 or workers < 1 or seeds < 1:
        raise ConfigError("--trials, --workers and --seeds must be at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = defaults(task)  # also checks the trace, the platform and the split before any trial
    _context(task, "test")
    study = optuna.create_study(study_name="gridtwin-calibrate", storage=f"sqlite:///{out / 'study.db'}",
                                sampler=_sampler(sampler, seed), direction="minimize", load_if_exists=True)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)  # interrupted: asked, never told
    bounds = trace_estimates(task)
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
    _write_outputs(out, task, study, best, summary)
    return summary


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
    def over_seeds(theta: dict[str, float]) -> dict[str, Any]:
        runs = [score(task, theta, seed + 1000 + s, part="test") for s in range(seeds)]
        out: dict[str, Any] = {"loss_mean": float(np.mean([r["loss"] for r in runs])),
                               "loss_sd": float(np.std([r["loss"] for r in runs])), "jobs": runs[0]["jobs"]}
        for m in CAL_METRICS:
            out[m] = {}
            for k in ("ks", "median_sim", "median_rec", "median_rel_error", "wasserstein"):
                vals = np.array([r["metrics"][m][k] for r in runs], dtype=np.float64)
                out[m][k] = float(np.mean(vals))
                out[m][f"{k}_sd"] = float(np.std(vals))
        return out

    complete = [t for t in study.trials if t.value is not None]
    return {
        "trace": Path(task.jobs).name, "platform": Path(task.platform).name, "holdout": task.holdout,
        "sampler": sampler, "seed": seed, "seeds": seeds, "trials": len(complete), "calibrated": names,
        "weights": dict(task.weights), "defaults": base, "best": best, "best_train_loss": study.best_value,
        "held_out": {"before": over_seeds(base), "after": over_seeds(best)},
    }


def _write_outputs(out: Path, task: CalibrationTask, study: Any, best: dict[str, float],
                   summary: dict[str, Any]) -> None:
    import pyarrow as pa

    rows = [t for t in study.trials if t.value is not None]
    cols: dict[str, Any] = {"number": pa.array([t.number for t in rows], pa.int64()),
                            "loss": pa.array([t.value for t in rows], pa.float64())}
    for name in sorted({k for t in rows for k in t.params}):
        cols[name] = pa.array([t.params.get(name) for t in rows], pa.float64())
    pq.write_table(pa.table(cols), out / "trials.parquet")
    scenario: dict[str, Any] = {
        "platform": platform_config(task.platform).model_dump(mode="json", exclude_defaults=True),
        **{k: {n: v for n, v in block.items()} for k, block in scenario_knobs(task.platform).items()},
    }
    for key, value in best.items():
        block, name = key.split(".")
        scenario.setdefault(block, {})[name] = round(float(value), 6)
    header = (f"# calibrated by gridtwin calibrate on {Path(task.jobs).name} ({summary['trials']} trials, "
              f"{summary['sampler']}); use with gridtwin simulate or gridtwin replay --platform\n")
    (out / "calibrated.yaml").write_text(header + yaml.safe_dump(scenario, sort_keys=True))
    (out / "calibration.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=float) + "\n")

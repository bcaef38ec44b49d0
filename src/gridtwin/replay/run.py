"""``gridtwin replay``: run a recorded PanDA trace through the twin and compare the outcome with the record.

The run folder is a normal one (records, run.json, report.html) plus ``replay.json`` (what was read, set
aside and derived), ``replay_mapping.parquet`` (simulated pandaid -> recorded pandaid) and ``comparison/``.
Recorded outcomes are replayed as finished payloads: the random failure rates are 0 and a failed attempt is
not retried (a record is one attempt); the queue's memory and walltime limits still apply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gridtwin.config import PlatformConfig, Scenario, load_scenario, scenario_from_dict
from gridtwin.errors import ConfigError
from gridtwin.replay.compare import write_comparison
from gridtwin.replay.sites import resolve_sites
from gridtwin.replay.trace import Trace, load_trace, trace_workload

HISTORICAL = "historical"
REPLAY_FAILURES = {"stagein": 0.0, "oom": 0.0, "walltime": 0.0, "payload": 0.0, "stageout": 0.0, "max_attempts": 1}
"""Failure settings of a replay: recorded jobs are replayed as finished payloads, one attempt each."""


@dataclass
class ReplayResult:
    """What a replay produced."""

    out: Path
    n_jobs: int
    rejected: int
    set_aside: dict[str, int]
    warnings: list[str]
    pin_refused: int
    comparison: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0
    timings_s: dict[str, float] = field(default_factory=dict)
    """Wall time of the stages: load (import), build (platform, workload), run (simulation, records, report),
    compare (mapping, comparison)."""


def platform_config(spec: str | Path) -> PlatformConfig:
    """The platform part of a replay: a scenario YAML (its ``platform``), a CRIC JSON, or ``wlcg-like``."""
    if str(spec) == "wlcg-like":
        return PlatformConfig(builtin="wlcg-like")
    path = Path(spec)
    low = path.name.lower()
    if low.endswith((".yaml", ".yml")):
        return load_scenario(path).platform
    if low.endswith(".json"):
        if not path.is_file():
            raise ConfigError(f"--platform {path}: no such file")
        return PlatformConfig(cric=path.resolve())
    raise ConfigError(f"--platform {spec}: expected a scenario YAML, a CRIC JSON (site_info.json shape) or "
                      "wlcg-like")


KNOBS = ("pilot", "jedi", "network")
"""Blocks a scenario YAML given as ``--platform`` lends the replay besides its platform (e.g. the pilot
latency that makes queue times realistic)."""


def scenario_knobs(spec: str | Path) -> dict[str, Any]:
    """The ``pilot``, ``jedi`` and ``network`` settings of a scenario YAML platform spec (empty otherwise)."""
    if not str(spec).lower().endswith((".yaml", ".yml")):
        return {}
    sc = load_scenario(Path(spec))
    return {k: getattr(sc, k).model_dump() for k in KNOBS}


def replay_scenario(trace: Trace, platform: PlatformConfig, policy: str, seed: int, ddm: bool,
                    knobs: dict[str, Any] | None = None) -> Scenario:
    """The scenario of a replay (before the trace sets its epoch and duration)."""
    data = {
        "name": f"replay-{Path(trace.source).name.split('.')[0]}", "seed": seed,
        "platform": platform.model_dump(exclude_none=True), "brokerage": {"policy": policy},
        "failures": dict(REPLAY_FAILURES), "ddm": {"enabled": ddm}, **(knobs or {}),
    }
    return scenario_from_dict(data, "replay")


def replay(jobs: Path, platform: str | Path, out: Path, *, policy: str = HISTORICAL, missing_sites: str = "error",
           seed: int = 1, ddm: bool = True, force: bool = False, report: bool = True,
           work: str = "recorded") -> ReplayResult:
    """Replay the recorded jobs ``jobs`` on ``platform`` into the folder ``out`` (written atomically);
    ``work`` is the work mode of :func:`gridtwin.replay.trace.trace_workload`."""
    import time

    from gridtwin.scenario import atomic_folder, build_platform, check_output_folder, run_scenario

    t0 = time.perf_counter()
    trace = load_trace(jobs)
    t1 = time.perf_counter()
    sc = replay_scenario(trace, platform_config(platform), policy, seed, ddm, scenario_knobs(platform))
    plat = build_platform(sc)
    warnings = resolve_sites(trace, plat, missing_sites)
    wl, epoch = trace_workload(trace, plat, work)
    sc = sc.model_copy(update={"epoch": epoch, "workload": sc.workload.model_copy(
        update={"duration_h": wl.duration_s / 3600.0})})
    out = check_output_folder(out, force)
    t2 = time.perf_counter()
    with atomic_folder(out) as partial:
        result = run_scenario(sc, partial, workload=wl, platform=plat, report=report)
        t3 = time.perf_counter()
        simulated = pq.read_table(partial / "jobs.parquet")
        mapping = _mapping(trace, simulated)
        pq.write_table(mapping, partial / "replay_mapping.parquet")
        header = {"trace": trace.source, "platform": str(Path(str(platform)).name), "policy": policy, "seed": seed,
                  "ddm": ddm, "work": work}
        comparison = write_comparison(partial / "comparison", trace.table, simulated, mapping, header)
        pin_refused = result.tasks_broken if policy == HISTORICAL else 0
        info = {
            **header, "jobs_read": trace.n_jobs + sum(trace.set_aside.values()) + trace.rejected,
            "jobs_replayed": trace.n_jobs,
            "rejected_by_importer": trace.rejected, "rejected_by_reason": trace.rejected_by_reason,
            "set_aside": trace.set_aside, "importer_notes": trace.notes, "derived_sites": warnings,
            "pinned_jobs_refused": pin_refused, "epoch": epoch.isoformat(), "failures": REPLAY_FAILURES,
            "simulated_jobs": result.n_jobs, "unfinished_jobs": result.unfinished,
        }
        (partial / "replay.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    t4 = time.perf_counter()
    return ReplayResult(out=out, n_jobs=trace.n_jobs, rejected=trace.rejected, set_aside=trace.set_aside,
                        warnings=warnings, pin_refused=pin_refused, comparison=comparison, wall_time_s=t4 - t0,
                        timings_s={"load": t1 - t0, "build": t2 - t1, "run": t3 - t2, "compare": t4 - t3})


def _mapping(trace: Trace, simulated: pa.Table) -> pa.Table:
    """Simulated pandaid -> recorded pandaid (and both sides' task ids and queues), in simulated pandaid order."""
    t = trace.table
    task = np.asarray(simulated.column("jeditaskid").to_numpy(), dtype=np.int64) - 1  # pseudo-task ids are 1..N
    idx = pa.array(task)
    return pa.table({
        "simulated_pandaid": simulated.column("pandaid"),
        "attemptnr": simulated.column("attemptnr"),
        "jeditaskid": simulated.column("jeditaskid"),
        "recorded_pandaid": t.column("pandaid").take(idx),
        "recorded_jeditaskid": t.column("jeditaskid").take(idx),
        "recorded_site": t.column("computingsite").take(idx),
        "simulated_site": simulated.column("computingsite"),
    })

"""Small factories shared by the simulation-core tests: inline platforms, scenarios and hand-built
workloads whose job timelines can be computed by hand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from gridtwin import scenario as scenario_mod
from gridtwin.config import Scenario, scenario_from_dict
from gridtwin.scenario import RunResult, Simulation, run_scenario
from gridtwin.workload.spec import Datasets, Workload

EVGEN = 0
"""Index of the evgen family in ``CATEGORIES``: production (managed), no input dataset."""
ANALYSIS = 4
"""Index of the user-analysis family."""


def make_site(name: str, total_cores: int = 8, corecount: int = 8, corepower: float = 10.0,
              rses: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    """An inline PanDA queue (``platform.sites`` entry); its DATADISK is ``<name>_DATADISK`` by default."""
    site = {"name": name, "total_cores": total_cores, "corecount": corecount, "corepower": corepower,
            "capability": "ucore", "rses": [f"{name}_DATADISK"] if rses is None else rses}
    site.update(kw)
    return site


def make_rse(name: str, atlas_site: str, capacity_tb: float = 100.0, rse_type: str = "DISK") -> dict[str, Any]:
    """An inline RSE (``platform.rses`` entry)."""
    return {"name": name, "atlas_site": atlas_site, "rse_type": rse_type, "capacity_tb": capacity_tb}


NO_FAILURES = {"stagein": 0.0, "oom": 0.0, "walltime": 0.0, "payload": 0.0, "stageout": 0.0}
NO_PILOT_OVERHEAD = {"getjob_s": 0.0, "setup_s": 0.0, "jitter": False}


def make_scenario(sites: list[dict[str, Any]], rses: list[dict[str, Any]] | None = None,
                  links: list[dict[str, Any]] | None = None, **top: Any) -> dict[str, Any]:
    """A scenario mapping on an inline platform with no failures and no pilot overheads.

    ``rses`` defaults to the DATADISK of every site; ``top`` overrides top-level keys."""
    if rses is None:
        rses = [make_rse(r, s.get("atlas_site") or s["name"]) for s in sites for r in s["rses"]]
    data: dict[str, Any] = {
        "name": "test",
        "seed": 1,
        "drain_h": 48,
        "platform": {"sites": sites, "rses": rses, "links": links or []},
        "workload": {"scale": 0.0001, "duration_h": 1},
        "pilot": dict(NO_PILOT_OVERHEAD),
        "failures": dict(NO_FAILURES),
    }
    data.update(top)
    return data


@dataclass
class TaskSpec:
    """One hand-built task: its jobs' CPU work (HS06-s) and its brokerage attributes."""

    works: Sequence[float]
    arrival: float = 0.0
    priority: int = 900
    corecount: int = 1
    category: int = EVGEN
    ramcount_mb: int = 1000
    walltime_estimate_s: float = 1000.0
    cpu_eff: float = 1.0
    maxrss_kb: int = 1_000_000
    outputbytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def make_workload(tasks: Sequence[TaskSpec], duration_s: float = 3600.0) -> Workload:
    """A workload with no input data (dataset -1): stage-in is 0, and with ``outputbytes`` 0 stage-out is 0."""
    njobs = np.array([len(t.works) for t in tasks], dtype=np.int32)
    first_job = (np.cumsum(njobs) - njobs).astype(np.int64)
    n = int(njobs.sum())
    task_of_job = np.repeat(np.arange(len(tasks), dtype=np.int32), njobs)
    return Workload(
        jeditaskid=40_000_000 + np.arange(len(tasks), dtype=np.int64),
        category=np.array([t.category for t in tasks], dtype=np.int8),
        arrival=np.array([t.arrival for t in tasks], dtype=np.float64),
        priority=np.array([t.priority for t in tasks], dtype=np.int32),
        corecount=np.array([t.corecount for t in tasks], dtype=np.int32),
        ramcount_mb=np.array([t.ramcount_mb for t in tasks], dtype=np.int32),
        walltime_estimate_s=np.array([t.walltime_estimate_s for t in tasks], dtype=np.float64),
        io_intensity=np.zeros(len(tasks)),
        dataset=np.full(len(tasks), -1, dtype=np.int32),
        first_job=first_job,
        njobs=njobs,
        taskname=[f"test.task{i}" for i in range(len(tasks))],
        username=["atlas-production"] * len(tasks),
        workinggroup=["AP_MCGN"] * len(tasks),
        task=task_of_job,
        work_hs06s=np.array([w for t in tasks for w in t.works], dtype=np.float64),
        cpu_eff=np.array([t.cpu_eff for t in tasks for _ in t.works], dtype=np.float64),
        maxrss_kb=np.array([t.maxrss_kb for t in tasks for _ in t.works], dtype=np.int64),
        nevents=np.full(n, 100, dtype=np.int64),
        ninput=np.zeros(n, dtype=np.int32),
        first_file=np.zeros(n, dtype=np.int64),
        inputbytes=np.zeros(n, dtype=np.int64),
        outputbytes=np.array([t.outputbytes for t in tasks for _ in t.works], dtype=np.int64),
        datasets=Datasets(scope=[], name=[], nfiles=np.zeros(0, np.int64), file_bytes=np.zeros(0), file_type=[]),
        duration_s=duration_s,
    )


def _with_workload(workload: Workload):
    """Route a hand-built workload through ``Simulation.__init__`` in place of the generator."""
    return mock.patch.object(scenario_mod, "generate_workload", lambda params, rng: workload)


def simulation_with(sc: Scenario | dict[str, Any], workload: Workload, policy: Any = None) -> Simulation:
    """A built (not run) Simulation whose workload is ``workload``; every other piece is built as usual."""
    if isinstance(sc, dict):
        sc = scenario_from_dict(sc)
    with _with_workload(workload):
        return Simulation(sc, policy)


def run_with(sc: Scenario | dict[str, Any], workload: Workload, out: Path, **kw: Any) -> RunResult:
    """``run_scenario`` with a hand-built workload (records written to ``out``)."""
    if isinstance(sc, dict):
        sc = scenario_from_dict(sc)
    kw.setdefault("report", False)
    with _with_workload(workload):
        return run_scenario(sc, out, **kw)

"""Shared set-up of the dashboard tests: one small simulated run (with data management and an analysis),
and the same scenario run again with a live feed attached."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

SCENARIO = {
    "name": "dash-small", "seed": 11,
    "workload": {"scale": 0.004, "duration_h": 6},
    "metrics_interval_s": 600,
}


@pytest.fixture(scope="session")
def scenario_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("scenario") / "small.yaml"
    p.write_text(yaml.safe_dump(SCENARIO))
    return p


@pytest.fixture(scope="session")
def live_run(tmp_path_factory, scenario_file):
    """The small scenario run with a live feed every 10 simulated minutes; returns (feed, run folder)."""
    from gridtwin.config import load_scenario
    from gridtwin.dashboard.live import joined
    from gridtwin.scenario import run_scenario

    out = tmp_path_factory.mktemp("live") / "run"
    sampler, feed = joined(600.0)

    def attach(sim):
        sampler.attach(sim)
        sim.engine.schedule_at(3 * 3600.0, lambda _: feed.request_stats())  # a drill-down asks

    result = run_scenario(load_scenario(scenario_file), out, report=False, observer=attach)
    sampler.finish(result.out)
    from gridtwin.analytics.analyze import analyze_folder

    analyze_folder(result.out)
    return feed, result.out


@pytest.fixture(scope="session")
def served(live_run):
    """The live run's folder served on loopback (any free port): (server, RunFrames, run folder)."""
    from gridtwin.dashboard.frames import RunFrames
    from gridtwin.dashboard.server import DashboardServer

    _, run = live_run
    rf = RunFrames(run)
    server = DashboardServer(rf, "127.0.0.1", 0)
    server.start()
    yield server, rf, run
    server.stop()

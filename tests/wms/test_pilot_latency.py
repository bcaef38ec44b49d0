"""Pilot latency: an activated job waits a lognormal time for a pilot before a free core can take it."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from helpers_core import make_scenario, make_site

from gridtwin.config import scenario_from_dict
from gridtwin.scenario import run_scenario


def _run(tmp_path, name: str, **pilot) -> dict[str, np.ndarray]:
    sc = make_scenario([make_site("BIG", total_cores=200_000)], workload={"scale": 0.01, "duration_h": 2},
                       ddm={"enabled": False}, brokerage={"queue_cap_min": 1_000_000, "nqueued_sat_cap": 1_000_000},
                       pilot={"getjob_s": 0.0, "setup_s": 0.0, "jitter": False, **pilot})
    run_scenario(scenario_from_dict(sc), tmp_path / name, report=False)
    t = pq.read_table(tmp_path / name / "jobs.parquet", columns=["pandaid", "attemptnr", "starttime", "creationtime"])
    t = t.filter(pc.equal(t["attemptnr"], 1)).sort_by("pandaid")
    return {"pandaid": t["pandaid"].to_numpy(), "start": t["starttime"].cast("int64").to_numpy() / 1000.0}


def test_fixed_latency_delays_every_start_by_exactly_the_median(tmp_path):
    base = _run(tmp_path, "base")
    late = _run(tmp_path, "late", latency_median_s=600.0, latency_sigma=0.0)
    assert np.array_equal(base["pandaid"], late["pandaid"]) and len(base["pandaid"]) > 500
    np.testing.assert_allclose(late["start"] - base["start"], 600.0, atol=0.002)  # cores are plentiful


def test_lognormal_latency_has_its_median_and_sigma(tmp_path):
    base = _run(tmp_path, "base")
    late = _run(tmp_path, "late", latency_median_s=300.0, latency_sigma=0.8)
    wait = late["start"] - base["start"]
    assert np.all(wait > 0)
    logs = np.log(wait)
    n = len(logs)
    assert abs(np.median(wait) / 300.0 - 1.0) < 4 * 0.8 * 1.25 / np.sqrt(n)  # ~4 standard errors
    assert abs(logs.std() - 0.8) < 4 * 0.8 / np.sqrt(2 * n)
    _run(tmp_path, "again", latency_median_s=300.0, latency_sigma=0.8)
    assert (tmp_path / "late" / "jobs.parquet").read_bytes() == (tmp_path / "again" / "jobs.parquet").read_bytes()

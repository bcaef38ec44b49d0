"""Edges of a run: jobs in flight at the horizon, multi-core jobs behind 1-core backfill, broken
tasks, hs06sec, and a policy object reused across runs."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from helpers_core import ANALYSIS, TaskSpec, make_scenario, make_site, make_workload, run_with, simulation_with

from gridtwin.wms.states import JobStatus as S

H = 3600.0


def test_jobs_in_flight_at_the_horizon_are_recorded_as_they_are(tmp_path):
    # 8 jobs of 2 h start at 0 with getJob 10 s and setup 20 s; the run stops at 1 h (drain 0, 1 h window)
    sc = make_scenario([make_site("Q")], drain_h=0, pilot={"getjob_s": 10, "setup_s": 20, "jitter": False})
    res = run_with(sc, make_workload([TaskSpec(works=[72000.0] * 8)]), tmp_path / "run")
    assert res.unfinished == 8
    jobs = pq.read_table(tmp_path / "run" / "jobs.parquet").to_pylist()
    log = pq.read_table(tmp_path / "run" / "job_status_log.parquet").to_pylist()
    for j in jobs:
        assert j["jobstatus"] == "running"
        mine = [e for e in log if e["pandaid"] == j["pandaid"]]
        assert [e["jobstatus"] for e in mine] == ["defined", "activated", "sent", "starting", "running"]
        assert mine[-1]["modificationtime"] == j["modificationtime"]
        assert j["starttime"] is not None and j["endtime"] is None
        assert j["wall_time"] is None and j["hs06sec"] is None and j["cpu_eff"] is None
        assert j["queue_time"] == 10.0


@pytest.mark.parametrize(("drain_after_s", "mcore_start"), [(500.0, 1000.0), (1e9, 2000.0)])
def test_a_waiting_8_core_job_drains_cores_after_the_threshold(drain_after_s, mcore_start):
    # 8 cores. 16 one-core analysis jobs of 1000 s (priority 1000) and one 8-core job (priority 900)
    # arriving at 1 s. With mcore_drain_after_s = 500: at 1000 s the first wave ends, the 8-core job
    # has waited 999 s > 500, so the 8 freed cores are kept for it: it starts at 1000 s and the second
    # 1-core wave at 2000 s. Without draining (1e9 s) the 1-core jobs go first and it starts at 2000 s.
    sc = make_scenario([make_site("Q")], pilot={"getjob_s": 0, "setup_s": 0, "jitter": False,
                                                "mcore_drain_after_s": drain_after_s})
    wl = make_workload([TaskSpec(works=[10000.0] * 16, priority=1000, category=ANALYSIS),
                        TaskSpec(works=[80000.0], corecount=8, arrival=1.0, walltime_estimate_s=1000.0)])
    sim = simulation_with(sc, wl)
    sim.run()
    jobs = sim.server.jobs
    starts = {int(jobs.spec[r]): jobs.t_start[r] for r in range(len(jobs))}
    assert starts[16] == mcore_start  # the 8-core job
    second_wave = 2000.0 if mcore_start == 1000.0 else 1000.0
    assert sorted(starts[i] for i in range(16)) == [0.0] * 8 + [second_wave] * 8


def test_broken_task_books_no_remaining_work_and_is_reported(tmp_path):
    # the only queue is score (1 core): an 8-core production task can never run there
    sc = make_scenario([make_site("SCORE_Q", corecount=1, capability="score", is_nucleus=True)])
    wl = make_workload([TaskSpec(works=[1000.0] * 5, corecount=8), TaskSpec(works=[1000.0] * 3)])
    sim = simulation_with(sc, wl)
    sim.run()
    assert sim.server.jedi.tasks_without_candidates == {0}
    assert all(v == 0.0 for v in sim.server.taskbroker.rw.values())
    res = run_with(sc, wl, tmp_path / "run")
    assert (res.tasks_broken, res.specs_never_created, res.n_jobs) == (1, 5, 3)


def test_hs06sec_is_walltime_times_corepower_times_cores(tmp_path):
    # PanDA's JobUtils.getHS06sec: (end - start) x corepower x cores, whatever the CPU efficiency
    sc = make_scenario([make_site("Q", corepower=12.5)])
    wl = make_workload([TaskSpec(works=[40000.0], corecount=8, cpu_eff=0.5)])
    run_with(sc, wl, tmp_path / "run")
    j = pq.read_table(tmp_path / "run" / "jobs.parquet").to_pylist()[0]
    wall = 40000.0 / (8 * 12.5 * 0.5)  # 800 s
    assert j["wall_time"] == wall
    assert j["hs06sec"] == round(wall * 12.5 * 8)
    assert j["cpuconsumptiontime"] == round(40000.0 / 12.5)


def test_a_reused_policy_object_gives_the_same_run_twice(tmp_path):
    from gridtwin.policies.simple import RoundRobinPolicy

    sites = [make_site("A", total_cores=16), make_site("B", total_cores=16), make_site("C", total_cores=16)]
    sc = make_scenario(sites)
    wl = make_workload([TaskSpec(works=[1000.0] * 7), TaskSpec(works=[1000.0] * 5, arrival=10.0)])
    policy = RoundRobinPolicy()
    run_with(sc, wl, tmp_path / "a", policy=policy)
    run_with(sc, wl, tmp_path / "b", policy=policy)
    assert (tmp_path / "a" / "jobs.parquet").read_bytes() == (tmp_path / "b" / "jobs.parquet").read_bytes()
    assert S.finished.name in pq.read_table(tmp_path / "a" / "jobs.parquet").column("jobstatus").to_pylist()

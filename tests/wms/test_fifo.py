"""FIFO slots on one queue, checked against timelines computed by hand.

One 8-core queue (corepower 10 HS06/core), no failures, no pilot overheads, no input (stage-in 0)
and no output bytes (stage-out 0): a 1-core job of work W HS06-s runs W / (1 x 10 x 1.0) seconds.
"""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest
from helpers_core import TaskSpec, make_scenario, make_site, make_workload, run_with, simulation_with

from gridtwin.wms import failures as F
from gridtwin.wms.states import JobStatus as S

H = 3600.0


def run_sim(sc, wl):
    sim = simulation_with(sc, wl)
    sim.run()
    assert sim.server.n_active == 0
    return sim


def col(jobs, name: str) -> list:
    """A JobTable column as a plain list (the table may store typed arrays)."""
    return list(getattr(jobs, name))


def log_of(jobs, row):
    """(time, status) entries of one job's status log."""
    return [(float(t), S(int(s))) for r, t, s in zip(jobs.log_row, jobs.log_time, jobs.log_status, strict=True)
            if int(r) == row]


@pytest.fixture
def fifo_sc():
    return make_scenario([make_site("FIFO_Q", total_cores=8, corecount=8, corepower=10.0)])


# ten 1-core jobs of work 1000, 2000, ..., 10000 HS06-s: wall times 100, 200, ..., 1000 s
TEN = TaskSpec(works=[1000.0 * (i + 1) for i in range(10)])
TEN_START = [0, 0, 0, 0, 0, 0, 0, 0, 100, 200]  # jobs 9 and 10 take the slots freed at 100 and 200
TEN_END = [100, 200, 300, 400, 500, 600, 700, 800, 100 + 900, 200 + 1000]


def test_single_queue_fifo_start_and_end_times(fifo_sc):
    sim = run_sim(fifo_sc, make_workload([TEN]))
    jobs = sim.server.jobs
    assert len(jobs) == 10
    assert col(jobs, "t_create") == [0.0] * 10
    assert col(jobs, "t_start") == TEN_START
    assert col(jobs, "t_end") == TEN_END
    assert all(s == S.finished for s in jobs.status)
    st = sim.server.states[0]
    assert (st.free_cores, st.running, st.activated) == (8, 0, 0)


def test_status_log_of_a_queued_job(fifo_sc):
    sim = run_sim(fifo_sc, make_workload([TEN]))
    assert log_of(sim.server.jobs, 8) == [
        (0.0, S.defined), (0.0, S.activated), (100.0, S.sent), (100.0, S.starting), (100.0, S.running),
        (1000.0, S.finished)]


def test_fifo_records_in_jobs_parquet(fifo_sc, tmp_path):
    out = tmp_path / "run"
    result = run_with(fifo_sc, make_workload([TEN]), out)
    assert result.n_jobs == 10 and result.unfinished == 0
    jobs = pq.read_table(out / "jobs.parquet").sort_by("pandaid").to_pylist()
    t0 = jobs[0]["creationtime"]
    starts = [(j["starttime"] - t0).total_seconds() for j in jobs]
    ends = [(j["endtime"] - t0).total_seconds() for j in jobs]
    assert starts == TEN_START
    assert ends == TEN_END
    assert [j["wall_time"] for j in jobs] == [100.0 * (i + 1) for i in range(10)]
    assert [j["queue_time"] for j in jobs] == TEN_START
    assert [j["pilottiming"] for j in jobs][8:] == ["0|0|900|0|0", "0|0|1000|0|0"]
    assert {j["computingsite"] for j in jobs} == {"FIFO_Q"}
    assert {j["jobstatus"] for j in jobs} == {"finished"}
    # cpu time = work / corepower; hs06sec = work
    assert [j["cpuconsumptiontime"] for j in jobs] == [100 * (i + 1) for i in range(10)]
    assert [j["hs06sec"] for j in jobs] == [1000 * (i + 1) for i in range(10)]
    log = pq.read_table(out / "job_status_log.parquet").to_pylist()
    ninth = [r["jobstatus"] for r in log if r["pandaid"] == jobs[8]["pandaid"]]
    assert ninth == ["defined", "activated", "sent", "starting", "running", "finished"]


@pytest.mark.parametrize(("prio_b", "start_b", "end_b", "start_a8", "start_a9"), [
    (200, 100, 150, 150, 200),  # higher priority: B takes the first free slot (t=100), A8 the one B frees
    (100, 300, 350, 100, 200),  # same priority: by age, A8 and A9 (older) first; B gets the slot freed at 300
])
def test_priority_then_age(fifo_sc, prio_b, start_b, end_b, start_a8, start_a9):
    a = TaskSpec(works=TEN.works, priority=100)
    b = TaskSpec(works=[500.0], priority=prio_b, arrival=50.0)  # wall time 50 s
    sim = run_sim(fifo_sc, make_workload([a, b]))
    jobs = sim.server.jobs
    assert jobs.t_create[10] == 50.0
    assert (jobs.t_start[10], jobs.t_end[10]) == (start_b, end_b)
    assert (jobs.t_start[8], jobs.t_end[8]) == (start_a8, start_a8 + 900)
    assert (jobs.t_start[9], jobs.t_end[9]) == (start_a9, start_a9 + 1000)


def test_multicore_job_waits_for_a_whole_slot_and_single_core_backfills(fifo_sc):
    a = TaskSpec(works=[1000.0, 2000.0, 3000.0, 4000.0, 5000.0], priority=900)  # 5 cores busy until 100..500
    b = TaskSpec(works=[4000.0], corecount=8, priority=1000, arrival=10.0)  # 4000 / (8 x 10) = 50 s
    c = TaskSpec(works=[300.0], priority=800, arrival=20.0)  # 30 s
    sim = run_sim(fifo_sc, make_workload([a, b, c]))
    jobs = sim.server.jobs
    assert col(jobs, "t_start")[:5] == [0.0] * 5
    assert (jobs.t_start[6], jobs.t_end[6]) == (20.0, 50.0)  # C backfills past the 8-core job
    assert (jobs.t_start[5], jobs.t_end[5]) == (500.0, 550.0)  # B starts when all 8 cores are free


def test_walltime_formula_with_efficiencies():
    # 8-core job, work 10000 HS06-s, corepower 12.5, payload cpu_eff 0.5, site efficiency 0.8:
    # wall = 10000 / (8 x 12.5 x 0.5 x 0.8) = 250 s, cpu = work / corepower = 800 s
    sc = make_scenario([make_site("EFF_Q", corepower=12.5, efficiency=0.8)])
    sim = run_sim(sc, make_workload([TaskSpec(works=[10000.0], corecount=8, cpu_eff=0.5)]))
    jobs = sim.server.jobs
    assert jobs.t_end[0] - jobs.t_start[0] == pytest.approx(250.0)
    assert jobs.cpu_s[0] == pytest.approx(800.0)


def test_pilot_overheads_and_stageout(tmp_path):
    # getJob 15 s, setup 60 s, payload 100 s, stage-out 400 MB at 200 MB/s = 2 s
    sc = make_scenario([make_site("PIL_Q")], pilot={"getjob_s": 15, "setup_s": 60, "jitter": False})
    wl = make_workload([TaskSpec(works=[1000.0], outputbytes=400_000_000)])
    sim = run_sim(sc, wl)
    jobs = sim.server.jobs
    assert log_of(jobs, 0) == [(0.0, S.defined), (0.0, S.activated), (0.0, S.sent), (15.0, S.starting),
                               (75.0, S.running), (177.0, S.finished)]
    run_with(sc, wl, tmp_path / "run")
    row = pq.read_table(tmp_path / "run" / "jobs.parquet").to_pylist()[0]
    assert row["pilottiming"] == "15|0|100|2|60"
    assert (row["queue_time"], row["wall_time"]) == (15.0, 177.0 - 15.0)


def test_downtime_kills_running_closes_queued_and_retries_after_it():
    # 9 jobs of 2 h on 8 cores; the queue is down during [1 h, 2 h).
    sc = make_scenario([make_site("DT_Q")], downtimes=[{"site": "DT_Q", "start_h": 1, "end_h": 2}])
    sim = run_sim(sc, make_workload([TaskSpec(works=[72000.0] * 9)]))
    jobs = sim.server.jobs
    assert len(jobs) == 18
    # the 8 running jobs are killed at 1 h (pilot 1201) and the queued one is closed (taskbuffer 105)
    assert [S(s) for s in col(jobs, "status")[:9]] == [S.failed] * 8 + [S.closed]
    assert col(jobs, "pilot_error")[:8] == [F.SIGTERM] * 8 and col(jobs, "t_end")[:8] == [H] * 8
    assert jobs.tb_error[8] == F.TB_REASSIGNED and math.isnan(jobs.t_start[8])
    # the retries wait for the next JEDI cycle that finds the queue online: 2 h (the cycle at 1 h pended an hour)
    assert col(jobs, "parent")[9:] == list(range(9)) and col(jobs, "attempt")[9:] == [2] * 9
    assert col(jobs, "t_create")[9:] == [2 * H] * 9
    assert col(jobs, "t_start")[9:] == [2 * H] * 8 + [4 * H]
    assert col(jobs, "t_end")[9:] == [4 * H] * 8 + [6 * H]
    assert all(s == S.finished for s in jobs.status[9:])


def test_task_arriving_during_a_downtime_pends_until_it_ends():
    # down [1 h, 2 h); the task arrives at 1.5 h, finds no online queue and pends for an hour (task_pend_s)
    sc = make_scenario([make_site("DT_Q")], downtimes=[{"site": "DT_Q", "start_h": 1, "end_h": 2}])
    sim = run_sim(sc, make_workload([TaskSpec(works=[1000.0], arrival=1.5 * H)]))
    jobs = sim.server.jobs
    assert len(jobs) == 1
    assert (jobs.t_create[0], jobs.t_start[0], jobs.t_end[0]) == (2.5 * H, 2.5 * H, 2.5 * H + 100)


def test_overlapping_downtimes_keep_the_queue_offline_until_the_last_ends():
    # BUG (wms/panda.py, _on_downtime_start/_on_downtime_end): windows [1 h, 5 h) and [2 h, 3 h) overlap;
    # the end of the inner one puts the queue back online at 3 h although the outer one lasts until 5 h.
    sc = make_scenario([make_site("DT_Q")], drain_h=10, downtimes=[
        {"site": "DT_Q", "start_h": 1, "end_h": 5}, {"site": "DT_Q", "start_h": 2, "end_h": 3}])
    sim = run_sim(sc, make_workload([TaskSpec(works=[1000.0], arrival=3.5 * H)], duration_s=4 * H))
    jobs = sim.server.jobs
    assert len(jobs) == 1
    assert jobs.t_start[0] >= 5 * H, f"job started at {jobs.t_start[0] / H} h, inside the downtime [1 h, 5 h)"


def test_nucleus_remaining_work_is_released_when_jobs_finish():
    # BUG (wms/panda.py): the task broker's RW (remaining work, core-hours) is added per task at brokerage
    # and released only by jobs that fail for good (_release_rw in _fail), never by jobs that finish.
    sc = make_scenario([make_site("NUC_Q", is_nucleus=True)])
    sim = simulation_with(sc, make_workload([TaskSpec(works=[1000.0] * 4, walltime_estimate_s=900.0)]))
    sim.server.start()
    sim.engine.run(until=1.0)
    assert sim.server.jedi.nucleus == [0]
    assert sim.server.taskbroker.rw == {"NUC_Q": pytest.approx(4 * 900 * 1 / 3600)}  # njobs x estimate x cores
    sim.engine.run(until=sim.horizon_s)
    assert sim.server.n_active == 0 and sim.server.counts_by_status() == {"finished": 4}
    assert sim.server.taskbroker.rw["NUC_Q"] == pytest.approx(0.0), "finished jobs left their work on the nucleus"


def test_jedi_generates_one_chunk_per_cycle():
    # chunk_size 4, JEDI cycle every 300 s: 4 jobs at arrival, 4 at the cycle at 300 s, the last 2 at 600 s
    sc = make_scenario([make_site("FIFO_Q", total_cores=16)], jedi={"chunk_size": 4, "cycle_s": 300})
    sim = run_sim(sc, make_workload([TaskSpec(works=[1000.0] * 10)]))
    jobs = sim.server.jobs
    assert col(jobs, "t_create") == [0.0] * 4 + [300.0] * 4 + [600.0] * 2
    assert col(jobs, "t_start") == col(jobs, "t_create")  # 16 cores: every job starts at once


def test_queue_cap_holds_jobs_back_and_the_task_pends_an_hour():
    # 30 jobs of 1000 s on 8 cores. Cap = max(20, 2 x running): at t=0 (running 0) jobs are placed while
    # queued <= 20, i.e. 21; at 300 s (8 running, 13 queued, cap 20) 8 more; at 600 s 21 are queued > 20,
    # nothing is placed and the task pends for task_pend_s = 3600 s: the last job is created at 4200 s.
    sc = make_scenario([make_site("CAP_Q")])
    sim = run_sim(sc, make_workload([TaskSpec(works=[10000.0] * 30)]))
    jobs = sim.server.jobs
    assert col(jobs, "t_create") == [0.0] * 21 + [300.0] * 8 + [4200.0]
    # waves of 8 every 1000 s; the straggler starts when created
    assert col(jobs, "t_start") == [0.0] * 8 + [1000.0] * 8 + [2000.0] * 8 + [3000.0] * 5 + [4200.0]
    assert col(jobs, "t_end") == [t + 1000.0 for t in col(jobs, "t_start")]


def test_task_without_any_possible_queue_is_broken():
    # ramcount 10000 MB x 0.9 exceeds the queue's 16000 MB / 8 cores = 2000 MB per core
    sc = make_scenario([make_site("MEM_Q")])
    sim = run_sim(sc, make_workload([TaskSpec(works=[1000.0] * 3, ramcount_mb=10000), TaskSpec(works=[1000.0])]))
    assert sim.server.jedi.tasks_without_candidates == {0}
    assert len(sim.server.jobs) == 1 and list(sim.server.jobs.spec) == [3]

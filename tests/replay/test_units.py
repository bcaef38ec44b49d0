"""Pieces of the replay: epoch-second times in the importer, the trace-to-workload rules, the derivation
rule's peak, the comparison numbers, and pinning in the job broker."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from replay_cases import HEADER
from scipy import stats

from gridtwin.analytics.import_panda import import_panda_jobs
from gridtwin.errors import PolicyError
from gridtwin.platform.model import Platform, Site
from gridtwin.policies.registry import make_policy
from gridtwin.replay import replay
from gridtwin.replay.compare import metric_stats, stagein_from_pilottiming
from gridtwin.replay.sites import peak_cores
from gridtwin.replay.trace import DEFAULT_CPU_EFF, load_trace, trace_workload


def test_importer_reads_epoch_seconds(tmp_path):
    p = tmp_path / "j.csv"
    p.write_text("pandaid,creationtime,starttime,computingsite,jobstatus\n"
                 "1,1736468400,1736468460.5,QA,finished\n"
                 "2,2025-01-10 00:20:00,1736468400,QA,finished\n"
                 "3,99999999999999,,QA,finished\n"
                 "4,-5,,QA,finished\n"
                 "5,20250120,,QA,finished\n"  # not a date PanDA writes, and not taken for epoch seconds
                 "6,1736468400,60,QA,finished\n")  # a start on 1970-01-01: the "unset" sentinel
    res = import_panda_jobs(p)
    t = res.table
    assert t.column("pandaid").to_pylist() == [1, 2, 6]
    ms = t.column("creationtime").cast(pa.int64()).to_pylist()
    assert ms == [1736468400000, 1736468400000, 1736468400000]
    assert t.column("starttime").cast(pa.int64()).to_pylist() == [1736468460500, 1736468400000, None]
    assert t.column("queue_time").to_pylist() == [60.5, 0.0, None]
    assert res.rejected.column("reason").to_pylist() == ["unparseable date"] * 3
    assert res.rejected.column("line").to_pylist() == [4, 5, 6]


def test_importer_reads_epoch_milliseconds(tmp_path):
    p = tmp_path / "j.csv"
    p.write_text("pandaid,creationtime,starttime,computingsite,jobstatus\n"
                 "1,1736468400000,1736468460500,QA,finished\n"
                 "2,1736468400,1736468400250,QA,finished\n"  # seconds and milliseconds side by side
                 "3,9999999999999,,QA,finished\n")  # year 2286 in milliseconds: refused
    res = import_panda_jobs(p)
    t = res.table
    assert t.column("pandaid").to_pylist() == [1, 2]
    assert t.column("creationtime").cast(pa.int64()).to_pylist() == [1736468400000, 1736468400000]
    assert t.column("starttime").cast(pa.int64()).to_pylist() == [1736468460500, 1736468400250]
    assert res.rejected.column("reason").to_pylist() == ["unparseable date"]


def test_importer_reads_numeric_epoch_columns_in_parquet(tmp_path):
    import pyarrow.parquet as pq

    p = tmp_path / "j.parquet"
    pq.write_table(pa.table({"pandaid": [1, 2], "creationtime": [1736468400, 1736468400.25],
                             "computingsite": ["QA", "QA"], "jobstatus": ["finished", "finished"]}), p)
    t = import_panda_jobs(p).table
    assert t.column("creationtime").cast(pa.int64()).to_pylist() == [1736468400000, 1736468400250]


def _platform() -> Platform:
    return Platform("p", {"QA": Site("QA", "A", corepower=12.5, corecount=8, total_cores=8, maxrss_mb=16000)})


def test_trace_workload_rules(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(HEADER.replace("\n", ",maxrss,jobname\n")
                 + "1,5,2025-01-10 01:30:00,2025-01-10 01:31:00,2025-01-10 01:41:00,QA,finished,2,600,"
                   "1|0|500|0|2,3,300,7,,user.x\n"  # eff from exe: 600 / (500 x 2)
                 + "2,5,2025-01-10 01:00:00,2025-01-10 01:01:00,2025-01-10 01:11:00,QA,finished,1,60,,0,0,0,"
                   "4000000,\n"  # eff from wall: 60 / 600
                 + "3,5,2025-01-10 02:00:00,,,QA,finished,1,50,,0,0,0,,\n"  # default eff
                 + "4,5,2025-01-10 02:00:00,2025-01-10 02:01:00,2025-01-10 02:02:00,QA,finished,1,100,,0,0,0,,\n")
    trace = load_trace(p)
    assert trace.table.column("pandaid").to_pylist() == [2, 1, 3, 4]  # creation order
    wl, epoch = trace_workload(trace, _platform())
    assert epoch.isoformat() == "2025-01-10T01:00:00+00:00"
    assert wl.arrival.tolist() == [0.0, 1800.0, 3600.0, 3600.0]
    assert wl.work_hs06s.tolist() == [60 * 12.5, 600 * 12.5, 50 * 12.5, 100 * 12.5]
    assert wl.cpu_eff.tolist() == pytest.approx([0.1, 0.6, DEFAULT_CPU_EFF, 1.0])  # 100 / 60 clipped to 1
    # maxrss when known, else half the queue's per-job limit (16000 MB / 8 cores x cores)
    assert wl.maxrss_kb.tolist() == [4000000, 2000 * 1024, 1000 * 1024, 1000 * 1024]
    assert wl.corecount.tolist() == [1, 2, 1, 1]
    assert wl.ninput.tolist() == [0, 3, 0, 0] and wl.inputbytes.tolist() == [0, 300, 0, 0]
    assert wl.dataset.tolist() == [-1, 0, -1, -1] and wl.datasets.nfiles.tolist() == [3]
    assert wl.datasets.file_bytes.tolist() == [100.0] and wl.outputbytes.tolist() == [0, 7, 0, 0]
    assert wl.pinned_site == ["QA"] * 4 and wl.jeditaskid.tolist() == [1, 2, 3, 4]
    labels = [wl.categories[c].prodsourcelabel for c in wl.category]
    assert labels == ["managed", "user", "managed", "managed"]


def test_peak_cores_counts_overlaps_only():
    s = np.array([0, 50, 100, 60, -1])
    e = np.array([100, 150, 200, 90, 10])
    c = np.array([1, 1, 1, 4, 8])
    assert peak_cores(s, e, c) == 6  # the untimed 8-core job does not count; 100 is an end and a start
    assert peak_cores(np.array([-1]), np.array([-1]), np.array([2])) == 0


def test_metric_stats_against_hand_and_scipy_values():
    sim = np.array([1.0, 2.0, 3.0, np.nan])
    rec = np.array([1.0, 2.0, 4.0, 5.0])
    r = metric_stats(sim, rec)
    assert r["n"] == 3  # the pair with a NaN side is left out
    assert r["median_sim"] == 2.0 and r["median_rec"] == 2.0 and r["median_rel_error"] == 0.0
    assert r["p90_diff"] == pytest.approx(2.8 - 3.6)
    assert r["wasserstein"] == pytest.approx(1 / 3)  # mean |sorted difference| of equal-size samples
    assert r["ks"] == pytest.approx(1 / 3)
    assert r["ks"] == pytest.approx(stats.ks_2samp([1, 2, 3], [1, 2, 4]).statistic)
    empty = metric_stats(np.array([np.nan]), np.array([1.0]))
    assert empty["n"] == 0 and math.isnan(empty["ks"])


def test_stagein_is_the_second_pilottiming_part():
    out = stagein_from_pilottiming(pa.array(["1|40|242|3|3|11", None, "bad", "1|x|2|3|4"]))
    assert out[0] == 40.0 and np.isnan(out[1:]).all()


def test_historical_policy_needs_pins():
    pol = make_policy("historical")
    with pytest.raises(PolicyError, match="needs a workload with pinned sites"):
        pol.assign(None, [], None, None)


def test_pinned_queue_that_cannot_hold_the_job_is_counted(tmp_path, platform_yaml, trace_csv):
    # a 16-core job pinned to QA, whose slots have 8 cores: never placed, counted, the others run
    trace_csv.write_text(trace_csv.read_text() + "105,9,2025-01-10 00:50:00,,,QA,finished,16,100,,0,0,0\n")
    res = replay(trace_csv, platform_yaml, tmp_path / "o", seed=5)
    assert res.n_jobs == 5 and res.pin_refused == 1
    assert res.comparison["jobs_compared"] == 4

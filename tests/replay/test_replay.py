"""``gridtwin replay`` end to end: pinned jobs on hand-computed timelines, re-brokering, determinism,
missing sites, bad input, and the real BNL trace."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from replay_cases import ATLAS_DATA, EXPECTED_EXE, EXPECTED_STAGEIN, EXPECTED_STAGEOUT, HEADER
from typer.testing import CliRunner

from gridtwin.cli import app
from gridtwin.replay import replay

runner = CliRunner()


def _jobs_by_recorded(out: Path) -> dict[int, dict]:
    jobs = pq.read_table(out / "jobs.parquet")
    mapping = pq.read_table(out / "replay_mapping.parquet")
    rec = dict(zip(mapping.column("simulated_pandaid").to_pylist(), mapping.column("recorded_pandaid").to_pylist(),
                   strict=True))
    return {rec[r["pandaid"]]: r for r in jobs.to_pylist()}


def test_historical_replay_pins_jobs_and_follows_the_hand_computed_timeline(tmp_path, platform_yaml, trace_csv):
    res = replay(trace_csv, platform_yaml, tmp_path / "out", seed=5)
    assert res.n_jobs == 4 and res.rejected == 0 and res.pin_refused == 0 and not res.warnings
    jobs = _jobs_by_recorded(res.out)
    assert sorted(jobs) == [101, 102, 103, 104]
    recorded_site = {101: "QA", 102: "QB", 103: "QA", 104: "QB"}
    created = {101: "00:00:00", 102: "00:10:00", 103: "00:20:00", 104: "00:40:00"}
    for pid, j in jobs.items():
        assert j["computingsite"] == recorded_site[pid]
        assert j["jobstatus"] == "finished" and j["attemptnr"] == 1
        # submitted at the recorded creation time (the epoch-seconds one included), started no earlier
        assert j["creationtime"].strftime("%Y-%m-%d %H:%M:%S") == f"2025-01-10 {created[pid]}"
        assert j["starttime"] >= j["creationtime"]
        _getjob, stagein, exe, stageout, setup = (int(x) for x in j["pilottiming"].split("|"))
        assert exe == EXPECTED_EXE[pid]
        assert stagein == EXPECTED_STAGEIN[pid]
        assert stageout == EXPECTED_STAGEOUT[pid]
        # walltime (endtime - starttime) = setup + stage-in + exe + stage-out of the twin (pilottiming is rounded)
        hand = setup + EXPECTED_STAGEIN[pid] + EXPECTED_EXE[pid] + EXPECTED_STAGEOUT[pid]
        assert j["wall_time"] == pytest.approx(hand, abs=1.0)
        # CPU time is the recorded cpuconsumptiontime
        assert j["cpuconsumptiontime"] == {101: 900, 102: 8000, 103: 500, 104: 4000}[pid]
    info = json.loads((res.out / "replay.json").read_text())
    assert info["jobs_replayed"] == 4 and info["pinned_jobs_refused"] == 0
    assert info["epoch"] == "2025-01-10T00:00:00+00:00"
    comp = json.loads((res.out / "comparison" / "comparison.json").read_text())
    assert comp["jobs_compared"] == 4 and comp["jobs_at_recorded_site"] == 4
    assert set(comp["per_site"]) == {"QA", "QB"}
    # the stage-in compared is pilottiming's second part on both sides (job 103 has no recorded pilottiming)
    assert comp["overall"]["stagein"]["n"] == 3
    assert comp["overall"]["stagein"]["median_rec"] == 0.0
    assert comp["overall"]["stagein"]["median_sim"] == 0.0


def _many_at_qa(path: Path, n: int = 40) -> Path:
    rows = [f"{1000 + i},9,2025-01-10 00:{i % 60:02d}:00,,,QA,finished,1,3600,5|0|3600|0|30,0,0,0\n"
            for i in range(n)]
    path.write_text(HEADER + "".join(rows))
    return path


def test_other_policy_rebrokers_and_same_seed_gives_identical_outputs(tmp_path, platform_yaml):
    trace = _many_at_qa(tmp_path / "many.csv")
    outs = []
    for name in ("a", "b"):
        r = runner.invoke(app, ["replay", str(trace), "--platform", str(platform_yaml), "--out",
                                str(tmp_path / name), "--policy", "panda", "--seed", "11"])
        assert r.exit_code == 0, r.output
        outs.append(tmp_path / name)
    sites = pq.read_table(outs[0] / "jobs.parquet").column("computingsite").to_pylist()
    assert len(sites) == 40 and set(sites) == {"QA", "QB"}  # re-brokered: not all at the recorded QA
    for rel in ("jobs.parquet", "job_status_log.parquet", "replay_mapping.parquet", "comparison/overall.parquet",
                "comparison/per_site.parquet", "comparison/worst_jobs.parquet", "comparison/comparison.json",
                "comparison/comparison.html", "replay.json"):
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel
    comp = json.loads((outs[0] / "comparison" / "comparison.json").read_text())
    assert comp["policy"] == "panda" and comp["jobs_at_recorded_site"] == sites.count("QA")
    # historical keeps all 40 at QA, whose 8 cores make them queue
    r = runner.invoke(app, ["replay", str(trace), "--platform", str(platform_yaml), "--out", str(tmp_path / "h")])
    assert r.exit_code == 0, r.output
    jobs = pq.read_table(tmp_path / "h" / "jobs.parquet")
    assert set(jobs.column("computingsite").to_pylist()) == {"QA"}
    assert pc.max(jobs.column("queue_time")).as_py() > 3600


def _trace_with_unknown_site(path: Path) -> Path:
    rows = [  # QC: 1-core jobs over [0,100), [50,150), [100,200) min and a 4-core job over [60,90) min
        "201,1,2025-01-10 00:00:00,2025-01-10 00:00:00,2025-01-10 01:40:00,QC,finished,1,600,,0,0,0\n",
        "202,1,2025-01-10 00:00:00,2025-01-10 00:50:00,2025-01-10 02:30:00,QC,finished,1,600,,0,0,0\n",
        "203,1,2025-01-10 00:00:00,2025-01-10 01:40:00,2025-01-10 03:20:00,QC,finished,1,600,,0,0,0\n",
        "204,1,2025-01-10 00:00:00,2025-01-10 01:00:00,2025-01-10 01:30:00,QC,finished,4,600,,0,0,0\n",
        "205,1,2025-01-10 00:00:00,2025-01-10 00:10:00,2025-01-10 00:20:00,QA,finished,1,600,,0,0,0\n",
    ]
    path.write_text(HEADER + "".join(rows))
    return path


def test_missing_site_is_an_error_naming_it(tmp_path, platform_yaml):
    trace = _trace_with_unknown_site(tmp_path / "t.csv")
    r = runner.invoke(app, ["replay", str(trace), "--platform", str(platform_yaml), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "error:" in r.output and "QC (4 jobs)" in r.output and "--missing-sites derive" in r.output
    assert not (tmp_path / "o").exists()


def test_missing_site_derived_by_the_rule_with_a_warning(tmp_path, platform_yaml):
    trace = _trace_with_unknown_site(tmp_path / "t.csv")
    r = runner.invoke(app, ["replay", str(trace), "--platform", str(platform_yaml), "--out", str(tmp_path / "o"),
                            "--missing-sites", "derive"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    # peak in use: jobs 201, 202 and the 4-core 204 at once = 6 cores, rounded up to 4-core slots = 8
    assert "warning: site QC is not in the platform: derived from the trace (4 jobs): 8 cores" in text
    assert "peak of 6 cores in use at once" in text and "rounded up to whole 4-core slots" in text
    assert "corepower 10 HS06/core, tier 2" in text
    sites = pq.read_table(tmp_path / "o" / "sites.parquet").to_pylist()
    qc = next(s for s in sites if s["site"] == "QC")
    assert qc["total_cores"] == 8 and qc["corepower"] == 10.0 and qc["tier"] == 2
    info = json.loads((tmp_path / "o" / "replay.json").read_text())
    assert len(info["derived_sites"]) == 1 and "QC" in info["derived_sites"][0]
    jobs = _jobs_by_recorded(tmp_path / "o")
    assert {p: j["computingsite"] for p, j in jobs.items()} == {201: "QC", 202: "QC", 203: "QC", 204: "QC",
                                                               205: "QA"}


def test_missing_columns_exit_2(tmp_path, platform_yaml):
    bad = tmp_path / "bad.csv"
    bad.write_text("pandaid,computingsite,jobstatus\n1,QA,finished\n")
    r = runner.invoke(app, ["replay", str(bad), "--platform", str(platform_yaml), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "bad.csv" in r.output and "missing required column(s) creationtime" in r.output


def test_unparseable_times_are_counted_set_asides(tmp_path, platform_yaml, trace_csv):
    text = trace_csv.read_text().replace("2025-01-10 00:40:00,2025-01-10 00:41:00", "yesterday,2025-01-10 00:41:00")
    trace_csv.write_text(text + "105,8,2025-01-10 00:50:00,,,QA,finished,1,,,0,0,0\n")
    r = runner.invoke(app, ["replay", str(trace_csv), "--platform", str(platform_yaml), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "3 jobs replayed; 1 rows set aside by the importer, 1 without CPU time" in " ".join(r.output.split())
    info = json.loads((tmp_path / "o" / "replay.json").read_text())
    assert info["rejected_by_importer"] == 1 and info["rejected_by_reason"] == {"unparseable date": 1}
    assert info["set_aside"] == {"no cpuconsumptiontime (no CPU work to replay)": 1}
    assert info["jobs_read"] == 5 and info["jobs_replayed"] == 3  # every row read, the importer's set-asides too
    # nothing replayable at all is an error
    only_bad = tmp_path / "only_bad.csv"
    only_bad.write_text(HEADER + "1,1,soon,,,QA,finished,1,10,,0,0,0\n")
    r = runner.invoke(app, ["replay", str(only_bad), "--platform", str(platform_yaml), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "no replayable job" in r.output


def test_bad_options_exit_2(tmp_path, platform_yaml, trace_csv):
    r = runner.invoke(app, ["replay", str(trace_csv), "--platform", str(platform_yaml), "--out", str(tmp_path / "o"),
                            "--missing-sites", "guess"])
    assert r.exit_code == 2 and "--missing-sites" in r.output
    r = runner.invoke(app, ["replay", str(trace_csv), "--platform", "nowhere.txt", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--platform nowhere.txt" in r.output
    r = runner.invoke(app, ["replay", str(trace_csv), "--platform", str(platform_yaml), "--out", str(tmp_path / "o"),
                            "--policy", "no-such-policy"])
    assert r.exit_code == 2 and "no-such-policy" in r.output


def test_replay_from_an_import_folder(tmp_path, platform_yaml, trace_csv):
    r = runner.invoke(app, ["import", str(tmp_path / "imp"), "--jobs", str(trace_csv)])
    assert r.exit_code == 0, r.output
    res = replay(tmp_path / "imp", platform_yaml, tmp_path / "o", seed=5)
    replay(trace_csv, platform_yaml, tmp_path / "o2", seed=5)
    assert res.n_jobs == 4
    a = pq.read_table(tmp_path / "o" / "jobs.parquet")
    b = pq.read_table(tmp_path / "o2" / "jobs.parquet")
    assert a.equals(b)


def test_bnl_trace_replayed_historically(tmp_path):
    trace = ATLAS_DATA / "jobs_bnl_2025-01.csv"
    cric = ATLAS_DATA / "site_info.json"
    if not trace.is_file() or not cric.is_file():
        pytest.skip(f"real ATLAS data not found in {ATLAS_DATA.resolve()}")
    res = replay(trace, cric, tmp_path / "bnl", seed=1)
    assert res.n_jobs == 100 and res.rejected == 0 and not res.warnings and res.pin_refused == 0
    out = res.out / "comparison"
    for name in ("comparison.json", "comparison.html", "overall.parquet", "per_site.parquet", "worst_jobs.parquet"):
        assert (out / name).is_file(), name
    comp = json.loads((out / "comparison.json").read_text())
    assert comp["jobs_compared"] == 100 and comp["jobs_at_recorded_site"] == 100
    wall = comp["overall"]["wall_time"]
    for k in ("median_sim", "median_rec", "median_rel_error", "p10_diff", "p50_diff", "p90_diff", "ks",
              "wasserstein"):
        assert math.isfinite(wall[k]), k
    assert 0 <= wall["ks"] <= 1
    # the recorded median walltime is the one of the file (end - start)
    rec = pq.read_table(res.out / "comparison" / "overall.parquet").to_pylist()
    assert [r["metric"] for r in rec] == ["wall_time", "queue_time", "stagein", "cpu_eff"]
    assert set(comp["per_site"]) == {"BNL"}
    worst = pq.read_table(out / "worst_jobs.parquet")
    assert worst.num_rows == 20
    err = np.asarray(worst.column("abs_log_wall_ratio").to_numpy())
    assert np.all(np.diff(err) <= 0)


def test_a_scenario_platform_lends_its_pilot_latency(tmp_path, platform_yaml, trace_csv):
    """A scenario YAML as --platform brings its pilot block: a fixed 900 s pilot latency moves every start
    900 s later than without it (the queues have free cores for these jobs)."""
    base = replay(trace_csv, platform_yaml, tmp_path / "base", seed=3)
    slow_yaml = tmp_path / "slow.yaml"
    slow_yaml.write_text(platform_yaml.read_text() + "pilot: {latency_median_s: 900, latency_sigma: 0}\n")
    slow = replay(trace_csv, slow_yaml, tmp_path / "slow", seed=3)
    a, b = _jobs_by_recorded(base.out), _jobs_by_recorded(slow.out)
    assert sorted(a) == sorted(b) == [101, 102, 103, 104]
    for pid in a:
        delay = (b[pid]["starttime"] - a[pid]["starttime"]).total_seconds()
        assert delay == pytest.approx(900.0, abs=0.01), pid

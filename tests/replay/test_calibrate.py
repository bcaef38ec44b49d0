"""``gridtwin calibrate``: a study on a small trace, resumed, reproducible, run on Dask, its calibrated file
accepted by replay; bad options are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from replay_cases import HEADER, PLATFORM_YAML
from typer.testing import CliRunner

from gridtwin.cli import app
from gridtwin.replay.calibrate import CalibrationTask, calibrate, plan, score

runner = CliRunner()


def _trace(tmp_path: Path, n: int = 40) -> tuple[Path, Path]:
    rows = []
    for i in range(n):
        site = "QA" if i % 2 else "QB"
        minute = 7 * i
        c = f"2025-01-10 {minute // 60:02d}:{minute % 60:02d}:00"
        s = f"2025-01-10 {(minute + 5) // 60:02d}:{(minute + 5) % 60:02d}:00"
        e = f"2025-01-10 {(minute + 45) // 60:02d}:{(minute + 45) % 60:02d}:00"
        cpu = 600 + 37 * i
        rows.append(f"{5000 + i},{9 + i % 5},{c},{s},{e},{site},finished,1,{cpu},5|{10 + i}|{cpu + 200}|2|30,"
                    f"{1 + i % 3},{(1 + i % 3) * 10_000_000_000},1000000\n")
    trace = tmp_path / "trace.csv"
    trace.write_text(HEADER + "".join(rows))
    platform = tmp_path / "platform.yaml"
    platform.write_text(PLATFORM_YAML.replace("total_cores: 8, rses", "total_cores: 400, rses")
                        .replace("total_cores: 16, rses", "total_cores: 400, rses"))
    return trace, platform


def test_study_resumes_is_reproducible_and_its_file_replays(tmp_path):
    trace, platform = _trace(tmp_path)
    task = CalibrationTask(jobs=str(trace), platform=str(platform), holdout=0.25)
    first = calibrate(task, tmp_path / "cal", trials=4, seeds=2, seed=5)
    assert first["trials"] == 4 and first["held_out"]["after"]["jobs"] == 10
    again = calibrate(task, tmp_path / "cal", trials=7, seeds=2, seed=5)  # resumes: 3 more trials
    trials = pq.read_table(tmp_path / "cal" / "trials.parquet")
    assert trials["number"].to_pylist() == list(range(7)) and again["trials"] == 7
    other = calibrate(task, tmp_path / "other", trials=7, seeds=2, seed=5)
    assert pq.read_table(tmp_path / "other" / "trials.parquet").equals(trials)  # same seed, same study
    assert other["best"] == again["best"]
    # the best trial's loss is what score() gives for its parameters on the training part
    planned, names, _ = plan(task, None)
    assert planned.work == "task" and "site.corepower[QB]" in names  # QA, the busier, is the reference
    assert score(planned, again["best"], 5)["loss"] == pytest.approx(again["best_train_loss"])
    cal = tmp_path / "cal" / "calibrated.yaml"
    r = runner.invoke(app, ["replay", str(trace), "--platform", str(cal), "--out", str(tmp_path / "rp"), "--no-ddm"])
    assert r.exit_code == 0, r.output
    run = json.loads((tmp_path / "rp" / "run.json").read_text())
    assert run["config"]["pilot"]["latency_median_s"] == pytest.approx(again["best"]["pilot.latency_median_s"],
                                                                      rel=1e-5)


def test_lan_rate_is_recovered_from_stage_in_times(tmp_path):
    """Stage-in is inputfilebytes / LAN rate in the twin: records made at 80 MB/s give 80 MB/s back."""
    trace, platform = _trace(tmp_path, n=60)
    truth = tmp_path / "truth.yaml"
    truth.write_text(platform.read_text() + "network: {lan_rate_mbps: 80}\n")
    r = runner.invoke(app, ["replay", str(trace), "--platform", str(truth), "--out", str(tmp_path / "t"),
                            "--no-ddm", "--no-report"])
    assert r.exit_code == 0, r.output
    task = CalibrationTask(jobs=str(tmp_path / "t" / "jobs.parquet"), platform=str(platform), holdout=0.2)
    out = calibrate(task, tmp_path / "cal", trials=30, params=["network.lan_rate_mbps"], seeds=1, seed=1)
    assert out["best"]["network.lan_rate_mbps"] == pytest.approx(80.0, rel=0.05)
    assert out["held_out"]["after"]["stagein"]["ks"] <= out["held_out"]["before"]["stagein"]["ks"]


def test_trials_run_on_a_local_dask_cluster(tmp_path):
    trace, platform = _trace(tmp_path, n=20)
    r = runner.invoke(app, ["calibrate", str(trace), "--platform", str(platform), "--out", str(tmp_path / "cal"),
                            "--trials", "4", "--workers", "2", "--seeds", "1"])
    assert r.exit_code == 0, r.output
    assert pq.read_table(tmp_path / "cal" / "trials.parquet").num_rows == 4


def test_bad_options_exit_2(tmp_path):
    trace, platform = _trace(tmp_path, n=10)
    base = ["calibrate", str(trace), "--platform", str(platform), "--out", str(tmp_path / "c"), "--workers", "1"]
    for extra, text in ((["--param", "pilot.speed"], "unknown"), (["--holdout", "1.5"], "a fraction in (0, 1)"),
                        (["--sampler", "grid"], "tpe or cmaes"), (["--trials", "0"], "at least 1")):
        r = runner.invoke(app, base + extra)
        assert r.exit_code == 2 and text in r.output, (extra, r.output)


def test_known_parameters_are_recovered_within_5_percent(tmp_path):
    """Records made by a replay with known pilot latency (median 900 s, sigma 0.5), setup (90 s) and LAN
    rate (60 MB/s): calibration from the defaults gets each back within 5%."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(3)
    n = 1500
    t0 = 1_736_467_200_000
    created = t0 + np.sort(rng.uniform(0, 86400e3, n)).astype(np.int64)
    cpu = np.rint(rng.lognormal(np.log(1800.0), 0.6, n)).astype(np.int64)
    exe = np.rint(cpu / rng.uniform(0.7, 0.95, n)).astype(np.int64)
    nin = rng.integers(1, 4, n)
    ts = pa.timestamp("ms", tz="UTC")
    trace = pa.table({
        "pandaid": pa.array(7_000_000 + np.arange(n, dtype=np.int64)),
        "jeditaskid": pa.array(100 + np.arange(n, dtype=np.int64) // 20),
        "creationtime": pa.array(created).cast(ts), "starttime": pa.array(created + 60_000).cast(ts),
        "endtime": pa.array(created + (exe + 160) * 1000).cast(ts),
        "computingsite": pa.array(np.where(rng.random(n) < 0.5, "QA", "QB").tolist()),
        "jobstatus": pa.array(["finished"] * n), "corecount": pa.array(np.ones(n, np.int32)),
        "cpuconsumptiontime": pa.array(cpu), "ninputdatafiles": pa.array(nin.astype(np.int32)),
        "inputfilebytes": pa.array(nin * 3_000_000_000), "outputfilebytes": pa.array(np.full(n, 10**8)),
        "pilottiming": pa.array([f"10|40|{e}|2|60" for e in exe.tolist()]),
    })
    pq.write_table(trace, tmp_path / "trace.parquet")
    _, platform = _trace(tmp_path, n=1)
    truth = tmp_path / "truth.yaml"
    truth.write_text(platform.read_text() + "pilot: {latency_median_s: 900, latency_sigma: 0.5, setup_s: 90}\n"
                     "network: {lan_rate_mbps: 60}\n")
    r = runner.invoke(app, ["replay", str(tmp_path / "trace.parquet"), "--platform", str(truth), "--out",
                            str(tmp_path / "records"), "--no-ddm", "--no-report", "--seed", "8"])
    assert r.exit_code == 0, r.output
    task = CalibrationTask(jobs=str(tmp_path / "records" / "jobs.parquet"), platform=str(platform), holdout=0.2)
    out = calibrate(task, tmp_path / "cal", trials=12, sampler="cmaes", seeds=1, seed=2)
    truth_values = {"pilot.latency_median_s": 900.0, "pilot.latency_sigma": 0.5, "pilot.setup_s": 90.0,
                    "network.lan_rate_mbps": 60.0}
    for name, value in truth_values.items():
        assert out["best"][name] == pytest.approx(value, rel=0.05), name
    assert out["held_out"]["after"]["loss_mean"] < out["held_out"]["before"]["loss_mean"] / 5

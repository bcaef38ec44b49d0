"""Per-queue corepower and efficiency, and per-link bandwidth scales: a twin run with known values gives
records; calibrating on them with the nominal platform gives the values back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from gridtwin.cli import app
from gridtwin.errors import ConfigError, InputError
from gridtwin.platform.model import LinkDefaults
from gridtwin.replay.calibrate import CalibrationTask, calibrate
from gridtwin.replay.sitespeed import site_effects
from gridtwin.replay.transfers import load_transfers

runner = CliRunner()

NOMINAL = """\
name: three-queues
seed: 4
platform:
  rses:
    - {name: A_DATADISK, atlas_site: SITE-A, capacity_tb: 500}
    - {name: B_DATADISK, atlas_site: SITE-B, capacity_tb: 500}
    - {name: C_DATADISK, atlas_site: SITE-C, capacity_tb: 500}
  sites:
    - {name: QA, atlas_site: SITE-A, corepower: 10, corecount: 8, total_cores: 400, rses: [A_DATADISK]}
    - {name: QB, atlas_site: SITE-B, corepower: 10, corecount: 8, total_cores: 400, rses: [B_DATADISK],
       is_nucleus: true, tier: 1}
    - {name: QC, atlas_site: SITE-C, corepower: 10, corecount: 8, total_cores: 400, rses: [C_DATADISK]}
workload: {scale: 0.01, duration_h: 6}
"""
TRUE_COREPOWER = {"QA": 8.0, "QC": 12.5}
TRUE_EFFICIENCY = {"QA": 0.8, "QC": 1.0}
TRUE_SCALES = {"SITE-A:SITE-B": 0.5, "SITE-C:SITE-A": 2.0}


@pytest.fixture(scope="module")
def truth_run(tmp_path_factory) -> tuple[Path, Path]:
    """One simulated run on the platform with known queue speeds, efficiencies and link scales."""
    d = tmp_path_factory.mktemp("truth")
    nominal = d / "nominal.yaml"
    nominal.write_text(NOMINAL)
    truth = yaml.safe_load(NOMINAL)
    truth["platform"]["overrides"] = {q: {"corepower": TRUE_COREPOWER[q], "efficiency": TRUE_EFFICIENCY[q]}
                                      for q in TRUE_COREPOWER}
    truth["platform"]["link_scales"] = TRUE_SCALES
    (d / "truth.yaml").write_text(yaml.safe_dump(truth))
    r = runner.invoke(app, ["simulate", str(d / "truth.yaml"), "--out", str(d / "run"), "--no-report"])
    assert r.exit_code == 0, r.output
    return d / "run", nominal


def test_queue_speeds_and_efficiencies_are_recovered_within_5_percent(truth_run, tmp_path):
    run, nominal = truth_run
    task = CalibrationTask(jobs=str(run / "jobs.parquet"), platform=str(nominal), holdout=0.3, reference=("QB",))
    out = calibrate(task, tmp_path / "cal", trials=4, sampler="cmaes", seeds=1, seed=1,
                    params=["site.corepower", "site.efficiency"])
    assert out["work"] == "task"
    for q, value in TRUE_COREPOWER.items():
        assert 10.0 * out["best"][f"site.corepower[{q}]"] == pytest.approx(value, rel=0.05), q
        assert out["best"][f"site.efficiency[{q}]"] == pytest.approx(TRUE_EFFICIENCY[q], rel=0.05), q
    assert "site.corepower[QB]" not in out["best"]  # the reference keeps its corepower
    # on the held-out jobs of QA, the busiest calibrated queue, simulated CPU time moves onto the recorded one
    before = out["held_out"]["before"]["sites"]["QA"]["cpu_time"]["median_log_ratio"]
    after = out["held_out"]["after"]["sites"]["QA"]["cpu_time"]["median_log_ratio"]
    assert abs(after) < abs(before) and abs(after) < 0.05
    cal = yaml.safe_load((tmp_path / "cal" / "calibrated.yaml").read_text())
    assert cal["platform"]["overrides"]["QA"]["corepower"] == pytest.approx(8.0, rel=0.05)


def test_link_scales_are_recovered_within_5_percent(truth_run, tmp_path):
    run, nominal = truth_run
    r = runner.invoke(app, ["calibrate", "--transfers", str(run), "--platform", str(nominal), "--out",
                            str(tmp_path / "cal"), "--trials", "3", "--workers", "1", "--seeds", "1"])
    assert r.exit_code == 0, r.output
    cal = yaml.safe_load((tmp_path / "cal" / "calibrated.yaml").read_text())
    for key, value in TRUE_SCALES.items():
        assert cal["platform"]["link_scales"][key] == pytest.approx(value, rel=0.05), key
    # a link the truth left alone stays near 1
    others = {k: v for k, v in cal["platform"]["link_scales"].items() if k not in TRUE_SCALES}
    assert others and all(v == pytest.approx(1.0, rel=0.05) for v in others.values())
    # the calibrated file runs, and its links carry the scales
    r = runner.invoke(app, ["simulate", str(tmp_path / "cal" / "calibrated.yaml"), "--out", str(tmp_path / "again"),
                            "--no-report", "--scale", "0.002", "-q"])
    assert r.exit_code == 0, r.output


def _jobs(rows: list[tuple[int, str, float, float]]) -> pa.Table:
    """jeditaskid, computingsite, cpuconsumptiontime, payload efficiency."""
    return pa.table({"pandaid": pa.array(range(len(rows)), pa.int64()),
                     "jeditaskid": pa.array([r[0] for r in rows], pa.int64()),
                     "computingsite": [r[1] for r in rows], "jobstatus": ["finished"] * len(rows),
                     "nevents": pa.array([0] * len(rows), pa.int64())})


def test_site_effects_fit_a_hand_made_trace_exactly():
    """Task 1 ran at QA and QB, task 2 at QB and QC, task 3 at QD only. True speeds (nominal 10 everywhere):
    QA 8, QB 10 (reference), QC 12.5; CPU time = work / corepower."""
    from gridtwin.platform.model import Platform, Site

    plat = Platform("p", {q: Site(q, q, corecount=8, corepower=10.0, total_cores=8) for q in ("QA", "QB", "QC", "QD")},
                    link_defaults=LinkDefaults())
    speed = {"QA": 8.0, "QB": 10.0, "QC": 12.5, "QD": 7.0}
    work = {1: 36_000.0, 2: 50_000.0, 3: 20_000.0}
    eff_site = {"QA": 0.8, "QB": 1.0, "QC": 0.9, "QD": 1.0}
    rows = [(t, q, work[t] / speed[q], 0.9 * eff_site[q]) for t, q in
            ((1, "QA"), (1, "QA"), (1, "QB"), (2, "QB"), (2, "QC"), (2, "QC"), (3, "QD"))]
    table = _jobs(rows)
    cpu = np.array([r[2] for r in rows])
    eff = np.array([r[3] for r in rows])
    fx = site_effects(table, plat, cpu, eff, min_jobs=1, reference=("QB",))
    assert fx.corepower["QA"] == pytest.approx(8.0) and fx.corepower["QC"] == pytest.approx(12.5)
    assert fx.efficiency["QA"] == pytest.approx(0.8) and fx.efficiency["QC"] == pytest.approx(0.9)
    assert sorted(fx.identifiable) == ["QA", "QC"] and fx.corepower["QD"] == 10.0  # QD shares no task
    assert any("QD" in n for n in fx.notes)
    with pytest.raises(ConfigError, match="--reference QZ: no job of the trace ran at this queue"):
        site_effects(table, plat, cpu, eff, reference=("QZ",))


def test_transfers_that_cannot_be_replayed_are_counted(tmp_path, truth_run):
    from gridtwin.config import load_scenario
    from gridtwin.scenario import build_platform

    run, nominal = truth_run
    plat = build_platform(load_scenario(nominal))
    t = pq.read_table(run / "transfers.parquet")
    n = t.num_rows
    started = t.column("started_at").to_pylist()
    started[0] = None
    src = t.column("src_rse").to_pylist()
    src[1] = "NOWHERE_DATADISK"
    t = t.set_column(t.schema.get_field_index("started_at"), "started_at", pa.array(started, t.schema.field(
        "started_at").type)).set_column(t.schema.get_field_index("src_rse"), "src_rse", pa.array(src))
    pq.write_table(t, tmp_path / "t.parquet")
    tt = load_transfers(tmp_path / "t.parquet", plat)
    assert tt.set_aside == {"no started_at or transferred_at": 1, "an RSE of a site the platform lacks": 1}
    assert tt.n == n - 2
    pq.write_table(t.drop(["started_at"]), tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"bad.parquet: missing column\(s\) started_at"):
        load_transfers(tmp_path / "bad.parquet", plat)


def test_bad_calibration_requests_exit_2(tmp_path, truth_run):
    run, nominal = truth_run
    cases = (
        (["calibrate", "--platform", str(nominal)], "give recorded jobs (JOBS), --transfers, or both"),
        (["calibrate", str(run / "jobs.parquet"), "--platform", str(nominal), "--param", "link.bandwidth_scale"],
         "needs recorded transfers (--transfers)"),
        (["calibrate", "--transfers", str(run), "--platform", str(nominal), "--param", "site.corepower"],
         "needs recorded jobs (JOBS)"),
        (["calibrate", str(run / "jobs.parquet"), "--platform", str(nominal), "--reference", "QZ"],
         "--reference QZ"),
    )
    for args, text in cases:
        r = runner.invoke(app, [*args, "--out", str(tmp_path / "c"), "--workers", "1", "--trials", "1"])
        assert r.exit_code == 2 and text in r.output, (args, r.output)


def test_link_scales_in_a_scenario_are_checked_and_applied(tmp_path):
    from gridtwin.config import load_scenario
    from gridtwin.scenario import build_platform

    p = tmp_path / "s.yaml"
    p.write_text(NOMINAL.replace("workload:", "  link_scales: {\"SITE-A:SITE-B\": 0.5}\nworkload:"))
    plat = build_platform(load_scenario(p))
    assert plat.link("SITE-A", "SITE-B").bandwidth_bps == pytest.approx(0.5 * LinkDefaults().bandwidth_bps)
    assert plat.link("SITE-B", "SITE-A").bandwidth_bps == pytest.approx(LinkDefaults().bandwidth_bps)
    for bad, text in (("SITE-A-SITE-B", "expected \"SRC:DST\""), ("SITE-A:SITE-Z", "expected \"SRC:DST\"")):
        p.write_text(NOMINAL.replace("workload:", f"  link_scales: {{\"{bad}\": 0.5}}\nworkload:"))
        with pytest.raises(ConfigError, match=text):
            build_platform(load_scenario(p))


def test_task_work_mode_gives_a_task_the_geometric_mean_of_its_jobs_work(trace_csv, platform_yaml):
    """Task 7 ran at QA (corepower 10, 900 CPU s) and QB (corepower 20, 8000 CPU s): in task work mode both
    jobs get sqrt(9000 x 160000) HS06-s; recorded mode keeps each job's own."""
    from gridtwin.config import load_scenario
    from gridtwin.replay.trace import load_trace, trace_workload
    from gridtwin.scenario import build_platform

    plat = build_platform(load_scenario(platform_yaml))
    trace = load_trace(trace_csv)
    own, _ = trace_workload(trace, plat)
    task, _ = trace_workload(trace, plat, "task")
    pid = trace.table.column("pandaid").to_pylist()
    i, j = pid.index(101), pid.index(102)
    assert own.work_hs06s[i] == pytest.approx(9000.0) and own.work_hs06s[j] == pytest.approx(160000.0)
    assert task.work_hs06s[i] == pytest.approx(np.sqrt(9000.0 * 160000.0))
    assert task.work_hs06s[j] == pytest.approx(np.sqrt(9000.0 * 160000.0))
    with pytest.raises(ConfigError, match="--work fast: recorded or task was expected"):
        trace_workload(trace, plat, "fast")


def test_fixed_effects_are_exact_on_weakly_linked_queues():
    """Two groups of five queues joined by one small task (slow to converge by alternating means): the fit
    equals a direct least-squares solution of the full design."""
    from gridtwin.replay.sitespeed import fit_two_way

    rng = np.random.default_rng(5)
    rows = []
    for t in range(60):
        group = 0 if t < 30 else 1
        for _ in range(8):
            rows.append((t, group * 5 + int(rng.integers(0, 5))))
    rows += [(60, 0), (60, 9), (60, 9), (60, 0)]  # the one task seen by both groups
    task = np.array([r[0] for r in rows])
    site = np.array([r[1] for r in rows])
    y = rng.normal(0, 1, 61)[task] + np.linspace(-1, 1, 10)[site] + rng.normal(0, 0.2, len(rows))
    comp = np.zeros(10, dtype=np.int64)
    ref = np.zeros(10, dtype=bool)
    ref[0] = True
    a, b = fit_two_way(y, task, site, 61, 10, comp, np.zeros(10), ref)
    design = np.zeros((len(rows), 61 + 9))  # queue 0 is the reference: its term is 0
    design[np.arange(len(rows)), task] = 1.0
    keep = site > 0
    design[np.flatnonzero(keep), 61 + site[keep] - 1] = 1.0
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    assert b[0] == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(b[1:], coef[61:], atol=1e-8) and np.allclose(a, coef[:61], atol=1e-8)


def test_unidentifiable_requests_are_refused_or_noted(truth_run, tmp_path):
    from gridtwin.replay.calibrate import plan

    run, nominal = truth_run
    task = CalibrationTask(jobs=str(run / "jobs.parquet"), platform=str(nominal), holdout=0.3, reference=("QB",))
    with pytest.raises(ConfigError, match=r"site\.corepower\[QB\]: QB cannot be calibrated"):
        plan(task, ["site.corepower[QB]"])  # the reference keeps its figure
    # a queue the platform lacks, derived from the trace, is replayed but not calibrated
    two = yaml.safe_load(NOMINAL)
    two["platform"]["sites"] = two["platform"]["sites"][:2]
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(two))
    derived = CalibrationTask(jobs=str(run / "jobs.parquet"), platform=str(tmp_path / "two.yaml"), holdout=0.3,
                              missing_sites="derive", reference=("QB",))
    _, names, _ = plan(derived, ["site.corepower"])
    assert names == ["site.corepower[QA]"]
    # a link whose durations the latency phase dominates: its bandwidth cannot be told
    n = 30
    ms = 1_736_467_200_000 + np.arange(n, dtype=np.int64) * 10_000
    ts = pa.timestamp("ms", tz="UTC")
    pq.write_table(pa.table({
        "event_type": ["transfer-done"] * n, "bytes": pa.array([1_000_000] * n, pa.int64()),
        "src_rse": ["A_DATADISK"] * n, "dst_rse": ["B_DATADISK"] * n,
        "started_at": pa.array(ms).cast(ts), "transferred_at": pa.array(ms + 400).cast(ts)}), tmp_path / "t.parquet")
    links_only = CalibrationTask(jobs=None, platform=str(nominal), transfers=str(tmp_path / "t.parquet"))
    with pytest.raises(ConfigError, match="durations do not follow the bandwidth"):
        plan(links_only, None)

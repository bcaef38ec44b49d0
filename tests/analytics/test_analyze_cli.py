"""``gridtwin analyze``: a simulated run with data movement is linked, scored against its truth, and its
anomaly and imbalance tables and HTML are written; a folder without transfers is a clean error."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from gridtwin.cli import app
from gridtwin.config import scenario_from_dict
from gridtwin.scenario import run_scenario


def test_analyze_a_small_run(tmp_path):
    run = tmp_path / "run"
    sc = scenario_from_dict({"seed": 3, "workload": {"scale": 0.002, "duration_h": 2},
                             "ddm": {"failure_rate": 0.05}})
    run_scenario(sc, run, report=False)
    result = CliRunner().invoke(app, ["analyze", str(run)])
    assert result.exit_code == 0, result.output
    out = run / "analysis"
    summary = json.loads((out / "analysis.json").read_text())
    truth = pq.read_table(run / "truth" / "job_transfer_links.parquet")
    assert summary["linker_score"]["n_truth"] == truth.num_rows > 0
    assert summary["linker_score"]["precision"] >= 0.99 and summary["linker_score"]["recall"] >= 0.99
    assert summary["links"] == pq.read_metadata(out / "links.parquet").num_rows
    assert set(summary["anomalies"]) == {"late", "redundant", "misdirected", "unused", "locality", "distant_source"}
    for name in summary["anomalies"]:
        assert (out / "anomalies" / f"{name}.parquet").is_file()
    assert (out / "imbalance" / "site_matrix.parquet").is_file()
    assert set(summary["imbalance"]["gini"]) == {"volume_sites", "volume_hours", "demand_sites", "demand_hours"}
    html = (out / "analysis.html").read_text()
    assert "Anomalies" in html and "data:image/png;base64," in html
    assert "precision" in result.output


def test_analyze_needs_transfers(tmp_path):
    (tmp_path / "jobs.parquet").write_bytes(b"")
    result = CliRunner().invoke(app, ["analyze", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "transfers.parquet" in result.output
    missing = CliRunner().invoke(app, ["analyze", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "is not a folder" in missing.output

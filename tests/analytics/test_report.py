"""The static HTML report: self-contained, carries the KPIs, deterministic."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from test_kpi import JOB_ROWS, METRIC_ROWS, SITES_ROWS, make_run

from gridtwin.analytics.kpi import compute_kpis
from gridtwin.analytics.report import write_report
from gridtwin.errors import InputError


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path, JOB_ROWS, SITES_ROWS, METRIC_ROWS)


@pytest.fixture(scope="module")
def report_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The report of the sample run, written once for the read-only checks."""
    run = make_run(tmp_path_factory.mktemp("report"), JOB_ROWS, SITES_ROWS, METRIC_ROWS)
    path = write_report(run)
    assert path == run / "report.html"
    return path.read_text(encoding="utf-8")


def test_report_written_and_self_contained(report_text: str) -> None:
    text = report_text
    assert text.startswith("<!DOCTYPE html>")
    assert "http://" not in text
    assert "https://" not in text
    assert "<script" not in text
    assert not re.search(r"<link\b", text)
    assert not re.search(r'src="(?!data:image/png;base64,)', text)
    assert text.count('src="data:image/png;base64,') == 6


def test_report_contains_metadata_and_kpis(report_text: str) -> None:
    text = report_text
    for expected in ("unit-test", "42", "1234", "wall_time_s"):
        assert expected in text
    for expected in (
        "Jobs by final state",
        "finished",
        "30 s",  # mean queue time
        "57.1 %",  # CPU efficiency 800 / 1400
        "75.0 %",  # T1 utilisation
        "3.00 TB",  # local, remote and direct bytes
        "pilot 1201",
        "Q_B",
    ):
        assert expected in text


def test_report_without_data_management(report_text: str) -> None:
    # no transfers.parquet or link_metrics.parquet: no data-management section
    assert "Data management" not in report_text
    assert "Transfers" not in report_text


def test_report_uses_given_kpis(run_dir: Path) -> None:
    kpis = compute_kpis(run_dir)
    kpis["n_jobs"] = 987654
    assert "987654" in write_report(run_dir, kpis).read_text(encoding="utf-8")


def test_report_is_deterministic(run_dir: Path, tmp_path: Path) -> None:
    first = write_report(run_dir).read_bytes()
    second = write_report(run_dir).read_bytes()
    assert first == second
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    (copy / "report.html").unlink()
    assert write_report(copy).read_bytes() == first


def test_report_with_empty_jobs(tmp_path: Path) -> None:
    text = write_report(make_run(tmp_path, [])).read_text(encoding="utf-8")
    assert '<td>total</td><td class="v">0</td>' in text
    assert text.count('src="data:image/png;base64,') == 6


def test_report_without_run_json(run_dir: Path) -> None:
    (run_dir / "run.json").unlink()
    assert "No run.json" in write_report(run_dir).read_text(encoding="utf-8")


def test_report_bad_run_json(run_dir: Path) -> None:
    (run_dir / "run.json").write_text("{not json")
    with pytest.raises(InputError, match=r"run\.json"):
        write_report(run_dir)


def test_report_missing_table(run_dir: Path) -> None:
    (run_dir / "site_metrics.parquet").unlink()
    with pytest.raises(InputError, match=r"site_metrics\.parquet"):
        write_report(run_dir)

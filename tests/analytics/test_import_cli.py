"""``gridtwin import``: real job files and a CRIC file into an import folder; duplicates across files
are set aside and counted; unreadable input exits 2 and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gridtwin.cli import app

ATLAS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "atlas"
needs_data = pytest.mark.skipif(not (ATLAS / "jobs_bnl_2025-01.csv").exists(),
                                reason=f"real ATLAS data not found in {ATLAS}")


def invoke(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


@needs_data
def test_real_files_import_into_the_run_tables(tmp_path):
    out = tmp_path / "imp"
    result = invoke("import", out, "--jobs", ATLAS / "jobs_bnl_2025-01.csv", "--jobs", ATLAS / "jobs_sample_2024.csv",
                    "--cric", ATLAS / "site_info.json")
    assert result.exit_code == 0, result.output
    jobs = pq.read_table(out / "jobs.parquet")
    assert jobs.num_rows == 111
    assert pq.read_table(out / "sites.parquet").num_rows == 150
    summary = json.loads((out / "import.json").read_text())
    assert summary["rows"] == {"jobs": 111, "sites": 150, "rejected": 0}
    assert "100 rows imported, 0 set aside" in result.output
    # a second import into the same folder replaces it
    again = invoke("import", out, "--jobs", ATLAS / "jobs_sample_2024.csv")
    assert again.exit_code == 0, again.output
    assert pq.read_table(out / "jobs.parquet").num_rows == 11
    assert not (out / "sites.parquet").exists()


@needs_data
def test_duplicates_across_files_are_set_aside_and_counted(tmp_path):
    out = tmp_path / "imp"
    bnl = ATLAS / "jobs_bnl_2025-01.csv"
    result = invoke("import", out, "--jobs", bnl, "--jobs", bnl)
    assert result.exit_code == 0, result.output
    assert pq.read_table(out / "jobs.parquet").num_rows == 100
    rejected = pq.read_table(out / "rejected.parquet").to_pylist()
    assert len(rejected) == 100
    assert {r["reason"] for r in rejected} == {"duplicate pandaid (in an earlier file)"}
    assert rejected[0]["line"] == 1 and rejected[0]["raw"] == "6486070333"
    assert json.loads((out / "import.json").read_text())["rejected_total"] == 100


def test_unreadable_input_exits_2_and_writes_nothing(tmp_path):
    bad = tmp_path / "jobs.csv"
    bad.write_bytes(b"pandaid,creationtime,computingsite,jobstatus\n1,2025-01-01 00:00:00,BNL,fin\xffished\n")
    out = tmp_path / "imp"
    result = invoke("import", out, "--jobs", bad)
    assert result.exit_code == 2, result.output
    assert "jobs.csv" in result.output and "undecodable" in result.output
    assert not out.exists() and not (tmp_path / ".imp.partial").exists()


def test_nothing_to_import_and_foreign_folder_are_errors(tmp_path):
    result = invoke("import", tmp_path / "imp")
    assert result.exit_code == 2 and "at least one of --jobs, --files, --transfers or --cric" in result.output
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    good = tmp_path / "j.csv"
    good.write_text("pandaid,creationtime,computingsite,jobstatus\n1,2025-01-01 00:00:00,BNL,finished\n")
    result = invoke("import", foreign, "--jobs", good)
    assert result.exit_code == 2 and "does not hold a gridtwin run" in result.output
    assert (foreign / "notes.txt").read_text() == "keep me"

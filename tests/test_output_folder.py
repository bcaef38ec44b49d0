"""The output folder: nothing but an earlier run is ever replaced; bad places are clear errors (exit 2)."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from gridtwin.cli import app


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def small(tmp_path: Path, **top) -> Path:
    grid = {"sites": [{"name": "Q", "total_cores": 64, "rses": ["Q_DATADISK"], "is_nucleus": True}],
            "rses": [{"name": "Q_DATADISK", "atlas_site": "Q", "capacity_tb": 100}]}
    data = {"platform": grid, "workload": {"scale": 0.0005, "duration_h": 1}, "drain_h": 400}
    data.update(top)
    path = tmp_path / "sc.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_folder_with_other_files_is_left_alone(tmp_path):
    victim = tmp_path / "notes"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    r = invoke("simulate", small(tmp_path), "--out", victim, "-q")
    assert r.exit_code == 2
    assert "does not hold a gridtwin run" in r.output and "--force" in r.output
    assert (victim / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]


def test_an_earlier_run_is_replaced_and_force_replaces_anything(tmp_path):
    sc = small(tmp_path)
    out = tmp_path / "run"
    assert invoke("simulate", sc, "--out", out, "-q", "--no-report").exit_code == 0
    first = (out / "jobs.parquet").read_bytes()
    assert invoke("simulate", sc, "--out", out, "-q", "--no-report", "--seed", "2").exit_code == 0
    assert (out / "jobs.parquet").read_bytes() != first
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("x")
    assert invoke("simulate", sc, "--out", other, "-q", "--no-report", "--force").exit_code == 0
    assert (other / "run.json").exists() and not (other / "x.txt").exists()


def test_a_file_in_the_way_is_an_error(tmp_path):
    f = tmp_path / "out"
    f.write_text("a file")
    r = invoke("simulate", small(tmp_path), "--out", f, "-q")
    assert r.exit_code == 2 and "a file of that name exists" in r.output
    assert f.read_text() == "a file"


def test_a_platform_without_disk_storage_is_an_input_error(tmp_path):
    grid = {"sites": [{"name": "Q", "total_cores": 64, "rses": []}], "rses": []}
    sc = small(tmp_path, platform=grid)
    for args in (("simulate", sc, "--out", tmp_path / "run", "-q"), ("scenario", "validate", sc)):
        r = invoke(*args)
        assert r.exit_code == 2, r.output
        assert "no queue has a DISK RSE" in r.output
    assert not (tmp_path / "run").exists()

"""KPIs of small hand-built run folders, checked against numbers computed by hand."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from gridtwin.analytics.kpi import compute_kpis, format_bytes, format_seconds, kpi_table
from gridtwin.errors import InputError
from gridtwin.record.schema import JOB_FILES, JOB_STATUS_LOG, JOBS, SITE_METRICS, SITES

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
TB = 10**12


def t(seconds: float | None) -> datetime | None:
    """A timestamp ``seconds`` after the test epoch."""
    return None if seconds is None else EPOCH + timedelta(seconds=seconds)


def make_job(
    pandaid: int,
    site: str,
    status: str,
    created: float,
    start: float | None = None,
    end: float | None = None,
    **columns: Any,
) -> dict[str, Any]:
    """One jobs row; times in seconds after EPOCH, derived queue_time/wall_time filled in."""
    row = {
        "pandaid": pandaid,
        "jeditaskid": 1,
        "attemptnr": 1,
        "computingsite": site,
        "jobstatus": status,
        "prodsourcelabel": "managed",
        "corecount": 1,
        "creationtime": t(created),
        "starttime": t(start),
        "endtime": t(end),
        "modificationtime": t(end if end is not None else created),
        "queue_time": None if start is None else float(start - created),
        "wall_time": None if start is None or end is None else float(end - start),
    }
    row.update(columns)
    return row


def make_site(site: str, atlas_site: str, tier: int, total_cores: int, cloud: str = "DE") -> dict[str, Any]:
    """One sites row."""
    return {
        "site": site,
        "atlas_site": atlas_site,
        "cloud": cloud,
        "country": "Germany",
        "tier": tier,
        "corecount": 8,
        "corepower": 10.0,
        "total_cores": total_cores,
        "is_nucleus": tier <= 1,
        "status": "online",
    }


def metric(
    time_s: float, site: str, used: int, total: int, running: int = 0, activated: int = 0, assigned: int = 0
) -> dict[str, Any]:
    """One site_metrics row."""
    return {
        "time": t(time_s),
        "site": site,
        "running": running,
        "activated": activated,
        "assigned": assigned,
        "used_cores": used,
        "total_cores": total,
    }


def table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows as a table with exactly ``schema``; unspecified columns are null."""
    unknown = {k for row in rows for k in row} - set(schema.names)
    assert not unknown, f"not in schema: {unknown}"
    return pa.table(
        {f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}, schema=schema
    )


def make_run(
    tmp_path: Path,
    jobs: list[dict[str, Any]],
    sites: list[dict[str, Any]] | None = None,
    site_metrics: list[dict[str, Any]] | None = None,
    run_json: dict[str, Any] | None = None,
    name: str = "run",
) -> Path:
    """Write a run folder with the five record tables and run.json; return its path."""
    run_dir = tmp_path / name
    run_dir.mkdir()
    tables = {
        "jobs": table(jobs, JOBS),
        "job_status_log": table([], JOB_STATUS_LOG),
        "job_files": table([], JOB_FILES),
        "site_metrics": table(site_metrics or [], SITE_METRICS),
        "sites": table(sites or [], SITES),
    }
    for tname, tab in tables.items():
        pq.write_table(tab, run_dir / f"{tname}.parquet")
    meta = run_json or {
        "scenario": "unit-test",
        "seed": 42,
        "version": "0.1.0",
        "wall_time_s": 1.5,
        "events": 1234,
    }
    (run_dir / "run.json").write_text(json.dumps(meta))
    return run_dir


SITES_ROWS = [
    make_site("Q_A1", "SITE-A", 1, 100),
    make_site("Q_B", "SITE-B", 2, 40),
    make_site("Q_C", "SITE-C", 2, 60),
]
METRIC_ROWS = [
    metric(0, "Q_A1", 50, 100, running=5, activated=3, assigned=1),
    metric(0, "Q_B", 10, 40, running=2, activated=1),
    metric(0, "Q_C", 30, 60, running=3),
    metric(60, "Q_A1", 100, 100, running=10, assigned=2),
    metric(60, "Q_B", 40, 40, running=4),
    metric(60, "Q_C", 0, 60),
]
JOB_ROWS = [
    # queue 10 s, wall 100 s, 8 cores, input read from local storage (sourcesite null)
    make_job(
        1,
        "Q_A1",
        "finished",
        0,
        10,
        110,
        actualcorecount=8,
        corecount=8,
        cpuconsumptiontime=600,
        inputfilebytes=1 * TB,
    ),
    # queue 20 s, wall 200 s, 1 core, input from its own ATLAS site
    make_job(
        2,
        "Q_B",
        "finished",
        0,
        20,
        220,
        actualcorecount=1,
        cpuconsumptiontime=150,
        inputfilebytes=2 * TB,
        sourcesite="SITE-B",
    ),
    # queue 60 s, wall 100 s, 4 cores, input streamed from SITE-A: remote and direct
    make_job(
        3,
        "Q_B",
        "failed",
        0,
        60,
        160,
        actualcorecount=4,
        corecount=4,
        cpuconsumptiontime=50,
        inputfilebytes=3 * TB,
        sourcesite="SITE-A",
        transfertype="direct",
        piloterrorcode=1201,
        exeerrorcode=65,
        ddmerrorcode=0,
    ),
    # never started: its bytes do not count; closed, so its codes do
    make_job(
        4,
        "Q_C",
        "closed",
        100,
        inputfilebytes=5 * TB,
        sourcesite="SITE-A",
        piloterrorcode=1201,
        ddmerrorcode=200,
        taskbuffererrorcode=102,
    ),
    # cancelled: its error code is not a failure
    make_job(5, "Q_C", "cancelled", 50, piloterrorcode=1305),
]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path, JOB_ROWS, SITES_ROWS, METRIC_ROWS)


def test_counts_and_times(run_dir: Path) -> None:
    kpis = compute_kpis(run_dir)
    assert kpis["n_jobs"] == 5
    assert kpis["jobs_by_status"] == {"cancelled": 1, "closed": 1, "failed": 1, "finished": 2}
    assert list(kpis["jobs_by_status"]) == ["cancelled", "closed", "failed", "finished"]
    # queue times 10, 20, 60; p95 by linear interpolation: 20 + 0.9 * 40
    assert kpis["queue_time_s"] == pytest.approx({"mean": 30.0, "median": 20.0, "p95": 56.0})
    # wall times 100, 200, 100
    assert kpis["wall_time_s"] == pytest.approx({"mean": 400 / 3, "median": 100.0, "p95": 190.0})
    assert kpis["makespan_s"] == pytest.approx(220.0)


def test_cpu_efficiency_is_core_weighted(run_dir: Path) -> None:
    # (600 + 150 + 50) / (100 * 8 + 200 * 1 + 100 * 4)
    assert compute_kpis(run_dir)["cpu_efficiency"] == pytest.approx(800 / 1400)


def test_cpu_efficiency_falls_back_to_corecount(tmp_path: Path) -> None:
    jobs = [
        make_job(1, "Q_A1", "finished", 0, 0, 100, corecount=2, cpuconsumptiontime=100),
        make_job(2, "Q_A1", "failed", 0, 0, 0, corecount=2, cpuconsumptiontime=0),
    ]
    assert compute_kpis(make_run(tmp_path, jobs, SITES_ROWS))["cpu_efficiency"] == pytest.approx(0.5)


def test_core_utilisation_by_tier(run_dir: Path) -> None:
    kpis = compute_kpis(run_dir)
    # T1: 50/100 then 100/100; T2: (10+30)/(40+60) then (40+0)/(40+60); all: 90/200 then 140/200
    assert kpis["core_utilisation_by_tier"] == pytest.approx({"T1": 0.75, "T2": 0.4})
    assert kpis["core_utilisation"] == pytest.approx((0.45 + 0.7) / 2)


def test_unknown_site_gets_unknown_tier(tmp_path: Path) -> None:
    metrics = [metric(0, "Q_A1", 10, 100), metric(0, "Q_X", 5, 10), metric(60, "Q_X", 10, 10)]
    kpis = compute_kpis(make_run(tmp_path, [], SITES_ROWS, metrics))
    assert kpis["core_utilisation_by_tier"] == pytest.approx({"T1": 0.1, "unknown": 0.75})
    # tick 0: 15/110, tick 60: 10/10
    assert kpis["core_utilisation"] == pytest.approx((15 / 110 + 1.0) / 2)


def test_input_bytes_local_remote_direct(run_dir: Path) -> None:
    kpis = compute_kpis(run_dir)
    assert kpis["input_bytes_local"] == 3 * TB
    assert kpis["input_bytes_remote"] == 3 * TB
    assert kpis["input_bytes_direct"] == 3 * TB


def test_failures_by_code_ordering(run_dir: Path) -> None:
    assert compute_kpis(run_dir)["failures_by_code"] == [
        {"kind": "pilot", "code": 1201, "count": 2},
        {"kind": "ddm", "code": 200, "count": 1},
        {"kind": "exe", "code": 65, "count": 1},
        {"kind": "taskbuffer", "code": 102, "count": 1},
    ]


def test_jobs_per_site_top_sorted(run_dir: Path) -> None:
    per_site = compute_kpis(run_dir)["jobs_per_site"]
    assert list(per_site.items()) == [("Q_B", 2), ("Q_C", 2), ("Q_A1", 1)]


def test_jobs_per_site_keeps_top_20(tmp_path: Path) -> None:
    jobs = [make_job(i, f"Q_{i % 25:02d}", "finished", 0, 1, 2) for i in range(100)]
    jobs += [make_job(1000, "Q_24", "finished", 0, 1, 2)]
    per_site = compute_kpis(make_run(tmp_path, jobs, SITES_ROWS))["jobs_per_site"]
    assert len(per_site) == 20
    assert next(iter(per_site.items())) == ("Q_24", 5)
    assert list(per_site)[1:3] == ["Q_00", "Q_01"]


def test_kpis_are_strict_json(run_dir: Path) -> None:
    kpis = compute_kpis(run_dir)
    assert json.loads(json.dumps(kpis, allow_nan=False)) == kpis


def test_empty_jobs_table(tmp_path: Path) -> None:
    kpis = compute_kpis(make_run(tmp_path, [], SITES_ROWS, METRIC_ROWS))
    assert kpis["n_jobs"] == 0
    assert kpis["jobs_by_status"] == {}
    assert kpis["queue_time_s"] == {"mean": None, "median": None, "p95": None}
    assert kpis["wall_time_s"] == {"mean": None, "median": None, "p95": None}
    assert kpis["cpu_efficiency"] is None
    assert kpis["input_bytes_local"] == kpis["input_bytes_remote"] == kpis["input_bytes_direct"] == 0
    assert kpis["failures_by_code"] == []
    assert kpis["jobs_per_site"] == {}
    assert kpis["makespan_s"] is None
    assert kpis["core_utilisation"] == pytest.approx(0.575)
    json.dumps(kpis, allow_nan=False)


def test_everything_empty(tmp_path: Path) -> None:
    kpis = compute_kpis(make_run(tmp_path, []))
    assert kpis["core_utilisation"] is None
    assert kpis["core_utilisation_by_tier"] == {}


@pytest.mark.parametrize("name", ["jobs", "site_metrics", "sites"])
def test_missing_file_names_it(run_dir: Path, name: str) -> None:
    (run_dir / f"{name}.parquet").unlink()
    with pytest.raises(InputError, match=rf"{name}\.parquet"):
        compute_kpis(run_dir)


def test_missing_column_names_it(run_dir: Path) -> None:
    jobs = pq.read_table(run_dir / "jobs.parquet").drop_columns(["sourcesite"])
    pq.write_table(jobs, run_dir / "jobs.parquet")
    with pytest.raises(InputError, match=r"jobs\.parquet.*sourcesite"):
        compute_kpis(run_dir)


def test_malformed_file(run_dir: Path) -> None:
    (run_dir / "sites.parquet").write_text("not parquet")
    with pytest.raises(InputError, match=r"sites\.parquet"):
        compute_kpis(run_dir)


def test_kpi_table_renders(run_dir: Path) -> None:
    console = Console(record=True, width=100)
    console.print(kpi_table(compute_kpis(run_dir)))
    text = console.export_text()
    for expected in (
        "Jobs by final state",
        "Queue time",
        "Walltime",
        "CPU efficiency",
        "T1",
        "3.00 TB",
        "pilot 1201",
        "57.1 %",
        "30 s",
    ):
        assert expected in text


def test_formatters() -> None:
    assert format_bytes(3 * TB) == "3.00 TB"
    assert format_bytes(999) == "999 B"
    assert format_bytes(None) == "-"
    assert format_seconds(30.0) == "30 s"
    assert format_seconds(5400.0) == "5400 s (1.50 h)"
    assert not math.isnan(float(format_seconds(12.5).split()[0]))

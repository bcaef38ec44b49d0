"""Data-management KPIs and report section from small hand-built transfers, link_metrics and
job_status_log tables, checked against numbers computed by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from test_kpi import JOB_ROWS, METRIC_ROWS, SITES_ROWS, make_run, t, table

from gridtwin.analytics.kpi import (
    busiest_links,
    compute_kpis,
    kpi_table,
    kpis_from_tables,
    link_sums_per_tick,
    link_throughput_per_tick,
    load_run,
)
from gridtwin.analytics.report import _data_management, write_report
from gridtwin.record.schema import JOB_STATUS_LOG, LINK_METRICS, TRANSFERS

GB = 10**9
TIMEOUT = "TRANSFER [110] TRANSFER  ERROR: Connection timed out"
NO_SOURCES = "No sources found"
# the KPI keys of a run without data management
CORE_KEYS = {
    "n_jobs",
    "jobs_by_status",
    "queue_time_s",
    "wall_time_s",
    "cpu_efficiency",
    "core_utilisation",
    "core_utilisation_window_s",
    "core_utilisation_by_tier",
    "input_bytes_local",
    "input_bytes_remote",
    "input_bytes_direct",
    "failures_by_code",
    "jobs_per_site",
    "makespan_s",
}


def transfer(
    request: int,
    event: str,
    activity: str,
    nbytes: int,
    submitted: float,
    started: float | None = None,
    transferred: float | None = None,
    **columns: Any,
) -> dict[str, Any]:
    """One transfers row; times in seconds after the test epoch, duration derived as Rucio does."""
    row = {
        "event_type": event,
        "request_id": f"{request:032x}",
        "scope": "mc23_13p6TeV",
        "name": f"file.{request}.root",
        "bytes": nbytes,
        "src_rse": "SITE-A_DATADISK",
        "dst_rse": "SITE-B_DATADISK",
        "src_type": "DISK",
        "dst_type": "DISK",
        "activity": activity,
        "created_at": t(submitted),
        "submitted_at": t(submitted),
        "started_at": t(started),
        "transferred_at": t(transferred),
        "duration": -1 if started is None or transferred is None else int(transferred - started),
        "reason": "" if event == "transfer-done" else TIMEOUT,
        "retry_count": 0,
        "rule_id": 1,
    }
    row.update(columns)
    return row


TRANSFER_ROWS = [
    # done: durations 10, 20, 60 s; queue waits 5, 10, 30 s
    transfer(1, "transfer-done", "Production Input", 1 * GB, 0, 5, 15),
    transfer(2, "transfer-done", "Production Input", 2 * GB, 0, 10, 30),
    transfer(3, "transfer-done", "Production Output", 4 * GB, 10, 40, 100),
    # failed after a queue wait of 20 s, then retried and failed without a source (never started)
    transfer(4, "transfer-failed", "Analysis Input", 8 * GB, 0, 20, 25),
    transfer(5, "transfer-failed", "Analysis Input", 8 * GB, 30, reason=NO_SOURCES,
             previous_request_id=f"{4:032x}"),
    # tape recall: staged for 100 s, started 110 s after submission, then failed
    transfer(6, "transfer-failed", "Staging", 3 * GB, 0, 110, 115, src_type="TAPE",
             staging_started_at=t(0), staging_finished_at=t(100)),
]


def status_log(per_job: dict[int, list[tuple[float, str]]]) -> list[dict[str, Any]]:
    """Log rows in time order across jobs (as PanDA writes them), each job's entries in the given order."""
    rows = [
        {"pandaid": pid, "modificationtime": t(time), "jobstatus": status, "computingsite": "Q_A1"}
        for pid, entries in per_job.items()
        for time, status in entries
    ]
    return sorted(rows, key=lambda r: r["modificationtime"])  # stable: ties keep each job's order


STATUS_ROWS = status_log(
    {
        1: [(0, "defined"), (0, "assigned"), (100, "activated"), (110, "sent"), (120, "running"), (200, "finished")],
        2: [(0, "defined"), (10, "activated"), (20, "running"), (30, "finished")],  # never waited
        3: [(0, "defined"), (50, "assigned"), (350, "cancelled")],  # waited until it was cancelled
        4: [(0, "defined"), (60, "assigned")],  # still waiting when the records end
        5: [(0, "defined"), (0, "assigned"), (1000, "activated"), (1100, "running"), (1200, "failed")],
    }
)


def link(time_s: float, src: str, dst: str, active: int, queued: int, nbytes: int, done: int, failed: int = 0,
         mbps: float = 0.0) -> dict[str, Any]:
    """One link_metrics row."""
    return {
        "time": t(time_s),
        "src": src,
        "dst": dst,
        "active": active,
        "queued": queued,
        "bytes_done": nbytes,
        "files_done": done,
        "files_failed": failed,
        "throughput_mbps": mbps,
        "max_active": 100,
    }


LINK_ROWS = [
    link(0, "SITE-A", "SITE-B", 2, 3, 1 * GB, 1, mbps=10.0),
    link(600, "SITE-A", "SITE-B", 1, 1, 2 * GB, 2, mbps=2 * GB / 600 / 1e6),
    link(600, "SITE-A", "SITE-C", 0, 0, 5 * GB, 3, failed=1, mbps=5 * GB / 600 / 1e6),
    link(1200, "SITE-C", "SITE-B", 0, 2, GB // 2, 1, mbps=GB / 2 / 600 / 1e6),
]


def make_dm_run(
    tmp_path: Path,
    transfers: list[dict[str, Any]] = TRANSFER_ROWS,
    links: list[dict[str, Any]] | None = LINK_ROWS,
    log: list[dict[str, Any]] = STATUS_ROWS,
    name: str = "run",
) -> Path:
    """The sample run of test_kpi plus the data-management tables (link_metrics left out if None)."""
    run_dir = make_run(tmp_path, JOB_ROWS, SITES_ROWS, METRIC_ROWS, name=name)
    pq.write_table(table(transfers, TRANSFERS), run_dir / "transfers.parquet")
    pq.write_table(table(log, JOB_STATUS_LOG), run_dir / "job_status_log.parquet")
    if links is not None:
        pq.write_table(table(links, LINK_METRICS), run_dir / "link_metrics.parquet")
    return run_dir


@pytest.fixture(scope="module")
def dm_kpis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return compute_kpis(make_dm_run(tmp_path_factory.mktemp("dm")))


def test_transfer_counts_bytes_and_reasons(dm_kpis: dict[str, Any]) -> None:
    tr = dm_kpis["transfers"]
    assert (tr["n_done"], tr["n_failed"], tr["n_retries"]) == (3, 3, 1)
    assert tr["failure_share"] == pytest.approx(0.5)
    assert tr["bytes_total"] == 7 * GB  # done transfers only
    assert list(tr["bytes_by_activity"].items()) == [("Production Output", 4 * GB), ("Production Input", 3 * GB)]
    assert tr["files_by_activity"] == {"Production Output": 1, "Production Input": 2}
    assert tr["failure_reasons"] == [{"reason": TIMEOUT, "count": 2}, {"reason": NO_SOURCES, "count": 1}]


def test_transfer_times(dm_kpis: dict[str, Any]) -> None:
    tr = dm_kpis["transfers"]
    # done: 10, 20, 60 s; p95 by linear interpolation: 20 + 0.9 * 40
    assert tr["duration_s"] == pytest.approx({"mean": 30.0, "median": 20.0, "p95": 56.0})
    # every started transfer: 5, 10, 30, 20, 110 s -> sorted 5, 10, 20, 30, 110; p95: 30 + 0.8 * 80
    assert tr["queue_wait_s"] == pytest.approx({"mean": 35.0, "median": 20.0, "p95": 94.0})
    assert tr["tape_recalls"] == 1
    assert tr["staging_time_s"] == pytest.approx({"mean": 100.0, "median": 100.0, "p95": 100.0})


def test_data_waiting(dm_kpis: dict[str, Any]) -> None:
    dw = dm_kpis["data_waiting"]
    assert (dw["n_jobs"], dw["n_waited"], dw["n_still_waiting"]) == (5, 4, 1)
    assert dw["waited_share"] == pytest.approx(0.8)
    # job 1: 0 -> 100 activated, job 3: 50 -> 350 cancelled, job 5: 0 -> 1000 activated; p95: 300 + 0.9 * 700
    assert dw["wait_s"] == pytest.approx({"mean": 1400 / 3, "median": 300.0, "p95": 930.0})


def test_data_waiting_one_job_and_record_order(tmp_path: Path) -> None:
    # assigned at t=0, activated at t=100; rows written out of time order, so they have to be sorted
    log = status_log({7: [(0, "defined"), (0, "assigned"), (100, "activated"), (150, "finished")]})
    kpis = compute_kpis(make_dm_run(tmp_path, log=[log[3], log[2], log[0], log[1]]))
    assert kpis["data_waiting"]["wait_s"] == pytest.approx({"mean": 100.0, "median": 100.0, "p95": 100.0})
    # the same entries with activated at the same time as assigned: ties keep their recorded order
    log = status_log({7: [(0, "assigned"), (0, "activated"), (9, "finished")], 8: [(0, "defined")]})
    dw = compute_kpis(make_dm_run(tmp_path, log=log, name="ties"))["data_waiting"]
    assert (dw["n_jobs"], dw["n_waited"], dw["n_still_waiting"]) == (2, 1, 0)
    assert dw["wait_s"]["median"] == 0.0


def test_duration_column_when_timestamps_missing(tmp_path: Path) -> None:
    rows = [transfer(1, "transfer-done", "Data Brokering", GB, 0, duration=42)]
    kpis = compute_kpis(make_dm_run(tmp_path, transfers=rows))
    assert kpis["transfers"]["duration_s"]["median"] == 42.0
    assert kpis["transfers"]["queue_wait_s"]["median"] is None


def test_busiest_links(dm_kpis: dict[str, Any]) -> None:
    links = dm_kpis["busiest_links"]
    assert [(r["src"], r["dst"], r["bytes"]) for r in links] == [
        ("SITE-A", "SITE-C", 5 * GB),
        ("SITE-A", "SITE-B", 3 * GB),
        ("SITE-C", "SITE-B", GB // 2),
    ]
    assert (links[0]["files_done"], links[0]["files_failed"]) == (3, 1)
    assert links[1]["files_done"] == 3
    assert links[1]["max_throughput_mbps"] == pytest.approx(10.0)


def test_busiest_links_keeps_top_10() -> None:
    rows = [link(0, f"S{i:02d}", "D", 0, 0, (i + 1) * GB, 1) for i in range(12)]
    links = busiest_links(table(rows, LINK_METRICS))
    assert [r["src"] for r in links] == [f"S{i:02d}" for i in range(11, 1, -1)]


def test_link_series_fill_idle_ticks_with_zero(tmp_path: Path) -> None:
    links = load_run(make_dm_run(tmp_path)).link_metrics
    ticks, sums = link_sums_per_tick(links, ("queued", "active"))
    assert ((ticks - ticks[0]) / 1000).tolist() == [0, 600, 1200]
    assert sums["queued"].tolist() == [3, 1, 2]
    assert sums["active"].tolist() == [2, 1, 0]
    # a site_metrics tick (60 s) without link rows: nothing queued then
    site_ticks = ticks[0] + np.array([0.0, 60_000.0])
    ticks, sums = link_sums_per_tick(links, ("queued",), site_ticks)
    assert ((ticks - ticks[0]) / 1000).tolist() == [0, 60, 600, 1200]
    assert sums["queued"].tolist() == [3, 0, 1, 2]
    _, (a_b, c_b) = link_throughput_per_tick(links, [("SITE-A", "SITE-B"), ("SITE-C", "SITE-B")], site_ticks)
    assert a_b == pytest.approx([10.0, 0.0, 2 * GB / 600 / 1e6, 0.0])
    assert c_b == pytest.approx([0.0, 0.0, 0.0, GB / 2 / 600 / 1e6])


def test_kpis_with_data_management_are_strict_json(dm_kpis: dict[str, Any]) -> None:
    assert set(dm_kpis) == CORE_KEYS | {"transfers", "data_waiting", "busiest_links"}
    assert json.loads(json.dumps(dm_kpis, allow_nan=False)) == dm_kpis


def test_kpi_table_has_transfer_lines(dm_kpis: dict[str, Any]) -> None:
    console = Console(record=True, width=120)
    console.print(kpi_table(dm_kpis))
    text = console.export_text()
    for expected in (
        "Data management",
        "done / failed",
        "3 / 3 (50.0 % failed)",
        "7.00 GB",
        "20 s / 56 s",  # transfer time median / p95
        "80.0 %",  # jobs that waited for data
        "300 s (5.00 min)",  # median wait
    ):
        assert expected in text


def test_without_data_management_nothing_changes(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, JOB_ROWS, SITES_ROWS, METRIC_ROWS)
    tables = load_run(run_dir)
    assert (tables.transfers, tables.link_metrics, tables.job_status_log) == (None, None, None)
    kpis = compute_kpis(run_dir)
    assert set(kpis) == CORE_KEYS
    console = Console(record=True, width=120)
    console.print(kpi_table(kpis))
    assert "Data management" not in console.export_text()


def test_empty_data_management_tables(tmp_path: Path) -> None:
    run_dir = make_dm_run(tmp_path, transfers=[], links=[], log=[])
    kpis = compute_kpis(run_dir)
    tr = kpis["transfers"]
    assert (tr["n_done"], tr["n_failed"], tr["bytes_total"], tr["tape_recalls"]) == (0, 0, 0, 0)
    assert tr["failure_share"] is None
    assert tr["duration_s"] == {"mean": None, "median": None, "p95": None}
    assert tr["bytes_by_activity"] == {} and tr["failure_reasons"] == []
    assert kpis["data_waiting"] == {
        "n_jobs": 0,
        "n_waited": 0,
        "waited_share": None,
        "n_still_waiting": 0,
        "wait_s": {"mean": None, "median": None, "p95": None},
    }
    assert kpis["busiest_links"] == []
    json.dumps(kpis, allow_nan=False)
    # only the data-management part of the report (the rest is tested elsewhere): tables and five plots
    section = "\n".join(_data_management(load_run(run_dir), kpis))
    assert section.startswith("<h2>Data management</h2>")
    assert section.count('src="data:image/png;base64,') == 5


@pytest.fixture(scope="module")
def dm_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    run_dir = make_dm_run(tmp_path_factory.mktemp("dm_report"))
    return run_dir, write_report(run_dir).read_bytes()


def test_report_data_management_section(dm_report: tuple[Path, bytes]) -> None:
    text = dm_report[1].decode("utf-8")
    assert text.count("<h2>Data management</h2>") == 1
    assert text.index("<h2>Data management</h2>") < text.index("<h2>KPIs as JSON</h2>")
    # 6 core plots; bytes per activity, transfer times, link throughput, link queues, waiting for data
    assert text.count('src="data:image/png;base64,') == 6 + 5
    for expected in (
        "Bytes moved by activity",
        "Production Output",
        "4.00 GB (1 files)",
        "7.00 GB",
        "Transfer failure reasons",
        "Connection timed out",
        "SITE-A → SITE-C",
        "5.00 GB",
        "Jobs waiting for input data",
        "4 (80.0 % (0.8))",
        "467 s",  # mean wait 1400 / 3
        'alt="throughput of the 10 busiest links"',
    ):
        assert expected in text


def test_report_with_data_management_is_deterministic(dm_report: tuple[Path, bytes]) -> None:
    # the section drawn again (the rest of the report is checked in test_report) is the same, byte for byte
    run_dir, first = dm_report
    tables = load_run(run_dir)
    section = "\n".join(_data_management(tables, kpis_from_tables(tables)))
    assert section.encode("utf-8") in first

"""Imbalance of transfer volume and job demand against hand-computed numbers."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gridtwin.analytics.imbalance import gini, imbalance
from gridtwin.record import schema

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def t(minutes: float | None) -> datetime | None:
    return None if minutes is None else T0 + timedelta(minutes=minutes)


def write(run: Path, name: str, rows: list[dict]) -> None:
    sch = schema.TABLES[name]
    pq.write_table(pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in sch}, schema=sch),
                   run / f"{name}.parquet")


def xfer(src, dst, nbytes, minute, event="transfer-done") -> dict:
    return {"event_type": event, "src_rse": f"{src}_DATADISK", "dst_rse": f"{dst}_DATADISK", "bytes": nbytes,
            "transferred_at": t(minute)}


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1, 1, 1, 1], 0.0), ([0, 0, 0, 1], 0.75), ([1, 3], 0.25), ([0, 0, 400, 600], 0.55), ([], 0.0),
     ([0, 0], 0.0), ([5], 0.0), ([1000, 0, 3000], 0.5)],
)
def test_gini_hand_values(values, expected):
    assert gini(values) == pytest.approx(expected)


def test_gini_matches_pairwise_definition():
    values = [3, 0, 7, 7, 1, 12, 4]
    n, mean = len(values), sum(values) / len(values)
    pairwise = sum(abs(a - b) for a, b in itertools.product(values, values)) / (2 * n * n * mean)
    assert gini(values) == pytest.approx(pairwise)


@pytest.fixture
def run(tmp_path):
    write(tmp_path, "transfers", [
        xfer("B", "A", 100, 10), xfer("B", "A", 300, 80), xfer("C", "A", 200, 90), xfer("A", "C", 400, 50),
        xfer("B", "C", 1000, 20, event="transfer-failed"),
    ])
    write(tmp_path, "jobs", [
        {"pandaid": 1, "computingsite": "QA", "starttime": t(5), "inputfilebytes": 1000},
        {"pandaid": 2, "computingsite": "QB", "starttime": t(130), "inputfilebytes": 3000},
        {"pandaid": 3, "computingsite": "QA", "starttime": None, "inputfilebytes": 5000},
    ])
    write(tmp_path, "sites", [{"site": f"Q{s}", "atlas_site": s} for s in "ABCD"])
    return tmp_path


def test_imbalance_hand_computed(run):
    out = imbalance(run)
    assert out["notes"] == []
    assert out["volume_per_site"].to_pylist() == [{"site": "A", "bytes": 600, "files": 3},
                                                  {"site": "C", "bytes": 400, "files": 1}]
    assert out["volume_per_hour"].to_pylist() == [{"hour": t(0), "bytes": 500, "files": 2},
                                                  {"hour": t(60), "bytes": 500, "files": 2}]
    assert out["demand_per_site"].to_pylist() == [{"site": "B", "bytes": 3000, "jobs": 1},
                                                  {"site": "A", "bytes": 1000, "jobs": 1}]
    assert out["demand_per_hour"].to_pylist() == [{"hour": t(0), "bytes": 1000, "jobs": 1},
                                                  {"hour": t(120), "bytes": 3000, "jobs": 1}]
    assert out["site_matrix"].to_pydict() == {"src_site": ["A", "B", "C"], "A": [0, 400, 200], "B": [0, 0, 0],
                                              "C": [400, 0, 0]}
    assert out["hour_site_volume"].to_pydict() == {"hour": [t(0), t(60), t(120)], "A": [100, 500, 0],
                                                   "B": [0, 0, 0], "C": [400, 0, 0], "D": [0, 0, 0]}
    assert out["hour_site_demand"].to_pydict() == {"hour": [t(0), t(60), t(120)], "A": [1000, 0, 0],
                                                   "B": [0, 0, 3000], "C": [0, 0, 0], "D": [0, 0, 0]}
    # sites A, B, C, D: volume [600, 0, 400, 0], demand [1000, 3000, 0, 0]; hours 0-2: [500, 500, 0], [1000, 0, 3000]
    assert out["gini"] == pytest.approx({"volume_sites": 0.55, "volume_hours": 1 / 3, "demand_sites": 0.625,
                                         "demand_hours": 0.5})
    assert out["busiest_links"] == [
        {"src_site": "B", "dst_site": "A", "bytes": 400, "files": 2},
        {"src_site": "A", "dst_site": "C", "bytes": 400, "files": 1},
        {"src_site": "C", "dst_site": "A", "bytes": 200, "files": 1},
    ]


def test_imbalance_without_sites_or_jobs(run):
    (run / "sites.parquet").unlink()
    (run / "jobs.parquet").unlink()
    out = imbalance(run)
    assert any("no jobs.parquet" in n for n in out["notes"])
    assert out["demand_per_site"].num_rows == 0
    # sites now A, C (transfers) plus B (source only): volume [600, 0, 400]
    assert out["gini"]["volume_sites"] == pytest.approx(gini([600, 0, 400]))
    assert out["gini"]["demand_sites"] == 0.0

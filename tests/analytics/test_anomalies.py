"""Anomaly classes on hand-built traces: each class fires exactly on the examples planted for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gridtwin.analytics.anomalies import ANOMALY_CLASSES, ANOMALY_SCHEMA, anomaly_summary, find_anomalies
from gridtwin.record import schema

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DONE, FAILED = "transfer-done", "transfer-failed"
CLOSENESS = {("B", "A"): 5, ("C", "A"): 1, ("B", "C"): 2, ("A", "C"): 1}
LINK_SCHEMA = pa.schema([("pandaid", pa.int64()), ("request_id", pa.string()), ("role", pa.string()),
                         ("confidence", pa.float64()), ("rule", pa.string())])


def t(seconds: float | None) -> datetime | None:
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def write(run: Path, name: str, rows: list[dict]) -> None:
    """Write ``rows`` with the record schema of ``name`` (absent columns null)."""
    sch = schema.TABLES[name]
    pq.write_table(pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in sch}, schema=sch),
                   run / f"{name}.parquet")


def job(pandaid, queue, start=None, end=None, **kw) -> dict:
    return {"pandaid": pandaid, "computingsite": queue, "starttime": t(start), "endtime": t(end),
            "jobstatus": "finished" if start is not None else "closed", "inputfilebytes": 10, **kw}


def xfer(rid, name, src, dst, created, done, *, event=DONE, dataset="ds", activity="Production Input",
         nbytes=100) -> dict:
    return {"event_type": event, "request_id": rid, "scope": "mc", "name": name, "dataset": dataset,
            "bytes": nbytes, "src_rse": f"{src}_DATADISK", "dst_rse": f"{dst}_DATADISK", "activity": activity,
            "created_at": t(created), "transferred_at": t(done)}


def infile(pandaid, lfn, dis: str | None = "dis") -> dict:
    return {"pandaid": pandaid, "scope": "mc", "lfn": lfn, "type": "input", "fsize": 100,
            "dispatchdblock": None if dis is None else f"panda.1_dis{pandaid}"}


def link(pandaid, rid, role="input") -> dict:
    return {"pandaid": pandaid, "request_id": rid, "role": role, "confidence": 1.0, "rule": "hand"}


# Each scenario: (jobs, job_files, transfers, links, deletions). Ids and file names never collide.
def clean() -> tuple:
    """Job 1 at A reads f1 brought in time from B; job 2 at B reads f2 found there. No anomaly."""
    return ([job(1, "QA", 1000, 2000), job(2, "QB", 1000, 2000)],
            [infile(1, "f1"), infile(2, "f2", dis=None)],
            [xfer("r1", "f1", "B", "A", 0, 500, dataset="panda.1_dis1")],
            [link(1, "r1")], [])


def late() -> tuple:
    return ([job(3, "QA", 1000, 2000)], [infile(3, "f3")],
            [xfer("r3", "f3", "B", "A", 0, 1500, dataset="panda.1_dis3")], [link(3, "r3")], [])


def redundant() -> tuple:
    """f1 sent to A_DATADISK again 300 s after r1 (clean scenario)."""
    return ([], [], [xfer("r4", "f1", "B", "A", 600, 800)], [link(1, "r4")], [])


def misdirected() -> tuple:
    """Job 6 (assigned to A, closed) retried as job 7 at C: its transfer to A was misdirected (link).
    r7 carries job 8's _dis dataset (job 8 ran at A) to B, where it fed job 9 (dis rule)."""
    return ([job(6, "QA"), job(7, "QC", 1000, 2000, parentid=6), job(8, "QA", 1000, 2000),
             job(9, "QB", 2000, 3000)],
            [],
            [xfer("r6", "f6", "B", "A", 0, 500, dataset="panda.1_dis6"),
             xfer("r7", "f7", "C", "B", 0, 500, dataset="panda.1_dis8")],
            [link(6, "r6"), link(9, "r7")], [])


def unused() -> tuple:
    """Two sent transfers nobody used; an unlinked failed attempt is not an example."""
    return ([], [],
            [xfer("r10", "f10", "A", "C", 0, 100, activity="Data Rebalancing", nbytes=1000),
             xfer("r11", "f11", "A", "B", 0, 100, nbytes=50),
             xfer("r12", "f12", "A", "B", 0, 100, event=FAILED)],
            [], [])


def locality() -> tuple:
    """Job 12 streamed from B (flagged), job 13 streamed locally; job 14's dispatched f14 never shows up at A
    (flagged); job 15's f15 was read undispatched at A by job 16 (evidence)."""
    return ([job(12, "QA", 1000, 2000, transfertype="direct", sourcesite="B", inputfilebytes=777),
             job(13, "QA", 1000, 2000, transfertype="direct", sourcesite="A"),
             job(14, "QA", 1000, 2000, sourcesite="B"),
             job(15, "QA", 1000, 2000, sourcesite="B"),
             job(16, "QA", 500, 900, sourcesite="A")],
            [infile(14, "f14"), infile(15, "f15"), infile(16, "f15", dis=None)],
            [], [], [])


def distant() -> tuple:
    """g reached C at 100, then A got it from B (closeness 5) though C (closeness 1) held it: flagged.
    h reached C too but was deleted there before A asked for it from B: not flagged."""
    return ([job(20, "QC", 1000, 2000), job(21, "QA", 1000, 2000)], [],
            [xfer("r20", "g", "B", "C", 0, 100), xfer("r21", "g", "B", "A", 200, 300),
             xfer("r22", "h", "B", "C", 0, 100), xfer("r23", "h", "B", "A", 200, 300)],
            [link(20, "r20"), link(21, "r21"), link(20, "r22"), link(21, "r23")],
            [{"event_type": "deletion-done", "scope": "mc", "name": "h", "rse": "C_DATADISK", "bytes": 100,
              "created_at": t(150)}])


EXPECTED = {
    "late": (late, {(3, "r3", None, None)}),
    "redundant": (redundant, {(None, "r4", "mc", "f1")}),
    "misdirected": (misdirected, {(6, "r6", None, None), (8, "r7", None, None)}),
    "unused": (unused, {(None, "r10", "mc", "f10"), (None, "r11", "mc", "f11")}),
    "locality": (locality, {(12, None, None, None), (14, None, "mc", "f14")}),
    "distant_source": (distant, {(None, "r21", "mc", "g")}),
}


def keys(cls: str, table: pa.Table) -> set[tuple]:
    """Identity of each example: (pandaid, request_id, scope, name), with only the keys the class sets."""
    rows = table.to_pylist()
    if cls in ("late", "misdirected"):
        return {(r["pandaid"], r["request_id"], None, None) for r in rows}
    return {(r["pandaid"], r["request_id"], r["scope"], r["name"]) for r in rows}


def make_run(tmp_path: Path, scenarios) -> tuple[Path, pa.Table]:
    parts = [s() for s in scenarios]
    jobs, files, xfers, links, dels = ([row for p in parts for row in p[i]] for i in range(5))
    write(tmp_path, "jobs", jobs)
    write(tmp_path, "job_files", files)
    write(tmp_path, "transfers", xfers)
    write(tmp_path, "deletions", dels)
    write(tmp_path, "sites", [{"site": f"Q{s}", "atlas_site": s} for s in "ABC"])
    table = pa.Table.from_pylist(links, schema=LINK_SCHEMA) if links else LINK_SCHEMA.empty_table()
    return tmp_path, table


def test_clean_trace_has_no_anomaly(tmp_path):
    run, links = make_run(tmp_path, [clean])
    found = find_anomalies(run, links, closeness=CLOSENESS)
    assert list(found) == list(ANOMALY_CLASSES)
    for cls, table in found.items():
        assert table.schema.remove_metadata() == ANOMALY_SCHEMA, cls
        assert table.num_rows == 0, (cls, table.to_pylist())


def _check_only(found: dict[str, pa.Table], cls: str, expected: set) -> None:
    assert keys(cls, found[cls]) == expected
    for other, table in found.items():
        if other != cls:
            assert table.num_rows == 0, (other, table.to_pylist())


def test_late(tmp_path):
    run, links = make_run(tmp_path, [clean, late])
    found = find_anomalies(run, links, closeness=CLOSENESS)
    _check_only(found, "late", EXPECTED["late"][1])
    row = found["late"].to_pylist()[0]
    assert row["site"] == "A" and row["detail"] == "arrived 500 s after job start"
    assert row["time"] == t(1500) and row["ref_time"] == t(1000)


def test_redundant(tmp_path):
    run, links = make_run(tmp_path, [clean, redundant])
    found = find_anomalies(run, links, closeness=CLOSENESS)
    _check_only(found, "redundant", EXPECTED["redundant"][1])
    assert found["redundant"]["detail"].to_pylist() == ["already sent by r1 300 s earlier"]
    assert find_anomalies(run, links, redundant_window_s=299, closeness=CLOSENESS)["redundant"].num_rows == 0


def test_misdirected(tmp_path):
    run, links = make_run(tmp_path, [clean, misdirected])
    found = find_anomalies(run, links, closeness=CLOSENESS)
    _check_only(found, "misdirected", EXPECTED["misdirected"][1])
    details = dict(zip(found["misdirected"]["request_id"].to_pylist(), found["misdirected"]["detail"].to_pylist(),
                       strict=True))
    assert details == {"r6": "sent to A but job ran at C (retry 7) [dis+link]",
                       "r7": "sent to B but job ran at A [dis]"}


def test_unused(tmp_path):
    run, links = make_run(tmp_path, [clean, unused])
    found = find_anomalies(run, links, closeness=CLOSENESS)
    _check_only(found, "unused", EXPECTED["unused"][1])
    summary = [r for r in anomaly_summary(found).to_pylist() if r["class"] == "unused"]
    assert summary == [
        {"class": "unused", "dimension": "all", "key": None, "count": 2, "bytes": 1050},
        {"class": "unused", "dimension": "site", "key": "C", "count": 1, "bytes": 1000},
        {"class": "unused", "dimension": "site", "key": "B", "count": 1, "bytes": 50},
        {"class": "unused", "dimension": "link", "key": "A->C", "count": 1, "bytes": 1000},
        {"class": "unused", "dimension": "link", "key": "A->B", "count": 1, "bytes": 50},
        {"class": "unused", "dimension": "activity", "key": "Data Rebalancing", "count": 1, "bytes": 1000},
        {"class": "unused", "dimension": "activity", "key": "Production Input", "count": 1, "bytes": 50},
    ]


def test_locality(tmp_path):
    run, links = make_run(tmp_path, [clean, locality])
    found = find_anomalies(run, links, closeness=CLOSENESS)
    _check_only(found, "locality", EXPECTED["locality"][1])
    rows = found["locality"].to_pylist()
    assert [r["detail"].split(":")[0] for r in rows] == ["direct_remote", "no_local_replica"]
    assert rows[0]["bytes"] == 777 and rows[0]["src_site"] == "B" and rows[0]["site"] == "A"


def test_distant_source(tmp_path):
    run, links = make_run(tmp_path, [clean, distant])
    found = find_anomalies(run, links, closeness=CLOSENESS)
    _check_only(found, "distant_source", EXPECTED["distant_source"][1])
    assert found["distant_source"]["detail"].to_pylist() == ["source B (closeness 5) but C (closeness 1) held it"]
    skipped = find_anomalies(run, links)["distant_source"]
    assert skipped.num_rows == 0 and b"no closeness map" in skipped.schema.metadata[b"note"]


def test_all_classes_together_do_not_bleed(tmp_path):
    run, links = make_run(tmp_path, [clean] + [scenario for scenario, _ in EXPECTED.values()])
    found = find_anomalies(run, links, closeness=CLOSENESS)
    for cls, (_, expected) in EXPECTED.items():
        assert keys(cls, found[cls]) == expected, cls
    summary = {(r["class"], r["dimension"], r["key"]): (r["count"], r["bytes"])
               for r in anomaly_summary(found).to_pylist()}
    assert {c: summary[c, "all", None][0] for c in ANOMALY_CLASSES} == {c: len(e) for c, (_, e) in EXPECTED.items()}
    assert summary["locality", "all", None] == (2, 877)
    assert summary["late", "link", "B->A"] == (1, 100)


@pytest.mark.parametrize("drop", ["sites", "job_files", "deletions", "transfers"])
def test_missing_tables_degrade(tmp_path, drop):
    run, links = make_run(tmp_path, [clean, late, locality])
    (run / f"{drop}.parquet").unlink()
    found = find_anomalies(run, links, closeness=CLOSENESS)
    notes = " ".join(tbl.schema.metadata[b"note"].decode() for tbl in found.values())
    assert f"no {drop}.parquet" in notes
    if drop == "transfers":
        assert all(found[c].num_rows == 0 for c in ("late", "redundant", "unused", "distant_source"))
    if drop == "job_files":
        assert keys("locality", found["locality"]) == {(12, None, None, None)}
    assert all(b"rule" in tbl.schema.metadata for tbl in found.values())

"""Importing Rucio transfer events: hermes messages and MONIT-enriched documents give the same rows;
bad lines are set aside with their reason, unreadable files raise; a simulated run's transfers survive an
export to hermes JSON lines and back."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from helpers_core import make_rse, make_scenario, make_site

from gridtwin.analytics.import_rucio import import_rucio_events
from gridtwin.analytics.importing import REJECTED, InputFileError
from gridtwin.config import scenario_from_dict
from gridtwin.record.schema import TRANSFERS
from gridtwin.scenario import run_scenario

DONE_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
FAILED_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
RETRY_ID = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"
NO_SPACE = "DESTINATION [28] DESTINATION  No space left on device"

# Three hermes messages as Rucio's conveyor sends them: a transfer done, one failed and its retry (which
# has no `bytes` and no `duration`, so both come from `file-size` and the two times).
HERMES = [
    {"event_type": "transfer-done", "created_at": "2026-01-02 03:05:48.001000", "payload": {
        "activity": "Production Input", "request-id": DONE_ID, "previous-request-id": None,
        "scope": "mc23_13p6TeV", "name": "EVNT.39999996._000001.pool.root.1",
        "dataset": "mc23_13p6TeV.500003.evnt.EVNT.e8514_tid39999996_00", "datasetScope": "mc23_13p6TeV",
        "file-size": 2147483648, "bytes": 2147483648, "checksum-adler": "0a1b2c3d", "guid": None,
        "src-rse": "CERN-PROD_DATADISK", "src-type": "DISK", "src-url": "davs://eosatlas.cern.ch/x",
        "dst-rse": "BNL-OSG2_DATADISK", "dst-type": "DISK", "dst-url": "davs://dcgftp.usatlas.bnl.gov/x",
        "protocol": "davs", "reason": "", "transfer-endpoint": "https://fts3-atlas.cern.ch:8446",
        "transfer-id": "1234abcd", "transfer-link": "https://fts3-atlas.cern.ch:8449/fts3/ftsmon/#/job/1234abcd",
        "tool-id": "rucio-conveyor", "account": "prodsys", "created_at": "2026-01-02 03:00:00",
        "submitted_at": "2026-01-02 03:01:00.250000", "started_at": "2026-01-02 03:04:05",
        "transferred_at": "2026-01-02 03:05:47.500000", "duration": 102, "vo": "def"}},
    {"event_type": "transfer-failed", "created_at": "2026-01-02 04:06:00.100000", "payload": {
        "activity": "Production Output", "request-id": FAILED_ID, "previous-request-id": None,
        "scope": "mc23_13p6TeV", "name": "HITS.40000001._000007.pool.root.1", "dataset": "panda.40000001_sub7",
        "file-size": 512000000, "bytes": 512000000, "src-rse": "BNL-OSG2_DATADISK", "src-type": "DISK",
        "dst-rse": "CERN-PROD_DATADISK", "dst-type": "DISK", "reason": NO_SPACE,
        "transfer-link": "https://fts3-atlas.cern.ch:8449/fts3/ftsmon/#/job/5678ef01",
        "created_at": "2026-01-02 03:59:00", "submitted_at": "2026-01-02 03:59:30",
        "started_at": "2026-01-02 04:00:00", "transferred_at": "2026-01-02 04:06:00", "duration": 360}},
    {"event_type": "transfer-done", "created_at": "2026-01-02 05:00:31", "payload": {
        "activity": "Production Output", "request-id": RETRY_ID, "previous-request-id": FAILED_ID,
        "scope": "mc23_13p6TeV", "name": "HITS.40000001._000007.pool.root.1", "dataset": "panda.40000001_sub7",
        "file-size": 512000000, "src-rse": "BNL-OSG2_DATADISK", "src-type": "DISK",
        "dst-rse": "CERN-PROD_DATADISK", "dst-type": "DISK", "reason": "",
        "transfer-link": "https://fts3-atlas.cern.ch:8449/fts3/ftsmon/#/job/9abc2345",
        "created_at": "2026-01-02 04:06:01", "submitted_at": "2026-01-02 04:30:00",
        "started_at": "2026-01-02 05:00:00.123456", "transferred_at": "2026-01-02 05:00:30.999000"}},
]

# The same three events as MONIT-enriched documents: underscored keys under `data`, times as epoch
# milliseconds (2026-01-02 00:00:00 UTC = 1767312000 s) or ISO with `T`/`Z`, plus `metadata`.
DAY = 1767312000000
MONIT_DATA = [
    {"event_type": "transfer-done", "activity": "Production Input", "request_id": DONE_ID,
     "previous_request_id": None, "scope": "mc23_13p6TeV", "name": "EVNT.39999996._000001.pool.root.1",
     "dataset": "mc23_13p6TeV.500003.evnt.EVNT.e8514_tid39999996_00", "file_size": 2147483648,
     "bytes": 2147483648, "src_rse": "CERN-PROD_DATADISK", "src_type": "DISK", "dst_rse": "BNL-OSG2_DATADISK",
     "dst_type": "DISK", "reason": "", "transfer_link": "https://fts3-atlas.cern.ch:8449/fts3/ftsmon/#/job/1234abcd",
     "created_at": "2026-01-02T03:00:00Z", "submitted_at": DAY + 10_860_250, "started_at": DAY + 11_045_000,
     "transferred_at": DAY + 11_147_500, "duration": 102, "src_experiment_site": "CERN-PROD"},
    {"event_type": "transfer-failed", "activity": "Production Output", "request_id": FAILED_ID,
     "scope": "mc23_13p6TeV", "name": "HITS.40000001._000007.pool.root.1", "dataset": "panda.40000001_sub7",
     "file_size": 512000000, "bytes": 512000000, "src_rse": "BNL-OSG2_DATADISK", "src_type": "DISK",
     "dst_rse": "CERN-PROD_DATADISK", "dst_type": "DISK", "reason": NO_SPACE,
     "transfer_link": "https://fts3-atlas.cern.ch:8449/fts3/ftsmon/#/job/5678ef01",
     "created_at": DAY + 14_340_000, "submitted_at": "2026-01-02T03:59:30+00:00", "started_at": DAY + 14_400_000,
     "transferred_at": DAY + 14_760_000, "duration": 360},
    {"event_type": "transfer-done", "activity": "Production Output", "request_id": RETRY_ID,
     "previous_request_id": FAILED_ID, "scope": "mc23_13p6TeV", "name": "HITS.40000001._000007.pool.root.1",
     "dataset": "panda.40000001_sub7", "file_size": 512000000, "src_rse": "BNL-OSG2_DATADISK",
     "src_type": "DISK", "dst_rse": "CERN-PROD_DATADISK", "dst_type": "DISK", "reason": "",
     "transfer_link": "https://fts3-atlas.cern.ch:8449/fts3/ftsmon/#/job/9abc2345",
     "created_at": DAY + 14_761_000, "submitted_at": DAY + 16_200_000, "started_at": DAY + 18_000_123,
     "transferred_at": DAY + 18_030_999},
]


def monit_nested(data: dict) -> dict:
    return {"data": data, "metadata": {"topic": "rucio_enr", "producer": "atlas", "timestamp": DAY}}


def monit_dotted(data: dict) -> dict:
    return {**{f"data.{k}": v for k, v in data.items()}, "metadata.topic": "rucio_enr", "metadata.timestamp": DAY}


def write_lines(path: Path, lines: list) -> Path:
    """Write JSON lines (dicts are dumped, strings written as they are)."""
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------- good input
def test_hermes_events_give_hand_checked_rows(tmp_path):
    res = import_rucio_events(write_lines(tmp_path / "events.jsonl", HERMES))
    assert res.table.schema == TRANSFERS and res.n_rejected == 0 and res.rejected.schema == REJECTED
    rows = res.table.to_pylist()
    assert [r["request_id"] for r in rows] == [DONE_ID, FAILED_ID, RETRY_ID]
    assert [r["event_type"] for r in rows] == ["transfer-done", "transfer-failed", "transfer-done"]
    assert [r["src_rse"] for r in rows] == ["CERN-PROD_DATADISK", "BNL-OSG2_DATADISK", "BNL-OSG2_DATADISK"]
    assert [r["bytes"] for r in rows] == [2147483648, 512000000, 512000000]  # the retry's from file-size
    assert [r["started_at"] for r in rows] == [utc(2026, 1, 2, 3, 4, 5), utc(2026, 1, 2, 4),
                                              utc(2026, 1, 2, 5, 0, 0, 123000)]
    assert rows[0]["submitted_at"] == utc(2026, 1, 2, 3, 1, 0, 250000)
    assert rows[0]["created_at"] == utc(2026, 1, 2, 3)  # the request's, not the envelope's
    assert [r["duration"] for r in rows] == [102, 360, 30]  # the retry's recomputed (30.876 s)
    assert [r["reason"] for r in rows] == ["", NO_SPACE, ""]
    assert [r["previous_request_id"] for r in rows] == [None, None, FAILED_ID]
    assert rows[0]["transfer_link"].endswith("/1234abcd") and rows[0]["dst_type"] == "DISK"
    for col in ("retry_count", "rule_id", "staging_started_at", "staging_finished_at"):
        assert res.table[col].null_count == 3
    assert "3 hermes envelope events imported" in res.notes


def test_monit_nested_dotted_and_bare_payloads_equal_hermes(tmp_path):
    want = import_rucio_events(write_lines(tmp_path / "hermes.json", HERMES)).table
    forms = {
        "nested.jsonl": [monit_nested(d) for d in MONIT_DATA],
        "dotted.jsonl.gz": [monit_dotted(d) for d in MONIT_DATA],
        "opensearch.json": [{"_index": "monit_prod_atlas_rucio_enr", "_source": monit_nested(d)} for d in MONIT_DATA],
        "bare.jsonl": [{**m["payload"], "event_type": m["event_type"]} for m in HERMES],
        "mixed.jsonl": [HERMES[0], monit_dotted(MONIT_DATA[1]), monit_nested(MONIT_DATA[2])],
        "payload_as_text.jsonl": [{**m, "payload": json.dumps(m["payload"])} for m in HERMES],
    }
    for name, lines in forms.items():
        res = import_rucio_events(write_lines(tmp_path / name, lines))
        assert res.n_rejected == 0, (name, res.rejected.to_pylist())
        assert res.table.equals(want), name
    assert import_rucio_events(tmp_path / "mixed.jsonl").notes[:3] == [
        "1 MONIT dotted events imported", "1 MONIT nested events imported", "1 hermes envelope events imported"]


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_lines_are_rejected_with_reason_and_line_and_good_lines_import(tmp_path):
    def payload(**over):
        p = dict(HERMES[0]["payload"])
        p.update(over)
        return {"event_type": "transfer-done", "payload": p}

    missing_src = dict(HERMES[1]["payload"])
    del missing_src["src-rse"]
    lines = [
        HERMES[0],                                                        # 1 good
        json.dumps(HERMES[1])[:80],                                       # 2 truncated
        payload(**{"request-id": "r3", "bytes": "two gigabytes"}),        # 3 wrong type
        {"event_type": "transfer-failed", "payload": missing_src},        # 4 missing src_rse
        HERMES[0],                                                        # 5 duplicate of line 1
        payload(**{"request-id": "r6", "bytes": -5}),                     # 6 negative size
        payload(**{"request-id": "r7", "transferred_at": "2026-01-02 03:04:04"}),  # 7 end before start
        "",                                                               # 8 blank: skipped
        "[1, 2, 3]",                                                      # 9 not an object
        {"event_type": "transfer-submitted", "payload": {"request-id": "r10", "state": "SUBMITTED"}},  # 10 skip
        {"event_type": "deletion-done", "payload": {"scope": "s", "name": "n", "rse": "X", "bytes": 1}},  # 11
        payload(**{"request-id": "r12", "started_at": "yesterday"}),      # 12 unparseable date
        {"payload": HERMES[2]["payload"]},                                # 13 no event type
        payload(**{"request-id": "r14", "name": ""}),                     # 14 missing name
        HERMES[1],                                                        # 15 good (failed)
        {"data": {**MONIT_DATA[2], "request_id": None}},                  # 16 missing request_id (MONIT)
        HERMES[2],                                                        # 17 good
        {**HERMES[0], "event_type": "transfer-failed"},                   # 18 same id, other type: kept
    ]
    res = import_rucio_events(write_lines(tmp_path / "bad.jsonl", lines))
    assert res.table.column("request_id").to_pylist() == [DONE_ID, FAILED_ID, RETRY_ID, DONE_ID]
    rej = [(r["line"], r["column"], r["reason"]) for r in res.rejected.to_pylist()]
    assert rej == [
        (2, None, "not JSON"),
        (3, "bytes", "wrong type"),
        (4, "src_rse", "missing field"),
        (5, "request_id", "duplicate request_id"),
        (6, "bytes", "negative size"),
        (7, "transferred_at", "end before start"),
        (9, None, "not an object"),
        (12, "started_at", "unparseable date"),
        (13, "event_type", "missing field"),
        (14, "name", "missing field"),
        (16, "request_id", "missing field"),
    ]
    assert set(res.rejected["source_file"].to_pylist()) == {str(tmp_path / "bad.jsonl")}
    assert res.rejected["raw"][0].as_py() == lines[1]
    summary = res.summary()
    assert summary["rows"] == 4 and summary["rejected"] == 11
    assert summary["rejected_by_reason"]["missing field"] == 4
    assert "2 events skipped by type: deletion-done=1, transfer-submitted=1" in res.notes
    assert "1 blank lines skipped" in res.notes


def test_unreadable_files_raise_naming_file_and_line(tmp_path):
    bad = tmp_path / "latin1.jsonl"
    good = json.dumps(HERMES[0]).encode()
    bad.write_bytes(good + b"\n" + good + b"\n" + b'{"event_type": "transfer-done", "name": "caf\xe9"}\n')
    with pytest.raises(InputFileError, match=r"latin1\.jsonl: line 3: undecodable bytes"):
        import_rucio_events(bad)

    for name, content in (("empty.jsonl", b""), ("blank.jsonl", b"\n  \n\r\n")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputFileError, match=rf"{name}: empty file"):
            import_rucio_events(tmp_path / name)

    with pytest.raises(InputFileError, match=r"nowhere\.jsonl: no such file"):
        import_rucio_events(tmp_path / "nowhere.jsonl")

    whole = gzip.compress("\n".join(json.dumps(m) for m in HERMES * 50).encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputFileError, match=r"cut\.jsonl\.gz: gzip corruption"):
        import_rucio_events(tmp_path / "cut.jsonl.gz")
    (tmp_path / "garbled.json.gz").write_bytes(whole[:10] + b"\x00" * 40 + whole[50:])
    with pytest.raises(InputFileError, match=r"garbled\.json\.gz: gzip corruption"):
        import_rucio_events(tmp_path / "garbled.json.gz")


# ---------------------------------------------------------------------------------------------- round trip
HERMES_KEYS = ("request-id", "previous-request-id", "scope", "name", "dataset", "bytes", "src-rse", "src-type",
               "dst-rse", "dst-type", "activity", "created_at", "submitted_at", "started_at", "transferred_at",
               "duration", "reason", "transfer-link")


def _to_hermes(row: dict, keys: tuple[str, ...]) -> dict:
    """A transfers row as the hermes message Rucio would send: hyphenated keys, times as str(naive UTC)."""
    payload = {}
    for key in keys:
        v = row[key.replace("-", "_")]
        payload[key] = str(v.astimezone(UTC).replace(tzinfo=None)) if isinstance(v, datetime) else v
    payload["file-size"] = row["bytes"]
    return {"event_type": row["event_type"], "payload": payload, "created_at": payload["transferred_at"]}


def test_simulated_transfers_round_trip_through_hermes_json(tmp_path):
    sites = [make_site("A", total_cores=16, tier=1, is_nucleus=True), make_site("B", total_cores=16, tier=2)]
    rses = [make_rse("A_DATADISK", "A", 200.0), make_rse("A_MCTAPE", "A", 1000.0, "TAPE"),
            make_rse("B_DATADISK", "B", 5.0)]
    links = [{"src": s, "dst": d, "bandwidth_gbps": 1.0, "latency_ms": 10.0, "closeness": 1}
             for s, d in (("A", "B"), ("B", "A"))]
    sc = make_scenario(sites, rses, links, drain_h=2000.0, workload={"scale": 0.002, "duration_h": 1},
                       ddm={"failure_rate": 0.2, "max_retries": 2, "tape_only_fraction": 0.5})
    run_scenario(scenario_from_dict(sc), tmp_path / "run", report=False)
    orig = pq.read_table(tmp_path / "run" / "transfers.parquet")
    assert orig.num_rows > 5 and set(orig["event_type"].to_pylist()) == {"transfer-done", "transfer-failed"}
    assert pc.sum(pc.is_valid(orig["previous_request_id"])).as_py() > 0

    rows = orig.to_pylist()
    res = import_rucio_events(write_lines(tmp_path / "hermes.jsonl.gz", [_to_hermes(r, HERMES_KEYS) for r in rows]))
    shared = ["event_type"] + [k.replace("-", "_") for k in HERMES_KEYS]
    assert res.n_rejected == 0
    assert res.table.select(shared).equals(orig.select(shared))
    assert all(res.table[c].null_count == orig.num_rows for c in TRANSFERS.names if c not in shared)

    # with the request-table columns too (as extra payload keys), the whole table comes back
    every = (*HERMES_KEYS, "staging_started_at", "staging_finished_at", "retry_count", "rule_id")
    res = import_rucio_events(write_lines(tmp_path / "full.jsonl", [_to_hermes(r, every) for r in rows]))
    assert res.table.equals(orig)

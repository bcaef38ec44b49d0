"""import_panda_jobs: the real ATLAS dumps, and a corpus of broken inputs."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gridtwin.analytics.import_panda import IMPORTED_JOBS, TIMING_COLUMNS, import_panda_jobs
from gridtwin.analytics.importing import REJECTED, InputFileError
from gridtwin.record.schema import JOBS

ATLAS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "atlas"
BNL = ATLAS / "jobs_bnl_2025-01.csv"
SAMPLE = ATLAS / "jobs_sample_2024.csv"

HEADER = "pandaid,creationtime,starttime,endtime,computingsite,jobstatus,cpuconsumptiontime,inputfilebytes,pilottiming"
GOOD = [
    "1,2025-01-20 18:10:40,2025-01-20 18:24:44,2025-01-20 18:29:50,BNL,finished,172,100,1|40|242|3|3|11",
    "2,2025-01-20T18:10:40Z,2025-01-20T18:20:40.500+00:00,2025-01-20 18:30:40,CERN,failed,10.0,200.0,1|2|3|4|5",
    "3,1/27/2024 12:27,1/27/2024 12:28:05,,DE-TARDIS,running,,,",
]


def _write(tmp_path: Path, lines: list[str], name: str = "jobs.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _rejects(result) -> list[tuple[int, str | None, str]]:
    t = result.rejected
    return list(zip(t.column("line").to_pylist(), t.column("column").to_pylist(), t.column("reason").to_pylist(),
                    strict=True))


def _ids(result) -> list[int]:
    return result.table.column("pandaid").to_pylist()


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------------------- real files


@pytest.mark.skipif(not BNL.exists(), reason=f"real ATLAS data not present at {BNL}")
def test_bnl_file_imports_without_rejects():
    r = import_panda_jobs(BNL)
    assert r.n_rows == 100 and r.n_rejected == 0
    assert r.table.schema == IMPORTED_JOBS
    assert r.table.schema.names[: len(JOBS)] == JOBS.names
    assert r.rejected.schema == REJECTED
    row = r.table.slice(0, 1).to_pylist()[0]
    assert row["pandaid"] == 6486070333
    assert row["computingsite"] == "BNL"
    assert row["jobstatus"] == "finished"
    assert row["creationtime"] == _utc(2025, 1, 20, 18, 10, 40)
    assert row["starttime"] == _utc(2025, 1, 20, 18, 24, 44)
    assert row["endtime"] == _utc(2025, 1, 20, 18, 29, 50)
    assert row["wall_time"] == 306.0 and row["queue_time"] == 844.0
    assert row["cpu_eff"] == pytest.approx(172 / 306)
    assert row["ninputdatafiles"] == 10 and row["inputfilebytes"] == 36362410102  # written as 10.0, 36362410102.0
    assert [row[c] for c in TIMING_COLUMNS] == [1, 40, 242, 3, 3]
    assert row["pilottiming"] == "1|40|242|3|3|11"
    assert row["assignedpriority"] == 1000 and row["currentpriority"] == 729
    assert row["destinationse"] is None  # empty field
    assert any("100 rows had more than 5 pilottiming parts" in n for n in r.notes)
    # the file's own job_walltime / job_queuetime agree with the derived durations everywhere
    assert r.table.column("wall_time").null_count == 0


@pytest.mark.skipif(not SAMPLE.exists(), reason=f"real ATLAS data not present at {SAMPLE}")
def test_2024_sample_with_bom_and_us_dates():
    r = import_panda_jobs(SAMPLE)
    assert r.n_rows == 11 and r.n_rejected == 0
    rows = {row["pandaid"]: row for row in r.table.to_pylist()}
    assert rows[6089452826]["creationtime"] == _utc(2024, 1, 27, 12, 27)
    assert rows[6089452826]["computingsite"] == "DE-TARDIS"
    assert rows[6089452826]["cpuconsumptiontime"] == 30264
    assert rows[6072686883]["creationtime"] == _utc(2024, 1, 9, 4, 21)
    assert rows[6072686883]["inputfilebytes"] == 7684384701
    assert rows[6071360505]["computingsite"] == "Vega"
    assert rows[6071360505]["starttime"] is None and rows[6071360505]["wall_time"] is None


# --------------------------------------------------------------------------------------- good synthetic input


def test_date_forms_units_and_derived(tmp_path):
    r = import_panda_jobs(_write(tmp_path, [HEADER, *GOOD]))
    assert r.n_rejected == 0 and _ids(r) == [1, 2, 3]
    rows = r.table.to_pylist()
    assert rows[1]["creationtime"] == _utc(2025, 1, 20, 18, 10, 40)
    assert rows[1]["starttime"] == _utc(2025, 1, 20, 18, 20, 40, 500000)
    assert rows[1]["wall_time"] == 599.5 and rows[1]["cpuconsumptiontime"] == 10
    assert [rows[1][c] for c in TIMING_COLUMNS] == [1, 2, 3, 4, 5]
    assert rows[2]["starttime"] == _utc(2024, 1, 27, 12, 28, 5)
    assert rows[2]["queue_time"] == 65.0 and rows[2]["endtime"] is None and rows[2]["wall_time"] is None
    assert rows[2]["timeexe"] is None


def test_offset_and_1970_sentinel(tmp_path):
    p = _write(tmp_path, [HEADER, "7,2025-01-20T20:10:40+02:00,1970-01-01 00:00:00,,BNL,failed,,,"])
    row = import_panda_jobs(p).table.to_pylist()[0]
    assert row["creationtime"] == _utc(2025, 1, 20, 18, 10, 40)
    assert row["starttime"] is None and row["queue_time"] is None


def test_upper_case_header(tmp_path):
    r = import_panda_jobs(_write(tmp_path, [HEADER.upper(), *GOOD]))
    assert r.n_rejected == 0 and _ids(r) == [1, 2, 3]
    assert r.table.column("computingsite").to_pylist() == ["BNL", "CERN", "DE-TARDIS"]


def test_header_only_file(tmp_path):
    r = import_panda_jobs(_write(tmp_path, [HEADER]))
    assert r.n_rows == 0 and r.n_rejected == 0 and r.table.schema == IMPORTED_JOBS


def test_gzip_csv(tmp_path):
    p = tmp_path / "jobs.csv.gz"
    p.write_bytes(gzip.compress(("\n".join([HEADER, *GOOD]) + "\n").encode()))
    assert _ids(import_panda_jobs(p)) == [1, 2, 3]


def test_parquet_input(tmp_path):
    p = tmp_path / "jobs.parquet"
    pq.write_table(pa.table({
        "PANDAID": pa.array([11, 12, 11, 12], pa.int64()),
        "CREATIONTIME": pa.array([_utc(2025, 1, 1, h) for h in (10, 11, 12, 13)]),
        "STARTTIME": pa.array(["2025-01-01 10:05:00", "1970-01-01 00:00:00", None, None]),
        "ENDTIME": pa.array(["2025-01-01 10:00:00", None, None, None]),
        "COMPUTINGSITE": ["BNL", "CERN", "BNL", "BNL"],
        "JOBSTATUS": ["finished", "failed", "finished", "failed"],
        "NINPUTDATAFILES": pa.array([3.0, 2.0, 1.0, None]),
    }), p)
    r = import_panda_jobs(p)
    # row 1 is rejected, so row 3 is the first good job 11 and is kept; row 4 repeats job 12
    assert _ids(r) == [12, 11]
    assert _rejects(r) == [(1, "endtime", "end before start"), (4, "pandaid", "duplicate pandaid")]
    row = r.table.to_pylist()[0]
    assert row["creationtime"] == _utc(2025, 1, 1, 11) and row["starttime"] is None and row["ninputdatafiles"] == 2


# --------------------------------------------------------------------------------------- bad rows: rejected


@pytest.mark.parametrize(
    ("bad_line", "column", "reason"),
    [
        ("9,2025-01-20 18:10:40,2025-01-20 18:24:44,2025-01-20 18:29:50,BNL,finished,lots,100,", "cpuconsumptiontime",
         "not a number"),
        ("9,2025-01-20 18:10:40,,,BNL,finished,,-5,", "inputfilebytes", "negative size"),
        ("9,2025-01-20 18:10:40,2025-01-20 18:24:44,2025-01-20 18:00:00,BNL,finished,,,", "endtime",
         "end before start"),
        ("1,2025-01-20 18:10:40,,,BNL,finished,,,", "pandaid", "duplicate pandaid"),
        ("9,yesterday,,,BNL,finished,,,", "creationtime", "unparseable date"),
        ("9,2025-02-30 10:00:00,,,BNL,finished,,,", "creationtime", "unparseable date"),
        ("9,2025-01-20 18:10:40,,,BNL,finished,1.5,,", "cpuconsumptiontime", "not an integer"),
        ("9,2025-01-20 18:10:40,,,,finished,,,", "computingsite", "missing value"),
        ("9,2025-01-20 18:10:40,,,BNL,finished,,,1|2", "pilottiming", "bad pilottiming"),
        ("9,2025-01-20 18:10:40,,,BNL,finished,,,1|x|3|4|5", "pilottiming", "bad pilottiming"),
        ("9,2025-01-20 18:10:40,BNL,finished", None, "wrong number of fields"),
    ],
)
def test_bad_row_is_rejected_and_others_kept(tmp_path, bad_line, column, reason):
    r = import_panda_jobs(_write(tmp_path, [HEADER, GOOD[0], bad_line, *GOOD[1:]]))
    assert _ids(r) == [1, 2, 3]
    assert _rejects(r) == [(3, column, reason)]
    assert r.rejected.column("raw").to_pylist() == [bad_line]
    assert r.summary()["rejected_by_reason"] == {reason: 1}


def test_truncated_last_line(tmp_path):
    p = tmp_path / "jobs.csv"
    p.write_text("\n".join([HEADER, *GOOD, "4,2025-01-20 18:1"]), encoding="utf-8")  # no final newline
    r = import_panda_jobs(p)
    assert _ids(r) == [1, 2, 3]
    assert _rejects(r) == [(5, None, "wrong number of fields")]


def test_line_numbers_follow_multiline_records_and_blank_lines(tmp_path):
    quoted = '5,2025-01-20 18:10:40,,,"BNL\nsecond line",finished,,,'
    r = import_panda_jobs(_write(tmp_path, [HEADER, quoted, "", "6,2025-01-20 18:10:40,,,BNL,finished,x,,"]))
    assert _ids(r) == [5]
    assert _rejects(r) == [(5, "cpuconsumptiontime", "not a number")]


def test_several_problems_sorted_by_line(tmp_path):
    lines = [HEADER, GOOD[0], "1,2025-01-20 18:10:40,,,BNL,finished,,,", "8,bad,,,BNL,finished,,,", "short"]
    r = import_panda_jobs(_write(tmp_path, lines))
    assert _rejects(r) == [(3, "pandaid", "duplicate pandaid"), (4, "creationtime", "unparseable date"),
                           (5, None, "wrong number of fields")]


# --------------------------------------------------------------------------------------- bad files: InputFileError


def test_missing_required_column(tmp_path):
    p = _write(tmp_path, ["pandaid,creationtime,starttime", "1,2025-01-20 18:10:40,"], name="nosite.csv")
    expected = r"nosite\.csv: line 1: missing required column\(s\) computingsite, jobstatus"
    with pytest.raises(InputFileError, match=expected):
        import_panda_jobs(p)


def test_undecodable_bytes(tmp_path):
    p = tmp_path / "binary.csv"
    p.write_bytes((HEADER + "\n" + GOOD[0] + "\n").encode() + b"9,\xff\xfe,,,BNL,finished,,,\n")
    with pytest.raises(InputFileError) as info:
        import_panda_jobs(p)
    msg = str(info.value)
    offset = len((HEADER + "\n" + GOOD[0] + "\n").encode()) + 2
    assert "binary.csv" in msg and "line 3" in msg and f"byte offset {offset}" in msg


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path, content):
    p = tmp_path / "empty.csv"
    p.write_bytes(content)
    with pytest.raises(InputFileError, match=r"empty\.csv: empty file"):
        import_panda_jobs(p)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match=r"nowhere\.csv: no such file"):
        import_panda_jobs(tmp_path / "nowhere.csv")


def test_unreadable_parquet(tmp_path):
    p = tmp_path / "broken.parquet"
    p.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputFileError, match=r"broken\.parquet: cannot read Parquet"):
        import_panda_jobs(p)


def test_duplicate_column(tmp_path):
    p = _write(tmp_path, ["pandaid,PANDAID,creationtime,computingsite,jobstatus"], name="dup.csv")
    with pytest.raises(InputFileError, match=r"dup\.csv: line 1: duplicate column\(s\) pandaid"):
        import_panda_jobs(p)


def test_unsupported_extension(tmp_path):
    p = _write(tmp_path, [HEADER], name="jobs.xlsx")
    with pytest.raises(InputFileError, match=r"jobs\.xlsx: unsupported file type"):
        import_panda_jobs(p)


@pytest.mark.parametrize(
    "content",
    [b"\x00\x01\x02", b'pandaid,creationtime,computingsite,jobstatus\n"1,2,3', b"a\n", b"\xff\xfe\x00p",
     b"pandaid,creationtime,computingsite,jobstatus\n1e400,2025-13-01,x,y\n-1,0/0/0,,\n"],
)
def test_never_anything_but_input_file_error(tmp_path, content):
    p = tmp_path / "junk.csv"
    p.write_bytes(content)
    try:
        r = import_panda_jobs(p)
    except InputFileError as e:
        assert "junk.csv" in str(e)
    else:
        assert r.rejected.schema == REJECTED and r.table.schema == IMPORTED_JOBS

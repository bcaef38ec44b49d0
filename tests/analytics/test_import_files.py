"""import_panda_files: a FILESTABLE4-like dump into job_files, a corpus of broken inputs, and the CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gridtwin.analytics.import_files import import_panda_files
from gridtwin.analytics.importing import REJECTED, InputFileError
from gridtwin.cli import app
from gridtwin.record.schema import JOB_FILES

HEADER = "PANDAID,JEDITASKID,SCOPE,LFN,TYPE,FSIZE,DATASET,DISPATCHDBLOCK,DESTINATIONSE,STATUS"
GOOD = [
    "6486070333,42,mc23_13p6TeV,EVNT.123._000001.pool.root.1,input,2147483648,mc23:EVNT.123,panda.dis.1,NULL,ready",
    "6486070333,42,mc23_13p6TeV,HITS.456._000001.pool.root.1,OUTPUT,123456,mc23:HITS.456,,BNL_DATADISK,ready",
    "6486070333,42,mc23_13p6TeV,log.456._000001.job.log.tgz.1,Log,,mc23:log.456,,BNL_SCRATCHDISK,ready",
    "6486070334,,user.x,user.x.file.root,input,10,,,,ready",
]


def _write(tmp_path: Path, lines: list[str], name: str = "files.csv", bom: bool = False) -> Path:
    p = tmp_path / name
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(lines) + "\n").encode())
    return p


def _rejects(result) -> list[tuple[int, str | None, str]]:
    t = result.rejected
    return list(zip(t.column("line").to_pylist(), t.column("column").to_pylist(), t.column("reason").to_pylist(),
                    strict=True))


def test_good_csv_with_bom_and_upper_case_header(tmp_path):
    result = import_panda_files(_write(tmp_path, [HEADER, *GOOD], bom=True))
    assert result.table.schema == JOB_FILES
    assert result.rejected.schema == REJECTED and result.n_rejected == 0
    rows = result.table.to_pylist()
    assert rows == [
        {"pandaid": 6486070333, "jeditaskid": 42, "scope": "mc23_13p6TeV", "lfn": "EVNT.123._000001.pool.root.1",
         "type": "input", "fsize": 2147483648, "dataset": "mc23:EVNT.123", "dispatchdblock": "panda.dis.1",
         "destinationse": None},
        {"pandaid": 6486070333, "jeditaskid": 42, "scope": "mc23_13p6TeV", "lfn": "HITS.456._000001.pool.root.1",
         "type": "output", "fsize": 123456, "dataset": "mc23:HITS.456", "dispatchdblock": None,
         "destinationse": "BNL_DATADISK"},
        {"pandaid": 6486070333, "jeditaskid": 42, "scope": "mc23_13p6TeV", "lfn": "log.456._000001.job.log.tgz.1",
         "type": "log", "fsize": None, "dataset": "mc23:log.456", "dispatchdblock": None,
         "destinationse": "BNL_SCRATCHDISK"},
        {"pandaid": 6486070334, "jeditaskid": None, "scope": "user.x", "lfn": "user.x.file.root",
         "type": "input", "fsize": 10, "dataset": None, "dispatchdblock": None, "destinationse": None},
    ]
    assert result.notes == ["ignored columns: status"]
    assert result.summary()["rows"] == 4


def test_csv_gz_and_parquet_give_the_same_table(tmp_path):
    csv = _write(tmp_path, [HEADER, *GOOD])
    gz = tmp_path / "files.csv.gz"
    gz.write_bytes(gzip.compress(csv.read_bytes()))
    parquet = tmp_path / "files.parquet"
    pq.write_table(pa.table({
        "pandaid": pa.array([7, 7, 8], pa.int64()),
        "lfn": ["a.root", "b.root", "a.root"],
        "type": ["input", "output", "pseudo_input"],
        "fsize": pa.array([1.0, None, 3.0]),
        "scope": ["s", "s", "s"],
    }), parquet)
    expected = import_panda_files(csv).table
    assert import_panda_files(gz).table.equals(expected)
    result = import_panda_files(parquet)
    assert result.table.schema == JOB_FILES
    assert result.table.column("lfn").to_pylist() == ["a.root", "b.root"]
    assert result.table.column("fsize").to_pylist() == [1, None]
    assert result.table.column("jeditaskid").null_count == 2
    assert _rejects(result) == [(3, "type", "unknown type")]
    assert "Parquet row numbers" in result.notes[-1]


def test_bad_rows_are_set_aside_with_line_column_and_reason(tmp_path):
    header = "pandaid,lfn,type,fsize,scope"
    lines = [
        header,
        "1,a.root,input,100,s",  # 2 good
        "1,b.root,output,xx,s",  # 3 text in fsize
        "1,c.root,input",  # 4 truncated line
        "1,a.root,INPUT,100,s",  # 5 duplicate of line 2
        "2,d.root,input,-5,s",  # 6 negative size
        "2,e.root,pseudo_input,1,s",  # 7 unknown type
        ",f.root,input,1,s",  # 8 missing pandaid
        "2,NULL,input,1,s",  # 9 missing lfn
        "two,g.root,input,1,s",  # 10 pandaid not a number
        "2,a.root,output,7,s",  # 11 good: other pandaid/type
        "2,h.root,,1,s",  # 12 missing type
    ]
    result = import_panda_files(_write(tmp_path, lines))
    assert _rejects(result) == [
        (3, "fsize", "not a number"),
        (4, None, "wrong number of fields"),
        (5, "lfn", "duplicate file"),
        (6, "fsize", "negative size"),
        (7, "type", "unknown type"),
        (8, "pandaid", "missing value"),
        (9, "lfn", "missing value"),
        (10, "pandaid", "not a number"),
        (12, "type", "missing value"),
    ]
    assert result.rejected.column("raw").to_pylist()[1] == "1,c.root,input"
    assert result.table.to_pydict()["lfn"] == ["a.root", "a.root"]
    assert result.summary()["rejected_by_reason"]["duplicate file"] == 1


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file"),
    (b"\xef\xbb\xbf\n\n", "empty file"),
    (b"pandaid,lfn,fsize\n1,a,1\n", "line 1: missing required column(s) type"),
    (b"PANDAID,SCOPE\n1,s\n", "missing required column(s) lfn, type"),
    (b"pandaid,lfn,type\n1,a,input\n2,b\xff,input\n", "line 3: undecodable byte"),
])
def test_unreadable_files_raise_naming_the_file(tmp_path, content, message):
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    with pytest.raises(InputFileError, match=r"bad\.csv") as err:
        import_panda_files(p)
    assert message in str(err.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        import_panda_files(tmp_path / "nope.csv")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(InputFileError, match=r"broken\.parquet: cannot read Parquet"):
        import_panda_files(broken)
    gz = tmp_path / "bad.csv.gz"
    gz.write_bytes(b"not gzip")
    with pytest.raises(InputFileError, match=r"bad\.csv\.gz: cannot read"):
        import_panda_files(gz)


def test_cli_writes_job_files_and_counts(tmp_path):
    f = _write(tmp_path, [HEADER, *GOOD, GOOD[0], "x,a,input,1,,,,,,"], name="f.csv")
    g = _write(tmp_path, [HEADER, GOOD[3]], name="g.csv")
    out = tmp_path / "imp"
    result = CliRunner().invoke(app, ["import", str(out), "--files", str(f), "--files", str(g)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out / "job_files.parquet")
    assert table.schema.names == JOB_FILES.names and table.num_rows == 4
    summary = json.loads((out / "import.json").read_text())
    assert summary["rows"] == {"job_files": 4, "rejected": 3}
    assert [s["rows"] for s in summary["files"]] == [4, 1]
    assert summary["files"][0]["rejected_by_reason"] == {"duplicate file": 1, "not a number": 1}
    rejected = pq.read_table(out / "rejected.parquet").to_pylist()
    cross = [r for r in rejected if r["reason"] == "duplicate file (in an earlier file)"]
    assert cross == [{"source_file": str(g), "line": 1, "column": "lfn",
                      "reason": "duplicate file (in an earlier file)", "raw": "6486070334,user.x.file.root,input"}]
    assert summary["rejected_total"] == 3

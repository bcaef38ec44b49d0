"""Workload files: the writer and reader round-trip a generated workload exactly, a run on the file
gives the same records as the run on the generated workload, a hand-written file is grouped, ordered and
dated by the documented rules, every malformed file is an InputError naming the file, column and row,
and `gridtwin simulate --workload` runs a custom family or fails cleanly."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from helpers_core import make_scenario, make_site
from typer.testing import CliRunner

from gridtwin.cli import app
from gridtwin.config import load_scenario, scenario_from_dict
from gridtwin.errors import InputError
from gridtwin.scenario import Simulation, run_scenario
from gridtwin.workload.categories import CATEGORIES
from gridtwin.workload.file import read_workload, workload_table, write_workload
from gridtwin.workload.generator import WorkloadParams, generate_workload
from gridtwin.workload.spec import Workload

EPOCH = datetime(2025, 3, 4, tzinfo=UTC)
DAY_MS = 86_400_000


def _labels(wl: Workload) -> list[tuple[str, ...]]:
    """Per task: the family's labels (indices into ``categories`` may differ between equal workloads)."""
    return [(c.prodsourcelabel, c.processingtype, c.transformation, c.gshare, c.output_type)
            for c in (wl.categories[i] for i in wl.category.tolist())]


def assert_same_workload(a: Workload, b: Workload) -> None:
    """Every column equal, with its dtype (floats bit-exact); families compared by their labels."""
    for f in dataclasses.fields(Workload):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name in ("category", "categories"):
            continue
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
        elif f.name == "datasets":
            for k in ("scope", "name", "file_type"):
                assert getattr(x, k) == getattr(y, k), k
            for k in ("nfiles", "file_bytes"):
                assert getattr(x, k).dtype == getattr(y, k).dtype and np.array_equal(getattr(x, k), getattr(y, k)), k
        else:
            assert x == y, f.name
    assert _labels(a) == _labels(b)


# ---------------------------------------------------------------- round trip
@pytest.fixture(scope="module")
def generated() -> Workload:
    return generate_workload(WorkloadParams(scale=0.004, duration_s=2 * 86400.0), np.random.default_rng(11))


def test_round_trip_is_exact(generated, tmp_path):
    wl = generated
    assert wl.categories is CATEGORIES
    path = tmp_path / "wl.parquet"
    write_workload(wl, path, EPOCH)
    back, epoch = read_workload(path)
    assert epoch == EPOCH
    assert back.n_tasks == wl.n_tasks > 50 and back.n_jobs == wl.n_jobs > 1000
    assert (wl.dataset < 0).any() and (wl.dataset >= 0).any()
    assert_same_workload(wl, back)
    # families: the distinct label tuples, sorted; the generator-only fields neutral
    assert [c.processingtype for c in back.categories] == ["evgen", "merge", "reco", "simul",
                                                           "panda-client-1.5.80-jedi-run"]
    assert back.categories[0].job_share == 0.0 and back.categories[0].workinggroups == ()
    # a second write of what was read gives the same bytes (the format is a fixed point)
    write_workload(back, tmp_path / "again.parquet", epoch)
    assert (tmp_path / "again.parquet").read_bytes() == path.read_bytes()


def test_file_layout_and_metadata(generated, tmp_path):
    path = tmp_path / "wl.parquet"
    write_workload(generated, path, EPOCH)
    t = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in t.schema.metadata.items() if k.startswith(b"gridtwin.")}
    assert meta["gridtwin.workload"] == "1" and meta["gridtwin.epoch"] == "2025-03-04T00:00:00+00:00"
    assert float(meta["gridtwin.duration_s"]) == 2 * 86400.0
    assert len(json.loads(meta["gridtwin.datasets"])["name"]) == len(generated.datasets)
    assert t.num_rows == generated.n_jobs
    assert t.schema.field("creationtime").type == pa.timestamp("ms", tz="UTC")
    assert pa.types.is_dictionary(t.schema.field("taskname").type)
    # task-level values are repeated on each job row; creationtime is the arrival to the millisecond
    j = 1234
    task = int(generated.task[j])
    row = {k: v[0] for k, v in t.slice(j, 1).to_pydict().items()}
    assert row["jeditaskid"] == generated.jeditaskid[task]
    assert row["taskname"] == generated.taskname[task]
    expect_ms = round(EPOCH.timestamp() * 1000) + round(generated.arrival[task] * 1000)
    assert round(row["creationtime"].timestamp() * 1000) == expect_ms
    assert row["work_hs06s"] == generated.work_hs06s[j] and row["maxrss"] == generated.maxrss_kb[j]


def test_optional_request_columns_are_carried_through(generated, tmp_path):
    n = generated.n_jobs
    rss = np.arange(n, dtype=np.int64) * 10
    rss[::7] = -1
    wall = np.linspace(100.0, 9000.0, n)
    wall[::5] = np.nan
    wl = dataclasses.replace(generated, request_rss_kb=rss, request_wall_s=wall)
    path = tmp_path / "wl.parquet"
    write_workload(wl, path, EPOCH)
    assert pq.read_table(path, columns=["request_maxrss_kb"]).column(0).null_count == len(rss[::7])
    back, _ = read_workload(path)
    assert_same_workload(wl, back)
    plain, _ = read_workload(_write_plain(tmp_path, generated))
    assert plain.request_rss_kb is None and plain.request_wall_s is None


def _write_plain(tmp_path: Path, wl: Workload) -> Path:
    path = tmp_path / "plain.parquet"
    write_workload(wl, path, EPOCH)
    return path


# ---------------------------------------------------------------- a run on the file
def test_run_on_the_written_file_gives_the_same_records(tmp_path):
    sc = scenario_from_dict({"seed": 5, "drain_h": 400, "epoch": "2025-02-01T00:00:00Z",
                             "workload": {"scale": 0.003, "duration_h": 6}})
    assert sc.ddm.enabled
    wl = Simulation(sc).workload
    path = tmp_path / "wl.parquet"
    write_workload(wl, path, sc.epoch)
    a = run_scenario(sc, tmp_path / "generated", report=False)
    sc_file = scenario_from_dict({"seed": 5, "drain_h": 400, "workload": {"file": str(path)}})
    b = run_scenario(sc_file, tmp_path / "file", report=False)
    assert a.n_jobs == b.n_jobs > 200 and a.counts["transfers"] > 0
    for table in ("jobs", "job_files", "transfers", "job_status_log", "site_metrics", "link_metrics"):
        ta = pq.read_table(tmp_path / "generated" / f"{table}.parquet")
        tb = pq.read_table(tmp_path / "file" / f"{table}.parquet")
        assert ta.equals(tb), table
    run = json.loads((tmp_path / "file" / "run.json").read_text())
    assert run["workload_file"] == {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert run["epoch"] == "2025-02-01T00:00:00+00:00" and run["config"]["workload"]["duration_h"] == 6.0
    assert json.loads((tmp_path / "generated" / "run.json").read_text())["workload_file"] is None


# ---------------------------------------------------------------- hand-written files
def hand_table(**meta: str) -> pa.Table:
    """Two tasks in five rows, interleaved and out of arrival order: task 7 (two jobs, no input) arrives
    2025-03-04 05:00, task 3 (three jobs reading a DAOD dataset) arrives 2025-03-05 01:30."""
    t7 = datetime(2025, 3, 4, 5, 0, tzinfo=UTC)
    t3 = datetime(2025, 3, 5, 1, 30, tzinfo=UTC)
    task = [3, 7, 3, 7, 3]
    is3 = [t == 3 for t in task]

    def per(v3, v7):
        return [v3 if x else v7 for x in is3]

    cols = {
        "jeditaskid": pa.array(task, pa.int64()),
        "taskname": per("user.alice.deriv.NTUP.3", "mc23.evgen.7"),
        "produsername": per("alice", "atlas-production"),
        "workinggroup": pa.array(per(None, "AP_MCGN"), pa.string()),
        "prodsourcelabel": per("user", "managed"),
        "processingtype": per("panda-client", "evgen"),
        "transformation": per("runGen", "Gen_tf.py"),
        "gshare": per("User Analysis", "MC Event Generation"),
        "output_type": per("NTUP", "EVNT"),
        "creationtime": pa.array(per(t3, t7), pa.timestamp("ms", tz="UTC")),
        "currentpriority": pa.array(per(1000, 900), pa.int32()),
        "corecount": pa.array(per(1, 8), pa.int32()),
        "ramcount": pa.array(per(2000, 1500), pa.int32()),
        "walltime_estimate_s": per(3600.0, 20000.0),
        "io_intensity": per(1500.0, 0.0),
        "dataset_scope": pa.array(per("data23_13p6TeV", None), pa.string()),
        "proddblock": pa.array(per("data23_13p6TeV.00450000.physics_Main.deriv.DAOD_PHYS", None), pa.string()),
        "dataset_nfiles": pa.array(per(40, None), pa.int64()),
        "dataset_file_bytes": pa.array(per(2.0e9, None), pa.float64()),
        "dataset_type": pa.array(per("DAOD_PHYS", None), pa.string()),
        "work_hs06s": [1.0e5, 2.0e5, 1.5e5, 2.5e5, 1.25e5],
        "cpu_eff": [0.5, 0.9, 0.6, 0.95, 0.7],
        "maxrss": pa.array([1_000_000, 2_000_000, 1_100_000, 2_100_000, 1_200_000], pa.int64()),
        "nevents": pa.array([100, 200, 300, 400, 500], pa.int64()),
        "ninputdatafiles": pa.array([2, 0, 3, 0, 1], pa.int32()),
        "first_file": pa.array([0, 0, 2, 0, 5], pa.int64()),
        "inputfilebytes": pa.array([4_000_000_000, 0, 6_000_000_000, 0, 2_000_000_000], pa.int64()),
        "outputfilebytes": pa.array([10, 20, 30, 40, 50], pa.int64()),
    }
    return pa.table(cols).replace_schema_metadata({"gridtwin.workload": "1", **meta})


def write(tmp_path: Path, table: pa.Table, name: str = "hand.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(table, path)
    return path


def test_hand_written_file_is_grouped_ordered_and_dated(tmp_path):
    wl, epoch = read_workload(write(tmp_path, hand_table()))
    # epoch: the earliest creationtime floored to the UTC day; duration: to the end of the last arrival's day
    assert epoch == datetime(2025, 3, 4, tzinfo=UTC)
    assert wl.duration_s == 2 * 86400.0
    # tasks by creationtime (7 first), jobs of a task in file order
    assert wl.jeditaskid.tolist() == [7, 3]
    assert wl.arrival.tolist() == [5 * 3600.0, 86400.0 + 1.5 * 3600.0]
    assert wl.njobs.tolist() == [2, 3] and wl.first_job.tolist() == [0, 2]
    assert wl.work_hs06s.tolist() == [2.0e5, 2.5e5, 1.0e5, 1.5e5, 1.25e5]
    assert wl.first_file.tolist() == [0, 0, 0, 2, 5]
    assert wl.workinggroup == ["AP_MCGN", None] and wl.username == ["atlas-production", "alice"]
    # families sorted by their labels: ("managed", ...) before ("user", ...)
    assert [(c.prodsourcelabel, c.processingtype) for c in wl.categories] == [("managed", "evgen"),
                                                                             ("user", "panda-client")]
    assert wl.category.tolist() == [0, 1] and wl.category.dtype == np.int8
    assert wl.dataset.tolist() == [-1, 0]
    assert wl.datasets.name == ["data23_13p6TeV.00450000.physics_Main.deriv.DAOD_PHYS"]
    assert wl.datasets.nfiles.tolist() == [40] and wl.datasets.file_bytes.tolist() == [2.0e9]
    # an explicit epoch shifts the arrivals; metadata epoch and duration are honoured
    e2 = datetime(2025, 3, 4, 4, 0, tzinfo=UTC)
    wl2, got = read_workload(write(tmp_path, hand_table(), "b.parquet"), e2)
    assert got == e2
    assert wl2.arrival.tolist() == [3600.0, 86400.0 - 2.5 * 3600.0] and wl2.duration_s == 86400.0 + 20 * 3600.0
    meta = {"gridtwin.epoch": "2025-03-03T00:00:00+00:00", "gridtwin.duration_s": "200000.0"}
    wl3, e3 = read_workload(write(tmp_path, hand_table(**meta), "c.parquet"))
    assert e3 == datetime(2025, 3, 3, tzinfo=UTC) and wl3.duration_s == 200000.0
    assert wl3.arrival.tolist() == [86400.0 + 5 * 3600.0, 2 * 86400.0 + 1.5 * 3600.0]


def test_datasets_rebuilt_from_rows_put_derivations_last_most_read_first(generated, tmp_path):
    t = workload_table(generated, EPOCH)
    t = t.replace_schema_metadata({k: v for k, v in t.schema.metadata.items() if k != b"gridtwin.datasets"})
    wl, _ = read_workload(write(tmp_path, t))
    d = wl.datasets
    used = set(generated.dataset[generated.dataset >= 0].tolist())
    assert len(d) == len(used) < len(generated.datasets)  # datasets no job reads are not in the rows
    is_deriv = np.array([x.startswith("DAOD") for x in d.file_type])
    assert is_deriv.any() and not is_deriv[: int((~is_deriv).sum())].any()
    reads = np.bincount(wl.dataset[wl.dataset >= 0], minlength=len(d))[is_deriv]
    assert (np.diff(reads) <= 0).all()
    # every task still reads the same dataset, files and bytes
    for ti in range(0, wl.n_tasks, 17):
        a, b = int(generated.dataset[ti]), int(wl.dataset[ti])
        assert (a < 0) == (b < 0)
        if a >= 0:
            assert generated.datasets.name[a] == d.name[b] and generated.datasets.nfiles[a] == d.nfiles[b]


# ---------------------------------------------------------------- malformed files
def _set(table: pa.Table, name: str, values: list, typ: pa.DataType | None = None) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, name, pa.array(values, typ or table.schema.field(name).type))


def _with_value(name: str, row: int, value):
    def edit(t: pa.Table) -> pa.Table:
        vals = t.column(name).to_pylist()
        vals[row] = value
        return _set(t, name, vals)
    return edit


BAD = {
    "missing-column": (lambda t: t.drop_columns(["work_hs06s"]), "work_hs06s", None, "missing required column"),
    "null-taskname": (_with_value("taskname", 3, None), "taskname", 3, "null value"),
    "negative-work": (_with_value("work_hs06s", 2, -5.0), "work_hs06s", 2, "CPU work >= 0"),
    "nan-work": (_with_value("work_hs06s", 1, float("nan")), "work_hs06s", 1, "CPU work >= 0"),
    "negative-bytes": (_with_value("outputfilebytes", 4, -1), "outputfilebytes", 4, ">= 0"),
    "negative-dataset-bytes": (lambda t: _set(t, "dataset_file_bytes", [-1.0, None, -1.0, None, -1.0]),
                               "dataset_file_bytes", 0, ">= 0"),
    "cpu-eff-zero": (_with_value("cpu_eff", 3, 0.0), "cpu_eff", 3, "(0, 1]"),
    "cpu-eff-above-one": (_with_value("cpu_eff", 0, 1.2), "cpu_eff", 0, "(0, 1]"),
    "corecount-zero": (lambda t: _set(t, "corecount", [1, 0, 1, 0, 1]), "corecount", 1, "corecount >= 1"),
    "task-values-differ": (_with_value("currentpriority", 4, 999), "currentpriority", 4, "differs between rows"),
    "task-dataset-differs": (_with_value("proddblock", 2, "other"), "proddblock", 2, "differs between rows"),
    "partial-dataset": (lambda t: _set(t, "dataset_scope", [None] * 5), "dataset_scope", 0, "set like proddblock"),
    "input-without-dataset": (_with_value("ninputdatafiles", 1, 2), "ninputdatafiles", 1, "without an input dataset"),
    "string-for-number": (lambda t: _set(t, "maxrss", ["a"] * 5, pa.string()), "maxrss", None, "expected int64"),
    "creation-before-epoch": (lambda t: t.replace_schema_metadata(
        {"gridtwin.workload": "1", "gridtwin.epoch": "2025-03-04T06:00:00+00:00"}), "creationtime", 1,
        "at or after the epoch"),
    "arrival-disagrees": (lambda t: t.append_column("arrival_s", pa.array([91800.0, 18000.5] * 2 + [91800.0]))
                          .replace_schema_metadata({"gridtwin.workload": "1",
                                                    "gridtwin.epoch": "2025-03-04T00:00:00+00:00"}),
                          "arrival_s", 1, "agreeing with creationtime"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_file_names_file_column_and_row(tmp_path, case):
    edit, column, row, expected = BAD[case]
    path = write(tmp_path, edit(hand_table()), f"bad-{case}.parquet")
    with pytest.raises(InputError) as err:
        read_workload(path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and repr(column) in msg and expected in msg, msg
    if row is not None:
        assert f"row {row}" in msg, msg


def test_one_dataset_described_two_ways_is_refused(tmp_path):
    t = hand_table()
    t = _set(t, "dataset_scope", ["data23_13p6TeV"] * 5)  # task 7 now reads task 3's dataset ...
    t = _set(t, "proddblock", ["data23_13p6TeV.00450000.physics_Main.deriv.DAOD_PHYS"] * 5)
    t = _set(t, "dataset_type", ["DAOD_PHYS"] * 5)
    t = _set(t, "dataset_file_bytes", [2.0e9] * 5)
    t = _set(t, "dataset_nfiles", [40, 41, 40, 41, 40])  # ... with another file count
    with pytest.raises(InputError, match=r"column 'dataset_nfiles', row 0: 40 differs from 41") as err:
        read_workload(write(tmp_path, t))
    assert "hand.parquet" in str(err.value)
    t = _set(t, "dataset_nfiles", [40] * 5)
    wl, _ = read_workload(write(tmp_path, t, "fixed.parquet"))
    assert wl.dataset.tolist() == [0, 0] and len(wl.datasets) == 1


def test_a_file_gridtwin_did_not_write_is_refused(tmp_path):
    t = hand_table()
    cases = {
        "no metadata": (t.replace_schema_metadata(None), "not a gridtwin workload file"),
        "future format": (t.replace_schema_metadata({"gridtwin.workload": "2"}), "format '2' is not supported"),
    }
    for what, (table, expected) in cases.items():
        path = write(tmp_path, table, what.replace(" ", "-") + ".parquet")
        with pytest.raises(InputError, match=expected) as err:
            read_workload(path)
        assert str(path) in str(err.value), what
    text = tmp_path / "text.parquet"
    text.write_text("jeditaskid,work\n1,2\n")
    with pytest.raises(InputError, match="not a Parquet file"):
        read_workload(text)
    with pytest.raises(InputError, match="workload file not found"):
        read_workload(tmp_path / "absent.parquet")


# ---------------------------------------------------------------- scenario and command line
def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_simulate_on_a_bad_file_exits_2_and_writes_nothing(tmp_path):
    bad = write(tmp_path, BAD["negative-work"][0](hand_table()), "bad.parquet")
    out = tmp_path / "run"
    result = invoke("simulate", "--workload", bad, "--out", out, "-q")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and "'work_hs06s'" in result.output, result.output
    assert not out.exists() and not list(tmp_path.glob(".*.partial"))
    result = invoke("simulate", "--workload", write(tmp_path, hand_table()), "--scale", "0.1", "--out", out, "-q")
    assert result.exit_code == 2 and "--scale" in result.output, result.output
    assert not out.exists()


def test_custom_family_runs_from_a_scenario_file(tmp_path):
    t = hand_table()
    t = _set(t, "processingtype", ["panda-client", "deriv", "panda-client", "deriv", "panda-client"])
    t = _set(t, "gshare", ["User Analysis", "Derivations", "User Analysis", "Derivations", "User Analysis"])
    wdir = tmp_path / "inputs"
    wdir.mkdir()
    write(wdir, t, "deriv.parquet")
    data = make_scenario([make_site("SITE_A", total_cores=16, maxrss_mb=64000)], drain_h=100)
    data["workload"] = {"file": "inputs/deriv.parquet"}  # relative to the scenario file
    scen = tmp_path / "scenario.yaml"
    scen.write_text(yaml.safe_dump(data))
    assert load_scenario(scen).workload.file == wdir / "deriv.parquet"
    out = tmp_path / "run"
    result = invoke("simulate", scen, "--out", out, "-q", "--no-report")
    assert result.exit_code == 0, result.output
    jobs = pq.read_table(out / "jobs.parquet")
    assert jobs.num_rows == 5 and set(jobs.column("jobstatus").to_pylist()) == {"finished"}
    deriv = jobs.filter(pc.equal(jobs.column("processingtype"), "deriv"))
    assert deriv.num_rows == 2
    assert set(deriv.column("prodsourcelabel").to_pylist()) == {"managed"}
    assert set(deriv.column("gshare").to_pylist()) == {"Derivations"}
    assert deriv.column("jeditaskid").to_pylist() == [7, 7]
    # creation times are the file's: task 7 arrived 2025-03-04 05:00 UTC
    assert min(deriv.column("creationtime").to_pylist()) == datetime(2025, 3, 4, 5, 0, tzinfo=UTC)
    run = json.loads((out / "run.json").read_text())
    assert run["epoch"] == "2025-03-04T00:00:00+00:00" and run["config"]["workload"]["duration_h"] == 48.0


def test_an_empty_workload_file_runs_to_empty_records(tmp_path):
    wl = generate_workload(WorkloadParams(scale=1e-9), np.random.default_rng(0))
    assert wl.n_jobs == 0
    write_workload(wl, tmp_path / "empty.parquet", datetime(2025, 1, 1, tzinfo=UTC))
    r = CliRunner().invoke(app, ["simulate", "--workload", str(tmp_path / "empty.parquet"), "--out",
                                 str(tmp_path / "run"), "-q"])
    assert r.exit_code == 0, r.output
    assert pq.read_metadata(tmp_path / "run" / "jobs.parquet").num_rows == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["n_jobs"] == 0

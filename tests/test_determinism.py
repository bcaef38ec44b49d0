"""Same seed, same records (byte-identical Parquet); the record tables follow the schemas and the
derived columns mean what they say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from gridtwin.config import scenario_from_dict
from gridtwin.record import schema as SC
from gridtwin.scenario import run_scenario

TABLES = ("jobs", "job_status_log", "job_files", "site_metrics", "sites")


def small_day(seed: int):
    return scenario_from_dict({"seed": seed, "drain_h": 400, "workload": {"scale": 0.003}})


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("determinism")
    out = {}
    for key, seed in (("a", 7), ("b", 7), ("other", 8)):
        out[key] = base / key
        result = run_scenario(small_day(seed), out[key], report=False)
        assert result.n_jobs > 500 and result.unfinished == 0
    return out


@pytest.mark.parametrize("table", TABLES)
def test_same_seed_gives_byte_identical_parquet(runs, table):
    a = (runs["a"] / f"{table}.parquet").read_bytes()
    b = (runs["b"] / f"{table}.parquet").read_bytes()
    assert a == b


def test_different_seed_gives_different_jobs(runs):
    assert (runs["a"] / "jobs.parquet").read_bytes() != (runs["other"] / "jobs.parquet").read_bytes()
    a = pq.read_table(runs["a"] / "jobs.parquet")
    other = pq.read_table(runs["other"] / "jobs.parquet")
    assert a.num_rows != other.num_rows or not a.equals(other)


def test_run_folder_has_no_partial_left(runs):
    assert not list(runs["a"].parent.glob(".*.partial"))
    assert (runs["a"] / "run.json").is_file()


@pytest.mark.parametrize("table", TABLES)
def test_schemas_match_the_record_contract(runs, table):
    schema = pq.read_schema(runs["a"] / f"{table}.parquet")
    assert schema.equals(SC.TABLES[table], check_metadata=False), (schema, SC.TABLES[table])


@pytest.fixture(scope="module")
def jobs(runs):
    return pq.read_table(runs["a"] / "jobs.parquet")


def seconds(a, b) -> np.ndarray:
    """(a - b) in seconds for two timestamp[ms] columns."""
    return (a.cast("int64").to_numpy(zero_copy_only=False) - b.cast("int64").to_numpy(zero_copy_only=False)) / 1000


def test_wall_and_queue_time_are_differences_of_timestamps(jobs):
    started = jobs.filter(pc.is_valid(jobs["starttime"]))
    assert started.num_rows > 0.9 * jobs.num_rows
    np.testing.assert_array_equal(started["wall_time"].to_numpy(), seconds(started["endtime"], started["starttime"]))
    np.testing.assert_array_equal(started["queue_time"].to_numpy(),
                                  seconds(started["starttime"], started["creationtime"]))
    assert (started["wall_time"].to_numpy() >= 0).all() and (started["queue_time"].to_numpy() >= 0).all()
    not_started = jobs.filter(pc.is_null(jobs["starttime"]))
    assert not_started["wall_time"].null_count == not_started.num_rows
    assert not_started["pilottiming"].null_count == not_started.num_rows


def test_pilottiming_has_five_parts(jobs):
    timing = [t for t in jobs["pilottiming"].to_pylist() if t is not None]
    assert timing
    for t in timing:
        parts = t.split("|")
        assert len(parts) == 5 and all(p.isdigit() for p in parts), t


def test_pandaid_unique_and_parentid_references_an_earlier_attempt(jobs):
    rows = {r["pandaid"]: r for r in jobs.select(["pandaid", "parentid", "attemptnr", "jeditaskid"]).to_pylist()}
    assert len(rows) == jobs.num_rows
    retries = [r for r in rows.values() if r["parentid"] is not None]
    assert retries, "a day of jobs with default failure rates has retries"
    for r in retries:
        parent = rows[r["parentid"]]
        assert parent["pandaid"] < r["pandaid"]
        assert parent["jeditaskid"] == r["jeditaskid"]
        assert r["attemptnr"] == parent["attemptnr"] + 1
    assert all(r["attemptnr"] == 1 for r in rows.values() if r["parentid"] is None)


def test_status_log_ends_in_the_final_status(runs, jobs):
    log = pq.read_table(runs["a"] / "job_status_log.parquet").to_pylist()
    last = {}
    for r in log:  # entries are grouped by job, in time order
        last[r["pandaid"]] = r["jobstatus"]
    final = dict(zip(jobs["pandaid"].to_pylist(), jobs["jobstatus"].to_pylist(), strict=True))
    assert last == final
    assert set(final.values()) <= {"finished", "failed", "closed", "cancelled"}


def test_site_metrics_never_oversubscribe(runs):
    m = pq.read_table(runs["a"] / "site_metrics.parquet")
    used, total = m["used_cores"].to_numpy(), m["total_cores"].to_numpy()
    assert (used >= 0).all() and (used <= total).all()
    sites = pq.read_table(runs["a"] / "sites.parquet")
    assert set(m["site"].to_pylist()) == set(sites["site"].to_pylist())


def test_job_files_match_the_jobs(runs, jobs):
    files = pq.read_table(runs["a"] / "job_files.parquet")
    by_type = {t: files.filter(pc.equal(files["type"], t)) for t in ("input", "output", "log")}
    assert by_type["input"].num_rows == pc.sum(jobs["ninputdatafiles"]).as_py()
    assert by_type["output"].num_rows == pc.sum(pc.equal(jobs["jobstatus"], "finished")).as_py()
    assert by_type["log"].num_rows == jobs.num_rows - jobs["starttime"].null_count
    assert sum(t.num_rows for t in by_type.values()) == files.num_rows
    # input files add up to the job's inputfilebytes; the output file is the job's outputfilebytes
    inputs = by_type["input"].group_by("pandaid").aggregate([("fsize", "sum")])
    in_bytes = dict(zip(inputs["pandaid"].to_pylist(), inputs["fsize_sum"].to_pylist(), strict=True))
    out_bytes = dict(zip(by_type["output"]["pandaid"].to_pylist(), by_type["output"]["fsize"].to_pylist(),
                         strict=True))
    for row in jobs.select(["pandaid", "inputfilebytes", "outputfilebytes", "ninputdatafiles"]).to_pylist():
        assert in_bytes.get(row["pandaid"], 0) == row["inputfilebytes"]
        if row["pandaid"] in out_bytes:
            assert out_bytes[row["pandaid"]] == row["outputfilebytes"]

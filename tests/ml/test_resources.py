"""Resource predictors: they recover known generating functions, their upper quantile covers what it
promises, cross-validation keeps tasks whole, the scout baseline and metrics match hand computations,
saved models check their schema, and bad input is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gridtwin.cli import app
from gridtwin.errors import InputError
from gridtwin.ml.metrics import metrics_with_ci, point_metrics
from gridtwin.ml.resources import ResourceModel, _folds, evaluate, train_resources
from gridtwin.ml.scouts import scout_baseline

ATLAS_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "atlas"
SIGMA = 0.1
PT = ["simul", "reco", "merge"]
BASE_WALL = {"simul": 20000.0, "reco": 9000.0, "merge": 1500.0}  # s for 1000 events on one 10-HS06 core
RSS_PER_CORE = {"simul": 1.5e6, "reco": 2.5e6, "merge": 1.0e6}  # kB


def known_jobs(n_tasks: int, jobs_per_task: int, seed: int, first_task: int = 1) -> tuple[pa.Table, pa.Table]:
    """Finished jobs whose targets are known functions of their submission features, times a lognormal
    noise of sigma SIGMA; sites with different corepower (wall and CPU time scale with 10 / corepower)."""
    rng = np.random.default_rng(seed)
    t_pt = rng.choice(PT, n_tasks)
    t_cores = rng.choice([1, 8], n_tasks)
    t_site = rng.choice(["SITE_A", "SITE_B"], n_tasks)
    n = n_tasks * jobs_per_task
    task = np.repeat(np.arange(n_tasks), jobs_per_task)
    pt, cores, site = t_pt[task], t_cores[task], t_site[task]
    nevents = rng.integers(100, 5000, n)
    ninput = rng.integers(1, 10, n)
    inbytes = ninput * rng.uniform(1e8, 3e9, n)
    cp = np.where(site == "SITE_A", 10.0, 20.0)
    noise = lambda: np.exp(rng.normal(0.0, SIGMA, n))  # noqa: E731
    base = np.array([BASE_WALL[p] for p in pt])
    wall_ref = base * (nevents / 1000.0) ** 0.8 / cores ** 0.9 * noise()
    cpu_per_event_ref = base / 1000.0 * noise()
    rss = np.array([RSS_PER_CORE[p] for p in pt]) * cores ** 0.7 * noise()
    out = 2e5 * nevents * (1 + (pt == "reco")) * noise()
    jobs = pa.table({
        "pandaid": pa.array(1_000_000 + np.arange(n), pa.int64()),
        "jeditaskid": pa.array(first_task + task, pa.int64()),
        "jobstatus": pa.array(["finished"] * n),
        "computingsite": pa.array(site.tolist()),
        "prodsourcelabel": pa.array(["managed"] * n),
        "processingtype": pa.array(pt.tolist()),
        "corecount": pa.array(cores, pa.int32()),
        "nevents": pa.array(nevents, pa.int64()),
        "ninputdatafiles": pa.array(ninput, pa.int32()),
        "inputfilebytes": pa.array(inbytes.astype(np.int64)),
        "wall_time": pa.array(wall_ref * 10.0 / cp),
        "cpuconsumptiontime": pa.array((cpu_per_event_ref * nevents * 10.0 / cp).astype(np.int64)),
        "maxrss": pa.array(rss.astype(np.int64)),
        "outputfilebytes": pa.array(out.astype(np.int64)),
    })
    sites = pa.table({"site": ["SITE_A", "SITE_B"], "tier": [1, 2], "corepower": [10.0, 20.0]})
    return jobs, sites


@pytest.fixture(scope="module")
def trained():
    jobs, sites = known_jobs(300, 40, seed=1)
    return train_resources(jobs, sites, quantile=0.9, folds=5, seed=3, n_boot=50)


def test_predictors_recover_known_generating_functions(trained):
    """Median errors are those of the noise alone (E|e^N(0, 0.1) - 1| = 8%); MAPE <= 15%."""
    for name in ("walltime", "cputime_per_event", "maxrss", "outputfilebytes"):
        m = trained.metrics[name]["predictor"]
        assert m["mape"]["value"] <= 0.15, (name, m["mape"])
        assert abs(m["coverage"]["value"] - 0.9) <= 0.03, (name, m["coverage"])
        assert m["r2_log"]["value"] > 0.9, name


def test_upper_quantile_holds_on_fresh_data_and_times_scale_with_corepower(trained):
    fresh, sites = known_jobs(200, 40, seed=2, first_task=10_000)
    metrics = evaluate(trained.model, fresh, sites)
    for name, m in metrics.items():
        assert m["mape"] <= 0.15, name
        assert abs(m["coverage"] - 0.9) <= 0.03, (name, m["coverage"])
    one = fresh.slice(0, 1)
    at_10 = trained.model.predict(one, corepower=np.array([10.0]))
    at_20 = trained.model.predict(one, corepower=np.array([20.0]))
    for name in ("walltime", "cputime_per_event"):
        assert at_20[name][0][0] == pytest.approx(at_10[name][0][0] / 2.0)
    assert at_20["maxrss"][0][0] == at_10["maxrss"][0][0]


def test_cross_validation_never_splits_a_task():
    groups = np.repeat(np.arange(57), np.arange(1, 58))
    fold = _folds(groups, 5, np.random.default_rng(0))
    for g in range(57):
        assert len(np.unique(fold[groups == g])) == 1
    sizes = np.bincount(np.unique(np.column_stack([groups, fold]), axis=0)[:, 1])
    assert sizes.max() - sizes.min() <= 1  # tasks dealt evenly


def test_task_effects_no_feature_shows_are_not_learned_out_of_fold():
    """Every task has its own hidden speed; the features say nothing about it, so out-of-fold the median
    cannot beat the spread of task effects (a leak across folds would let it)."""
    rng = np.random.default_rng(5)
    n_tasks, per = 200, 30
    effect = np.exp(rng.normal(0.0, 1.0, n_tasks))
    task = np.repeat(np.arange(n_tasks), per)
    n = n_tasks * per
    jobs = pa.table({"pandaid": np.arange(n), "jeditaskid": task, "jobstatus": ["finished"] * n,
                     "corecount": np.ones(n, np.int32), "ninputdatafiles": np.ones(n, np.int32),
                     "inputfilebytes": np.full(n, 10**9), "nevents": task * 7 + 3,  # unique per task, uninformative
                     "wall_time": effect[task] * 1000.0 * np.exp(rng.normal(0, 0.01, n))})
    r = train_resources(jobs, targets=["walltime"], folds=5, n_boot=20, scouts=5)
    assert r.metrics["walltime"]["predictor"]["mape"]["value"] > 0.5
    # the scouts see the task: their median is nearly exact
    assert r.metrics["walltime"]["scout_baseline"]["metrics"]["mape"]["value"] < 0.05


def test_scout_baseline_by_hand():
    y = np.array([5.0, 1.0, 3.0, 10.0, 2.0, 7.0, 4.0])
    groups = np.array([0, 0, 0, 0, 1, 1, 2])
    order = np.array([3, 1, 2, 4, 9, 8, 1])  # task 0 in creation order: 1.0, 3.0, 5.0, 10.0
    usable, med, up, pos = scout_baseline(y, groups, order, 2)
    assert usable.tolist() == [True, False, False, True, False, False, False]
    assert med[0] == 2.0 and up[0] == 3.0 and med[3] == 2.0 and up[3] == 3.0
    assert pos.tolist() == [2, 0, 1, 3, 1, 0, 0]


def test_metrics_by_hand():
    y = np.array([1.0, 2.0, 4.0, 8.0])
    med = np.array([1.0, 1.0, 4.0, 16.0])
    up = np.array([3.0, 1.5, 10.0, 20.0])
    m = point_metrics(y, med, up, waste_factor=2.0)
    assert m["mae"] == pytest.approx((0 + 1 + 0 + 8) / 4)
    assert m["mape"] == pytest.approx((0 + 0.5 + 0 + 1.0) / 4)
    assert m["r2"] == pytest.approx(1 - 65 / np.sum((y - y.mean()) ** 2))
    assert m["coverage"] == 0.75 and m["fail_share"] == 0.25
    assert m["waste_share"] == 0.75  # 3 > 2, 10 > 8, 20 > 16; 1.5 < 4
    assert m["overrequest_median"] == pytest.approx(np.median([3.0, 0.75, 2.5, 2.5]))
    ci = metrics_with_ci(y, med, up, np.array([0, 0, 1, 1]), 2.0, np.random.default_rng(0), n_boot=100)
    assert ci["coverage"]["ci_low"] <= 0.75 <= ci["coverage"]["ci_high"]
    assert ci["mae"]["value"] == m["mae"]


def test_saved_model_round_trips_and_checks_its_schema(trained, tmp_path):
    path = tmp_path / "model.json"
    trained.model.save(path)
    again = ResourceModel.load(path)
    fresh, sites = known_jobs(5, 4, seed=9)
    a, b = trained.model.predict(fresh, sites), again.predict(fresh, sites)
    for name in a:
        np.testing.assert_array_equal(a[name][0], b[name][0])
        np.testing.assert_array_equal(a[name][1], b[name][1])
    doc = json.loads(path.read_text())
    assert doc["format"] == "gridtwin-resource-model" and doc["version"] == 1
    assert {f["name"] for f in doc["features"]} >= {"processingtype", "corecount", "nevents", "tier"}
    with pytest.raises(InputError, match=r"feature\(s\) nevents, which this table lacks"):
        again.predict(fresh.drop(["nevents"]), sites)
    with pytest.raises(InputError, match="column processingtype: text was expected"):
        again.predict(fresh.set_column(fresh.schema.get_field_index("processingtype"), "processingtype",
                                       pa.array(np.arange(fresh.num_rows))), sites)
    doc["version"] = 7
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="format version 7"):
        ResourceModel.load(path)
    path.write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not a gridtwin resource model"):
        ResourceModel.load(path)


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_trains_writes_model_and_reports(tmp_path):
    jobs, sites = known_jobs(60, 20, seed=4)
    folder = tmp_path / "records"
    folder.mkdir()
    pq.write_table(jobs, folder / "jobs.parquet")
    pq.write_table(sites, folder / "sites.parquet")
    r = invoke("ml", "train-resources", folder, "--out", tmp_path / "m", "--quantile", "0.9", "--scouts", "5")
    assert r.exit_code == 0, r.output
    assert "model:" in r.output and "report.html" in r.output
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert set(metrics["targets"]) == {"walltime", "cputime_per_event", "maxrss", "outputfilebytes"}
    assert metrics["targets"]["walltime"]["scout_baseline"]["jobs"] == 60 * 15
    assert "Resource predictors" in (tmp_path / "m" / "report.html").read_text()
    ResourceModel.load(tmp_path / "m" / "model.json")


def test_bad_input_is_a_clear_error_exit_2(tmp_path):
    jobs, _ = known_jobs(10, 5, seed=4)
    missing = tmp_path / "missing.parquet"
    pq.write_table(jobs.drop(["inputfilebytes"]), missing)
    r = invoke("ml", "train-resources", missing, "--out", tmp_path / "a")
    assert r.exit_code == 2 and "required column(s) inputfilebytes missing" in r.output
    assert not (tmp_path / "a").exists()
    nulls = tmp_path / "nulls.parquet"
    empty = {c: pa.nulls(jobs.num_rows, jobs.schema.field(c).type)
             for c in ("wall_time", "cpuconsumptiontime", "maxrss", "outputfilebytes")}
    t = jobs
    for c, v in empty.items():
        t = t.set_column(t.schema.get_field_index(c), c, v)
    pq.write_table(t, nulls)
    r = invoke("ml", "train-resources", nulls, "--out", tmp_path / "b")
    assert r.exit_code == 2 and "no target could be trained" in r.output
    ok = tmp_path / "ok.parquet"
    pq.write_table(jobs.set_column(jobs.schema.get_field_index("maxrss"), "maxrss",
                                   pa.nulls(jobs.num_rows, pa.int64())), ok)
    r = invoke("ml", "train-resources", ok, "--out", tmp_path / "c", "--target", "maxrss")
    assert r.exit_code == 2 and "target maxrss: 0 finished jobs with a value" in r.output
    r = invoke("ml", "train-resources", ok, "--out", tmp_path / "d", "--target", "memory")
    assert r.exit_code == 2 and "unknown target(s) memory" in r.output
    r = invoke("ml", "train-resources", tmp_path / "nowhere", "--out", tmp_path / "e")
    assert r.exit_code == 2 and "no such file" in r.output


def test_real_bnl_jobs_end_to_end(tmp_path):
    csv = ATLAS_DATA / "jobs_bnl_2025-01.csv"
    if not csv.is_file():
        pytest.skip(f"real ATLAS data not found in {ATLAS_DATA.resolve()}")
    assert invoke("import", tmp_path / "imp", "--jobs", csv).exit_code == 0
    r = invoke("ml", "train-resources", tmp_path / "imp", "--out", tmp_path / "m", "--scouts", "3")
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert set(metrics["targets"]) == {"walltime", "outputfilebytes"}  # no nevents, no maxrss in this dump
    wall = metrics["targets"]["walltime"]
    assert wall["jobs"] == 100 and wall["tasks"] > 50
    c = wall["predictor"]["coverage"]
    assert c["ci_low"] <= c["value"] <= c["ci_high"]
    assert any("target maxrss" in n for n in metrics["notes"])


def test_same_seed_same_model_bytes(tmp_path):
    jobs, sites = known_jobs(40, 10, seed=6)
    for name in ("a", "b"):
        train_resources(jobs, sites, folds=3, seed=11, n_boot=20).model.save(tmp_path / f"{name}.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()

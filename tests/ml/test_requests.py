"""A trained resource predictor in a run: its upper quantiles become the jobs' requests, brokerage and
the pilot use them, the records and the report show what they did, with and without it."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gridtwin.cli import app
from gridtwin.config import scenario_from_dict
from gridtwin.errors import ConfigError
from gridtwin.ml.resources import ResourceModel
from gridtwin.ml.workload_sampler import workload_jobs_table
from gridtwin.scenario import Simulation

SCENARIO = {"workload": {"scale": 0.004, "duration_h": 12}, "drain_h": 48, "seed": 7}


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("requests")
    (root / "s.yaml").write_text(json.dumps(SCENARIO))
    assert invoke("simulate", root / "s.yaml", "--out", root / "train", "-q", "--seed", "3").exit_code == 0
    r = invoke("ml", "train-resources", root / "train", "--out", root / "model", "--target", "maxrss",
               "--target", "walltime", "--folds", "3", "--quantile", "0.9")
    assert r.exit_code == 0, r.output
    model = root / "model" / "model.json"
    assert invoke("simulate", root / "s.yaml", "--out", root / "base", "-q").exit_code == 0
    r = invoke("simulate", root / "s.yaml", "--out", root / "pred", "-q", "--predictor", model)
    assert r.exit_code == 0, r.output
    return root, model


def test_requests_are_the_predictors_upper_quantiles(runs):
    _root, model = runs
    sim = Simulation(scenario_from_dict({**SCENARIO, "resources": {"predictor": str(model),
                                                                    "memory_margin": 1.5}}))
    wl = sim.workload
    m = ResourceModel.load(model)
    preds = m.predict(workload_jobs_table(wl), corepower=np.full(wl.n_jobs, 10.0),
                      site_class=m.schema.vocab["tier"][0])
    np.testing.assert_array_equal(wl.request_rss_kb, np.ceil(preds["maxrss"][1] * 1.5).astype(np.int64))
    np.testing.assert_array_equal(wl.request_wall_s, preds["walltime"][1])
    task = wl.task
    cores = wl.corecount[task]
    per_core = np.ceil(wl.request_rss_kb / 1024.0 / cores)
    for t in (0, wl.n_tasks // 2, wl.n_tasks - 1):
        assert wl.ramcount_mb[t] == per_core[task == t].max()  # brokerage sees the task's largest request
        assert wl.walltime_estimate_s[t] == wl.request_wall_s[task == t].max()


def test_first_attempts_live_within_their_requests_and_retries_get_queue_limits(runs):
    root, _ = runs
    jobs = pq.read_table(root / "pred" / "jobs.parquet").to_pydict()
    a = {k: np.asarray(v, dtype=object) for k, v in jobs.items()}
    first = a["attemptnr"] == 1
    fin = a["jobstatus"] == "finished"
    rss = a["maxrss"].astype(float)
    req_kb = a["minramcount"].astype(float) * 1024
    assert np.all(rss[first & fin] <= req_kb[first & fin])
    oom = first & (a["piloterrorcode"] == 1212)
    assert oom.sum() > 0 and np.all(rss[oom] >= req_kb[oom] - 1024)
    wall = a["wall_time"].astype(float)
    assert np.all(wall[first & fin] <= a["maxwalltime"][first & fin].astype(float) + 1)
    timed_out = first & (a["piloterrorcode"] == 1213)
    assert timed_out.sum() > 0
    # JEDI's retry after a request kill runs with the queue's limits
    retry = (a["attemptnr"] > 1) & np.array([s is not None for s in a["computingsite"]])
    assert retry.sum() > 0
    base = pq.read_table(root / "base" / "jobs.parquet")
    per_site = dict(zip(base["computingsite"].to_pylist(), base["maxwalltime"].to_pylist(), strict=True))
    for s, w in zip(a["computingsite"][retry], a["maxwalltime"][retry], strict=True):
        assert w == per_site.get(s, w)


def test_report_shows_requests_with_and_without_the_predictor(runs):
    root, _ = runs
    run = json.loads((root / "pred" / "run.json").read_text())
    res = run["resources"]
    assert res["memory"]["predictor"]["requested_over_used"] < res["memory"]["workload"]["requested_over_used"]
    assert res["walltime"]["predictor"]["requested_over_used"] < res["walltime"]["workload"]["requested_over_used"]
    html = (root / "pred" / "report.html").read_text()
    assert "with and without the predictor" in html and "Resource requests" in html
    assert json.loads((root / "base" / "run.json").read_text())["resources"] is None
    base_jobs = pq.read_table(root / "base" / "jobs.parquet")
    pred_jobs = pq.read_table(root / "pred" / "jobs.parquet")
    kills = lambda t, c: int(pc.sum(pc.equal(t["piloterrorcode"], c)).as_py())  # noqa: E731
    assert kills(pred_jobs, 1213) > kills(base_jobs, 1213)  # tight walltime requests kill some jobs


def test_without_enforcement_requests_only_steer_brokerage(runs, tmp_path):
    _root, model = runs
    sc = {**SCENARIO, "resources": {"predictor": str(model), "enforce": False}}
    (tmp_path / "s.yaml").write_text(json.dumps(sc))
    assert invoke("simulate", tmp_path / "s.yaml", "--out", tmp_path / "run", "-q").exit_code == 0
    t = pq.read_table(tmp_path / "run" / "jobs.parquet").to_pydict()
    first = np.asarray(t["attemptnr"]) == 1
    fin = np.asarray(t["jobstatus"], dtype=object) == "finished"
    over = np.asarray(t["maxrss"], dtype=float) > np.asarray(t["minramcount"], dtype=float) * 1024
    assert (first & fin & over).sum() > 0  # went over the request and still finished


def test_bad_predictor_is_a_clear_error(runs, tmp_path):
    root, _ = runs
    (tmp_path / "s.yaml").write_text(json.dumps(SCENARIO))
    r = invoke("simulate", tmp_path / "s.yaml", "--out", tmp_path / "x", "-q", "--predictor", tmp_path / "no.json")
    assert r.exit_code == 2 and "no.json" in r.output and not (tmp_path / "x").exists()
    jobs = root / "train"
    r = invoke("ml", "train-resources", jobs, "--out", tmp_path / "m", "--target", "outputfilebytes", "--folds", "2")
    assert r.exit_code == 0
    sim_sc = scenario_from_dict({**SCENARIO, "resources": {"predictor": str(tmp_path / "m" / "model.json")}})
    with pytest.raises(ConfigError, match="predicts neither maxrss nor walltime"):
        Simulation(sim_sc)


def test_the_predictor_leaves_the_callers_workload_alone(runs):
    _root, model = runs
    plain = Simulation(scenario_from_dict(SCENARIO)).workload
    ram = plain.ramcount_mb.copy()
    sim = Simulation(scenario_from_dict({**SCENARIO, "resources": {"predictor": str(model)}}), workload=plain)
    assert sim.workload is not plain and sim.workload.request_rss_kb is not None
    assert plain.request_rss_kb is None and np.array_equal(plain.ramcount_mb, ram)

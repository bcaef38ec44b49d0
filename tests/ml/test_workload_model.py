"""The generative workload model: hand-computed extraction and fitted rates, sampling invariants, the
copula and residuals keeping correlations, broker-visible requests from the task level, saved models
checking their format and schema, fidelity metrics, the must-show fidelity on a simulated day, and
bad input failing clearly (exit 2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import ks_2samp, spearmanr
from typer.testing import CliRunner

from gridtwin.cli import app
from gridtwin.errors import InputError
from gridtwin.ml import fidelity as fd
from gridtwin.ml import job_records as jr
from gridtwin.ml import workload_model as wm
from gridtwin.ml import workload_sampler as ws
from gridtwin.record.schema import JOBS

ATLAS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "atlas"
needs_data = pytest.mark.skipif(not (ATLAS / "jobs_bnl_2025-01.csv").exists(),
                                reason=f"real ATLAS data not found in {ATLAS}")
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def invoke(*args: Any):
    return CliRunner().invoke(app, [str(a) for a in args])


def job(task: int, hour: float, **kw: Any) -> dict[str, Any]:
    """One finished first attempt of task ``task`` created ``hour`` hours after T0 (fields overridable)."""
    row = {"pandaid": None, "jeditaskid": task, "attemptnr": 1, "jobstatus": "finished",
           "prodsourcelabel": "managed", "processingtype": "simul", "transformation": "Sim_tf.py",
           "gshare": "MC Simulation Full", "workinggroup": "AP_MCGN", "currentpriority": 900,
           "corecount": 1, "creationtime": T0 + timedelta(hours=hour), "cpuconsumptiontime": 1000,
           "maxrss": 1_000_000, "nevents": 100, "ninputdatafiles": 2, "inputfilebytes": 2_000_000_000,
           "outputfilebytes": 500_000_000, "pilottiming": "10|20|1000|5|30", "wall_time": 1100.0}
    row.update(kw)
    return row


def table(rows: list[dict[str, Any]]) -> pa.Table:
    """A JOBS-schema table of ``rows`` (missing columns null), plus any extra column they carry (jobname)."""
    for i, r in enumerate(rows):
        if r.get("pandaid") is None:
            r["pandaid"] = i + 1
    t = pa.Table.from_pylist(rows, schema=JOBS)
    for extra in sorted({k for r in rows for k in r} - set(JOBS.names)):
        t = t.append_column(extra, pa.array([r.get(extra) for r in rows], pa.string()))
    return t


# ================================================================== extraction, by hand


def test_group_median_ignores_nan_and_averages_the_middle_pair():
    group = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    values = np.array([5.0, 1.0, 3.0, 4.0, np.nan, 1.0, 2.0, np.nan])
    np.testing.assert_array_equal(jr.group_median(group, values, 4)[:2], [3.0, 2.0])
    assert np.isnan(jr.group_median(group, values, 4)[2:]).all()


def test_extraction_work_efficiency_tasks_and_labels_by_hand():
    sites = pa.table({"site": ["S12"], "corepower": [12.0]})
    rows = [
        # CPU 60 s at a 12-HS06 queue: work 720 HS06-s; payload 40 s on 2 cores: efficiency 60 / 80
        job(1, 0.0, computingsite="S12", corecount=2, cpuconsumptiontime=60, pilottiming="1|2|40|3|4"),
        # no CPU time: hs06sec (wall-clock based) x cpu_eff / cores = 2000 x 0.5 / 2; unknown queue
        job(1, 0.5, computingsite="ELSEWHERE", corecount=2, cpuconsumptiontime=None, hs06sec=2000, cpu_eff=0.5,
            pilottiming=None, wall_time=None),
        # a retry and a failure do not count as first attempts / finished
        job(2, 1.0, attemptnr=2, jobstatus="failed"),
    ]
    rec = jr.extract_records(table(rows), sites, "t.parquet")
    np.testing.assert_allclose(rec.features["work_hs06s"][:2], [720.0, 500.0])
    np.testing.assert_allclose(rec.features["cpu_eff"][0], 0.75)
    assert np.isnan(rec.features["cpu_eff"][1])
    assert rec.first.tolist() == [True, True, False]
    assert rec.finished.tolist() == [True, True, False]
    assert rec.task_keys == ["1", "2"]
    # without jeditaskid the task is the job name before "/"; a null label with a user task name is user
    rows = [job(None, 0.0, jobname="user.someone.ntuple_v1/.123", prodsourcelabel=None, processingtype=None),
            job(None, 0.1, jobname="user.someone.ntuple_v1/.124", prodsourcelabel=None, processingtype=None),
            job(None, 0.2, jobname="mc23.other/.9", prodsourcelabel=None, processingtype=None)]
    rec = jr.extract_records(table(rows), None, "t.parquet")
    assert rec.task.tolist() == [1, 1, 0]
    assert rec.categories == [("unknown", "unknown"), ("user", "unknown")]
    assert any("10 HS06" in n for n in rec.notes)


def test_features_without_values_are_absent_and_sampled_as_neutral_defaults():
    rows = [job(t, t * 0.1, maxrss=None, nevents=None, corecount=1 + 7 * (t % 2)) for t in range(30)]
    model = wm.fit_workload(table(rows), seed=0)
    assert model.absent == ["nevents", "maxrss"]
    wl = ws.sample_workload(model, 1.0, np.random.default_rng(0))
    cores = wl.corecount[wl.task]
    np.testing.assert_array_equal(wl.maxrss_kb, wm.DEFAULT_RSS_KB_PER_CORE * cores)
    assert (wl.nevents == 0).all()


# ================================================================== bad input


@pytest.mark.parametrize("column", ["cpuconsumptiontime", "creationtime", "inputfilebytes"])
def test_a_missing_required_column_is_named(column):
    t = table([job(1, 0.0), job(2, 1.0)])
    with pytest.raises(InputError, match=rf"t\.parquet: .*lacks the required column\(s\) '{column}'"):
        wm.fit_workload(t.drop_columns([column]), source="t.parquet")


def test_only_null_targets_or_no_finished_job_is_a_clear_error():
    with pytest.raises(InputError, match="'cpuconsumptiontime' is null on every finished row"):
        wm.fit_workload(table([job(1, 0.0, cpuconsumptiontime=None), job(2, 1.0, cpuconsumptiontime=None)]))
    with pytest.raises(InputError, match="'outputfilebytes' is null on every finished row"):
        wm.fit_workload(table([job(1, 0.0, outputfilebytes=None)]))
    with pytest.raises(InputError, match="no row has jobstatus 'finished'"):
        wm.fit_workload(table([job(1, 0.0, jobstatus="failed")]))
    with pytest.raises(InputError, match="'creationtime' is null on every row"):
        wm.fit_workload(table([job(1, 0.0, creationtime=None)]))
    with pytest.raises(InputError, match="cannot group jobs into tasks"):
        wm.fit_workload(table([job(None, 0.0)]))


def test_a_non_numeric_column_is_named():
    t = table([job(1, 0.0)])
    t = t.set_column(t.schema.get_field_index("corecount"), "corecount", pa.array(["eight"]))
    with pytest.raises(InputError, match=r"t\.parquet: column 'corecount': a numeric column was expected"):
        wm.fit_workload(t, source="t.parquet")


def test_cli_bad_input_exits_2_naming_the_column(tmp_path):
    path = tmp_path / "jobs.parquet"
    pq.write_table(table([job(1, 0.0), job(2, 1.0)]).drop_columns(["corecount"]), path)
    result = invoke("ml", "fit-workload", path, "--out", tmp_path / "m.json")
    assert result.exit_code == 2
    assert "error:" in result.output and "'corecount'" in result.output
    assert not (tmp_path / "m.json").exists()
    pq.write_table(table([job(1, 0.0, cpuconsumptiontime=None)]), path)
    result = invoke("ml", "fit-workload", path, "--out", tmp_path / "m.json")
    assert result.exit_code == 2 and "null on every finished row" in result.output


# ================================================================== fitted arrivals, by hand


def two_day_rows() -> list[dict[str, Any]]:
    """Ten one-job tasks over exactly 48 clock hours: hour of day 3 sees 2 then 4 tasks, hour 15 one a
    day, hour 0 of day one and hour 23 of day two one each."""
    hours = [0.2, 3.1, 3.5, 15.5, 27.0, 27.2, 27.4, 27.6, 39.9, 47.5]
    return [job(t + 1, h) for t, h in enumerate(hours)]


def test_rates_are_mean_arrivals_per_hour_of_day():
    model = wm.fit_workload(table(two_day_rows()))
    assert model.training["hours"] == 48 and model.training["days"] == 2.0
    (cat,) = model.categories
    expected = np.zeros(24)
    expected[[0, 3, 15, 23]] = [0.5, 3.0, 1.0, 0.5]
    np.testing.assert_allclose(cat.rate_per_hour, expected)
    assert cat.cores == 1 and cat.n_tasks == 10 and cat.n_jobs == 10


def test_a_stated_window_sets_the_hours_and_late_tasks_count_in_their_hour(tmp_path):
    # a run's workload period (run.json: epoch and duration) is the window; a task whose first job JEDI
    # created two days late still counts, in its hour of day
    (tmp_path / "run.json").write_text(json.dumps({"epoch": "2025-01-01T00:00:00+00:00",
                                                   "config": {"workload": {"duration_h": 24.0}}}))
    window = jr.records_window(tmp_path)
    assert window == (T0.timestamp(), T0.timestamp() + 86400.0)
    assert jr.records_window(tmp_path / "jobs.parquet") == window
    (tmp_path / "other").mkdir()
    assert jr.records_window(tmp_path / "other") is None
    rows = [job(1, 2.5), job(2, 2.7), job(3, 51.5)]
    model = wm.fit_workload(table(rows), window=window)
    assert model.training["hours"] == 24 and model.training["window_from"] == "the records' stated workload period"
    assert any("1 tasks had their first job created outside" in n for n in model.training["notes"])
    expected = np.zeros(24)
    expected[[2, 3]] = [2.0, 1.0]
    np.testing.assert_array_equal(model.categories[0].rate_per_hour, expected)
    unbounded = wm.fit_workload(table(rows))  # hours 2 to 51 of the records
    assert unbounded.training["hours"] == 50 and unbounded.training["window_from"] == "first to last arrival"


def test_part_of_a_day_is_said_and_unseen_hours_get_the_mean_rate():
    model = wm.fit_workload(table([job(1, 5.0), job(2, 5.5), job(3, 6.2), job(4, 7.9)]))
    assert any("less than a day" in n for n in model.training["notes"])
    rate = model.categories[0].rate_per_hour
    np.testing.assert_allclose(rate[[5, 6, 7]], [2.0, 1.0, 1.0])
    np.testing.assert_allclose(np.delete(rate, [5, 6, 7]), 4 / 3)


def test_poisson_arrivals_follow_the_hourly_rates_and_the_epoch_hour():
    model = wm.fit_workload(table(two_day_rows()))
    days = 400
    wl = ws.sample_workload(model, days, np.random.default_rng(1), start_hour=3.0, match_volume=False)
    assert np.all(np.diff(wl.arrival) >= 0) and wl.arrival.min() >= 0 and wl.arrival.max() < days * 86400
    hod = (np.floor(wl.arrival / 3600.0).astype(int) + 3) % 24
    counts = np.bincount(hod, minlength=24)
    rate = model.categories[0].rate_per_hour
    assert set(np.flatnonzero(counts)) == {0, 3, 15, 23}
    for h in (0, 3, 15, 23):  # Poisson: mean rate x days, within 5 standard deviations
        assert abs(counts[h] - rate[h] * days) < 5 * np.sqrt(rate[h] * days)
    # the busiest hour of the run's day follows the epoch: run hour 0 is 03:00 UTC here, 00:00 UTC below
    run_hour = np.floor(wl.arrival / 3600.0).astype(int) % 24
    assert np.argmax(np.bincount(run_hour, minlength=24)) == 0
    wl0 = ws.sample_workload(model, 50, np.random.default_rng(1), start_hour=0.0, match_volume=False)
    assert np.argmax(np.bincount(np.floor(wl0.arrival / 3600.0).astype(int) % 24, minlength=24)) == 3


def test_matched_volume_gives_each_stratum_its_expected_jobs():
    rows = []
    for t in range(40):  # 1-core tasks of 1..4 jobs, 8-core tasks of 3 jobs
        cores = 8 if t % 4 == 0 else 1
        n = 3 if cores == 8 else 1 + t % 4
        rows += [job(t, t * 0.6, corecount=cores, cpuconsumptiontime=1000 + 10 * k) for k in range(n)]
    model = wm.fit_workload(table(rows))
    assert [c.cores for c in model.categories] == [1, 8]
    for days in (1.0, 2.5):
        wl = ws.sample_workload(model, days, np.random.default_rng(2), match_volume=True)
        for c in model.categories:
            expected = round(c.rate_per_hour.sum() * days * c.n_jobs / c.n_tasks)
            assert int(wl.njobs[wl.corecount == c.cores].sum()) == expected


# ================================================================== sampling invariants and structure


def rich_rows(n_tasks: int = 300, seed: int = 0) -> list[dict[str, Any]]:
    """Tasks whose median work and memory are strongly rank-correlated, and whose jobs' work and memory
    move together within the task (memory proportional to work); analysis tasks sharing datasets."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n_tasks):
        z = rng.normal()
        work_med = np.exp(9 + z)
        rss_med = np.exp(13.5 + 0.9 * z + 0.2 * rng.normal())
        user = t % 3 == 0
        for _ in range(1 + t % 5):
            f = np.exp(0.3 * rng.normal())
            nin = int(rng.integers(1, 6))
            rows.append(job(
                t, (t * 24 / n_tasks) % 24, cpuconsumptiontime=int(work_med * f / 10), maxrss=int(rss_med * f),
                nevents=int(100 * f * 10), ninputdatafiles=nin, inputfilebytes=nin * 1_000_000_000,
                prodsourcelabel="user" if user else "managed",
                processingtype="panda-client-1.5.80-jedi-run" if user else "simul",
                produsername=f"u{t % 7}" if user else "atlas-production", workinggroup=None if user else "AP_MCGN",
                proddblock=f"data.ds{t % 4}" if user else f"mc.input.{t}", pilottiming=None, wall_time=None,
            ))
    return rows


def test_sampled_workload_is_consistent():
    model = wm.fit_workload(table(rich_rows()))
    wl = ws.sample_workload(model, 3.0, np.random.default_rng(5))
    assert wl.n_jobs == int(wl.njobs.sum()) and (wl.njobs >= 1).all()
    np.testing.assert_array_equal(wl.first_job, np.cumsum(wl.njobs) - wl.njobs)
    np.testing.assert_array_equal(wl.task, np.repeat(np.arange(wl.n_tasks), wl.njobs))
    assert ((wl.ninput == 0) == (wl.inputbytes == 0)).all()
    has_files = np.add.reduceat(wl.ninput.astype(np.int64), wl.first_job) > 0
    assert ((wl.dataset >= 0) == has_files).all()
    # every job's files lie in its dataset (indices wrap), and the dataset is at least as long as any reader
    for ds in np.unique(wl.dataset[wl.dataset >= 0]):
        readers = np.flatnonzero(wl.dataset == ds)
        files = [int(wl.ninput[wl.first_job[t]:wl.first_job[t] + wl.njobs[t]].sum()) for t in readers]
        assert wl.datasets.nfiles[ds] == max(files)
    assert wl.cpu_eff.min() > 0 and wl.cpu_eff.max() <= 1.0
    assert (wl.work_hs06s > 0).all()
    assert len(wl.categories) == 2
    labels = {(c.prodsourcelabel, c.processingtype) for c in wl.categories}
    assert labels == {("user", "panda-client-1.5.80-jedi-run"), ("managed", "simul")}
    # analysis tasks share datasets (four were read by many tasks), production reads its own
    is_user = np.array([wl.categories[c].prodsourcelabel == "user" for c in wl.category])
    user_ds = wl.dataset[is_user]
    assert np.bincount(user_ds).max() > 1
    prod_ds = wl.dataset[~is_user]
    assert len(np.unique(prod_ds)) == len(prod_ds)
    assert all(u.startswith("user") for u, us in zip(wl.username, is_user, strict=True) if us)


def test_copula_and_residuals_keep_correlations():
    rows = rich_rows(n_tasks=400)
    model = wm.fit_workload(table(rows))
    wl = ws.sample_workload(model, 6.0, np.random.default_rng(7))
    # task level: the rank correlation of median work and median memory survives
    real = jr.extract_records(table(rows))
    n = len(real.task_keys)
    rw = jr.group_median(real.task, real.features["work_hs06s"], n)
    rr = jr.group_median(real.task, real.features["maxrss"], n)
    sw = jr.group_median(wl.task.astype(np.int64), wl.work_hs06s, wl.n_tasks)
    sr = jr.group_median(wl.task.astype(np.int64), wl.maxrss_kb.astype(float), wl.n_tasks)
    r_real, r_syn = spearmanr(rw, rr).statistic, spearmanr(sw, sr).statistic
    assert r_real > 0.8 and abs(r_syn - r_real) < 0.08
    # job level: memory moves with work inside a task, as in the records (residual vectors kept whole)
    multi = wl.njobs[wl.task] > 1
    dw = np.log(wl.work_hs06s) - np.log(sw)[wl.task]
    dr = np.log(wl.maxrss_kb) - np.log(sr)[wl.task]
    assert np.corrcoef(dw[multi], dr[multi])[0, 1] > 0.95


def test_broker_sees_task_level_requests_only():
    # identical tasks: every sampled value is exact. Median work per core 2 x 10 x 1000 / 2 = 10000 HS06-s,
    # efficiency 1000 / 1250 = 0.8, memory 6 GB for 2 cores (2929.7 MB per core)
    rows = [job(t, t * 0.5, corecount=2, cpuconsumptiontime=1000, maxrss=6_000_000, pilottiming="0|0|625|0|0",
                inputfilebytes=3_000_000_000, ninputdatafiles=3) for t in range(20)]
    sites = pa.table({"site": ["Q"], "corepower": [20.0]})
    for r in rows:
        r["computingsite"] = "Q"
    model = wm.fit_workload(table(rows), sites)
    wl = ws.sample_workload(model, 1.0, np.random.default_rng(0))
    np.testing.assert_allclose(wl.work_hs06s, 20_000.0)
    np.testing.assert_allclose(wl.cpu_eff, 0.8)
    # walltime estimate on a 10-HS06 core: work per core / 10 / efficiency
    np.testing.assert_allclose(wl.walltime_estimate_s, 10_000 / 10 / 0.8)
    # ramcount: 2929.7 MB x 1.5 = 4394.5, rounded up to 500 MB
    assert set(wl.ramcount_mb.tolist()) == {4500}
    # I/O intensity: input kB per second of estimated wall time per core
    np.testing.assert_allclose(wl.io_intensity, 3e9 / 1024 / (1250.0 * 2))
    assert set(wl.priority.tolist()) == {900} and set(wl.workinggroup) == {"AP_MCGN"}


# ================================================================== save / load


def test_model_json_round_trip_and_determinism(tmp_path):
    t = table(rich_rows())
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    wm.save_model(wm.fit_workload(t, seed=3), a)
    wm.save_model(wm.fit_workload(t, seed=3), b)
    assert a.read_bytes() == b.read_bytes()
    loaded = wm.load_model(a)
    wm.save_model(loaded, b)
    assert a.read_bytes() == b.read_bytes()
    data = json.loads(a.read_text())
    assert data["format"] == "gridtwin-workload-model" and data["version"] == 1
    assert [f["name"] for f in data["schema"]["job_features"]][:5] == ["nevents", "inputfilebytes",
                                                                      "ninputdatafiles", "corecount", "work_hs06s"]
    w1 = ws.sample_workload(loaded, 1.0, np.random.default_rng(9))
    w2 = ws.sample_workload(wm.load_model(a), 1.0, np.random.default_rng(9))
    for name in ("arrival", "work_hs06s", "maxrss_kb", "inputbytes", "dataset", "first_file"):
        np.testing.assert_array_equal(getattr(w1, name), getattr(w2, name))


def test_loading_checks_format_version_and_schema(tmp_path):
    good = wm.fit_workload(table(rich_rows(60))).to_json()
    path = tmp_path / "m.json"

    def load(data: Any) -> None:
        path.write_text(json.dumps(data))
        wm.load_model(path)

    with pytest.raises(InputError, match="not a gridtwin workload model"):
        load({"format": "gridtwin-resource-model"})
    with pytest.raises(InputError, match="version 99; this gridtwin reads version 1"):
        load(good | {"version": 99})
    renamed = json.loads(json.dumps(good))
    renamed["schema"]["task_features"][2]["name"] = "walltime"
    with pytest.raises(InputError, match=r"schema\.task_features does not match.*'walltime'"):
        load(renamed)
    broken = json.loads(json.dumps(good))
    broken["categories"][0]["copula"]["correlation"] = [[1.0]]
    with pytest.raises(InputError, match=r"categories\[0\]\.copula\.correlation: a 11 x 11"):
        load(broken)
    path.write_text("{not json")
    with pytest.raises(InputError, match="not a JSON file"):
        wm.load_model(path)
    result = invoke("generate", path, "--out", tmp_path / "w.parquet")
    assert result.exit_code == 2 and "error:" in result.output
    # a period too short for any task is an error, not an empty file
    path.write_text(json.dumps(good))
    result = invoke("generate", path, "--days", 1e-4, "--out", tmp_path / "w.parquet")
    assert result.exit_code == 2 and "holds no task" in result.output
    assert not (tmp_path / "w.parquet").exists()


# ================================================================== fidelity metrics


def test_autocorrelation_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])  # deviations -1.5 -0.5 0.5 1.5, sum of squares 5
    assert fd.autocorrelation(x, 1) == pytest.approx((0.75 - 0.25 + 0.75) / 5)
    assert fd.autocorrelation(x, 3) is None
    assert fd.autocorrelation(np.ones(10), 1) is None


def test_identical_samples_have_zero_distances_and_short_records_no_daily_lag():
    rec = jr.extract_records(table(rich_rows(60)))
    feats = fd.feature_distances(rec, rec)
    assert all(d["ks"] == 0 and d["wasserstein"] == 0 for d in feats.values() if d["status"] == "ok")
    assert feats["inputfilebytes"]["wasserstein_scale"] == "log10(1+x)"
    assert feats["corecount"]["wasserstein_scale"] == "linear"
    corr = fd.correlation_difference(rec, rec)
    assert corr["max_abs_diff"] == 0 and corr["frobenius"] == 0
    arr = fd.arrival_metrics(rec, rec)
    assert arr["real"]["acf_24h"] is None and "2 days" in arr["real"]["acf_24h_reason"]
    assert arr["real"]["tasks"] == 60


# ================================================================== a simulated day (must show)


@pytest.fixture(scope="session")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated day at scale 0.05 (about 50,000 job specs)."""
    from gridtwin.config import scenario_from_dict
    from gridtwin.scenario import run_scenario

    out = tmp_path_factory.mktemp("workload-model") / "run"
    data = scenario_from_dict({}, "defaults").model_dump()
    data["workload"]["scale"] = 0.05
    run_scenario(scenario_from_dict(data, "test"), out, report=False)
    return out


@pytest.mark.slow
def test_generator_fidelity_on_a_simulated_day(sim_run):
    """Fit on the day, sample the same 24 hours with five seeds: the median KS of each main feature is
    at most 0.05 (one day of this workload has only a handful of reco and simul tasks, so single draws
    scatter around it), the Spearman matrices agree, and the daily cycle shows in the 1 h autocorrelation."""
    from gridtwin.ml.records import load_jobs

    jobs, sites, _ = load_jobs(sim_run)
    model = wm.fit_workload(jobs, sites, window=jr.records_window(sim_run))
    real = jr.extract_records(jobs, sites)
    assert model.training["hours"] == 24
    ks: dict[str, list[float]] = {f: [] for f in jr.MAIN_FEATURES}
    corr_max, acf = [], []
    for seed in range(5):
        wl = ws.sample_workload(model, 1.0, np.random.default_rng(seed))
        syn = jr.extract_records(ws.workload_jobs_table(wl))
        assert wl.n_jobs == int(real.first.sum())  # matched volume: the day's job specs
        dist = fd.feature_distances(real, syn)
        for f in jr.MAIN_FEATURES:
            ks[f].append(dist[f]["ks"])
        corr_max.append(fd.correlation_difference(real, syn)["max_abs_diff"])
        acf.append(fd.arrival_metrics(real, syn)["synthetic"]["acf_1h"])
    for f, values in ks.items():
        assert np.median(values) <= fd.KS_TARGET, (f, values)
    assert np.median(corr_max) < 0.1, corr_max
    real_acf = fd.arrival_metrics(real, real)["real"]["acf_1h"]
    assert real_acf > 0.3 and abs(np.median(acf) - real_acf) < 0.25


@pytest.mark.slow
def test_cli_fit_generate_simulate_and_report(sim_run, tmp_path):
    model, wl = tmp_path / "model.json", tmp_path / "wl.parquet"
    result = invoke("ml", "fit-workload", sim_run, "--out", model)
    assert result.exit_code == 0, result.output
    assert "analysis (1-core)" in result.output
    result = invoke("generate", model, "--days", 0.02, "--out", wl, "--seed", 4, "--start", "2025-02-01T12:00Z")
    assert result.exit_code == 0, result.output
    from gridtwin.workload.file import read_workload

    workload, epoch = read_workload(wl)
    assert epoch == datetime(2025, 2, 1, 12, tzinfo=UTC) and workload.duration_s == pytest.approx(0.02 * 86400)
    run = tmp_path / "run"
    result = invoke("simulate", "--workload", wl, "--out", run, "-q", "--no-report")
    assert result.exit_code == 0, result.output
    jobs = pq.read_table(run / "jobs.parquet")
    assert jobs.column("attemptnr").to_pylist().count(1) == workload.n_jobs  # every job spec ran
    assert set(jobs.column("jeditaskid").to_pylist()) == set(workload.jeditaskid.tolist())
    # the fidelity report of the model against its records
    out = tmp_path / "fid"
    result = invoke("ml", "fidelity", model, sim_run, "--out", out, "--no-tstr")
    assert result.exit_code == 0, result.output
    numbers = json.loads((out / "fidelity.json").read_text())
    assert numbers["main_ks_max"] is not None and numbers["tstr"]["status"] == "n/a"
    page = (out / "fidelity.html").read_text()
    assert page.count("data:image/png;base64,") == 10  # 8 features, correlations, arrivals
    # the generated file itself against the records
    result = invoke("ml", "fidelity", model, sim_run, "--out", out, "--no-tstr", "--workload", wl)
    assert result.exit_code == 0, result.output
    numbers = json.loads((out / "fidelity.json").read_text())
    assert numbers["synthetic"]["from"] == "workload file" and numbers["volume"]["synthetic"]["jobs"] == workload.n_jobs
    # a folder holding something else is not replaced
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    result = invoke("ml", "fidelity", model, sim_run, "--out", other, "--no-tstr")
    assert result.exit_code == 2 and (other / "keep.txt").exists()


@pytest.mark.slow
def test_same_seed_gives_byte_identical_workload_files(sim_run, tmp_path):
    model = tmp_path / "m.json"
    assert invoke("ml", "fit-workload", sim_run, "--out", model).exit_code == 0
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert invoke("generate", model, "--days", 0.25, "--out", a, "--seed", 11).exit_code == 0
    assert invoke("generate", model, "--days", 0.25, "--out", b, "--seed", 11).exit_code == 0
    assert a.read_bytes() == b.read_bytes()


# ================================================================== real records end to end


@needs_data
def test_bnl_records_end_to_end(tmp_path):
    imp, model, wl, out = tmp_path / "imp", tmp_path / "m.json", tmp_path / "w.parquet", tmp_path / "fid"
    assert invoke("import", imp, "--jobs", ATLAS / "jobs_bnl_2025-01.csv").exit_code == 0
    result = invoke("ml", "fit-workload", imp, "--out", model)
    assert result.exit_code == 0, result.output
    assert "taken as user analysis" in result.output and "nevents, maxrss" in result.output
    m = wm.load_model(model)
    assert m.training["rows"] == 100 and m.training["tasks"] == 90
    assert {c.prodsourcelabel for c in m.categories} == {"user"}
    assert invoke("generate", model, "--days", 7, "--out", wl).exit_code == 0
    result = invoke("ml", "fidelity", model, imp, "--out", out)
    assert result.exit_code == 0, result.output
    numbers = json.loads((out / "fidelity.json").read_text())
    assert numbers["features"]["nevents"]["status"] == "n/a"
    assert numbers["features"]["work_hs06s"]["status"] == "ok"
    assert numbers["arrivals"]["real"]["acf_24h"] is not None  # a month of records
    assert numbers["tstr"]["status"] == "ok", numbers["tstr"]
    assert set(numbers["tstr"]["targets"]) >= {"walltime", "outputfilebytes"}
    # the real jobs never named their payload's CPU work: KS compares it against the model's sample
    real = jr.extract_records(pq.read_table(imp / "jobs.parquet"))
    syn = jr.extract_records(ws.workload_jobs_table(ws.sample_workload(m, 31.625, np.random.default_rng(0))))
    assert ks_2samp(real.features["corecount"], syn.features["corecount"]).statistic < 0.1

"""Dashboard frames: what the browser is sent equals what the run's Parquet files say (checked with
independent DuckDB queries), live frames equal the frames read back from the written run, and a live
feed changes none of the records."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest

from gridtwin.dashboard.frames import SITE_COLS, RunFrames, kpi_cards
from gridtwin.errors import InputError


def _state_at(run, t_ms: int, state: str) -> int:
    """Jobs whose last status change at or before ``t_ms`` is ``state`` (ties in file order)."""
    q = f"""
        with log as (select *, row_number() over () as rn from '{run}/job_status_log.parquet')
        select count(*) from (
            select pandaid, arg_max(jobstatus, (epoch_ms(modificationtime), rn)) as s
            from log where epoch_ms(modificationtime) <= {t_ms} group by pandaid)
        where s = '{state}'"""
    return duckdb.sql(q).fetchall()[0][0]


def test_frames_match_the_parquet_files(live_run):
    _, run = live_run
    rf = RunFrames(run)
    assert rf.n_frames() > 30
    sm = duckdb.sql(f"select epoch_ms(time) t, site, running, activated + assigned queued, used_cores, total_cores, "
                    f"storage_used, storage_total from '{run}/site_metrics.parquet'").fetchall()
    by_time: dict[int, dict[str, tuple]] = {}
    for row in sm:
        by_time.setdefault(row[0], {})[row[1]] = row[2:]
    names = [s["site"] for s in rf.meta()["sites"]]
    for i in (0, 7, rf.n_frames() // 2, rf.n_frames() - 1):
        f = rf.frame(i)
        t_ms = int(rf.times_ms[i])
        for k, c in enumerate(SITE_COLS):
            assert f["sites"][c] == [by_time[t_ms][s][k] for s in names], (i, c)
        assert f["totals"]["running"] == sum(by_time[t_ms][s][0] for s in names)
        for state in ("transferring", "finished", "failed"):
            assert f["totals"][state] == _state_at(run, t_ms, state), (i, state)
    last = rf.frame(rf.n_frames() - 1)["totals"]
    n_fin = duckdb.sql(f"select count(*) from '{run}/jobs.parquet' where jobstatus = 'finished' and "
                       f"epoch_ms(endtime) <= {int(rf.times_ms[-1])}").fetchall()[0][0]
    assert last["finished"] == n_fin
    # throughput: the link rows of a frame's time, summed
    lm = duckdb.sql(f"select epoch_ms(time) t, sum(throughput_mbps), sum(active) from '{run}/link_metrics.parquet' "
                    "group by 1").fetchall()
    busiest = max(lm, key=lambda r: r[1])
    i = int(np.searchsorted(rf.times_ms, busiest[0]))
    assert rf.frame(i)["totals"]["transfer_mbps"] == pytest.approx(busiest[1], rel=1e-9, abs=1e-3)
    assert busiest[1] > 0
    for i in range(rf.n_frames()):  # one entry per link and frame
        pairs = [(a, b) for a, b, *_ in rf.frame(i)["links"]]
        assert len(pairs) == len(set(pairs)), i


def test_live_frames_equal_the_frames_of_the_written_run(live_run):
    feed, run = live_run
    rf = RunFrames(run)
    live = [json.loads(t) for t in feed.texts]
    live_by_t = {round(f["t"], 6): f for f in live}
    matched = 0
    for i in range(rf.n_frames()):
        f = rf.frame(i)
        g = live_by_t.get(round(f["t"], 6))
        if g is None:
            continue
        matched += 1
        assert [s["site"] for s in feed.sites] == [s["site"] for s in rf.sites]
        assert g["sites"] == f["sites"], f["t"]
        for k in ("running", "queued", "transferring", "finished", "failed", "jobs_per_h"):
            assert g["totals"][k] == pytest.approx(f["totals"][k]), (f["t"], k)
        assert g["totals"]["transfer_mbps"] == pytest.approx(f["totals"]["transfer_mbps"], abs=1e-2)
        ls = feed.meta_base["link_sites"]
        named = sorted((ls[a], ls[b], act, q) for a, b, act, q, _ in g["links"])
        named_rf = sorted((rf.link_sites[a], rf.link_sites[b], act, q) for a, b, act, q, _ in f["links"])
        assert named == named_rf, f["t"]
    assert matched >= rf.n_frames() - 1  # the run's last sample (at its end) may fall between two live ticks


def test_a_live_feed_changes_no_record(live_run, scenario_file, tmp_path):
    from gridtwin.config import load_scenario
    from gridtwin.scenario import run_scenario

    _, run = live_run
    plain = run_scenario(load_scenario(scenario_file), tmp_path / "plain", report=False).out
    for name in ("jobs", "job_status_log", "site_metrics", "transfers", "link_metrics", "job_files"):
        assert (plain / f"{name}.parquet").read_bytes() == (run / f"{name}.parquet").read_bytes(), name


def test_site_drill_down_and_kpis_and_anomalies(live_run):
    feed, run = live_run
    rf = RunFrames(run)
    busiest = duckdb.sql(f"select computingsite, count(*) n from '{run}/jobs.parquet' group by 1 "
                         "order by n desc, computingsite limit 1").fetchall()[0][0]
    d = rf.site(busiest)
    states = dict(duckdb.sql(f"select jobstatus, count(*) from '{run}/jobs.parquet' where computingsite = "
                             f"'{busiest}' group by 1").fetchall())
    assert d["states"] == states
    errors = dict(duckdb.sql(f"select 'piloterrorcode ' || piloterrorcode, count(*) from '{run}/jobs.parquet' "
                             f"where computingsite = '{busiest}' and piloterrorcode != 0 group by 1").fetchall())
    got = {e["code"]: e["n"] for e in d["errors"] if e["code"].startswith("piloterrorcode")}
    assert got == errors
    assert [e["n"] for e in d["errors"]] == sorted((e["n"] for e in d["errors"]), reverse=True)
    assert len(d["series"]["t"]) == rf.n_frames() and rf.site("NO-SUCH-QUEUE") is None
    run_json = json.loads((run / "run.json").read_text())
    cards = kpi_cards(run_json)
    assert cards["jobs"] == run_json["n_jobs"] and cards["finished"] == run_json["jobs_by_status"]["finished"]
    meta = rf.meta()
    assert meta["kpis"] == cards and meta["n_frames"] == rf.n_frames()
    counts = {c["name"]: c["count"] for c in meta["anomalies"]["classes"]}
    for name, n in counts.items():
        assert n == duckdb.sql(f"select count(*) from '{run}/analysis/anomalies/{name}.parquet'").fetchall()[0][0]
    # the live drill-down (counted at the frame after a request): per-queue states add up to that frame's totals
    as_of, stats = feed._stats
    last = json.loads(feed.texts[as_of])["totals"]
    assert feed.times[as_of] == 3 * 3600.0 and last["finished"] > 0
    assert sum(s["states"].get("finished", 0) for s in stats.values()) == last["finished"]
    assert sum(s["states"].get("failed", 0) for s in stats.values()) == last["failed"]


def test_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match=r"no run\.json and no jobs\.parquet here"):
        RunFrames(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"epoch": "2025-01-01T00:00:00+00:00"}))
    with pytest.raises(InputError, match=r"no site_metrics\.parquet"):
        RunFrames(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(InputError, match=r"not a gridtwin run\.json"):
        RunFrames(tmp_path)


def test_an_import_of_real_records_is_drawn_from_the_records(tmp_path, live_run):
    """A folder without sampled metrics (what `gridtwin import` writes): queues, links and totals come from
    the jobs and transfers themselves; checked against DuckDB over the same files."""
    import shutil

    _, run = live_run
    folder = tmp_path / "imported"
    folder.mkdir()
    for name in ("jobs", "transfers", "sites"):
        shutil.copy(run / f"{name}.parquet", folder / f"{name}.parquet")
    rf = RunFrames(folder)
    assert rf.derived and rf.meta()["kpis"]["jobs"] == duckdb.sql(
        f"select count(*) from '{folder}/jobs.parquet'").fetchall()[0][0]
    names = [s["site"] for s in rf.sites]
    for i in (5, len(rf.times) // 3):
        t_ms = int(rf.times_ms[i])
        running = dict(duckdb.sql(
            f"select computingsite, count(*) from '{folder}/jobs.parquet' where epoch_ms(starttime) <= {t_ms} "
            f"and (endtime is null or epoch_ms(endtime) > {t_ms}) group by 1").fetchall())
        f = rf.frame(i)
        assert f["sites"]["running"] == [running.get(s, 0) for s in names], i
        active = duckdb.sql(
            f"select count(*) from '{folder}/transfers.parquet' where event_type = 'transfer-done' and "
            f"epoch_ms(started_at) <= {t_ms} and epoch_ms(transferred_at) > {t_ms}").fetchall()[0][0]
        assert sum(link[2] for link in f["links"]) == active == f["totals"]["transfers_active"], i
    finished = duckdb.sql(f"select count(*) from '{folder}/jobs.parquet' where jobstatus = 'finished'").fetchall()
    assert rf.frame(rf.n_frames() - 1)["totals"]["finished"] == finished[0][0]


def test_the_real_bnl_jobs_import_opens_in_the_dashboard(tmp_path):
    from pathlib import Path

    from typer.testing import CliRunner

    from gridtwin.cli import app

    data = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "atlas"
    if not (data / "jobs_bnl_2025-01.csv").is_file():
        pytest.skip(f"real ATLAS data not found in {data}")
    r = CliRunner().invoke(app, ["import", str(tmp_path / "imp"), "--jobs", str(data / "jobs_bnl_2025-01.csv"),
                                 "--cric", str(data / "site_info.json")])
    assert r.exit_code == 0, r.output
    rf = RunFrames(tmp_path / "imp")
    meta = rf.meta()
    assert [s["site"] for s in meta["sites"]] == ["BNL"] and meta["kpis"]["jobs"] == 100
    assert meta["sites"][0]["total_cores"] > 0  # from the CRIC file
    assert meta["kpis"]["queue_time_median_s"] == pytest.approx(1647.5)
    assert rf.frame(rf.n_frames() - 1)["totals"]["finished"] == 100
    assert max(rf.totals["running"]) >= 1

"""The dashboard server on loopback: its API, the replay websocket protocol, live streaming to several
clients, and what it refuses (path traversal, foreign Host or Origin, missing or wrong token)."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from gridtwin.dashboard.frames import RunFrames
from gridtwin.dashboard.server import DashboardServer, run_file_path
from gridtwin.errors import ConfigError


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def _raw(port: int, path: str, host: str = "127.0.0.1") -> int:
    """Status of a GET with the path sent exactly as given (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_api_serves_the_run(served):
    server, rf, _ = served
    base = f"http://127.0.0.1:{server.port}/"
    status, body, headers = _get(base)
    assert status == 200 and b"gridtwin dashboard" in body
    assert "default-src 'self'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"
    meta = json.loads(_get(base + "api/meta")[1])
    assert meta["n_frames"] == rf.n_frames() and meta["token_required"] is False and meta["mode"] == "replay"
    assert json.loads(_get(base + "api/frame/5")[1]) == json.loads(json.dumps(rf.frame(5)))
    series = json.loads(_get(base + "api/series")[1])
    assert series["running"] == [float(x) for x in rf.totals["running"]]
    site = rf.sites[0]["site"]
    assert json.loads(_get(base + f"api/site/{site}")[1])["states"] == rf.site(site)["states"]
    status, body, _ = _get(base + "api/site/NOPE")
    assert status == 404 and "no queue named 'NOPE'" in json.loads(body)["detail"]
    assert _get(base + "api/frame/99999")[0] == 404
    status, body, headers = _get(base + "run/run.json")
    assert status == 200 and json.loads(body)["seed"] == 11
    assert headers["content-security-policy"].startswith("sandbox;")  # a run's files run no script
    assert _get(base + "static/app.js")[0] == 200


def test_path_traversal_is_refused(served, tmp_path):
    server, _, run = served
    secret = run.parent / "secret.txt"
    secret.write_text("not for the browser")
    (run / "escape").symlink_to(secret)
    for path in ("/run/../secret.txt", "/run/..%2Fsecret.txt", "/run/%2e%2e/secret.txt", "/run/%2e%2e%2fsecret.txt",
                 "/run//etc/passwd", "/run/%2Fetc%2Fpasswd", "/run/escape", "/run/analysis/../../secret.txt",
                 "/static/../../pyproject.toml", "/static/..%2F..%2F__init__.py", "/static/frames.py",
                 "/run/..\\secret.txt", "/run/", "/run/truth"):
        assert _raw(server.port, path) in (400, 404), path
    assert run_file_path(run, "jobs.parquet") == (run / "jobs.parquet").resolve()
    for bad in ("../secret.txt", "/etc/passwd", "escape", "a/../../secret.txt", "x\x00y", ""):
        assert run_file_path(run, bad) is None, bad


def test_foreign_host_and_origin_are_refused_on_loopback(served):
    server, _, _ = served
    assert _raw(server.port, "/api/meta", host="evil.example:80") == 400
    assert _raw(server.port, "/api/meta", host=f"localhost:{server.port}") == 200
    for origin in ("http://evil.example", "http://localhost:9999", f"http://localhost:{server.port}"):
        with pytest.raises(InvalidStatus):  # another site, or another local app: not this page
            connect(f"ws://127.0.0.1:{server.port}/ws", origin=origin, open_timeout=5)
    with connect(f"ws://127.0.0.1:{server.port}/ws", origin=f"http://127.0.0.1:{server.port}") as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "frame"


def test_replay_websocket_plays_pauses_and_seeks(served):
    server, rf, _ = served
    with connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=5) as ws:
        first = json.loads(ws.recv(timeout=5))
        state = json.loads(ws.recv(timeout=5))
        assert first["seq"] == 0 and state == {"type": "state", "playing": False, "speed": 5, "seq": 0,
                                                "n_frames": rf.n_frames()}
        ws.send(json.dumps({"action": "seek", "seq": 20}))
        f = json.loads(ws.recv(timeout=5))
        assert f["seq"] == 20 and f["sites"] == json.loads(json.dumps(rf.frame(20)))["sites"]
        assert json.loads(ws.recv(timeout=5))["seq"] == 20
        ws.send(json.dumps({"action": "speed", "value": 25}))
        assert json.loads(ws.recv(timeout=5))["speed"] == 25
        ws.send(json.dumps({"action": "play"}))
        seqs = []
        while len(seqs) < 6:
            m = json.loads(ws.recv(timeout=5))
            if m["type"] == "frame":
                seqs.append(m["seq"])
        assert seqs == list(range(20, 26))
        ws.send(json.dumps({"action": "pause"}))
        while True:  # frames already on their way, then the paused state
            m = json.loads(ws.recv(timeout=5))
            if m["type"] == "state":
                assert m["playing"] is False
                break
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.6)  # paused: nothing more comes
        ws.send(json.dumps({"action": "seek", "seq": 10**6}))  # clamped to the last frame
        assert json.loads(ws.recv(timeout=5))["seq"] == rf.n_frames() - 1


def test_a_remote_bind_needs_allow_remote_and_then_a_token(live_run):
    _, run = live_run
    rf = RunFrames(run)
    with pytest.raises(ConfigError, match="needs --allow-remote"):
        DashboardServer(rf, "0.0.0.0", 0)
    server = DashboardServer(rf, "0.0.0.0", 0, allow_remote=True)
    server.start()
    try:
        assert server.token and len(server.token) >= 24 and f"?token={server.token}" in server.url
        base = f"http://127.0.0.1:{server.port}/"
        assert _get(base + "api/meta")[0] == 401
        assert _get(base + "api/meta?token=wrong")[0] == 401
        assert _get(base + "run/run.json")[0] == 401
        for path in ("api/nothing", "docs", "openapi.json", "static/../api/meta", "STATIC/app.js"):
            assert _get(base + path)[0] == 401, path  # only the page and its files are public
        meta = json.loads(_get(base + f"api/meta?token={server.token}")[1])
        assert meta["token_required"] is True
        assert _get(base + "api/meta", {"Authorization": f"Bearer {server.token}"})[0] == 200
        assert _get(base)[0] == 200  # the page itself holds no data
        for url in (f"ws://127.0.0.1:{server.port}/ws", f"ws://127.0.0.1:{server.port}/ws?token=wrong"):
            with pytest.raises(InvalidStatus):
                connect(url, open_timeout=5)
        with connect(f"ws://127.0.0.1:{server.port}/ws?token={server.token}", open_timeout=5) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "frame"
    finally:
        server.stop()


def _collect(port: int, got: list, opened) -> None:
    """A live client: once connected it calls ``opened()``, then notes each frame number until the end."""
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
        opened()
        while True:
            m = json.loads(ws.recv(timeout=60))
            if m["type"] == "frames":  # a backlog sent in one message
                got += [f["seq"] for f in m["frames"]]
                continue
            got.append(m.get("seq", m["type"]))
            if m["type"] == "end":
                return


def _live_server(interval_s: float, **kw):
    from gridtwin.dashboard.live import joined

    sampler, feed = joined(interval_s, **kw)
    server = DashboardServer(feed, "127.0.0.1", 0)
    server.start()
    return sampler, feed, server


def test_live_clients_get_every_frame_in_order(scenario_file, tmp_path):
    """Twenty clients connected before a live run starts receive every frame, in order, then "end"."""
    from gridtwin.config import load_scenario
    from gridtwin.scenario import run_scenario

    sampler, feed, server = _live_server(1800.0)
    received: dict[int, list] = {k: [] for k in range(20)}
    ready = threading.Barrier(21)

    try:
        threads = [threading.Thread(target=_collect, args=(server.port, received[k], ready.wait)) for k in range(20)]
        for t in threads:
            t.start()
        ready.wait()
        result = run_scenario(load_scenario(scenario_file), tmp_path / "run", report=False,
                              observer=sampler.attach)
        sampler.finish(result.out)
        for t in threads:
            t.join(timeout=60)
        n = feed.n_frames()
        assert n > 20 and feed.dropped_clients == 0
        for k, got in received.items():
            assert got == [*range(n), "end"], k
        meta = json.loads(_get(f"http://127.0.0.1:{server.port}/api/meta")[1])
        assert meta["ended"] is True and meta["kpis"]["jobs"] == result.n_jobs
        # after the end, the drill-down's job states and errors come from the written run, its series from the
        # live frames (whose queue order the page knows)
        site = meta["sites"][0]["site"]
        got = json.loads(_get(f"http://127.0.0.1:{server.port}/api/site/{site}")[1])
        written = json.loads(json.dumps(RunFrames(result.out).site(site)))
        assert got["states"] == written["states"] and got["errors"] == written["errors"]
        assert len(got["series"]["t"]) == n and meta["n_frames"] == n
        assert meta["link_sites"] == feed.meta_base["link_sites"]
    finally:
        server.stop()


def test_a_client_that_stops_reading_is_dropped_and_the_run_goes_on(scenario_file, tmp_path):
    from gridtwin.config import load_scenario
    from gridtwin.scenario import run_scenario

    sampler, feed, server = _live_server(120.0, client_queue=8)
    try:
        with connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=10, max_queue=1):  # and never reads
            result = run_scenario(load_scenario(scenario_file), tmp_path / "run", report=False,
                                  observer=sampler.attach)
            sampler.finish(result.out)
            assert feed.n_frames() > 1000 and feed.dropped_clients == 1 and not feed.clients
            assert result.n_jobs > 0
    finally:
        server.stop()


def test_simulate_dashboard_serves_from_its_own_process(scenario_file, tmp_path):
    """The live server of ``simulate --dashboard`` runs in another process; a client connected before the
    run gets every frame in order and the end; a drill-down during the run gets job counts."""
    from gridtwin.config import load_scenario
    from gridtwin.dashboard.process import DashboardProcess
    from gridtwin.scenario import run_scenario

    dp = DashboardProcess(1800.0, "127.0.0.1", 0)
    url = dp.start()
    assert url == f"http://127.0.0.1:{dp.port}/"
    got: list = []
    ready = threading.Event()
    t = threading.Thread(target=_collect, args=(dp.port, got, ready.set))
    t.start()
    try:
        assert ready.wait(10)
        result = run_scenario(load_scenario(scenario_file), tmp_path / "run", report=False,
                              observer=dp.sampler.attach)
        dp.finish(result.out)
        t.join(60)
        assert got == [*range(dp.sampler.frames), "end"] and dp.sampler.frames > 20
        meta = json.loads(_get(url + "api/meta")[1])
        assert meta["ended"] is True and meta["kpis"]["jobs"] == result.n_jobs
    finally:
        dp.stop()


def test_dashboard_commands_fail_clearly(tmp_path, live_run):
    from typer.testing import CliRunner

    from gridtwin.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["dashboard", str(tmp_path)])
    assert r.exit_code == 2 and "no run.json and no jobs.parquet here" in r.output
    _, run = live_run
    r = runner.invoke(app, ["dashboard", str(run), "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "needs --allow-remote" in r.output
    r = runner.invoke(app, ["simulate", "--scale", "0.001", "--dashboard", "--dashboard-host", "0.0.0.0", "-q",
                            "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "needs --allow-remote" in r.output
    r = runner.invoke(app, ["simulate", "--scale", "0.001", "--dashboard", "--dashboard-every", "0", "-q",
                            "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--dashboard-every 0" in r.output


def test_simulate_with_dashboard_runs_to_the_end(scenario_file, tmp_path):
    from typer.testing import CliRunner

    from gridtwin.cli import app

    r = CliRunner().invoke(app, ["simulate", str(scenario_file), "--dashboard", "--dashboard-port", "0",
                                 "--no-dashboard-keep", "-q", "--no-report", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert "dashboard (live): http://127.0.0.1:" in r.output and (tmp_path / "run" / "jobs.parquet").is_file()


def test_a_dead_server_process_neither_stalls_the_run_nor_its_end():
    import os
    import signal
    import time

    from gridtwin.dashboard.process import DashboardProcess

    dp = DashboardProcess(600.0, "127.0.0.1", 0)
    dp.start()
    os.kill(dp._proc.pid, signal.SIGKILL)
    dp._proc.join(10)
    t0 = time.monotonic()
    for i in range(50):  # more than a pipe holds: nobody reads it
        dp._put("frame", "x" * 50_000, float(i))
    done = threading.Event()
    threading.Thread(target=lambda: (dp.stop(), done.set()), daemon=True).start()
    assert done.wait(20) and time.monotonic() - t0 < 20


def test_a_live_page_waits_for_the_simulation_to_be_built():
    from gridtwin.dashboard.live import LiveFeed

    server = DashboardServer(LiveFeed(), "127.0.0.1", 0)
    server.start()
    try:
        status, body, headers = _get(f"http://127.0.0.1:{server.port}/api/meta")
        assert status == 503 and headers["retry-after"] == "1" and "being built" in json.loads(body)["detail"]
    finally:
        server.stop()

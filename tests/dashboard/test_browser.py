"""The dashboard in a real browser: Playwright driving Debian's chromium (installed by .ci/run).

The page loads; the site grid, the KPI cards and the heat map show the numbers of the run's Parquet files
(read through :class:`RunFrames`, which tests/dashboard/test_frames.py checks against DuckDB); play, pause
and seek work; a screenshot is saved."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gridtwin.dashboard.frames import RunFrames

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium; "
                                                         ".ci/run installs it)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _open(browser, url: str, kinds: list[str] | None = None):
    """A page at ``url``, connected, and the list its console errors go to; the ``type`` of every websocket
    message it receives goes to ``kinds``."""
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    if kinds is not None:
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: kinds.append(
            payload[:40].split('"type":"', 1)[-1].split('"', 1)[0])))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#conn:has-text('connected')", timeout=15_000)
    return page, errors


@pytest.fixture(scope="module")
def browser_page(served, browser):
    server, rf, _ = served
    page, errors = _open(browser, server.url)
    yield page, rf, errors
    page.close()


def _tile(page, site: str) -> dict[str, int]:
    el = page.locator(f'#site-grid .site[data-site="{site}"]')
    return {k: int(el.get_attribute(f"data-{k}")) for k in ("running", "queued", "used", "total", "free")}


def _clock(page) -> int:
    return int(page.locator("#clock").get_attribute("data-seq") or -1)


def _wait(page, cond, what: str, timeout_s: float = 10.0) -> None:
    """Poll from Python: the page's CSP forbids the string evaluation wait_for_function needs."""
    import time

    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(50)


def _seek(page, seq: int) -> None:
    page.locator("#seek").fill(str(seq))  # sets the range input and fires its input and change events
    _wait(page, lambda: _clock(page) == seq, f"frame {seq}")


def _check_frame(page, rf: RunFrames, i: int) -> None:
    f = rf.frame(i)
    names = [s["site"] for s in rf.sites]
    busy = sorted(range(len(names)), key=lambda k: -f["sites"]["running"][k])[:5]
    for k in busy:
        tile = _tile(page, names[k])
        assert tile["running"] == f["sites"]["running"][k], names[k]
        assert tile["queued"] == f["sites"]["queued"][k], names[k]
        assert tile["used"] == f["sites"]["used_cores"][k] and tile["total"] == f["sites"]["total_cores"][k]
        assert tile["free"] == tile["total"] - tile["used"]
    for key in ("running", "queued", "transferring"):
        card = page.locator(f'#kpis .kpi[data-kpi="now_{key}"]')
        assert float(card.get_attribute("data-value")) == f["totals"][key], key


def test_page_shows_the_runs_numbers_and_seeks(browser_page):
    page, rf, errors = browser_page
    assert page.locator("#site-grid .site").count() == len(rf.sites)
    assert page.locator("#mode").inner_text().strip().upper().startswith("REPLAY")
    _check_frame(page, rf, 0)
    jobs = page.locator('#kpis .kpi[data-kpi="jobs"] .kpi-value').inner_text()
    assert int(jobs.replace(",", "").replace("\u202f", "")) == rf.run["n_jobs"]
    target = max(range(rf.n_frames()), key=lambda i: rf.frame(i)["totals"]["transfer_mbps"])
    _seek(page, target)
    _check_frame(page, rf, target)
    f = rf.frame(target)
    cells = page.locator("#heatmap .cell[data-mbps]")
    shown = {(c.get_attribute("data-src"), c.get_attribute("data-dst")): float(c.get_attribute("data-mbps"))
             for c in cells.all()}
    expected = {}
    for a, b, _, _, mbps in f["links"]:
        key = (rf.link_sites[a], rf.link_sites[b])
        expected[key] = expected.get(key, 0.0) + mbps
    common = [k for k in expected if k in shown]
    assert common, "the heat map shows none of the frame's links"
    for k in common:
        assert shown[k] == pytest.approx(expected[k], abs=1e-3), k
    assert page.locator("#series path.line").count() >= 3
    assert not errors, errors


def test_play_pause_drill_down_and_screenshot(browser_page, tmp_path):
    page, rf, errors = browser_page
    _seek(page, 3)
    page.select_option("#speed", "25")
    page.click("#play")
    _wait(page, lambda: _clock(page) >= 12, "playback to reach frame 12")
    page.click("#pause")
    page.wait_for_timeout(300)  # frames already on their way land
    held = int(page.locator("#clock").get_attribute("data-seq"))
    page.wait_for_timeout(800)
    assert int(page.locator("#clock").get_attribute("data-seq")) == held  # paused
    _check_frame(page, rf, held)
    site = max(rf.sites, key=lambda s: s["total_cores"] or 0)["site"]
    page.click(f'#site-grid .site[data-site="{site}"]')
    page.wait_for_selector("#drill:not([hidden])", timeout=10_000)
    assert site in page.locator("#drill-title").inner_text()
    page.wait_for_selector("#drill-body table.errors, #drill-body svg.bars", timeout=10_000)
    assert page.locator("#anomalies").is_visible()  # the run folder holds an analysis
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    Path(shot).unlink()
    page.click("#drill-close")
    assert not errors, errors


def test_live_page_follows_a_running_simulation(scenario_file, browser):
    """The page open on a live run: frames (batched when they come in bursts) reach it, the run's end shows,
    and the tiles hold the last frame's numbers."""
    import json

    from gridtwin.config import load_scenario
    from gridtwin.dashboard.live import joined
    from gridtwin.dashboard.server import DashboardServer
    from gridtwin.scenario import Simulation

    sampler, feed = joined(600.0)
    sim = Simulation(load_scenario(scenario_file))
    sampler.attach(sim)
    server = DashboardServer(feed, "127.0.0.1", 0)
    server.start()
    try:
        kinds: list[str] = []
        page, errors = _open(browser, server.url, kinds)
        assert "LIVE" in page.locator("#mode").inner_text().upper()
        sim.run()
        sampler.finish(None)
        last = json.loads(feed.texts[-1])
        _wait(page, lambda: _clock(page) == last["seq"], "the last live frame")
        _wait(page, lambda: "ended" in page.locator("#mode").inner_text(), "the end of the run")
        names = [s["site"] for s in feed.sites]
        for k in sorted(range(len(names)), key=lambda k: -last["sites"]["used_cores"][k])[:5]:
            tile = _tile(page, names[k])
            assert tile["used"] == last["sites"]["used_cores"][k] and tile["queued"] == last["sites"]["queued"][k]
        assert float(page.locator('#kpis .kpi[data-kpi="now_running"]').get_attribute("data-value")) == \
            last["totals"]["running"]
        assert "frames" in kinds  # the drain's bursts came batched, and the page took them
        assert not errors, errors
        page.close()
    finally:
        server.stop()

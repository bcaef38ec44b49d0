"""``MaxMin`` against SimGrid itself: completion times on random small platforms agree within 0.1 %.

SimGrid is Debian's ``python3-simgrid`` (3.32), which runs under Debian's system ``/usr/bin/python3``
rather than the project's Python: each scenario goes as JSON to ``simgrid_runner.py`` in a
subprocess (``network/model:LV08``, ``network/crosstraffic:0``). The test skips, saying why, only
when that interpreter cannot import ``simgrid``; CI installs it with
``apt-get install -y python3-simgrid``.

Each scenario runs twice in SimGrid: with its default lazy action updates and with
``network/optim:Full``. ``MaxMin`` must agree with both within 0.1 %. (SimGrid's lazy mode can leave
a flow at its old rate for a moment after several flows end their latency phase at the same instant;
the full update does not, and then the two agree to rounding.)

It also prints, and asserts nothing about, the worst and mean relative errors of ``MaxMin`` and of
``LinkSharing`` on the same scenarios (``LinkSharing`` split into one-link routes, the platform
default, where it is exact, and multi-link routes, where it approximates).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gridtwin.kernel.engine import Engine
from gridtwin.network import FlowModel, LinkSharing, MaxMin, Resource

SYSTEM_PYTHON = "/usr/bin/python3"
RUNNER = Path(__file__).with_name("simgrid_runner.py")
N_SCENARIOS = 30
TOLERANCE = 1e-3  # 0.1 %


def simgrid_missing() -> str | None:
    """Why SimGrid cannot run here, or ``None`` when it can."""
    try:
        probe = subprocess.run(
            [SYSTEM_PYTHON, "-c", "import simgrid"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SYSTEM_PYTHON} is not usable ({exc}); install Debian's python3-simgrid"
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no error output"])[-1]
        return (
            f"{SYSTEM_PYTHON} cannot import simgrid (Debian package python3-simgrid missing: "
            f"apt-get install -y python3-simgrid): {last}"
        )
    return None


def make_scenario(seed: int) -> dict:
    """A random small platform and flow set; the first third of the seeds use one-link routes only."""
    rng = random.Random(seed)
    single_link = seed % 3 == 0
    n_hosts = rng.randint(2, 6)
    links = []
    for i in range(rng.randint(1, 6)):
        gbps = rng.choice([0.1, 1.0, 10.0, 100.0]) * rng.uniform(0.5, 2.0)
        latency = 0.0 if rng.random() < 0.08 else rng.uniform(1e-4, 0.12)  # a few zero-latency links
        links.append({"id": f"l{i}", "bandwidth": gbps * 1.25e8, "latency": latency})
    routes: dict[tuple[str, str], list[str]] = {}
    flows = []
    for i in range(rng.randint(3, 16)):
        s, d = rng.sample(range(n_hosts), 2)
        key = (f"h{s}", f"h{d}")
        if key not in routes:
            k = 1 if single_link else rng.randint(1, min(3, len(links)))
            routes[key] = rng.sample([link["id"] for link in links], k)
        size = int(10 ** rng.uniform(5, 9.7))
        start = 0.0 if rng.random() < 0.3 else round(rng.uniform(0.0, 20.0), 3)
        flows.append({"id": i, "src": key[0], "dst": key[1], "size": size, "start": start})
    return {
        "seed": seed,
        "single_link": single_link,
        "config": ["network/model:LV08", "network/crosstraffic:0"],
        "links": links,
        "routes": [{"src": k[0], "dst": k[1], "links": v} for k, v in routes.items()],
        "flows": flows,
    }


def run_gridtwin(model_cls: type[FlowModel], doc: dict) -> dict[str, float]:
    """Completion time of every flow of the scenario in one of our models."""
    engine = Engine()
    res = {link["id"]: Resource(link["id"], link["bandwidth"], link["latency"]) for link in doc["links"]}
    route = {(r["src"], r["dst"]): tuple(res[x] for x in r["links"]) for r in doc["routes"]}
    done: dict[str, float] = {}
    model = model_cls(engine, lambda fid, now: done.__setitem__(str(fid), now))
    for f in doc["flows"]:
        engine.schedule_at(f["start"], lambda f: model.start(f["id"], route[(f["src"], f["dst"])], f["size"]), f)
    engine.run()
    return done


def run_simgrid(doc: dict, extra_config: Sequence[str] = ()) -> dict[str, float]:
    """SimGrid's completion time of every flow of one scenario."""
    doc = {**doc, "config": [*doc["config"], *extra_config]}
    proc = subprocess.run(
        [SYSTEM_PYTHON, str(RUNNER)], input=json.dumps(doc), capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, f"SimGrid runner failed on seed {doc['seed']}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout)["completion"]


def run_simgrid_all(docs: list[dict], extra_config: Sequence[str] = ()) -> list[dict[str, float]]:
    """SimGrid's completion times for every scenario (subprocesses run side by side, one per core)."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return list(pool.map(lambda doc: run_simgrid(doc, extra_config), docs))


def rel_errors(ours: dict[str, float], ref: dict[str, float]) -> list[float]:
    assert ours.keys() == ref.keys()
    return [abs(ours[k] - ref[k]) / ref[k] for k in ref]


def test_maxmin_agrees_with_simgrid(capsys: pytest.CaptureFixture[str]) -> None:
    reason = simgrid_missing()
    if reason:
        pytest.skip(reason)
    docs = [make_scenario(seed) for seed in range(N_SCENARIOS)]
    lazy = run_simgrid_all(docs)  # SimGrid's default: lazy action updates
    full = run_simgrid_all(docs, ["network/optim:Full"])  # every action updated at every step
    stats: dict[str, list[float]] = defaultdict(list)
    failures = []
    for doc, ref_lazy, ref_full in zip(docs, lazy, full, strict=True):
        ours = run_gridtwin(MaxMin, doc)
        for label, ref in (("lazy", ref_lazy), ("full", ref_full)):
            errs = rel_errors(ours, ref)
            stats[f"MaxMin      vs SimGrid LV08 ({label} update), all routes"].extend(errs)
            if max(errs) > TOLERANCE:
                failures.append((label, doc["seed"], max(errs)))
        routes = "one-link routes" if doc["single_link"] else "multi-link routes"
        stats[f"LinkSharing vs SimGrid LV08 (lazy update), {routes}"].extend(
            rel_errors(run_gridtwin(LinkSharing, doc), ref_lazy)
        )
    n_flows = sum(len(ref) for ref in lazy)
    with capsys.disabled():
        print(f"\nSimGrid agreement: {len(docs)} scenarios, {n_flows} flows, relative error of completion times:")
        for label, errs in sorted(stats.items(), reverse=True):
            print(f"  {label:<62} worst {max(errs):.2e}  mean {sum(errs) / len(errs):.2e}  ({len(errs)} flows)")
    assert not failures, f"MaxMin departs from SimGrid by more than {TOLERANCE:.1%} (update, seed, error): {failures}"

"""Benchmark: ``simulate --dashboard`` under load, 50 websocket clients on loopback.

The same scenario (the default day at ``--scale``, sized so the simulation runs a minute or more) is run
without the dashboard, then with a live feed every ``--every`` simulated minutes served by the dashboard
to ``--clients`` websocket clients in another process, connected before the run starts. Measured in the
same session:

- slowdown: the simulation's wall time with the dashboard and its clients over the time without (the
  simulation part, ``simulation_wall_time_s``), minus one; target <= 10%;
- delivery: every client must receive every frame, in order, and the end message;
- latency: from a frame's making (simulation thread) to its arrival at a client, percentiles over all
  clients and frames, and over the frames of the workload's day only (after it, the run drains: few
  events per simulated hour, so frames come in bursts of hundreds per second).

Runs alternate (plain, dashboard) ``--repeat`` times. A measurement, not a test.

    python benchmarks/bench_dashboard.py [--scale 0.6] [--clients 50] [--every 10] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import report

HEAD = re.compile(r'\{"type":"frame","seq":(\d+),"t":[^,]*,"time":"[^"]*","made":([0-9.eE+-]+)')
"""The start of a live frame (alone, or one of a ``frames`` batch): its number and when it was made."""


def clients_main(url: str, n: int, out: str, ready: mp.Event) -> None:  # type: ignore[valid-type]
    """``n`` websocket clients; each records (seq or "end", arrival time) until the end message."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def one(k: int, got: list, opened: asyncio.Event, counter: list) -> None:
        async with connect(url, max_size=None, open_timeout=30) as ws:
            counter[0] += 1
            if counter[0] == n:
                opened.set()
            try:
                async for raw in ws:
                    arrived = time.time()
                    # a browser parses the whole frame; 50 of them here would only measure this process's
                    # JSON parser on the second core, so only each frame's number and making time are read
                    heads = HEAD.findall(raw)
                    if not heads:
                        got.append([json.loads(raw)["type"], arrived, 0.0])
                        if got[-1][0] == "end":
                            return
                        continue
                    got += [[int(seq), arrived, float(made)] for seq, made in heads]
            except ConnectionClosed as exc:
                got.append(["closed", time.time(), str(exc)])

    async def main() -> list:
        opened, counter = asyncio.Event(), [0]
        logs: list[list] = [[] for _ in range(n)]
        tasks = [asyncio.create_task(one(k, logs[k], opened, counter)) for k in range(n)]
        await opened.wait()
        ready.set()
        await asyncio.gather(*tasks)
        return logs

    Path(out).write_text(json.dumps(asyncio.run(main())))


def run(scale: float, out: Path, sampler=None) -> dict:
    from gridtwin.config import scenario_from_dict
    from gridtwin.scenario import run_scenario

    sc = scenario_from_dict({"workload": {"scale": scale}}, "bench")
    run_scenario(sc, out, report=False, observer=None if sampler is None else sampler.attach)
    return json.loads((out / "run.json").read_text())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.6)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--every", type=float, default=10.0, help="simulated minutes between frames")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from gridtwin.dashboard.process import DashboardProcess

    plain_s, dash_s, latencies, frames, all_ok, dropped, publish_s = [], [], [], 0, True, 0, 0.0
    # latency: a live frame carries the wall-clock time it was made ("made"), clients note when it arrives
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        for r in range(args.repeat):
            plain_s.append(run(args.scale, tmp / f"plain{r}")["simulation_wall_time_s"])
            dash_proc = DashboardProcess(args.every * 60.0, "127.0.0.1", 0)
            dash_proc.start()
            ctx = mp.get_context("spawn")
            ready = ctx.Event()
            log_path = tmp / f"clients{r}.json"
            proc = ctx.Process(target=clients_main, args=(f"ws://127.0.0.1:{dash_proc.port}/ws", args.clients,
                                                          str(log_path), ready))
            proc.start()
            if not ready.wait(120):
                print("clients did not connect", file=sys.stderr)
                return 1
            dash = run(args.scale, tmp / f"dash{r}", dash_proc.sampler)
            dash_proc.finish(tmp / f"dash{r}")
            proc.join(600)
            dash_proc.stop()
            dash_s.append(dash["simulation_wall_time_s"])
            logs = json.loads(log_path.read_text())
            n = dash_proc.sampler.frames
            frames, publish_s = n, dash_proc.sampler.publish_s
            for got in logs:
                seqs = [g[0] for g in got]
                ok = seqs == [*range(n), "end"]
                all_ok &= ok
                dropped += not ok
                latencies += [(g[0], g[1] - g[2]) for g in got if isinstance(g[0], int)]
            print(f"run {r}: plain {plain_s[-1]:.1f} s, with dashboard {dash_s[-1]:.1f} s, {n} frames",
                  file=sys.stderr)
    day = 24 * 60 / args.every  # frames of the workload's day; later ones come fast, as the run drains
    lat = np.array([x for _, x in latencies]) * 1000.0
    lat_day = np.array([x for s, x in latencies if s < day]) * 1000.0
    slowdown = float(np.median(dash_s) / np.median(plain_s) - 1.0)
    figures = {
        "scale": args.scale, "clients": args.clients, "frame every (sim min)": args.every, "frames": frames,
        "simulation, plain (s)": [round(x, 1) for x in plain_s],
        "simulation, dashboard + clients (s)": [round(x, 1) for x in dash_s],
        "slowdown": f"{slowdown:+.1%}", "frames built and published (s, sim thread)": round(publish_s, 3),
        "every client got every frame in order": all_ok, "clients dropped": dropped,
        "latency p50 / p95 / p99 / max (ms)": " / ".join(f"{np.percentile(lat, q):.1f}" for q in (50, 95, 99, 100)),
        "the same, frames of the workload's day (ms)": " / ".join(f"{np.percentile(lat_day, q):.1f}"
                                                                 for q in (50, 95, 99, 100)),
    }
    report(figures, [("slowdown <= 10%", slowdown <= 0.10), ("every frame to every client, in order", all_ok)],
           args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

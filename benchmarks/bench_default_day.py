"""Benchmark: the default day at full scale (about 1M jobs, about 150 queues) on one core.

Prints jobs/s, events/s, peak RSS, and the ratio of the model's events/s to a bare heapq loop's
events/s measured in the same process right before the run (a loop that pops an event, calls a
no-op callback and pushes the next one, the kernel's floor cost per event). With data management on
(the default) it also prints the transfer figures: requests, transfers done, transfers/s and bytes.

    python benchmarks/bench_default_day.py [--scale 1.0] [--no-ddm] [--out DIR] [--json FILE]

Targets: with data management off (issue: simulation core) 1M jobs in <= 120 s and <= 4 GiB, model
events/s >= 20% of the bare loop; with it on (issue: data management) the day with its ~1M
transfers in <= 180 s and <= 6 GiB. The script prints the figures and whether each target is met;
it never fails on them. Run one configuration per process: peak RSS is per process.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from _report import report


def bare_heapq_events_per_s(n: int = 2_000_000) -> float:
    """Events per second of a bare heapq loop: pop (time, seq, callback, arg), call, push the next.

    Measured with the cyclic garbage collector off, as the model's event loop runs (scenario.py)."""
    gc.disable()
    try:
        return _bare_loop(n)
    finally:
        gc.enable()


def _bare_loop(n: int) -> float:
    heap: list = []
    push, pop = heapq.heappush, heapq.heappop

    def noop(_arg: object) -> None:
        return None

    for i in range(1000):  # a standing population of pending events, as in a real run
        push(heap, (float(i), i, noop, None))
    seq = 1000
    t0 = time.perf_counter()
    for _ in range(n):
        t, _s, cb, arg = pop(heap)
        cb(arg)
        push(heap, (t + 1.0, seq, cb, arg))
        seq += 1
    return n / (time.perf_counter() - t0)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports kB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="keep the records here (default: a temporary folder)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    ap.add_argument("--no-ddm", action="store_true", help="data management off: fixed-delay transfers")
    args = ap.parse_args(argv)

    from gridtwin.config import scenario_from_dict
    from gridtwin.scenario import run_scenario

    bare = bare_heapq_events_per_s()
    sc = scenario_from_dict({"seed": args.seed, "workload": {"scale": args.scale},
                             "ddm": {"enabled": not args.no_ddm}})
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "run"
        t0 = time.perf_counter()
        result = run_scenario(sc, out, report=False)
        total = time.perf_counter() - t0
        run = json.loads((out / "run.json").read_text())
    sim_s = run["simulation_wall_time_s"]
    events = result.events
    model_eps = events / sim_s
    # each job's state changes are coalesced into few heap events; count them too, for context
    state_changes = run["rows"]["job_status_log"]
    figures = {
        "scale": args.scale,
        "jobs": result.n_jobs,
        "tasks": result.n_tasks,
        "events": events,
        "total_wall_s": round(total, 2),
        "simulation_wall_s": round(sim_s, 2),
        "recording_wall_s": round(total - sim_s, 2),
        "jobs_per_s": round(result.n_jobs / total, 1),
        "model_events_per_s": round(model_eps, 1),
        "bare_heapq_events_per_s": round(bare, 1),
        "events_ratio": round(model_eps / bare, 4),
        "state_changes": state_changes,
        "state_changes_per_s": round(state_changes / sim_s, 1),
        "state_changes_ratio": round(state_changes / sim_s / bare, 4),
        "peak_rss_gib": round(peak_rss_gib(), 3),
        "jobs_by_status": result.status,
        "unfinished": result.unfinished,
    }
    ddm = run.get("ddm")
    if ddm:
        figures.update({
            "transfer_requests": ddm["requests"],
            "transfers_done": ddm["transfers_done"],
            "transfer_attempts_failed": ddm["attempts_failed"],
            "transfers_per_s": round(ddm["requests"] / sim_s, 1),
            "bytes_delivered_pb": round(ddm["bytes_delivered"] / 1e15, 4),
            "links_used": ddm["links_used"],
            "transfers_rows_written": run["rows"].get("transfers", 0),
        })
    small = args.scale < 1.0  # the size targets are for the full day
    size = (("day + ddm <= 180 s, <= 6 GiB", small or (total <= 180 and figures["peak_rss_gib"] <= 6)) if ddm else
            ("1M jobs <= 120 s, <= 4 GiB", small or (total <= 120 and figures["peak_rss_gib"] <= 4)))
    report(figures, [size, ("events >= 20% of the bare loop's", figures["events_ratio"] >= 0.2)], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

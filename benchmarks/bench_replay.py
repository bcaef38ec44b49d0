"""Benchmark: ``gridtwin replay`` of a synthetic trace pinned to 10 queues of 256 cores each, one process.

The trace (default 100k jobs, seeded) is a PanDA jobs Parquet: creation times spread over two days,
1-core jobs of lognormal CPU time (median 40 min) and efficiency, a quarter with input files; each
job's recorded computingsite is one of the ten queues. Prints the wall time of the whole replay
(import, build, simulation, records, comparison), its split into stages as fractions of the total,
jobs/s and peak RSS. A measurement, not a test: it never fails on the figures.

    python benchmarks/bench_replay.py [--jobs 100000] [--no-ddm]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _report import report

SITES = 10
CORES = 256


def platform_yaml(path: Path) -> Path:
    lines = ["name: bench-replay", "platform:", "  rses:"]
    lines += [f"    - {{name: Q{i:02d}_DATADISK, atlas_site: SITE-{i:02d}, capacity_tb: 5000}}" for i in range(SITES)]
    lines += ["  sites:"]
    lines += [f"    - {{name: Q{i:02d}, atlas_site: SITE-{i:02d}, corepower: {10 + i}, corecount: 8, "
              f"total_cores: {CORES}, rses: [Q{i:02d}_DATADISK], is_nucleus: {str(i < 2).lower()}, "
              f"tier: {1 if i < 2 else 2}}}" for i in range(SITES)]
    path.write_text("\n".join(lines) + "\n")
    return path


def synthetic_trace(path: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    t0 = 1_736_467_200_000  # 2025-01-10 00:00 UTC, ms
    created = t0 + np.sort(rng.uniform(0, 2 * 86400e3, n)).astype(np.int64)
    cpu = np.rint(rng.lognormal(np.log(2400.0), 0.8, n)).astype(np.int64)
    eff = np.clip(rng.beta(8, 2, n), 0.05, 1.0)
    exe = np.rint(cpu / eff).astype(np.int64)
    queue = np.rint(rng.exponential(1800.0, n)).astype(np.int64)
    start = created + queue * 1000
    stagein = rng.integers(0, 120, n)
    end = start + (exe + stagein + 40) * 1000
    has_input = rng.random(n) < 0.25
    nin = np.where(has_input, rng.integers(1, 6, n), 0)
    inbytes = np.where(has_input, nin * rng.integers(100_000_000, 2_000_000_000, n), 0)
    timing = [f"10|{s}|{e}|5|25" for s, e in zip(stagein.tolist(), exe.tolist(), strict=True)]
    ts = pa.timestamp("ms", tz="UTC")
    table = pa.table({
        "pandaid": pa.array(6_400_000_000 + np.arange(n, dtype=np.int64)),
        "jeditaskid": pa.array(40_000_000 + np.arange(n, dtype=np.int64) // 50),
        "creationtime": pa.array(created, pa.int64()).cast(ts),
        "starttime": pa.array(start, pa.int64()).cast(ts),
        "endtime": pa.array(end, pa.int64()).cast(ts),
        "computingsite": pa.array([f"Q{i:02d}" for i in rng.integers(0, SITES, n).tolist()]),
        "jobstatus": pa.array(["finished"] * n),
        "prodsourcelabel": pa.array(["user"] * n),
        "corecount": pa.array(np.ones(n, dtype=np.int32)),
        "cpuconsumptiontime": pa.array(cpu),
        "ninputdatafiles": pa.array(nin.astype(np.int32)),
        "inputfilebytes": pa.array(inbytes.astype(np.int64)),
        "outputfilebytes": pa.array(rng.integers(1_000_000, 200_000_000, n)),
        "pilottiming": pa.array(timing),
    })
    pq.write_table(table, path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ddm", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    from gridtwin.replay import replay

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trace = synthetic_trace(tmp / "trace.parquet", args.jobs, args.seed)
        plat = platform_yaml(tmp / "platform.yaml")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        t0 = time.perf_counter()
        res = replay(trace, plat, tmp / "out", seed=args.seed, ddm=args.ddm, report=True)
        total = time.perf_counter() - t0
        run = json.loads((tmp / "out" / "run.json").read_text())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    sim = run["simulation_wall_time_s"]  # building the Simulation and running it
    st = res.timings_s
    comp = res.comparison["overall"]["wall_time"]
    figures = {
        "jobs": res.n_jobs, "queues": f"{SITES} x {CORES} cores", "ddm": args.ddm, "total_wall_s": round(total, 2),
        "jobs_per_s": round(res.n_jobs / total), "events": run["event_count"],
        "share_import": round(st["load"] / total, 3),
        "share_trace_to_workload": round(st["build"] / total, 3),
        "share_simulation": round(sim / total, 3),
        "share_records_report": round((st["run"] - sim) / total, 3),
        "share_comparison": round(st["compare"] / total, 3),
        "peak_rss_gib": round(rss, 3), "rss_before_replay_gib": round(rss_before, 3),
        "jobs_at_recorded_site": res.comparison["jobs_at_recorded_site"],
        "wall_median_sim_over_rec": round(comp["median_sim"] / comp["median_rec"], 4),
    }
    report(figures, [], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

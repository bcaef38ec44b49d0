"""Benchmark: ``gridtwin calibrate`` on a synthetic 10k-job trace, 100 trials on 2 Dask workers.

The trace is bench_replay.py's (jobs over two days on 10 queues of 256 cores). Its "recorded" outcome is
made by replaying it with known parameters (pilot latency median 1200 s and sigma 0.5, setup 120 s, LAN
80 MB/s; pilot overheads jittered as by default); the calibration then starts from the defaults and searches them again.
Prints the wall time, seconds per trial, the recovered parameters against the truth, and the held-out
loss before and after. A measurement, not a test: it never fails on the figures.

    python benchmarks/bench_calibrate.py [--jobs 10000] [--trials 100] [--workers 2] [--sampler tpe]

Target (issue: replay and calibration): 100 trials on a 10k-job trace with 2 Dask workers in <= 10 min.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

from _report import report

TRUTH = {"pilot.latency_median_s": 1200.0, "pilot.latency_sigma": 0.5, "pilot.setup_s": 120.0,
         "network.lan_rate_mbps": 80.0}


def _bench_replay():
    spec = importlib.util.spec_from_file_location("bench_replay", Path(__file__).with_name("bench_replay.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sampler", default="tpe")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    from gridtwin.replay import replay
    from gridtwin.replay.calibrate import CalibrationTask, calibrate

    br = _bench_replay()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trace = br.synthetic_trace(tmp / "trace.parquet", args.jobs, 1)
        plat = br.platform_yaml(tmp / "platform.yaml")
        truth = tmp / "truth.yaml"
        truth.write_text(plat.read_text() + "pilot: {latency_median_s: 1200, latency_sigma: 0.5, setup_s: 120}\n"
                         "network: {lan_rate_mbps: 80}\n")
        replay(trace, truth, tmp / "truth", seed=7, ddm=False, report=False)
        task = CalibrationTask(jobs=str(tmp / "truth" / "jobs.parquet"), platform=str(plat), holdout=0.3)
        t0 = time.perf_counter()
        out = calibrate(task, tmp / "cal", trials=args.trials, sampler=args.sampler, workers=args.workers, seeds=3)
        total = time.perf_counter() - t0
    figures = {
        "jobs": args.jobs, "trials": out["trials"], "workers": args.workers, "sampler": args.sampler,
        "total_wall_s": round(total, 1), "s_per_trial": round(total / out["trials"], 2),
        "recovered": {k: round(v, 3) for k, v in out["best"].items()},
        "relative_error": {k: round(out["best"][k] / TRUTH[k] - 1.0, 3) for k in TRUTH},
        "held_out_loss_before": round(out["held_out"]["before"]["loss_mean"], 3),
        "held_out_loss_after": round(out["held_out"]["after"]["loss_mean"], 3),
        "held_out_loss_after_sd": round(out["held_out"]["after"]["loss_sd"], 3),
    }
    report(figures, [(f"{args.trials} trials <= 600 s", total <= 600)], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: ``gridtwin analyze`` on a run folder (e.g. the default day), one process.

Prints the folder's size (jobs, transfers), wall time per stage (link, anomalies, imbalance), total
wall time and peak RSS. A measurement, not a test: it never fails on the figures.

    gridtwin simulate --out day -q && python benchmarks/bench_analyze.py day

Target (issue: trace analytics): about 1M jobs and 2M transfers in <= 60 s and <= 4 GiB.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from _report import report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    from gridtwin.analytics.analyze import analyze_folder

    jobs = pq.read_metadata(args.run_dir / "jobs.parquet").num_rows
    transfers = pq.read_metadata(args.run_dir / "transfers.parquet").num_rows
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = analyze_folder(args.run_dir, Path(tmp) / "analysis")
        total = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    figures = {"jobs": jobs, "transfers": transfers, "total_wall_s": round(total, 2),
               "stages_s": summary["timings_s"], "peak_rss_gib": round(rss, 3), "links": summary["links"],
               "linker_score": summary["linker_score"], "anomalies": summary["anomalies"]}
    report(figures, [(f"<= 60 s and <= 4 GiB (on {jobs:,} jobs, {transfers:,} transfers)", total <= 60 and rss <= 4)],
           args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

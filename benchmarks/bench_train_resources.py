"""Benchmark: ``gridtwin ml train-resources`` on a run folder (e.g. the default day), one process.

Prints the number of job records, the wall time of loading and of the whole training (every target,
cross-validation grouped by task, scout baseline, bootstrap intervals), peak RSS, and, as a ratio measured
in the same run, the training time over one bare LightGBM fit of the same size (100 rounds on
``max_rows`` rows of one target): how many bare fits the pipeline costs. A measurement, not a test.

    gridtwin simulate --out day -q && python benchmarks/bench_train_resources.py day

Target (issue: learning from job records): training on 1M job records in <= 2 min on this machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from _report import report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    import numpy as np

    from gridtwin.ml.features import feature_matrix, infer_schema, site_columns, target_values
    from gridtwin.ml.records import load_jobs
    from gridtwin.ml.resources import _cap, _fit, train_resources

    t0 = time.perf_counter()
    jobs, sites, _ = load_jobs(args.run_dir)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = train_resources(jobs, sites, folds=args.folds, seed=0)
    t_train = time.perf_counter() - t0
    # one bare fit of the size every booster of the pipeline has, for the ratio
    tier, cp = site_columns(jobs, sites)
    schema, _ = infer_schema(jobs, tier)
    x = feature_matrix(jobs, schema, tier, "bench")
    y = np.log(target_values(jobs, cp, "walltime"))
    ok = np.flatnonzero(np.isfinite(y))
    rows = _cap(ok, 250_000, np.random.default_rng(0))
    t0 = time.perf_counter()
    _fit(x, y, rows, schema, 100, 0)
    t_bare = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    figures = {"job_records": jobs.num_rows, "targets": list(result.metrics), "folds": args.folds,
               "load_s": round(t_load, 2), "train_s": round(t_train, 2), "bare_fit_s": round(t_bare, 2),
               "train_over_bare_fit": round(t_train / t_bare, 1), "records_per_s": round(jobs.num_rows / t_train),
               "peak_rss_gib": round(rss, 3),
               "walltime_mape": round(result.metrics["walltime"]["predictor"]["mape"]["value"], 3),
               "walltime_coverage": round(result.metrics["walltime"]["predictor"]["coverage"]["value"], 4)}
    report(figures, [(f"training <= 120 s (on {jobs.num_rows:,} job records)", t_train <= 120)], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

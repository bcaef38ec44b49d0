"""How good a resource prediction is, for the user who would use it as the request: errors of the median
(MAE, MAPE, R2), coverage of the upper quantile, and the share of jobs that would fail (actual above the
request) or waste (request above ``waste_factor`` times the actual). Uncertainty comes from a bootstrap
over tasks, so jobs of one task move together.
"""

from __future__ import annotations

import numpy as np

METRICS = ("mae", "mape", "r2", "r2_log", "coverage", "fail_share", "waste_share", "overrequest_median")


def _sums(y: np.ndarray, median: np.ndarray, upper: np.ndarray, waste_factor: float) -> np.ndarray:
    """Per-job additive statistics (one column each) from which every metric but the median ratio follows."""
    err = median - y
    ly, lm = np.log(y), np.log(median)
    return np.column_stack([
        np.ones(len(y)), np.abs(err), np.abs(err) / y, err * err, y, y * y, ly, ly * ly, (lm - ly) ** 2,
        (y <= upper).astype(np.float64), (upper > waste_factor * y).astype(np.float64),
    ])


def _from_totals(t: np.ndarray) -> dict[str, float]:
    n, abs_err, rel_err, sq_err, sy, syy, sly, slyy, sq_log, cov, waste = t
    if n <= 0:
        return {k: float("nan") for k in METRICS if k != "overrequest_median"}
    ss_tot = syy - sy * sy / n
    ss_tot_log = slyy - sly * sly / n
    return {
        "mae": abs_err / n, "mape": rel_err / n,
        "r2": 1.0 - sq_err / ss_tot if ss_tot > 1e-12 * syy else float("nan"),
        "r2_log": 1.0 - sq_log / ss_tot_log if ss_tot_log > 1e-12 * max(slyy, 1e-300) else float("nan"),
        "coverage": cov / n, "fail_share": 1.0 - cov / n, "waste_share": waste / n,
    }


def point_metrics(y: np.ndarray, median: np.ndarray, upper: np.ndarray, waste_factor: float) -> dict[str, float]:
    """The metrics of predictions ``median`` and ``upper`` against actual ``y`` (all positive)."""
    if len(y) == 0:
        return {k: float("nan") for k in METRICS}
    out = {k: float(v) for k, v in _from_totals(_sums(y, median, upper, waste_factor).sum(axis=0)).items()}
    out["overrequest_median"] = float(np.median(upper / y))
    return out


def metrics_with_ci(y: np.ndarray, median: np.ndarray, upper: np.ndarray, groups: np.ndarray,
                    waste_factor: float, rng: np.random.Generator, n_boot: int = 200) -> dict[str, dict]:
    """Each metric with a 95% bootstrap interval over tasks: ``{metric: {"value", "ci_low", "ci_high"}}``
    (the median over-request ratio has no interval)."""
    point = point_metrics(y, median, upper, waste_factor)
    out: dict[str, dict] = {k: {"value": v, "ci_low": float("nan"), "ci_high": float("nan")} for k, v in point.items()}
    if len(y) == 0:
        return out
    _, g = np.unique(groups, return_inverse=True)
    n_groups = int(g.max()) + 1
    if n_groups < 2:
        return out
    per_job = _sums(y, median, upper, waste_factor)
    per_group = np.zeros((n_groups, per_job.shape[1]))
    np.add.at(per_group, g, per_job)
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot).astype(np.float64)
    totals = counts @ per_group
    draws = [_from_totals(t) for t in totals]
    for k in draws[0]:
        d = np.asarray([m[k] for m in draws], dtype=np.float64)
        d = d[np.isfinite(d)]
        if len(d):
            lo, hi = np.quantile(d, [0.025, 0.975])
            out[k]["ci_low"], out[k]["ci_high"] = float(lo), float(hi)
    return out

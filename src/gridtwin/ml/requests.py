"""Requested memory and walltime from a trained resource predictor, before a workload runs.

Each job specification gets the predictor's upper quantile of ``maxrss`` and of ``walltime`` (on a
10-HS06 core, as JEDI quotes times) times a margin. A task's ``ramcount`` and walltime estimate, which
brokerage's filters read, become the largest request of its jobs. The summary compares, job by job
against the workload's hidden truth, how many jobs would go over their request and how many would ask
for more than twice what they use, with the workload's own requests and with the predictor's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gridtwin.errors import ConfigError
from gridtwin.ml.features import REFERENCE_COREPOWER
from gridtwin.ml.resources import ResourceModel
from gridtwin.workload.spec import Workload

WASTE_FACTOR = 2.0


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def apply_predictor(wl: Workload, path: Path, memory_margin: float = 1.0, walltime_margin: float = 1.0,
                    default_maxtime_s: float = 345600.0) -> dict[str, Any]:
    """Set ``wl``'s per-job requests (and task ramcount and walltime estimate) from the model at ``path``;
    return a summary of the requests with and without the predictor."""
    from gridtwin.ml.workload_sampler import workload_jobs_table

    model = ResourceModel.load(path)
    usable = [t for t in ("maxrss", "walltime") if t in model.targets]
    if not usable:
        raise ConfigError(f"resources.predictor: {path} predicts neither maxrss nor walltime "
                          f"(it has {', '.join(model.targets)})")
    table = workload_jobs_table(wl)
    site_class = model.schema.vocab["tier"][0] if "tier" in model.schema.names else None
    preds = model.predict(table, source=f"workload for {path}", corepower=np.full(wl.n_jobs, REFERENCE_COREPOWER),
                          site_class=site_class)
    task = wl.task.astype(np.int64)
    cores = wl.corecount[task].astype(np.float64)
    true_rss = wl.maxrss_kb.astype(np.float64)
    true_wall = wl.work_hs06s / (REFERENCE_COREPOWER * cores * np.clip(wl.cpu_eff, 1e-3, 1.0))
    default_rss = wl.ramcount_mb[task] * 1024.0 * cores
    summary: dict[str, Any] = {"predictor": str(path), "site_class": site_class, "quantile": model.quantile,
                               "memory_margin": memory_margin, "walltime_margin": walltime_margin,
                               "job_specs": wl.n_jobs}
    if "maxrss" in preds:
        req = np.ceil(preds["maxrss"][1] * memory_margin).astype(np.int64)
        wl.request_rss_kb = req
        per_core_mb = np.ceil(req / 1024.0 / cores)
        ram = np.zeros(wl.n_tasks)
        np.maximum.at(ram, task, per_core_mb)
        wl.ramcount_mb = ram.astype(np.int32)
        summary["memory"] = {
            "workload": {"over_request": _share(true_rss > default_rss),
                         "over_twice_use": _share(default_rss > WASTE_FACTOR * true_rss),
                         "requested_over_used": float(default_rss.sum() / true_rss.sum())},
            "predictor": {"over_request": _share(true_rss > req),
                          "over_twice_use": _share(req > WASTE_FACTOR * true_rss),
                          "requested_over_used": float(req.sum() / true_rss.sum())},
        }
    if "walltime" in preds:
        req_w = preds["walltime"][1] * walltime_margin
        wl.request_wall_s = req_w
        est = np.zeros(wl.n_tasks)
        np.maximum.at(est, task, req_w)
        wl.walltime_estimate_s = est
        summary["walltime"] = {
            "workload": {"over_request": _share(true_wall > default_maxtime_s),
                         "over_twice_use": _share(default_maxtime_s > WASTE_FACTOR * true_wall),
                         "requested_over_used": float(default_maxtime_s * len(true_wall) / true_wall.sum()),
                         "note": "no walltime request: the queue's maxtime applies"},
            "predictor": {"over_request": _share(true_wall > req_w),
                          "over_twice_use": _share(req_w > WASTE_FACTOR * true_wall),
                          "requested_over_used": float(req_w.sum() / true_wall.sum())},
        }
    return summary


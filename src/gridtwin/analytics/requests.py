"""What jobs asked for against what they used: attempts killed over their memory or walltime request,
and how generous the requests of finished first attempts were (from ``minramcount`` and ``maxwalltime``;
retries ask for the queue's limits, so they are left out of those ratios)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gridtwin.analytics.kpi import as_float
from gridtwin.wms.failures import PAYLOAD_OUT_OF_MEMORY, REACHED_MAX_TIME

COLUMNS = ("jobstatus", "attemptnr", "corecount", "piloterrorcode", "maxrss", "wall_time", "minramcount",
           "maxwalltime")
WASTE_FACTOR = 2.0


def request_kpis(run_dir: Path) -> dict[str, Any] | None:
    """Request KPIs of a run folder, or None when its jobs table has no requests (imported records)."""
    path = Path(run_dir) / "jobs.parquet"
    if not path.is_file() or not set(COLUMNS) <= set(pq.read_schema(path).names):
        return None
    jobs = pq.read_table(path, columns=list(COLUMNS))
    if jobs["minramcount"].null_count == jobs.num_rows:
        return None
    code = as_float(jobs["piloterrorcode"])
    wall = as_float(jobs["wall_time"])
    cores = as_float(jobs["corecount"])
    n = jobs.num_rows
    status = np.asarray(pc.fill_null(jobs["jobstatus"], "").to_pylist(), dtype=object)
    done = status == "finished"
    first = as_float(jobs["attemptnr"]) == 1
    rss_kb, ram_mb = as_float(jobs["maxrss"]), as_float(jobs["minramcount"])
    used_wall, req_wall = wall, as_float(jobs["maxwalltime"])
    out: dict[str, Any] = {"attempts": n}
    for kind, killed_code, used, req in (("memory", PAYLOAD_OUT_OF_MEMORY, rss_kb, ram_mb * 1024.0),
                                         ("walltime", REACHED_MAX_TIME, used_wall, req_wall)):
        killed = code == killed_code
        # first attempts carry the requests under study; a retry asks for the queue's limits
        ok = done & first & np.isfinite(used) & np.isfinite(req) & (used > 0)
        out[kind] = {
            "attempts_killed": int(killed.sum()),
            "attempts_killed_share": float(killed.mean()) if n else None,
            "core_hours_killed": float(np.nansum(wall[killed] * cores[killed]) / 3600.0),
            "finished_jobs": int(ok.sum()),
            "requested_over_used": float(req[ok].sum() / used[ok].sum()) if ok.any() else None,
            "over_twice_use_share": float(np.mean(req[ok] > WASTE_FACTOR * used[ok])) if ok.any() else None,
        }
    return out


def request_rows(block: dict[str, Any]) -> list[tuple[str, str]]:
    """The request KPIs as (label, value) rows."""
    rows = []
    for kind in ("memory", "walltime"):
        m = block[kind]
        share = m["attempts_killed_share"]
        rows.append((f"{kind}: attempts killed (pilot {1212 if kind == 'memory' else 1213})",
                     f"{m['attempts_killed']:,} ({share:.2%})" if share is not None else "0"))
        rows.append((f"{kind}: core-hours of killed attempts", f"{m['core_hours_killed']:,.0f}"))
        r = m["requested_over_used"]
        rows.append((f"{kind}: requested / used (finished 1st attempts)", f"{r:.2f}" if r is not None else "n/a"))
        s = m["over_twice_use_share"]
        rows.append((f"{kind}: asked > 2x use (finished 1st attempts)", f"{s:.1%}" if s is not None else "n/a"))
    return rows


def predictor_rows(resources: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The a-priori comparison of a predictor run's run.json: (measure, workload's requests, predictor's)."""
    rows = []
    for kind in ("memory", "walltime"):
        if kind not in resources:
            continue
        w, p = resources[kind]["workload"], resources[kind]["predictor"]
        rows.append((f"{kind}: jobs over their request", f"{w['over_request']:.2%}", f"{p['over_request']:.2%}"))
        rows.append((f"{kind}: jobs asking > 2x their use", f"{w['over_twice_use']:.1%}",
                     f"{p['over_twice_use']:.1%}"))
        rows.append((f"{kind}: requested / used", f"{w['requested_over_used']:.2f}",
                     f"{p['requested_over_used']:.2f}"))
    return rows

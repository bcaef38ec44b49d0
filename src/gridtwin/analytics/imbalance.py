"""Where and when data moved versus where and when jobs wanted it, with DuckDB over a run folder's Parquet.

* *Volume*: bytes of ``transfer-done`` transfers, charged to the destination site (RSE name up to the last
  ``_``) and to the UTC hour of ``transferred_at``.
* *Demand*: ``inputfilebytes`` of jobs that started, charged to the ATLAS site of their ``computingsite``
  (``sites.parquet``; the queue name when that file is missing) and to the UTC hour of ``starttime``.
* Gini coefficients (:func:`gini`) over sites use every site seen (destination and source sites of sent
  transfers, job sites, ``sites.parquet`` ATLAS sites) with 0 for sites without volume / demand; over hours,
  every hour from the first to the last hour with volume or demand, 0-filled.

:func:`imbalance` returns a dict: ``volume_per_site`` (site, bytes, files), ``volume_per_hour`` (hour, bytes,
files), ``demand_per_site`` (site, bytes, jobs), ``demand_per_hour`` (hour, bytes, jobs) as pa.Tables;
``site_matrix`` (a ``src_site`` column then one int64 column of bytes per destination site),
``hour_site_volume`` and ``hour_site_demand`` (an ``hour`` column then one int64 column per site);
``gini`` {volume_sites, volume_hours, demand_sites, demand_hours}; ``busiest_links`` (top 10 by bytes:
src_site, dst_site, bytes, files) and ``notes`` (what could not be computed).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from gridtwin.analytics.anomalies import TRANSFER_DONE, create_job_site_view, open_run, rse_site_sql
from gridtwin.analytics.duck import fetch_arrow
from gridtwin.record.schema import TS

TOP_LINKS = 10
HOUR_S = 3600


def gini(values: Iterable[float]) -> float:
    """Gini coefficient G = sum_i sum_j |x_i - x_j| / (2 n^2 mean) of non-negative values (no n/(n-1)
    correction): 0 when all are equal, (n-1)/n when one holds everything. 0.0 for no values or a zero sum.

    Computed from the sorted values x_(1) <= ... <= x_(n) as sum_i (2i - n - 1) x_(i) / (n sum_i x_i).
    """
    x = np.sort(np.asarray(list(values), dtype=float))
    n = x.size
    total = float(x.sum()) if n else 0.0
    if n == 0 or total <= 0.0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * x) / (n * total))


def imbalance(run_dir: Path) -> dict[str, Any]:
    """Volume / demand per site and hour, the site x site and hour x site matrices, Gini coefficients and the
    busiest links of a run folder (definitions: module docstring)."""
    con, missing = open_run(Path(run_dir), ("jobs", "transfers", "sites"))
    try:
        return _imbalance(con, missing)
    finally:
        con.close()


def _imbalance(con: duckdb.DuckDBPyConnection, missing: list[str]) -> dict[str, Any]:
    notes = []
    if "transfers" in missing:
        notes.append("no transfers.parquet: no transfer volume")
    if "jobs" in missing:
        notes.append("no jobs.parquet: no job demand")
    if "sites" in missing:
        notes.append("no sites.parquet: a job's site is its computingsite name")
    create_job_site_view(con)
    con.execute(
        f"""
        CREATE VIEW vol AS
        SELECT {rse_site_sql('src_rse')} AS src_site, {rse_site_sql('dst_rse')} AS dst_site,
               coalesce(bytes, 0) AS bytes, CAST(floor(epoch(transferred_at) / {HOUR_S}) AS BIGINT) AS h
        FROM transfers WHERE event_type = '{TRANSFER_DONE}' AND transferred_at IS NOT NULL
        """
    )
    con.execute(
        f"""
        CREATE VIEW dem AS
        SELECT site, coalesce(inputfilebytes, 0) AS bytes, CAST(floor(epoch(starttime) / {HOUR_S}) AS BIGINT) AS h
        FROM job_site WHERE starttime IS NOT NULL AND site IS NOT NULL
        """
    )

    def q(sql: str) -> pa.Table:
        return fetch_arrow(con, sql)

    sites = [r[0] for r in con.execute(
        """
        SELECT DISTINCT s FROM (
            SELECT dst_site AS s FROM vol UNION SELECT src_site FROM vol UNION SELECT site FROM dem
            UNION SELECT atlas_site FROM sites
        ) WHERE s IS NOT NULL ORDER BY s
        """
    ).fetchall()]
    span = con.execute("SELECT min(h), max(h) FROM (SELECT h FROM vol UNION ALL SELECT h FROM dem)").fetchall()[0]
    hours = list(range(span[0], span[1] + 1)) if span and span[0] is not None else []

    volume_site = q("SELECT dst_site AS site, sum(bytes)::BIGINT AS bytes, count(*)::BIGINT AS files "
                    "FROM vol GROUP BY dst_site ORDER BY bytes DESC, site")
    volume_hour = q("SELECT h, sum(bytes)::BIGINT AS bytes, count(*)::BIGINT AS files FROM vol GROUP BY h ORDER BY h")
    demand_site = q("SELECT site, sum(bytes)::BIGINT AS bytes, count(*)::BIGINT AS jobs "
                    "FROM dem GROUP BY site ORDER BY bytes DESC, site")
    demand_hour = q("SELECT h, sum(bytes)::BIGINT AS bytes, count(*)::BIGINT AS jobs FROM dem GROUP BY h ORDER BY h")

    pairs = q("SELECT src_site, dst_site, sum(bytes)::BIGINT AS bytes, count(*)::BIGINT AS files FROM vol "
              "WHERE src_site IS NOT NULL AND dst_site IS NOT NULL GROUP BY ALL")
    busiest = sorted(pairs.to_pylist(), key=lambda r: (-r["bytes"], -r["files"], r["src_site"], r["dst_site"]))
    matrix_sites = sorted({r["src_site"] for r in busiest} | {r["dst_site"] for r in busiest})
    cells = {(r["src_site"], r["dst_site"]): r["bytes"] for r in busiest}
    site_matrix = pa.table(
        {"src_site": pa.array(matrix_sites, pa.string())}
        | {d: pa.array([cells.get((s, d), 0) for s in matrix_sites], pa.int64()) for d in matrix_sites}
    )

    vol_by_site = dict(zip(volume_site["site"].to_pylist(), volume_site["bytes"].to_pylist(), strict=True))
    dem_by_site = dict(zip(demand_site["site"].to_pylist(), demand_site["bytes"].to_pylist(), strict=True))
    vol_by_hour = dict(zip(volume_hour["h"].to_pylist(), volume_hour["bytes"].to_pylist(), strict=True))
    dem_by_hour = dict(zip(demand_hour["h"].to_pylist(), demand_hour["bytes"].to_pylist(), strict=True))

    return {
        "volume_per_site": volume_site,
        "volume_per_hour": _with_hour(volume_hour),
        "demand_per_site": demand_site,
        "demand_per_hour": _with_hour(demand_hour),
        "site_matrix": site_matrix,
        "hour_site_volume": _hour_site(q("SELECT h, dst_site AS site, sum(bytes)::BIGINT AS bytes FROM vol "
                                         "WHERE dst_site IS NOT NULL GROUP BY ALL"), hours, sites),
        "hour_site_demand": _hour_site(q("SELECT h, site, sum(bytes)::BIGINT AS bytes FROM dem GROUP BY ALL"),
                                       hours, sites),
        "gini": {
            "volume_sites": gini(vol_by_site.get(s, 0) for s in sites),
            "volume_hours": gini(vol_by_hour.get(h, 0) for h in hours),
            "demand_sites": gini(dem_by_site.get(s, 0) for s in sites),
            "demand_hours": gini(dem_by_hour.get(h, 0) for h in hours),
        },
        "busiest_links": busiest[:TOP_LINKS],
        "notes": notes,
    }


def _hours(h: Iterable[int]) -> pa.Array:
    return pa.array([x * HOUR_S * 1000 for x in h], pa.int64()).cast(TS)


def _with_hour(table: pa.Table) -> pa.Table:
    """Replace the hour index ``h`` by an ``hour`` timestamp (start of the UTC hour)."""
    return table.drop_columns(["h"]).add_column(0, "hour", _hours(table["h"].to_pylist()))


def _hour_site(long: pa.Table, hours: list[int], sites: list[str]) -> pa.Table:
    cells = {(r["h"], r["site"]): r["bytes"] for r in long.to_pylist()}
    return pa.table(
        {"hour": _hours(hours)}
        | {s: pa.array([cells.get((h, s), 0) for h in hours], pa.int64()) for s in sites}
    )

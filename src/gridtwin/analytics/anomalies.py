"""Data-placement anomalies of a run folder, found with DuckDB over its Parquet records and a job-to-transfer
links table (``pandaid``, ``request_id``, ``role`` 'input'/'output', ``confidence``, ``rule``; e.g. the output
of :mod:`gridtwin.analytics.linker`). Never reads ``truth/``.

Conventions
-----------
* A *sent* transfer is a ``transfer-done`` row of ``transfers.parquet``; failed attempts moved nothing and
  are never examples.
* The *site* of an RSE is its name up to the last ``_`` (``BNL-ATLAS_DATADISK`` -> ``BNL-ATLAS``).
* The *site* of a job is the ATLAS site of its ``computingsite`` from ``sites.parquet``; without that file
  (real data may lack it) the queue name itself is used and a note says so.
* Tables that are missing from the run folder are read as empty (``jobs``, ``job_files``, ``transfers``,
  ``deletions``, ``sites``): the classes that need them come out empty, with a note.

Every class table has the same columns (:data:`ANOMALY_SCHEMA`): ``pandaid``, ``request_id``, ``scope``,
``name``, ``site`` (where the anomaly is charged: the job's site, or the transfer's destination site),
``src_site``, ``dst_site``, ``src_rse``, ``dst_rse``, ``activity``, ``bytes``, ``time``, ``ref_time`` and a
short ``detail``. The schema metadata holds ``rule`` (the rule below) and ``note`` (what could not be done).

Rules
-----
late
    a link with role 'input' whose transfer was sent (``transferred_at``) strictly after the linked job's
    ``starttime`` (jobs that never started are skipped). ``time`` = transferred_at, ``ref_time`` = starttime.
redundant
    a sent transfer of a file (``scope``, ``name``) to a ``dst_rse`` that had already been sent there by
    another transfer at most ``redundant_window_s`` earlier (by ``transferred_at``; ties broken by
    ``request_id``). One example per repeat (the later send); ``ref_time`` = the earlier send.
misdirected
    a (job, sent transfer) pair, the pair coming from a link with role 'input' or from the transfer's
    dataset ``..._dis<pandaid>`` naming a job in ``jobs``, where the transfer's destination site differs
    from the site where the job actually ran: the job's own site if it started, else the site of the
    first started job of its retry chain (``parentid`` links), else its own ``computingsite``'s site.
    ``ref_time`` = starttime of the job that ran. (A ``_dis`` pair without a link is also *unused*.)
unused
    a sent transfer whose ``request_id`` has no row in the links table (any role). Transfers of activities
    that feed no job by design (Data Brokering / Rebalancing) are counted too; the summary breaks every
    class down by activity. ``ref_time`` = created_at.
locality
    two kinds, named at the start of ``detail``:

    * ``direct_remote``: a started job with ``transfertype`` = 'direct' and a ``sourcesite`` other than its
      own site (PanDA says it streamed its input from a remote site). One row per job, ``bytes`` =
      inputfilebytes, ``src_site`` = sourcesite.
    * ``no_local_replica`` (needs ``job_files``): an input file of a started, non-direct job that PanDA had
      to dispatch (``job_files.dispatchdblock`` set) and for which the records show no local replica at the
      job's site: no sent transfer of the file to an RSE of that site arriving by the job's ``endtime`` (any
      time if it has none), and no started non-direct job at that site, starting by that time, that read
      the file without dispatch (``dispatchdblock`` null, i.e. PanDA found it there). Replicas that existed
      before the records begin leave no evidence, so they show up here. One row per (job, file).

    ``sourcesite`` of a non-direct job is where its input was copied *from* before a local read, so it is
    not evidence of a remote read by itself. ``time`` = starttime.
distant_source
    only with a ``closeness`` map ((src_site, dst_site) -> int, lower is closer); skipped with a note
    otherwise. A sent transfer whose ``closeness[src_site, dst_site]`` is larger than
    ``closeness[h, dst_site]`` for some holder site ``h`` of the file at the transfer's ``created_at``,
    ``h`` being neither the source nor the destination site. Holders: destination RSEs of earlier sent
    transfers of the file (``transferred_at`` <= created_at) with no ``deletion-done`` of the file at that
    RSE (``deletions.parquet``, if present) between arrival and created_at. Pairs absent from the map are
    not compared. ``detail`` names the closest holder; ``ref_time`` = created_at.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from gridtwin.analytics.duck import fetch_arrow
from gridtwin.record import schema

ANOMALY_CLASSES = ("late", "redundant", "misdirected", "unused", "locality", "distant_source")

ANOMALY_SCHEMA = pa.schema(
    [
        ("pandaid", pa.int64()),
        ("request_id", pa.string()),
        ("scope", pa.string()),
        ("name", pa.string()),
        ("site", pa.string()),
        ("src_site", pa.string()),
        ("dst_site", pa.string()),
        ("src_rse", pa.string()),
        ("dst_rse", pa.string()),
        ("activity", pa.string()),
        ("bytes", pa.int64()),
        ("time", schema.TS),
        ("ref_time", schema.TS),
        ("detail", pa.string()),
    ]
)

SUMMARY_SCHEMA = pa.schema(
    [
        ("class", pa.string()),
        ("dimension", pa.string()),
        ("key", pa.string()),
        ("count", pa.int64()),
        ("bytes", pa.int64()),
    ]
)
"""``dimension`` is 'all' (key null), 'site', 'link' (``src_site->dst_site``) or 'activity'."""

LINKS_SCHEMA = pa.schema(
    [
        ("pandaid", pa.int64()),
        ("request_id", pa.string()),
        ("role", pa.string()),
    ]
)

RECORD_TABLES = ("jobs", "job_files", "transfers", "sites", "deletions")
TRANSFER_DONE = "transfer-done"


def rse_site_sql(column: str) -> str:
    """SQL expression: the ATLAS site of an RSE name (text up to the last ``_``)."""
    return f"regexp_replace({column}, '_[^_]*$', '')"


def open_run(run_dir: Path, tables: tuple[str, ...] = RECORD_TABLES) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    """A DuckDB connection (UTC) with one view per record table; missing tables are empty. Returns the names
    of the missing ones too."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    missing = []
    for name in tables:
        path = Path(run_dir) / f"{name}.parquet"
        if path.exists():
            quoted = str(path).replace("'", "''")
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{quoted}')")
        else:
            missing.append(name)
            con.register(name, schema.TABLES[name].empty_table())
    return con, missing


def create_job_site_view(con: duckdb.DuckDBPyConnection) -> None:
    """View ``job_site``: ``jobs`` plus ``site``, the ATLAS site of the computingsite (else the queue name)."""
    con.execute(
        """
        CREATE VIEW job_site AS
        SELECT j.*, coalesce(s.atlas_site, j.computingsite) AS site
        FROM jobs j LEFT JOIN (SELECT site AS queue, any_value(atlas_site) AS atlas_site FROM sites GROUP BY site) s
          ON s.queue = j.computingsite
        """
    )


def find_anomalies(
    run_dir: Path,
    links: pa.Table,
    *,
    redundant_window_s: float = 86400.0,
    closeness: dict[tuple[str, str], int] | None = None,
) -> dict[str, pa.Table]:
    """One :data:`ANOMALY_SCHEMA` table per class of :data:`ANOMALY_CLASSES` (rules: module docstring)."""
    con, missing = open_run(Path(run_dir))
    try:
        return _find(con, missing, links, float(redundant_window_s), closeness)
    finally:
        con.close()


def _find(
    con: duckdb.DuckDBPyConnection,
    missing: list[str],
    links: pa.Table,
    window: float,
    closeness: dict[tuple[str, str], int] | None,
) -> dict[str, pa.Table]:
    links = links.select(list(LINKS_SCHEMA.names)).cast(LINKS_SCHEMA)
    con.register("links_in", links)
    con.execute("CREATE VIEW links AS SELECT DISTINCT pandaid, request_id, role FROM links_in")
    create_job_site_view(con)
    con.execute(
        f"""
        CREATE VIEW done AS
        SELECT *, {rse_site_sql('src_rse')} AS src_site, {rse_site_sql('dst_rse')} AS dst_site
        FROM transfers WHERE event_type = '{TRANSFER_DONE}'
        """
    )
    notes: dict[str, list[str]] = {c: [] for c in ANOMALY_CLASSES}
    uses = {
        "late": ("jobs", "transfers"),
        "redundant": ("transfers",),
        "misdirected": ("jobs", "transfers"),
        "unused": ("transfers",),
        "locality": ("jobs",),
        "distant_source": ("transfers",),
    }
    for cls, needed in uses.items():
        absent = [t for t in needed if t in missing]
        if absent:
            notes[cls].append(f"no {', '.join(t + '.parquet' for t in absent)}: class not computed")
    if "sites" in missing:
        for cls in ("late", "misdirected", "locality"):
            notes[cls].append("no sites.parquet: a job's site is its computingsite name")
    if "job_files" in missing:
        notes["locality"].append("no job_files.parquet: no_local_replica not checked")
    if "deletions" in missing:
        notes["distant_source"].append("no deletions.parquet: holders assumed to keep their replicas")

    out = {
        "late": _late(con),
        "redundant": _redundant(con, window),
        "misdirected": _misdirected(con),
        "unused": _unused(con),
        "locality": _locality(con),
    }
    if closeness:
        out["distant_source"] = _distant(con, closeness)
    else:
        notes["distant_source"].append("no closeness map given: class skipped")
        out["distant_source"] = ANOMALY_SCHEMA.empty_table()
    rules = _rules()
    return {
        cls: out[cls].replace_schema_metadata({"rule": rules[cls], "note": "; ".join(notes[cls])})
        for cls in ANOMALY_CLASSES
    }


def _rules() -> dict[str, str]:
    """The rule paragraph of each class, from the module docstring."""
    text = (__doc__ or "").split("Rules\n-----\n", 1)[-1]
    rules: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line in ANOMALY_CLASSES:
            current = line
            rules[current] = ""
        elif current and line.strip():
            rules[current] = (rules[current] + " " + line.strip()).strip()
    return rules


def _query(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run ``sql`` (selecting the ANOMALY_SCHEMA columns by name) and cast to the schema."""
    table = fetch_arrow(con, sql)
    return table.select(ANOMALY_SCHEMA.names).cast(ANOMALY_SCHEMA)


def _secs(a: str, b: str) -> str:
    return f"CAST(round(epoch({a}) - epoch({b})) AS BIGINT)"


def _late(con: duckdb.DuckDBPyConnection) -> pa.Table:
    return _query(
        con,
        f"""
        SELECT l.pandaid, d.request_id, d.scope, d.name, j.site, d.src_site, d.dst_site, d.src_rse, d.dst_rse,
               d.activity, d.bytes, d.transferred_at AS time, j.starttime AS ref_time,
               'arrived ' || {_secs('d.transferred_at', 'j.starttime')} || ' s after job start' AS detail
        FROM links l JOIN done d ON d.request_id = l.request_id JOIN job_site j ON j.pandaid = l.pandaid
        WHERE l.role = 'input' AND j.starttime IS NOT NULL AND d.transferred_at > j.starttime
        ORDER BY l.pandaid, d.request_id
        """,
    )


def _redundant(con: duckdb.DuckDBPyConnection, window: float) -> pa.Table:
    return _query(
        con,
        f"""
        SELECT NULL::BIGINT AS pandaid, d.request_id, d.scope, d.name, d.dst_site AS site, d.src_site, d.dst_site,
               d.src_rse, d.dst_rse, d.activity, d.bytes, d.transferred_at AS time, p.transferred_at AS ref_time,
               'already sent by ' || p.request_id || ' ' || {_secs('d.transferred_at', 'p.transferred_at')}
                 || ' s earlier' AS detail
        FROM done d JOIN done p
          ON p.scope = d.scope AND p.name = d.name AND p.dst_rse = d.dst_rse AND p.request_id <> d.request_id
         AND (p.transferred_at < d.transferred_at
              OR (p.transferred_at = d.transferred_at AND p.request_id < d.request_id))
         AND epoch(d.transferred_at) - epoch(p.transferred_at) <= {window!r}
        QUALIFY row_number() OVER (PARTITION BY d.request_id ORDER BY p.transferred_at DESC, p.request_id DESC) = 1
        ORDER BY d.request_id
        """,
    )


def _misdirected(con: duckdb.DuckDBPyConnection) -> pa.Table:
    return _query(
        con,
        """
        WITH RECURSIVE chain(root, pandaid, depth) AS (
            SELECT pandaid, pandaid, 0 FROM jobs
            UNION ALL
            SELECT c.root, j.pandaid, c.depth + 1
            FROM chain c JOIN jobs j ON j.parentid = c.pandaid AND j.pandaid <> c.pandaid
            WHERE c.depth < 50
        ),
        ran AS (
            SELECT c.root, arg_min(j.pandaid, c.depth) AS ran_id, arg_min(j.site, c.depth) AS ran_site,
                   arg_min(j.starttime, c.depth) AS ran_start
            FROM chain c JOIN job_site j ON j.pandaid = c.pandaid
            WHERE j.starttime IS NOT NULL GROUP BY c.root
        ),
        pairs AS (
            SELECT pandaid, request_id, string_agg(DISTINCT via, '+' ORDER BY via) AS via FROM (
                SELECT pandaid, request_id, 'link' AS via FROM links WHERE role = 'input'
                UNION ALL
                SELECT TRY_CAST(regexp_extract(dataset, '_dis([0-9]+)$', 1) AS BIGINT), request_id, 'dis'
                FROM done WHERE regexp_matches(dataset, '_dis[0-9]+$')
            ) GROUP BY pandaid, request_id
        )
        SELECT p.pandaid, d.request_id, d.scope, d.name, coalesce(r.ran_site, j.site) AS site, d.src_site,
               d.dst_site, d.src_rse, d.dst_rse, d.activity, d.bytes, d.transferred_at AS time,
               r.ran_start AS ref_time,
               'sent to ' || d.dst_site || ' but job ran at ' || coalesce(r.ran_site, j.site)
                 || CASE WHEN r.ran_id IS NOT NULL AND r.ran_id <> p.pandaid
                         THEN ' (retry ' || r.ran_id || ')' ELSE '' END
                 || ' [' || p.via || ']' AS detail
        FROM pairs p JOIN done d ON d.request_id = p.request_id JOIN job_site j ON j.pandaid = p.pandaid
        LEFT JOIN ran r ON r.root = p.pandaid
        WHERE coalesce(r.ran_site, j.site) <> d.dst_site
        ORDER BY p.pandaid, d.request_id
        """,
    )


def _unused(con: duckdb.DuckDBPyConnection) -> pa.Table:
    return _query(
        con,
        """
        SELECT NULL::BIGINT AS pandaid, d.request_id, d.scope, d.name, d.dst_site AS site, d.src_site, d.dst_site,
               d.src_rse, d.dst_rse, d.activity, d.bytes, d.transferred_at AS time, d.created_at AS ref_time,
               'no linked job (' || coalesce(d.activity, '?') || ', dataset ' || coalesce(d.dataset, '?') || ')'
                 AS detail
        FROM done d WHERE NOT EXISTS (SELECT 1 FROM links l WHERE l.request_id = d.request_id)
        ORDER BY d.request_id
        """,
    )


def _locality(con: duckdb.DuckDBPyConnection) -> pa.Table:
    return _query(
        con,
        """
        SELECT * FROM (
            SELECT pandaid, NULL AS request_id, NULL AS scope, NULL AS name, site, sourcesite AS src_site,
                   site AS dst_site, NULL AS src_rse, NULL AS dst_rse, NULL AS activity, inputfilebytes AS bytes,
                   starttime AS time, NULL::TIMESTAMPTZ AS ref_time,
                   'direct_remote: streamed from ' || sourcesite AS detail
            FROM job_site
            WHERE starttime IS NOT NULL AND transfertype = 'direct' AND sourcesite IS NOT NULL
              AND sourcesite <> site
            UNION ALL
            SELECT f.pandaid, NULL, f.scope, f.lfn, j.site, j.sourcesite, j.site, NULL, NULL, NULL, f.fsize,
                   j.starttime, NULL::TIMESTAMPTZ,
                   'no_local_replica: nothing shows ' || f.scope || ':' || f.lfn || ' at ' || j.site
            FROM job_files f JOIN job_site j ON j.pandaid = f.pandaid
            WHERE f.type = 'input' AND f.dispatchdblock IS NOT NULL AND j.starttime IS NOT NULL
              AND coalesce(j.transfertype, '') <> 'direct'
              AND NOT EXISTS (
                  SELECT 1 FROM done d
                  WHERE d.scope = f.scope AND d.name = f.lfn AND d.dst_site = j.site
                    AND (j.endtime IS NULL OR d.transferred_at <= j.endtime))
              AND NOT EXISTS (
                  SELECT 1 FROM job_files g JOIN job_site k ON k.pandaid = g.pandaid
                  WHERE g.type = 'input' AND g.scope = f.scope AND g.lfn = f.lfn AND g.dispatchdblock IS NULL
                    AND k.site = j.site AND k.starttime IS NOT NULL AND coalesce(k.transfertype, '') <> 'direct'
                    AND (j.endtime IS NULL OR k.starttime <= j.endtime))
        ) ORDER BY pandaid, scope NULLS FIRST, name NULLS FIRST
        """,
    )


def _distant(con: duckdb.DuckDBPyConnection, closeness: dict[tuple[str, str], int]) -> pa.Table:
    table = pa.table(
        {
            "src": pa.array([k[0] for k in closeness], pa.string()),
            "dst": pa.array([k[1] for k in closeness], pa.string()),
            "closeness": pa.array(list(closeness.values()), pa.int64()),
        }
    )
    con.register("closeness", table)
    return _query(
        con,
        """
        WITH holders AS (
            SELECT DISTINCT t.request_id, h.dst_site AS holder_site
            FROM done t JOIN done h
              ON h.scope = t.scope AND h.name = t.name AND h.request_id <> t.request_id
             AND h.transferred_at <= t.created_at
             AND h.dst_site <> t.dst_site AND h.dst_site <> t.src_site
            WHERE NOT EXISTS (
                SELECT 1 FROM deletions x
                WHERE x.scope = h.scope AND x.name = h.name AND x.rse = h.dst_rse
                  AND x.created_at >= h.transferred_at AND x.created_at <= t.created_at)
        ),
        best AS (
            SELECT h.request_id, h.holder_site, c.closeness
            FROM holders h JOIN done t ON t.request_id = h.request_id
            JOIN closeness c ON c.src = h.holder_site AND c.dst = t.dst_site
            QUALIFY row_number() OVER (PARTITION BY h.request_id ORDER BY c.closeness, h.holder_site) = 1
        )
        SELECT NULL::BIGINT AS pandaid, t.request_id, t.scope, t.name, t.dst_site AS site, t.src_site, t.dst_site,
               t.src_rse, t.dst_rse, t.activity, t.bytes, t.transferred_at AS time, t.created_at AS ref_time,
               'source ' || t.src_site || ' (closeness ' || cs.closeness || ') but ' || b.holder_site
                 || ' (closeness ' || b.closeness || ') held it' AS detail
        FROM done t JOIN closeness cs ON cs.src = t.src_site AND cs.dst = t.dst_site
        JOIN best b ON b.request_id = t.request_id
        WHERE b.closeness < cs.closeness
        ORDER BY t.request_id
        """,
    )


def anomaly_summary(anomalies: dict[str, pa.Table]) -> pa.Table:
    """Counts and bytes (null bytes count as 0) per class ('all'), and per class and site, link
    (``src_site->dst_site``, rows with both ends known) and activity (rows with one), as :data:`SUMMARY_SCHEMA`.
    Every class of ``anomalies`` gets an 'all' row, even with no examples."""
    parts = []
    for cls, table in anomalies.items():
        t = table.select(ANOMALY_SCHEMA.names).cast(ANOMALY_SCHEMA).replace_schema_metadata(None)
        parts.append(t.append_column("class", pa.array([cls] * t.num_rows, pa.string())))
    rows = pa.concat_tables(parts) if parts else ANOMALY_SCHEMA.append(pa.field("class", pa.string())).empty_table()
    classes = pa.table({"class": pa.array(list(anomalies), pa.string()),
                        "ord": pa.array(range(len(anomalies)), pa.int64())})
    con = duckdb.connect()
    try:
        con.register("rows_in", rows)
        con.register("classes", classes)
        table = fetch_arrow(
            con,
            """
            WITH s AS (
                SELECT c.class, 'all' AS dimension, NULL AS key, count(r.class) AS count,
                       coalesce(sum(r.bytes), 0) AS bytes, c.ord, 0 AS dord
                FROM classes c LEFT JOIN rows_in r ON r.class = c.class GROUP BY c.class, c.ord
                UNION ALL
                SELECT r.class, 'site', r.site, count(*), coalesce(sum(r.bytes), 0), c.ord, 1
                FROM rows_in r JOIN classes c USING (class) WHERE r.site IS NOT NULL GROUP BY ALL
                UNION ALL
                SELECT r.class, 'link', r.src_site || '->' || r.dst_site, count(*), coalesce(sum(r.bytes), 0),
                       c.ord, 2
                FROM rows_in r JOIN classes c USING (class)
                WHERE r.src_site IS NOT NULL AND r.dst_site IS NOT NULL GROUP BY ALL
                UNION ALL
                SELECT r.class, 'activity', r.activity, count(*), coalesce(sum(r.bytes), 0), c.ord, 3
                FROM rows_in r JOIN classes c USING (class) WHERE r.activity IS NOT NULL GROUP BY ALL
            )
            SELECT class, dimension, key, count, bytes FROM s ORDER BY ord, dord, bytes DESC, count DESC, key
            """,
        )
    finally:
        con.close()
    return table.cast(SUMMARY_SCHEMA)

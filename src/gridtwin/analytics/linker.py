"""Link jobs to the transfers that fed them, from file-level metadata only (DuckDB over the run folder).

Nothing here reads ``truth/``, except :func:`score_links`, which scores a result against it.

Keys
----
* A job's ATLAS site is ``sites.atlas_site`` of its queue (``jobs.computingsite``); when sites.parquet
  is missing (or lacks the queue) the queue name itself is used. An RSE's site is its name before the
  last ``_`` (``BNL-ATLAS_DATADISK`` -> ``BNL-ATLAS``).
* A transfer attempt's *end* is ``transferred_at`` (else started_at, submitted_at, created_at).
* A job *waited for input* when it has a dispatch block (``job_files.dispatchdblock`` of the input row,
  else ``jobs.dispatchdblock``); only such jobs, and only their input rows, take input links.
* Input time window (tolerance ``tol``): the attempt ended at or after the job's ``creationtime - tol``
  and was created at or before the job's ``starttime + tol`` (``endtime``, then ``modificationtime``,
  when it never started). Output time window: the attempt was created within
  [``starttime`` (else creationtime) ``- tol``, ``modificationtime`` (else endtime) ``+ tol``].

Rules (one link per (pandaid, request_id); the highest-confidence rule wins)
-----------------------------------------------------------------------------
=============================  =====  ============================================================
rule                           conf.  condition (plus the site and time conditions above)
=============================  =====  ============================================================
``input_dis_name``             1.0    (scope, name) = an input row of the job, dataset = its dispatch block,
                                      dst RSE at the job's site
``input_dis_site``             0.8    dataset = ``jobs.dispatchdblock``, dst RSE at the job's site (the name is
                                      blank, or blank in the job's job_files rows)
``input_name_site_shared``     0.6    (scope, name) = an input row, dst RSE at the job's site, dataset is
                                      another job's dispatch block: the in-flight transfer the job joined
``input_name_site_nodataset``  0.6    same, dataset blank
``output_name_sub``            1.0    (scope, name) = an output/log row, dataset = the job's destinationdblock
``output_name_dst_nodataset``  0.7    (scope, name) = an output/log row, dataset blank, dst_rse =
                                      destinationse
``output_sub_noname``          0.5    name blank (or in no output/log row), first attempt (no
                                      previous_request_id); dataset = destinationdblock, src RSE at the job's
                                      site, created within ``tol`` of the job's ``endtime``; the job nearest
                                      in time (ties all kept)
``retry_chain``                x0.9   another attempt of a linked attempt's retry chain (previous_request_id,
                                      either direction) that also fits the job's time window
=============================  =====  ============================================================

A pair that fits its time window only thanks to ``tol`` (not with ``tol = 0``) has its confidence halved.

Unmatched jobs are those that expected transfers and got no link of that role: input, a job with a
dispatch block; output, a job whose destinationse is at another ATLAS site and that went through
``transferring`` (job_status_log; without it, a finished job). Unmatched transfers are all the others,
with the reason found (a placement transfer, 'Data Brokering' or 'Data Rebalancing', normally lands there:
no job lists its dataset and no waiting job at its destination lists its file in time).
Missing tables are reported in ``notes``; without job_files only the dataset rules run.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gridtwin.analytics.duck import fetch_arrow
from gridtwin.record import schema as SC

LINKS = pa.schema([("pandaid", pa.int64()), ("request_id", pa.string()), ("role", pa.string()),
                   ("confidence", pa.float64()), ("rule", pa.string())])
UNMATCHED_JOBS = pa.schema([("pandaid", pa.int64()), ("role", pa.string()), ("reason", pa.string())])
UNMATCHED_TRANSFERS = pa.schema([("request_id", pa.string()), ("dataset", pa.string()), ("name", pa.string()),
                                 ("activity", pa.string()), ("reason", pa.string())])

RULE_CONFIDENCE = {
    "input_dis_name": 1.0,
    "input_dis_site": 0.8,
    "input_name_site_shared": 0.6,
    "input_name_site_nodataset": 0.6,
    "output_name_sub": 1.0,
    "output_name_dst_nodataset": 0.7,
    "output_sub_noname": 0.5,
}
RETRY_FACTOR = 0.9
TOLERANCE_FACTOR = 0.5


@dataclass
class LinkResult:
    links: pa.Table
    unmatched_jobs: pa.Table
    unmatched_transfers: pa.Table
    notes: list[str] = field(default_factory=list)


def _site(col: str) -> str:
    return f"regexp_replace({col}, '_[^_]*$', '')"


def _register(con: duckdb.DuckDBPyConnection, run_dir: Path, notes: list[str]) -> dict[str, bool]:
    have = {}
    for name, view in (("jobs", "jobs"), ("job_files", "job_files"), ("transfers", "transfers"),
                       ("sites", "sites"), ("job_status_log", "job_status_log")):
        path = run_dir / f"{name}.parquet"
        have[name] = path.exists()
        if have[name]:
            con.execute(f"CREATE VIEW {view}_raw AS SELECT * FROM read_parquet('{path.as_posix()}')")
        else:
            con.register(f"{view}_raw_t", SC.TABLES[name].empty_table())
            con.execute(f"CREATE VIEW {view}_raw AS SELECT * FROM {view}_raw_t")
    if not have["jobs"] or not have["transfers"]:
        notes.append("jobs.parquet or transfers.parquet missing: nothing to link")
    if not have["sites"]:
        notes.append("sites.parquet missing: a queue's ATLAS site is taken to be the queue name")
    if not have["job_files"]:
        notes.append("job_files.parquet missing: file-level rules skipped; only dataset rules "
                     "(input_dis_site, output_sub_noname) and retry chains used")
    if not have["job_status_log"]:
        notes.append("job_status_log.parquet missing: output expected for finished jobs sending off-site")
    return have


def link_jobs_to_transfers(run_dir: Path, tolerance_s: float = 60.0) -> LinkResult:
    """Match jobs to the transfer attempts that fed them (see the module docstring for the rules)."""
    run_dir = Path(run_dir)
    notes: list[str] = []
    con = duckdb.connect()
    have = _register(con, run_dir, notes)
    tol = f"INTERVAL {float(tolerance_s) * 1000.0:.0f} MILLISECOND"
    con.execute(f"""
    CREATE TEMP TABLE j AS
    SELECT j.pandaid, coalesce(s.atlas_site, j.computingsite) AS site, j.creationtime, j.endtime,
           j.modificationtime, j.jobstatus, j.dispatchdblock, j.destinationdblock, j.destinationse,
           coalesce(j.starttime, j.endtime, j.modificationtime) AS in_last,
           coalesce(j.starttime, j.creationtime) AS out_first,
           coalesce(j.modificationtime, j.endtime) AS out_last
    FROM jobs_raw j LEFT JOIN (SELECT DISTINCT site, atlas_site FROM sites_raw) s ON s.site = j.computingsite;
    CREATE TEMP TABLE t AS
    SELECT request_id, previous_request_id, scope, name, dataset, dst_rse, activity, created_at,
           coalesce(transferred_at, started_at, submitted_at, created_at) AS t_end,
           {_site('dst_rse')} AS dst_site, {_site('src_rse')} AS src_site
    FROM transfers_raw;
    CREATE TEMP TABLE fin AS
    SELECT f.pandaid, f.scope, f.lfn, coalesce(f.dispatchdblock, j.dispatchdblock) AS dis
    FROM job_files_raw f JOIN j USING (pandaid)
    WHERE f.type = 'input' AND coalesce(f.dispatchdblock, j.dispatchdblock) IS NOT NULL;
    CREATE TEMP TABLE fout AS
    SELECT f.pandaid, f.scope, f.lfn, coalesce(f.dataset, j.destinationdblock) AS sub,
           coalesce(f.destinationse, j.destinationse) AS dse
    FROM job_files_raw f JOIN j USING (pandaid) WHERE f.type IN ('output', 'log');
    """)
    in_win = f"t.t_end >= j.creationtime - {tol} AND t.created_at <= j.in_last + {tol}"
    in_strict = "(t.t_end >= j.creationtime AND t.created_at <= j.in_last)"
    out_win = f"t.created_at >= j.out_first - {tol} AND t.created_at <= j.out_last + {tol}"
    out_strict = "(t.created_at >= j.out_first AND t.created_at <= j.out_last)"
    c = RULE_CONFIDENCE
    con.execute(f"""
    CREATE TEMP TABLE cand AS
    SELECT j.pandaid, t.request_id, 'input' AS role,
           CASE WHEN t.dataset = fin.dis THEN 'input_dis_name'
                WHEN t.dataset IS NULL THEN 'input_name_site_nodataset'
                ELSE 'input_name_site_shared' END AS rule, {in_strict} AS strict
    FROM t JOIN fin ON t.scope = fin.scope AND t.name = fin.lfn
           JOIN j ON j.pandaid = fin.pandaid AND j.site = t.dst_site
    WHERE {in_win}
    UNION ALL
    SELECT j.pandaid, t.request_id, 'input', 'input_dis_site', {in_strict}
    FROM t JOIN j ON t.dataset = j.dispatchdblock AND j.site = t.dst_site
    WHERE {in_win}
    UNION ALL
    SELECT j.pandaid, t.request_id, 'output',
           CASE WHEN t.dataset = fout.sub THEN 'output_name_sub' ELSE 'output_name_dst_nodataset' END,
           {out_strict}
    FROM t JOIN fout ON t.scope = fout.scope AND t.name = fout.lfn JOIN j ON j.pandaid = fout.pandaid
    WHERE (t.dataset = fout.sub OR (t.dataset IS NULL AND t.dst_rse = fout.dse)) AND {out_win}
    UNION ALL
    SELECT pandaid, request_id, 'output', 'output_sub_noname', strict FROM (
        SELECT j.pandaid, t.request_id, {out_strict} AND t.created_at >= j.endtime AS strict,
               rank() OVER (PARTITION BY t.request_id
                            ORDER BY abs(epoch_ms(t.created_at) - epoch_ms(j.endtime))) AS rk
        FROM t JOIN j ON t.dataset = j.destinationdblock AND j.site = t.src_site
        WHERE t.previous_request_id IS NULL
          AND (t.name IS NULL OR NOT EXISTS (SELECT 1 FROM fout WHERE fout.scope = t.scope AND fout.lfn = t.name))
          AND t.created_at BETWEEN j.endtime - {tol} AND j.endtime + {tol} AND {out_win}
    ) WHERE rk = 1;
    CREATE TEMP TABLE conf(rule VARCHAR, c DOUBLE);
    INSERT INTO conf VALUES {", ".join(f"('{k}', {v})" for k, v in c.items())};
    CREATE TEMP TABLE direct AS
    SELECT pandaid, request_id, role, rule, confidence FROM (
        SELECT cand.*, conf.c * CASE WHEN strict THEN 1.0 ELSE {TOLERANCE_FACTOR} END AS confidence,
               row_number() OVER (PARTITION BY pandaid, request_id, role ORDER BY conf.c DESC, strict DESC) AS rn
        FROM cand JOIN conf USING (rule)
    ) WHERE rn = 1;
    """)
    # retry chains: every attempt gets the id of its chain's first attempt present in the table
    con.execute(f"""
    CREATE TEMP TABLE chain AS
    WITH RECURSIVE ch(request_id, root, depth) AS (
        SELECT request_id, request_id, 0 FROM t
        WHERE previous_request_id IS NULL OR previous_request_id NOT IN (SELECT request_id FROM t)
        UNION ALL
        SELECT t.request_id, ch.root, ch.depth + 1 FROM t JOIN ch ON t.previous_request_id = ch.request_id
        WHERE ch.depth < 1000
    ) SELECT request_id, root FROM ch;
    CREATE TEMP TABLE inherited AS
    SELECT pandaid, request_id, role, 'retry_chain' AS rule, confidence FROM (
        SELECT d.pandaid, t.request_id, d.role,
               d.confidence * {RETRY_FACTOR} * CASE WHEN (d.role = 'input' AND {in_strict})
                   OR (d.role = 'output' AND {out_strict}) THEN 1.0 ELSE {TOLERANCE_FACTOR} END AS confidence,
               row_number() OVER (PARTITION BY d.pandaid, t.request_id, d.role ORDER BY d.confidence DESC) AS rn
        FROM direct d JOIN chain c1 ON c1.request_id = d.request_id
             JOIN chain c2 ON c2.root = c1.root AND c2.request_id <> d.request_id
             JOIN t ON t.request_id = c2.request_id JOIN j ON j.pandaid = d.pandaid
        WHERE (d.role = 'input' AND {in_win}) OR (d.role = 'output' AND {out_win})
    ) WHERE rn = 1;
    CREATE TEMP TABLE links AS
    SELECT pandaid, request_id, role, confidence, rule FROM direct
    UNION ALL
    SELECT i.pandaid, i.request_id, i.role, i.confidence, i.rule FROM inherited i
    WHERE NOT EXISTS (SELECT 1 FROM direct d WHERE d.pandaid = i.pandaid AND d.request_id = i.request_id
                      AND d.role = i.role);
    """)
    links = fetch_arrow(con, "SELECT * FROM links ORDER BY pandaid, role, request_id")
    links = _to_schema(links, LINKS)

    went_transferring = ("pandaid IN (SELECT pandaid FROM job_status_log_raw WHERE jobstatus = 'transferring')"
                         if have["job_status_log"] else "jobstatus = 'finished'")
    unmatched_jobs = fetch_arrow(con, f"""
    SELECT pandaid, 'input' AS role,
           'waited for input (dispatch block ' || coalesce(dispatchdblock, 'in job_files') ||
           ') but no transfer matched' AS reason
    FROM j WHERE (dispatchdblock IS NOT NULL OR pandaid IN (SELECT pandaid FROM fin))
      AND pandaid NOT IN (SELECT pandaid FROM links WHERE role = 'input')
    UNION ALL
    SELECT pandaid, 'output', 'output sent to ' || destinationse || ' but no transfer matched'
    FROM j WHERE destinationse IS NOT NULL AND {_site('destinationse')} <> site AND {went_transferring}
      AND pandaid NOT IN (SELECT pandaid FROM links WHERE role = 'output')
    ORDER BY pandaid, role
    """)
    unmatched_transfers = fetch_arrow(con, """
    SELECT t.request_id, t.dataset, t.name, t.activity,
        CASE WHEN t.name IS NULL AND t.dataset IS NULL THEN 'name and dataset blank'
             WHEN t.dataset IN (SELECT dispatchdblock FROM j) OR t.dataset IN (SELECT destinationdblock FROM j)
                  OR (t.scope, t.name) IN (SELECT (scope, lfn) FROM fin)
                  OR (t.scope, t.name) IN (SELECT (scope, lfn) FROM fout)
                 THEN 'a job lists this file or dataset, but none at this site within the time window'
             ELSE 'no job lists this file or dataset (' || coalesce(t.activity, 'unknown activity') || ')'
        END AS reason
    FROM t WHERE t.request_id NOT IN (SELECT request_id FROM links)
    ORDER BY t.request_id
    """)
    con.close()
    n_t = links.num_rows
    notes.append(f"{n_t} links ({pc.sum(pc.equal(links['role'], 'input')).as_py() or 0} input), "
                 f"{unmatched_jobs.num_rows} unmatched job roles, {unmatched_transfers.num_rows} unmatched transfers")
    return LinkResult(links, _to_schema(unmatched_jobs, UNMATCHED_JOBS),
                      _to_schema(unmatched_transfers, UNMATCHED_TRANSFERS), notes)


def _to_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.table({f.name: table[f.name].cast(f.type) for f in schema}, schema=schema)


def score_links(links: pa.Table, truth: pa.Table) -> dict:
    """Precision and recall of (pandaid, request_id) pairs against the truth table."""
    got = set(zip(links["pandaid"].to_pylist(), links["request_id"].to_pylist(), strict=True))
    want = set(zip(truth["pandaid"].to_pylist(), truth["request_id"].to_pylist(), strict=True))
    hit = len(got & want)
    return {"precision": hit / len(got) if got else 1.0, "recall": hit / len(want) if want else 1.0,
            "n_links": len(got), "n_truth": len(want)}


def degrade(run_dir: Path, out_dir: Path, fraction: float = 0.1, seed: int = 0, what: str = "names") -> None:
    """Copy a run folder, blanking the ``name`` (what='names') or ``dataset`` (what='datasets') of a
    ``fraction`` of transfers, chosen at random from ``seed``, and the job_files fields that match them:
    ``lfn`` of rows with the same (scope, name); for datasets, ``dispatchdblock`` of input rows and
    ``dataset`` of output/log rows with the same (scope, name) and that dataset."""
    if what not in ("names", "datasets"):
        raise ValueError(f"what must be 'names' or 'datasets', got {what!r}")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(run_dir, out_dir)
    tr = pq.read_table(run_dir / "transfers.parquet")
    rng = np.random.default_rng(seed)
    n = tr.num_rows
    pick = np.zeros(n, dtype=bool)
    pick[rng.choice(n, size=round(fraction * n), replace=False)] = True
    mask = pa.array(pick)
    col = "name" if what == "names" else "dataset"
    keys = {(s, nm, d) for s, nm, d, p in zip(tr["scope"].to_pylist(), tr["name"].to_pylist(),
                                               tr["dataset"].to_pylist(), pick, strict=True) if p}
    i = tr.schema.get_field_index(col)
    tr = tr.set_column(i, col, pc.if_else(mask, pa.scalar(None, pa.string()), tr[col]))
    pq.write_table(tr, out_dir / "transfers.parquet")
    jf_path = run_dir / "job_files.parquet"
    if not jf_path.exists():
        return
    jf = pq.read_table(jf_path)
    scopes, lfns, types = jf["scope"].to_pylist(), jf["lfn"].to_pylist(), jf["type"].to_pylist()
    if what == "names":
        names = {(s, nm) for s, nm, _ in keys}
        hit = [(s, nm) in names for s, nm in zip(scopes, lfns, strict=True)]
        jf = jf.set_column(jf.schema.get_field_index("lfn"), "lfn",
                           pc.if_else(pa.array(hit), pa.scalar(None, pa.string()), jf["lfn"]))
    else:
        dis, dset = jf["dispatchdblock"].to_pylist(), jf["dataset"].to_pylist()
        hit_in = [t == "input" and (s, nm, d) in keys for s, nm, d, t in zip(scopes, lfns, dis, types, strict=True)]
        hit_out = [t != "input" and (s, nm, d) in keys for s, nm, d, t in zip(scopes, lfns, dset, types, strict=True)]
        jf = jf.set_column(jf.schema.get_field_index("dispatchdblock"), "dispatchdblock",
                           pc.if_else(pa.array(hit_in), pa.scalar(None, pa.string()), jf["dispatchdblock"]))
        jf = jf.set_column(jf.schema.get_field_index("dataset"), "dataset",
                           pc.if_else(pa.array(hit_out), pa.scalar(None, pa.string()), jf["dataset"]))
    pq.write_table(jf, out_dir / "job_files.parquet")

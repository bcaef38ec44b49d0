"""Arrow schemas of the record tables (DESIGN.md section 4): PanDA's and Rucio's own column names.

Times are UTC ``timestamp[ms]``; sizes in bytes, memory in kB, durations in seconds, as in PanDA.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("ms", tz="UTC")

JOBS = pa.schema(
    [
        ("pandaid", pa.int64()),
        ("jeditaskid", pa.int64()),
        ("parentid", pa.int64()),
        ("attemptnr", pa.int32()),
        ("computingsite", pa.string()),
        ("nucleus", pa.string()),
        ("cloud", pa.string()),
        ("jobstatus", pa.string()),
        ("prodsourcelabel", pa.string()),
        ("processingtype", pa.string()),
        ("transformation", pa.string()),
        ("workinggroup", pa.string()),
        ("produsername", pa.string()),
        ("gshare", pa.string()),
        ("resource_type", pa.string()),
        ("currentpriority", pa.int32()),
        ("corecount", pa.int32()),
        ("actualcorecount", pa.int32()),
        ("minramcount", pa.int32()),
        ("maxwalltime", pa.int32()),
        ("creationtime", TS),
        ("starttime", TS),
        ("endtime", TS),
        ("modificationtime", TS),
        ("cpuconsumptiontime", pa.int64()),
        ("hs06sec", pa.int64()),
        ("maxrss", pa.int64()),
        ("nevents", pa.int64()),
        ("ninputdatafiles", pa.int32()),
        ("inputfilebytes", pa.int64()),
        ("noutputdatafiles", pa.int32()),
        ("outputfilebytes", pa.int64()),
        ("proddblock", pa.string()),
        ("dispatchdblock", pa.string()),
        ("destinationdblock", pa.string()),
        ("destinationse", pa.string()),
        ("sourcesite", pa.string()),
        ("transfertype", pa.string()),
        ("piloterrorcode", pa.int32()),
        ("exeerrorcode", pa.int32()),
        ("ddmerrorcode", pa.int32()),
        ("taskbuffererrorcode", pa.int32()),
        ("pilottiming", pa.string()),
        ("wall_time", pa.float64()),
        ("queue_time", pa.float64()),
        ("cpu_eff", pa.float64()),
    ]
)
"""One row per job in its final state. ``cpu_eff`` = cpuconsumptiontime / wall_time, *not* divided by
cores (as in ATLAS's analytics pipeline); ``sourcesite`` is the ATLAS site the input was read from
and ``transfertype`` is ``direct`` when it was streamed remotely, null when copied from local storage.
``minramcount`` (MB) and ``maxwalltime`` (s, at the job's queue) are the attempt's requests: the task's
ramcount x cores and the queue's maxtime, or a resource predictor's (first attempts)."""

JOB_STATUS_LOG = pa.schema(
    [
        ("pandaid", pa.int64()),
        ("modificationtime", TS),
        ("jobstatus", pa.string()),
        ("computingsite", pa.string()),
    ]
)

JOB_FILES = pa.schema(
    [
        ("pandaid", pa.int64()),
        ("jeditaskid", pa.int64()),
        ("scope", pa.string()),
        ("lfn", pa.string()),
        ("type", pa.string()),
        ("fsize", pa.int64()),
        ("dataset", pa.string()),
        ("dispatchdblock", pa.string()),
        ("destinationse", pa.string()),
    ]
)

SITE_METRICS = pa.schema(
    [
        ("time", TS),
        ("site", pa.string()),
        ("running", pa.int32()),
        ("activated", pa.int32()),
        ("assigned", pa.int32()),
        ("used_cores", pa.int32()),
        ("total_cores", pa.int32()),
        ("used_gpus", pa.int32()),
        ("storage_used", pa.int64()),
        ("storage_total", pa.int64()),
    ]
)

SITES = pa.schema(
    [
        ("site", pa.string()),
        ("atlas_site", pa.string()),
        ("cloud", pa.string()),
        ("country", pa.string()),
        ("tier", pa.int32()),
        ("corecount", pa.int32()),
        ("corepower", pa.float64()),
        ("total_cores", pa.int32()),
        ("is_nucleus", pa.bool_()),
        ("status", pa.string()),
    ]
)
"""The platform's queues as the run saw them (gridtwin addition, so analyses can group by tier)."""

TRANSFERS = pa.schema(
    [
        ("event_type", pa.string()),
        ("request_id", pa.string()),
        ("previous_request_id", pa.string()),
        ("scope", pa.string()),
        ("name", pa.string()),
        ("dataset", pa.string()),
        ("bytes", pa.int64()),
        ("src_rse", pa.string()),
        ("dst_rse", pa.string()),
        ("src_type", pa.string()),
        ("dst_type", pa.string()),
        ("activity", pa.string()),
        ("created_at", TS),
        ("submitted_at", TS),
        ("started_at", TS),
        ("transferred_at", TS),
        ("duration", pa.int64()),
        ("reason", pa.string()),
        ("transfer_link", pa.string()),
        ("staging_started_at", TS),
        ("staging_finished_at", TS),
        ("retry_count", pa.int32()),
        ("rule_id", pa.int64()),
    ]
)
"""One row per transfer request outcome, as Rucio's hermes ``transfer-done`` / ``transfer-failed``
payload with hyphens turned into underscores. ``duration`` = transferred_at - started_at in whole
seconds (-1 if unknown); ``reason`` is the FTS error text (empty when done); a retry has its failed
predecessor in ``previous_request_id``. ``staging_*`` are set for tape sources; ``retry_count`` and
``rule_id`` come from the request row (Rucio ``requests`` table)."""

LINK_METRICS = pa.schema(
    [
        ("time", TS),
        ("src", pa.string()),
        ("dst", pa.string()),
        ("active", pa.int32()),
        ("queued", pa.int32()),
        ("bytes_done", pa.int64()),
        ("files_done", pa.int64()),
        ("files_failed", pa.int64()),
        ("throughput_mbps", pa.float64()),
        ("max_active", pa.int32()),
    ]
)
"""One row per FTS link (ATLAS site to ATLAS site) and sample tick, for links that had transfers
active, queued or ending since the previous tick. ``bytes_done`` and ``files_done`` count transfers
that completed since the previous tick; ``throughput_mbps`` is bytes_done over the tick (MB/s);
``max_active`` is the optimizer's limit."""

RULES = pa.schema(
    [
        ("rule_id", pa.int64()),
        ("account", pa.string()),
        ("scope", pa.string()),
        ("name", pa.string()),
        ("rse_expression", pa.string()),
        ("copies", pa.int32()),
        ("grouping", pa.string()),
        ("activity", pa.string()),
        ("state", pa.string()),
        ("locks_ok_cnt", pa.int64()),
        ("locks_replicating_cnt", pa.int64()),
        ("locks_stuck_cnt", pa.int64()),
        ("created_at", TS),
        ("expires_at", TS),
        ("ok_at", TS),
        ("stuck_at", TS),
        ("deleted_at", TS),
    ]
)
"""Rucio rules at the end of the run (state DELETED for rules removed during it)."""

DELETIONS = pa.schema(
    [
        ("event_type", pa.string()),
        ("scope", pa.string()),
        ("name", pa.string()),
        ("rse", pa.string()),
        ("bytes", pa.int64()),
        ("created_at", TS),
    ]
)
"""Replicas the reaper deleted (Rucio ``deletion-done`` events)."""

JOB_TRANSFER_LINKS = pa.schema(
    [
        ("pandaid", pa.int64()),
        ("request_id", pa.string()),
        ("role", pa.string()),
    ]
)
"""Ground truth (``truth/``): every transfer attempt that carried a file a job waited for; ``role``
is input (its ``_dis`` dataset) or output (its ``_sub`` dataset: output and log)."""

TABLES: dict[str, pa.Schema] = {
    "jobs": JOBS,
    "job_status_log": JOB_STATUS_LOG,
    "job_files": JOB_FILES,
    "site_metrics": SITE_METRICS,
    "sites": SITES,
    "transfers": TRANSFERS,
    "link_metrics": LINK_METRICS,
    "rules": RULES,
    "deletions": DELETIONS,
    "truth/job_transfer_links": JOB_TRANSFER_LINKS,
}

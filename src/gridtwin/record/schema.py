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
and ``transfertype`` is ``direct`` when it was streamed remotely, null when copied from local storage."""

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

TABLES: dict[str, pa.Schema] = {
    "jobs": JOBS,
    "job_status_log": JOB_STATUS_LOG,
    "job_files": JOB_FILES,
    "site_metrics": SITE_METRICS,
    "sites": SITES,
}

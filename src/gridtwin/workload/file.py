"""Workload files: a :class:`Workload` as one Parquet file of job specifications, and back.

One row per job specification; task-level and dataset-level values are repeated on each job row
(dictionary-encoded on disk). Column names are PanDA's where PanDA has one:

- task: ``jeditaskid``, ``taskname``, ``produsername``, ``workinggroup`` (nullable), ``prodsourcelabel``,
  ``processingtype``, ``transformation``, ``gshare``, ``output_type``, ``creationtime`` (the task's arrival,
  UTC timestamp[ms]), ``currentpriority``, ``corecount``, ``ramcount`` (MB per core),
  ``walltime_estimate_s`` (on a 10-HS06 core, what brokerage sees), ``io_intensity`` (kB/s per core);
- input dataset (all null when the task reads nothing): ``dataset_scope``, ``proddblock`` (the name),
  ``dataset_nfiles``, ``dataset_file_bytes`` (mean file size), ``dataset_type``;
- job: ``work_hs06s`` (CPU work in HS06-seconds, which brokerage never sees), ``cpu_eff`` in (0, 1],
  ``maxrss`` (kB), ``nevents``, ``ninputdatafiles``, ``first_file`` (index of the first input file in the
  dataset, wrapping), ``inputfilebytes``, ``outputfilebytes``;
- optional: ``request_maxrss_kb``, ``request_walltime_s`` (nullable per-job requests) and ``arrival_s``
  (the task's arrival in seconds from the ``gridtwin.epoch`` metadata, exact where ``creationtime`` is
  rounded to the millisecond; it must agree with ``creationtime``).

Schema metadata: ``gridtwin.workload`` (the format version, required), ``gridtwin.version``, and from the
writer ``gridtwin.epoch`` (ISO 8601), ``gridtwin.duration_s`` and ``gridtwin.datasets`` (every dataset of
the workload as JSON columns, in order, including datasets no job reads: they still occupy disk and
take part in replica placement).

Reading groups rows into tasks by ``jeditaskid`` (rows of a task need not be contiguous), sorts tasks by
(``creationtime``, ``jeditaskid``) and a task's jobs by their row order. The families are the distinct
(prodsourcelabel, processingtype, transformation, gshare, output_type) tuples in sorted order; the
:class:`Category` fields only the generator uses are neutral (0, empty). Without ``gridtwin.datasets``
the datasets are the distinct (dataset_scope, proddblock) pairs: non-derivations in order of first use,
then derivations (type ``DAOD*``) most-read first, as the generator ranks its analysis pool.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gridtwin import __version__
from gridtwin.errors import InputError
from gridtwin.workload.categories import Category
from gridtwin.workload.spec import Datasets, Workload

FORMAT_VERSION = "1"
META_FORMAT = "gridtwin.workload"
META_VERSION = "gridtwin.version"
META_EPOCH = "gridtwin.epoch"
META_DURATION = "gridtwin.duration_s"
META_DATASETS = "gridtwin.datasets"

_TS = pa.timestamp("ms", tz="UTC")
_DAY_MS = 86_400_000

TASK_COLUMNS: dict[str, pa.DataType] = {
    "jeditaskid": pa.int64(), "taskname": pa.string(), "produsername": pa.string(), "workinggroup": pa.string(),
    "prodsourcelabel": pa.string(), "processingtype": pa.string(), "transformation": pa.string(),
    "gshare": pa.string(), "output_type": pa.string(), "creationtime": _TS, "currentpriority": pa.int32(),
    "corecount": pa.int32(), "ramcount": pa.int32(), "walltime_estimate_s": pa.float64(),
    "io_intensity": pa.float64(),
}
"""Task-level columns: equal on every row of a task."""
DATASET_COLUMNS: dict[str, pa.DataType] = {
    "dataset_scope": pa.string(), "proddblock": pa.string(), "dataset_nfiles": pa.int64(),
    "dataset_file_bytes": pa.float64(), "dataset_type": pa.string(),
}
"""The task's input dataset: all null on the rows of a task that reads nothing."""
JOB_COLUMNS: dict[str, pa.DataType] = {
    "work_hs06s": pa.float64(), "cpu_eff": pa.float64(), "maxrss": pa.int64(), "nevents": pa.int64(),
    "ninputdatafiles": pa.int32(), "first_file": pa.int64(), "inputfilebytes": pa.int64(),
    "outputfilebytes": pa.int64(),
}
OPTIONAL_COLUMNS: dict[str, pa.DataType] = {
    "arrival_s": pa.float64(), "request_maxrss_kb": pa.int64(), "request_walltime_s": pa.float64(),
}
NULLABLE = frozenset({"workinggroup", *DATASET_COLUMNS, "request_maxrss_kb", "request_walltime_s"})
_CATEGORY_KEY = ("prodsourcelabel", "processingtype", "transformation", "gshare", "output_type")
_TASK_LEVEL = (*TASK_COLUMNS, *DATASET_COLUMNS, "arrival_s")


# ------------------------------------------------------------------ writing
def _strings(values: Sequence[str | None], idx: np.ndarray) -> pa.Array:
    """``values[idx]`` as a dictionary-encoded string array (None values and negative indices give nulls);
    the dictionary is in order of first appearance in the rows, so equal rows give equal files."""
    uniq: dict[str, int] = {}
    code = np.array([-1 if v is None else uniq.setdefault(v, len(uniq)) for v in values], dtype=np.int64)
    idx = np.asarray(idx, dtype=np.int64)
    c = code[idx] if len(code) else np.full(len(idx), -1, dtype=np.int64)
    c = np.where(idx < 0, -1, c)
    valid = c >= 0
    used, first, inverse = np.unique(c[valid], return_index=True, return_inverse=True)
    appearance = np.argsort(first, kind="stable")
    rank = np.empty(len(used), dtype=np.int32)
    rank[appearance] = np.arange(len(used), dtype=np.int32)
    out = np.full(len(c), -1, dtype=np.int32)
    out[valid] = rank[inverse]
    names = list(uniq)
    return pa.DictionaryArray.from_arrays(pa.array(out, type=pa.int32(), mask=~valid),
                                          pa.array([names[int(k)] for k in used[appearance]], type=pa.string()))


def _epoch_utc(epoch: datetime) -> datetime:
    return epoch.replace(tzinfo=UTC) if epoch.tzinfo is None else epoch.astimezone(UTC)


def _epoch_ms(epoch: datetime) -> int:
    return round(epoch.timestamp() * 1000)


def workload_table(wl: Workload, epoch: datetime) -> pa.Table:
    """The rows and schema metadata :func:`write_workload` writes (one row per job specification)."""
    epoch = _epoch_utc(epoch)
    task = np.asarray(wl.task, dtype=np.int64)
    cat = np.asarray(wl.category, dtype=np.int64)[task]
    ds = np.asarray(wl.dataset, dtype=np.int64)[task]
    no_ds = ds < 0
    d = wl.datasets
    safe_ds = np.maximum(ds, 0)
    cats = wl.categories
    created = _epoch_ms(epoch) + np.rint(np.asarray(wl.arrival, dtype=np.float64) * 1000.0).astype(np.int64)
    cols: dict[str, pa.Array] = {
        "jeditaskid": pa.array(wl.jeditaskid[task], pa.int64()),
        "taskname": _strings(wl.taskname, task),
        "produsername": _strings(wl.username, task),
        "workinggroup": _strings(wl.workinggroup, task),
        **{k: _strings([getattr(c, k) for c in cats], cat) for k in _CATEGORY_KEY},
        "creationtime": pa.array(created[task], _TS),
        "currentpriority": pa.array(wl.priority[task], pa.int32()),
        "corecount": pa.array(wl.corecount[task], pa.int32()),
        "ramcount": pa.array(wl.ramcount_mb[task], pa.int32()),
        "walltime_estimate_s": pa.array(wl.walltime_estimate_s[task], pa.float64()),
        "io_intensity": pa.array(wl.io_intensity[task], pa.float64()),
        "dataset_scope": _strings(d.scope, ds),
        "proddblock": _strings(d.name, ds),
        "dataset_nfiles": pa.array(d.nfiles[safe_ds] if len(d) else np.zeros(len(ds), np.int64), pa.int64(),
                                   mask=no_ds),
        "dataset_file_bytes": pa.array(d.file_bytes[safe_ds] if len(d) else np.zeros(len(ds)), pa.float64(),
                                       mask=no_ds),
        "dataset_type": _strings(d.file_type, ds),
        "work_hs06s": pa.array(wl.work_hs06s, pa.float64()),
        "cpu_eff": pa.array(wl.cpu_eff, pa.float64()),
        "maxrss": pa.array(wl.maxrss_kb, pa.int64()),
        "nevents": pa.array(wl.nevents, pa.int64()),
        "ninputdatafiles": pa.array(wl.ninput, pa.int32()),
        "first_file": pa.array(wl.first_file, pa.int64()),
        "inputfilebytes": pa.array(wl.inputbytes, pa.int64()),
        "outputfilebytes": pa.array(wl.outputbytes, pa.int64()),
        "arrival_s": pa.array(np.asarray(wl.arrival, dtype=np.float64)[task], pa.float64()),
    }
    if wl.request_rss_kb is not None:
        r = np.asarray(wl.request_rss_kb, dtype=np.int64)
        cols["request_maxrss_kb"] = pa.array(r, pa.int64(), mask=r < 0)
    if wl.request_wall_s is not None:
        w = np.asarray(wl.request_wall_s, dtype=np.float64)
        cols["request_walltime_s"] = pa.array(w, pa.float64(), mask=np.isnan(w))
    datasets = {"scope": list(d.scope), "name": list(d.name), "nfiles": [int(x) for x in d.nfiles],
                "file_bytes": [float(x) for x in d.file_bytes], "file_type": list(d.file_type)}
    meta = {META_FORMAT: FORMAT_VERSION, META_VERSION: __version__, META_EPOCH: epoch.isoformat(),
            META_DURATION: repr(float(wl.duration_s)), META_DATASETS: json.dumps(datasets, separators=(",", ":"))}
    return pa.table(cols).replace_schema_metadata(meta)


def write_workload(wl: Workload, path: Path, epoch: datetime) -> None:
    """Write ``wl`` as a workload file; ``epoch`` is the UTC time its arrivals count from.

    The file appears complete or not at all (written beside it, then renamed)."""
    path = Path(path)
    table = workload_table(wl, epoch)
    partial = path.with_name(f".{path.name}.partial")
    try:
        pq.write_table(table, partial, compression="zstd")
        os.replace(partial, path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write the workload file ({e.strerror})") from None


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (run.json records it for a workload file)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ reading
class _Reader:
    """Validates the columns of one workload file; every error names the file, column and first bad row."""

    def __init__(self, path: Path, table: pa.Table) -> None:
        self.path = path
        self.table = table
        self.n = table.num_rows
        self._cache: dict[str, pa.Array] = {}

    def fail(self, msg: str, column: str | None = None, row: int | None = None) -> InputError:
        where = "" if column is None else f" column {column!r}"
        if row is not None:
            where += f", row {row}"
        return InputError(f"{self.path}:{where}: {msg}")

    def col(self, name: str, typ: pa.DataType) -> pa.Array:
        """Column ``name`` cast to ``typ`` as one array, nulls checked unless the column is nullable."""
        if name in self._cache:
            return self._cache[name]
        a = self.table.column(name).combine_chunks()
        if pa.types.is_dictionary(a.type):
            a = a.dictionary_decode()
        if pa.types.is_timestamp(typ):
            if not pa.types.is_timestamp(a.type):
                raise self.fail(f"expected a UTC timestamp, got {a.type}", name)
            if a.type.tz != "UTC":  # naive times are taken as UTC; zoned ones are stored as UTC already
                a = a.cast(pa.timestamp(a.type.unit, tz="UTC"))
        try:
            a = a.cast(typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise self.fail(f"expected {typ}, got {a.type} (or values that do not fit)", name) from None
        if name not in NULLABLE and a.null_count:
            row = int(np.flatnonzero(a.is_null().to_numpy(zero_copy_only=False))[0])
            raise self.fail(f"null value; expected {typ}", name, row)
        self._cache[name] = a
        return a

    def num(self, name: str, typ: pa.DataType, fill: float | int = 0) -> np.ndarray:
        a = self.col(name, typ)
        if pa.types.is_timestamp(typ):
            a = a.cast(pa.int64())
        return a.fill_null(fill).to_numpy(zero_copy_only=False) if a.null_count else a.to_numpy(zero_copy_only=False)

    def mask(self, name: str, typ: pa.DataType) -> np.ndarray:
        """True where column ``name`` is null."""
        return self.col(name, typ).is_null().to_numpy(zero_copy_only=False)

    def require(self, ok: np.ndarray, name: str, expected: str, values: np.ndarray | None = None) -> None:
        """Raise on the first row where ``ok`` is False."""
        bad = np.flatnonzero(~ok)
        if len(bad):
            r = int(bad[0])
            got = "" if values is None else f", got {values[r].item()!r}"
            raise self.fail(f"expected {expected}{got}", name, r)

    def codes(self, name: str) -> np.ndarray:
        """A per-row int64 code of column ``name``: rows with equal values (or both null) get equal codes."""
        typ = {**TASK_COLUMNS, **DATASET_COLUMNS, **OPTIONAL_COLUMNS}[name]
        a = self.col(name, typ)
        if pa.types.is_string(typ):
            enc = pc.dictionary_encode(a)
            return enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        if pa.types.is_floating(typ):
            v = a.fill_null(np.nan).to_numpy(zero_copy_only=False)
            v = np.where(np.isnan(v), np.nan, v)  # one NaN bit pattern
            return v.view(np.int64)
        if pa.types.is_timestamp(typ):
            a = a.cast(pa.int64())
        v = a.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        return np.where(a.is_null().to_numpy(zero_copy_only=False), np.iinfo(np.int64).min, v)


def _meta(schema: pa.Schema) -> dict[str, str]:
    raw = schema.metadata or {}
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in raw.items()}


def _parse_epoch(path: Path, text: str) -> datetime:
    try:
        return _epoch_utc(datetime.fromisoformat(text))
    except ValueError:
        raise InputError(f"{path}: schema metadata {META_EPOCH!r}: expected an ISO 8601 time, got {text!r}") from None


def _meta_datasets(path: Path, text: str) -> Datasets:
    """The writer's full dataset list (``gridtwin.datasets``)."""
    what = f"{path}: schema metadata {META_DATASETS!r}"
    try:
        data = json.loads(text)
        cols = [data[k] for k in ("scope", "name", "nfiles", "file_bytes", "file_type")]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{what}: expected JSON with the lists scope, name, nfiles, file_bytes, file_type") from None
    if not all(isinstance(c, list) for c in cols) or len({len(c) for c in cols}) != 1:
        raise InputError(f"{what}: the lists scope, name, nfiles, file_bytes, file_type differ in length")
    scope, name, nfiles, fbytes, ftype = cols
    for i in range(len(name)):
        if not (isinstance(scope[i], str) and isinstance(name[i], str) and isinstance(ftype[i], str)
                and isinstance(nfiles[i], int) and nfiles[i] >= 1 and isinstance(fbytes[i], int | float)
                and math.isfinite(fbytes[i]) and fbytes[i] >= 0):
            raise InputError(f"{what}: dataset {i}: expected strings scope, name, file_type, nfiles >= 1 and "
                             "file_bytes >= 0")
    if len(set(zip(scope, name, strict=True))) != len(name):
        raise InputError(f"{what}: a (scope, name) pair is listed twice")
    return Datasets(scope=list(scope), name=list(name), nfiles=np.asarray(nfiles, dtype=np.int64).reshape(-1),
                    file_bytes=np.asarray(fbytes, dtype=np.float64).reshape(-1), file_type=list(ftype))


def _open(path: Path) -> tuple[pa.Table, dict[str, str]]:
    """Read the table after checking the format metadata (a clear error for anything else)."""
    if not path.is_file():
        raise InputError(f"{path}: workload file not found")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{path}: not a Parquet file ({e})") from None
    meta = _meta(schema)
    fmt = meta.get(META_FORMAT)
    if fmt is None:
        raise InputError(f"{path}: not a gridtwin workload file (no {META_FORMAT!r} schema metadata; "
                         "write it with gridtwin.workload.file.write_workload)")
    if fmt != FORMAT_VERSION:
        raise InputError(f"{path}: workload file format {fmt!r} is not supported (this gridtwin reads "
                         f"format {FORMAT_VERSION!r})")
    missing = [c for c in (*TASK_COLUMNS, *DATASET_COLUMNS, *JOB_COLUMNS) if c not in schema.names]
    if missing:
        raise InputError(f"{path}: missing required column(s) {', '.join(map(repr, missing))}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{path}: cannot read the Parquet data ({e})") from None
    return table, meta


def read_workload(path: Path, epoch: datetime | None = None) -> tuple[Workload, datetime]:
    """Read a workload file; return the workload and its epoch (UTC).

    The epoch is ``epoch`` if given, else the file's ``gridtwin.epoch`` metadata, else its earliest
    ``creationtime`` floored to the UTC day. The duration is the file's ``gridtwin.duration_s`` (counted
    from its ``gridtwin.epoch``), else the span from the epoch to the end of the UTC day of the last
    arrival. Raises InputError naming the file, column and first bad row."""
    path = Path(path)
    table, meta = _open(path)
    r = _Reader(path, table)
    n = r.n
    # --- job-level values
    work = r.num("work_hs06s", pa.float64())
    r.require(work >= 0, "work_hs06s", "CPU work >= 0 HS06-s", work)
    eff = r.num("cpu_eff", pa.float64())
    r.require((eff > 0) & (eff <= 1), "cpu_eff", "a CPU efficiency in (0, 1]", eff)
    job_cols: dict[str, np.ndarray] = {}
    for name in ("maxrss", "nevents", "ninputdatafiles", "first_file", "inputfilebytes", "outputfilebytes"):
        job_cols[name] = v = r.num(name, JOB_COLUMNS[name])
        r.require(v >= 0, name, "a value >= 0", v)
    # --- task-level values
    tid = r.num("jeditaskid", pa.int64())
    cores = r.num("corecount", pa.int32())
    r.require(cores >= 1, "corecount", "corecount >= 1", cores)
    ram = r.num("ramcount", pa.int32())
    r.require(ram >= 0, "ramcount", "ramcount >= 0 (MB per core)", ram)
    wt = r.num("walltime_estimate_s", pa.float64())
    r.require(wt >= 0, "walltime_estimate_s", "a wall-time estimate >= 0 s", wt)
    io = r.num("io_intensity", pa.float64())
    r.require(io >= 0, "io_intensity", "an IO intensity >= 0 kB/s", io)
    prio = r.num("currentpriority", pa.int32())
    created_ms = r.num("creationtime", _TS)
    for name in ("taskname", "produsername", *_CATEGORY_KEY):
        r.col(name, pa.string())
    # --- input dataset: all five null, or none
    no_ds = r.mask("proddblock", pa.string())
    for name, typ in DATASET_COLUMNS.items():
        bad = np.flatnonzero(r.mask(name, typ) != no_ds)
        if len(bad):
            row = int(bad[0])
            raise r.fail(f"expected a value {'null' if no_ds[row] else 'set'} like proddblock's (the five dataset "
                         "columns are all null for a task without input, or all set)", name, row)
    nf = r.num("dataset_nfiles", pa.int64(), 1)
    r.require(nf >= 1, "dataset_nfiles", "dataset_nfiles >= 1", nf)
    fb = r.num("dataset_file_bytes", pa.float64(), 0.0)
    r.require(fb >= 0, "dataset_file_bytes", "a mean file size >= 0 bytes", fb)
    r.require(~(no_ds & (job_cols["ninputdatafiles"] > 0)), "ninputdatafiles",
              "0 input files on a row without an input dataset (proddblock is null)", job_cols["ninputdatafiles"])
    # --- optional columns
    names = set(table.column_names)
    req_rss = req_wall = None
    if "request_maxrss_kb" in names:
        req_rss = r.num("request_maxrss_kb", pa.int64(), -1)
        r.require((req_rss >= 0) | r.mask("request_maxrss_kb", pa.int64()), "request_maxrss_kb",
                  "a memory request >= 0 kB (or null)", req_rss)
    if "request_walltime_s" in names:
        req_wall = r.num("request_walltime_s", pa.float64(), np.nan)
        r.require(~(req_wall < 0), "request_walltime_s", "a wall-time request >= 0 s (or null)", req_wall)
    # --- one value per task for every task-level column
    task_level = [c for c in _TASK_LEVEL if c in names]
    by_task = np.argsort(tid, kind="stable")
    same = tid[by_task][1:] == tid[by_task][:-1]
    for name in task_level:
        c = r.codes(name)[by_task]
        bad = same & (c[1:] != c[:-1])
        if bad.any():
            row = int(by_task[1:][bad].min())
            first = int(by_task[np.searchsorted(tid[by_task], tid[row])])
            raise r.fail(f"differs between rows of task {int(tid[row])} (row {first} has another value); "
                         "a task-level value must be the same on every row of its task", name, row)
    # --- epoch, arrivals, duration
    meta_epoch = _parse_epoch(path, meta[META_EPOCH]) if META_EPOCH in meta else None
    if epoch is not None:
        epoch = _epoch_utc(epoch)
    elif meta_epoch is not None:
        epoch = meta_epoch
    elif n:
        epoch = datetime.fromtimestamp(int(created_ms.min()) // _DAY_MS * _DAY_MS / 1000.0, UTC)
    else:
        raise InputError(f"{path}: the file holds no job rows and no {META_EPOCH!r} metadata")
    e_ms = _epoch_ms(epoch)
    early = np.flatnonzero(created_ms < e_ms)
    if len(early):
        row = int(early[0])
        got = datetime.fromtimestamp(int(created_ms[row]) / 1000.0, UTC).isoformat()
        raise r.fail(f"expected a time at or after the epoch {epoch.isoformat()}, got {got}", "creationtime", row)
    if "arrival_s" in names:
        if meta_epoch is None:
            raise r.fail(f"needs the {META_EPOCH!r} schema metadata it counts from", "arrival_s")
        arr_meta = r.num("arrival_s", pa.float64())
        m_ms = _epoch_ms(meta_epoch)
        ok = np.abs(m_ms + arr_meta * 1000.0 - created_ms) <= 1.0
        r.require(ok, "arrival_s", "seconds from the gridtwin.epoch metadata agreeing with creationtime "
                  "to the millisecond", arr_meta)
        arrival = arr_meta if m_ms == e_ms else (created_ms - e_ms) / 1000.0
    else:
        arrival = (created_ms - e_ms) / 1000.0
    if META_DURATION in meta:
        try:
            dur = float(meta[META_DURATION])
        except ValueError:
            dur = math.nan
        if not (math.isfinite(dur) and dur > 0):
            raise InputError(f"{path}: schema metadata {META_DURATION!r}: expected seconds > 0, "
                             f"got {meta[META_DURATION]!r}")
        start_ms = _epoch_ms(meta_epoch) if meta_epoch is not None else e_ms
        duration = dur + (start_ms - e_ms) / 1000.0
        if n and float(arrival.max()) > duration:
            raise InputError(f"{path}: schema metadata {META_DURATION!r} ({dur} s) ends before the last "
                             "creationtime")
    elif n:
        duration = float((int(created_ms.max()) // _DAY_MS + 1) * _DAY_MS - e_ms) / 1000.0
    else:
        duration = 86400.0
    # --- tasks in (creationtime, jeditaskid) order, their jobs in file order
    uniq, first_row, inverse = np.unique(tid, return_index=True, return_inverse=True)
    t_order = np.lexsort((uniq, created_ms[first_row]))
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[t_order] = np.arange(len(uniq))
    task_of_row = rank[inverse]
    rows = np.argsort(task_of_row, kind="stable")  # job specs: grouped by task, file order within
    trow = first_row[t_order]  # a representative row per task, in task order
    n_tasks = len(uniq)
    njobs = np.bincount(task_of_row, minlength=n_tasks).astype(np.int64)
    first_job = np.cumsum(njobs) - njobs

    def per_task(name: str) -> list[Any]:
        return r.col(name, TASK_COLUMNS.get(name) or DATASET_COLUMNS[name]).take(pa.array(trow)).to_pylist()

    # families
    keys = list(zip(*(per_task(k) for k in _CATEGORY_KEY), strict=True)) if n_tasks else []
    fams = sorted(set(keys))
    fam_index = {k: i for i, k in enumerate(fams)}
    cat_dtype = np.int8 if len(fams) <= 127 else np.int16 if len(fams) <= 32767 else np.int32
    category = np.array([fam_index[k] for k in keys], dtype=cat_dtype)
    categories = tuple(_neutral_category(*k) for k in fams)
    # datasets
    ds_key = list(zip(per_task("dataset_scope"), per_task("proddblock"), strict=True))
    t_nf, t_fb, t_type = per_task("dataset_nfiles"), per_task("dataset_file_bytes"), per_task("dataset_type")
    if META_DATASETS in meta:
        datasets = _meta_datasets(path, meta[META_DATASETS])
        index = {k: i for i, k in enumerate(zip(datasets.scope, datasets.name, strict=True))}
    else:
        datasets, index = _datasets_from_rows(ds_key, t_nf, t_fb, t_type)
    ds_task = np.full(n_tasks, -1, dtype=np.int32)
    for ti, k in enumerate(ds_key):
        if k[1] is None:
            continue
        d = index.get(k)
        row = int(trow[ti])
        if d is None:
            raise r.fail(f"dataset {k[0]}:{k[1]} is not in the file's {META_DATASETS!r} metadata", "proddblock", row)
        for col, got, want in (("dataset_nfiles", t_nf[ti], int(datasets.nfiles[d])),
                               ("dataset_file_bytes", t_fb[ti], float(datasets.file_bytes[d])),
                               ("dataset_type", t_type[ti], datasets.file_type[d])):
            if got != want:
                raise r.fail(f"{got!r} differs from {want!r}, the value of dataset {k[0]}:{k[1]} (on another row "
                             f"or in the {META_DATASETS!r} metadata)", col, row)
        ds_task[ti] = d

    def task_arr(values: np.ndarray, dtype: type) -> np.ndarray:
        return np.asarray(values[trow], dtype=dtype)

    def job_arr(values: np.ndarray, dtype: type) -> np.ndarray:
        return np.asarray(values[rows], dtype=dtype)

    wl = Workload(
        jeditaskid=task_arr(tid, np.int64), category=category, arrival=task_arr(arrival, np.float64),
        priority=task_arr(prio, np.int32), corecount=task_arr(cores, np.int32), ramcount_mb=task_arr(ram, np.int32),
        walltime_estimate_s=task_arr(wt, np.float64), io_intensity=task_arr(io, np.float64), dataset=ds_task,
        first_job=first_job.astype(np.int64), njobs=njobs.astype(np.int32),
        taskname=per_task("taskname"), username=per_task("produsername"), workinggroup=per_task("workinggroup"),
        task=np.repeat(np.arange(n_tasks, dtype=np.int32), njobs), work_hs06s=job_arr(work, np.float64),
        cpu_eff=job_arr(eff, np.float64), maxrss_kb=job_arr(job_cols["maxrss"], np.int64),
        nevents=job_arr(job_cols["nevents"], np.int64), ninput=job_arr(job_cols["ninputdatafiles"], np.int32),
        first_file=job_arr(job_cols["first_file"], np.int64),
        inputbytes=job_arr(job_cols["inputfilebytes"], np.int64),
        outputbytes=job_arr(job_cols["outputfilebytes"], np.int64), datasets=datasets, duration_s=duration,
        categories=categories,
        request_rss_kb=None if req_rss is None else job_arr(req_rss, np.int64),
        request_wall_s=None if req_wall is None else job_arr(req_wall, np.float64),
    )
    return wl, epoch


def _neutral_category(prodsourcelabel: str, processingtype: str, transformation: str, gshare: str,
                      output_type: str) -> Category:
    """A family read from a file: its labels; the generator-only fields are 0 or empty."""
    return Category(
        name=processingtype, prodsourcelabel=prodsourcelabel, processingtype=processingtype,
        transformation=transformation, gshare=gshare, job_share=0.0, jobs_per_task_median=0.0,
        jobs_per_task_sigma=0.0, multicore_fraction=0.0, walltime_median_s=0.0, walltime_sigma=0.0,
        task_walltime_sigma=0.0, cpu_eff_mean=0.0, ramcount_mb=0, rss_fraction=0.0, events_per_job=0,
        input_files_per_job=0.0, input_file_mb=0.0, output_file_mb=0.0, output_type=output_type,
    )


def _datasets_from_rows(keys: list[tuple[str | None, str | None]], nfiles: list[Any], fbytes: list[Any],
                        ftype: list[Any]) -> tuple[Datasets, dict[tuple[str, str], int]]:
    """Distinct datasets of the tasks (in task order): non-derivations by first use, then derivations most
    read first (ties by first use)."""
    first: dict[tuple[str, str], int] = {}
    reads: dict[tuple[str, str], int] = {}
    for ti, k in enumerate(keys):
        if k[1] is None:
            continue
        first.setdefault(k, ti)  # type: ignore[arg-type]
        reads[k] = reads.get(k, 0) + 1  # type: ignore[index]
    order = sorted(first, key=lambda k: (ftype[first[k]].startswith("DAOD"),
                                         -reads[k] if ftype[first[k]].startswith("DAOD") else 0, first[k]))
    index = {k: i for i, k in enumerate(order)}
    ds = Datasets(scope=[k[0] for k in order], name=[k[1] for k in order],
                  nfiles=np.array([nfiles[first[k]] for k in order], dtype=np.int64),
                  file_bytes=np.array([fbytes[first[k]] for k in order], dtype=np.float64),
                  file_type=[ftype[first[k]] for k in order])
    return ds, index

"""Turn the live model's columns into the record tables (DESIGN.md section 4) and write Parquet.

Nothing here runs in the hot loop except :class:`SiteMetricsRecorder`, which appends plain ints to
lists at each sample tick. Everything else is vectorised with numpy and pyarrow at the end.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gridtwin.record import schema as SC
from gridtwin.wms.jobs import log_file_bytes
from gridtwin.wms.states import STATUS_NAMES, JobStatus
from gridtwin.workload.generator import REFERENCE_COREPOWER

if TYPE_CHECKING:
    from gridtwin.platform.model import Platform
    from gridtwin.wms.panda import PandaServer
    from gridtwin.wms.sitestate import SiteState


class SiteMetricsRecorder:
    """Samples every queue's counters at each tick into column lists."""

    def __init__(self) -> None:
        self.time: list[float] = []
        self.site: list[int] = []
        self.cols: dict[str, list[int]] = {k: [] for k in (
            "running", "activated", "assigned", "used_cores", "total_cores", "used_gpus", "storage_used",
            "storage_total")}

    def __call__(self, now: float, states: list[SiteState], storage_used) -> None:
        c = self.cols
        for st in states:
            self.time.append(now)
            self.site.append(st.index)
            c["running"].append(st.running)
            c["activated"].append(st.activated)
            c["assigned"].append(st.assigned)
            c["used_cores"].append(st.total_cores - st.free_cores)
            c["total_cores"].append(st.total_cores)
            c["used_gpus"].append(0)
            c["storage_used"].append(storage_used(st))
            c["storage_total"].append(st.storage_total)


def _ts(seconds: np.ndarray, epoch_ms: int) -> pa.Array:
    """Seconds from the epoch (NaN = unset) to UTC timestamp[ms]."""
    s = np.asarray(seconds, dtype=np.float64)
    mask = np.isnan(s)
    ms = np.where(mask, 0, np.rint(np.where(mask, 0.0, s) * 1000.0)).astype(np.int64) + epoch_ms
    return pa.array(ms, type=SC.TS, mask=mask)


def _take(names: list[str | None], idx: np.ndarray, null_below_zero: bool = True) -> pa.Array:
    """names[idx] as a string array; negative indices give nulls."""
    arr = pa.array(names, type=pa.string())
    idx = np.asarray(idx, dtype=np.int64)
    if null_below_zero:
        return arr.take(pa.array(idx, mask=idx < 0))
    return arr.take(pa.array(idx))


def _int_str(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


_HIGH_CARDINALITY = frozenset({"lfn", "dispatchdblock", "pilottiming"})


def _write(table: pa.Table, path: Path) -> None:
    # dictionary-encode the repetitive string columns only: unique strings (file names) and numbers
    # gain nothing from a dictionary and cost time building one
    dict_cols = [f.name for f in table.schema if pa.types.is_string(f.type) and f.name not in _HIGH_CARDINALITY]
    pq.write_table(table, path, compression="zstd", use_dictionary=dict_cols)


class RunRecorder:
    """Builds and writes the tables of one finished run."""

    def __init__(self, server: PandaServer, platform: Platform, epoch_ms: int) -> None:
        self.srv = server
        self.platform = platform
        self.epoch_ms = epoch_ms
        jobs = server.jobs
        self.n = len(jobs)
        self.spec = jobs.column("spec")
        self.task = server.wl.task[self.spec].astype(np.int64) if self.n else np.zeros(0, np.int64)
        self.site = jobs.column("site")
        self.status = jobs.column("status")
        self.attempt = jobs.column("attempt")
        self.pandaid = jobs.first_pandaid + np.arange(self.n, dtype=np.int64)
        states = server.states
        self.site_names = [s.name for s in states]
        self.nucleus_task = np.asarray(server.jedi.nucleus, dtype=np.int64)
        self.dest_rse_site = []
        for st in states:
            cands = server._rse_by_atlas.get(st.atlas_site, [])
            self.dest_rse_site.append(next((r for r in cands if "DATADISK" in r), cands[0] if cands else None))
        self.scratch_site = [st.scratch_rse or None for st in states]
        self._dest: tuple[pa.Array, pa.Array] | None = None

    # -------------------------------------------------------------- jobs
    def _destinations(self) -> tuple[pa.Array, pa.Array]:
        """destinationdblock (``<task output>_sub<id>``) and destinationse per job (built once: jobs and
        job_files both need them)."""
        if self._dest is None:
            self._dest = self._build_destinations()
        return self._dest

    def _build_destinations(self) -> tuple[pa.Array, pa.Array]:
        wl = self.srv.wl
        nuc = self.nucleus_task[self.task] if self.n else np.zeros(0, np.int64)
        is_user = np.array([c.prodsourcelabel == "user" for c in wl.categories], dtype=bool)[wl.category[self.task]]
        dest_site = np.where(is_user | (nuc < 0), self.site, nuc)
        se = np.where(is_user, _take(self.scratch_site, dest_site).to_numpy(zero_copy_only=False),
                      _take(self.dest_rse_site, dest_site).to_numpy(zero_copy_only=False))
        dblock = self.sub_names(self.task, self.site)
        return dblock, pa.array(se, type=pa.string())

    def _requests(self, corepower: np.ndarray, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """minramcount (MB) and maxwalltime (s at the job's queue) of each attempt: the workload's
        own (ramcount x cores, the queue's maxtime) or, on first attempts, a resource predictor's."""
        srv, wl, task, spec = self.srv, self.srv.wl, self.task, self.spec
        maxtime = np.array([s.site.maxtime_s for s in srv.states], dtype=np.float64)[np.maximum(self.site, 0)]
        ram = wl.ramcount_mb[task].astype(np.int64) * cores
        wall = maxtime
        first = self.attempt == 1
        if wl.request_rss_kb is not None:
            req = wl.request_rss_kb[spec]
            ram = np.where(first & (req > 0), np.ceil(req / 1024.0), ram)
        if wl.request_wall_s is not None:
            req_w = wl.request_wall_s[spec] * REFERENCE_COREPOWER / corepower
            wall = np.where(first & np.isfinite(req_w), np.minimum(req_w, maxtime), maxtime)
        return ram.astype(np.int32), np.ceil(wall).astype(np.int32)

    def jobs_table(self) -> pa.Table:
        srv, wl, jobs = self.srv, self.srv.wl, self.srv.jobs
        task, spec = self.task, self.spec
        cat = wl.category[task]
        cores = wl.corecount[task].astype(np.int32)
        t_create = jobs.column("t_create")
        t_start = jobs.column("t_start")
        t_end = jobs.column("t_end")
        start_ms = _ts(t_start, self.epoch_ms)
        end_ms = _ts(t_end, self.epoch_ms)
        create_ms = _ts(t_create, self.epoch_ms)
        started = ~np.isnan(t_start)
        finished = self.status == JobStatus.finished
        parent = jobs.column("parent")
        parentid = pa.array(jobs.first_pandaid + parent, mask=parent < 0)
        corepower = np.array([s.site.corepower for s in srv.states])[np.maximum(self.site, 0)]
        cpu = np.rint(jobs.column("cpu_s")).astype(np.int64)
        parts = [_int_str(np.rint(jobs.column(c))) for c in ("tm_getjob", "tm_stagein", "tm_exe", "tm_stageout",
                                                                 "tm_setup")]
        pilottiming = pc.if_else(pa.array(started), pc.binary_join_element_wise(*parts, "|"),
                                 pa.scalar(None, pa.string()))
        ms = lambda a: pc.cast(a, pa.int64()).to_numpy(zero_copy_only=False)  # noqa: E731
        start_i = ms(pc.fill_null(start_ms.cast(pa.int64()), 0))
        end_i = ms(pc.fill_null(end_ms.cast(pa.int64()), 0))
        create_i = ms(create_ms.cast(pa.int64()))
        ended = started & ~np.isnan(t_end)  # jobs still in flight at the end of the run have no endtime
        wall = np.where(ended, (end_i - start_i) / 1000.0, np.nan)
        queue = np.where(started, (start_i - create_i) / 1000.0, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            eff = np.where(ended & (wall > 0), cpu / wall, np.nan)
        ds = wl.dataset[task].astype(np.int64)
        dis = jobs.column("dis").astype(bool)
        dis_block = pc.if_else(
            pa.array(dis),
            pc.binary_join_element_wise("panda.", _int_str(wl.jeditaskid[task]), "_dis", _int_str(self.pandaid), ""),
            pa.scalar(None, pa.string()),
        )
        dblock, dest_se = self._destinations()
        rtype = (cores > 1).astype(np.int64) + 2 * (wl.ramcount_mb[task] > 2000)
        source = jobs.column("source")
        direct = jobs.column("direct").astype(bool)
        min_ram, max_wall = self._requests(corepower, cores)
        cols = {
            "pandaid": pa.array(self.pandaid),
            "jeditaskid": pa.array(wl.jeditaskid[task].astype(np.int64)),
            "parentid": parentid,
            "attemptnr": pa.array(self.attempt.astype(np.int32)),
            "computingsite": _take(self.site_names, self.site),
            "nucleus": _take([s.atlas_site for s in srv.states], self.nucleus_task[task]),
            "cloud": _take([s.site.cloud for s in srv.states], self.site),
            "jobstatus": _take(list(STATUS_NAMES), self.status),
            "prodsourcelabel": _take([c.prodsourcelabel for c in wl.categories], cat),
            "processingtype": _take([c.processingtype for c in wl.categories], cat),
            "transformation": _take([c.transformation for c in wl.categories], cat),
            "workinggroup": _take(wl.workinggroup, task),
            "produsername": _take(wl.username, task),
            "gshare": _take([c.gshare for c in wl.categories], cat),
            "resource_type": _take(["SCORE", "MCORE", "SCORE_HIMEM", "MCORE_HIMEM"], rtype),
            "currentpriority": pa.array(wl.priority[task].astype(np.int32)),
            "corecount": pa.array(cores),
            "actualcorecount": pa.array(cores, mask=~started),
            "minramcount": pa.array(min_ram),
            "maxwalltime": pa.array(max_wall, mask=self.site < 0),
            "creationtime": create_ms,
            "starttime": start_ms,
            "endtime": end_ms,
            "modificationtime": _ts(jobs.column("t_mod"), self.epoch_ms),
            "cpuconsumptiontime": pa.array(cpu),
            # as PanDA's JobUtils.getHS06sec: (endtime - starttime) x corepower x cores
            "hs06sec": pa.array(np.rint(np.nan_to_num(wall) * corepower * cores).astype(np.int64), mask=~ended),
            "maxrss": pa.array(jobs.column("maxrss_kb"), mask=~started),
            "nevents": pa.array(np.where(finished, wl.nevents[spec], 0).astype(np.int64)),
            "ninputdatafiles": pa.array(wl.ninput[spec].astype(np.int32)),
            "inputfilebytes": pa.array(wl.inputbytes[spec].astype(np.int64)),
            "noutputdatafiles": pa.array(finished.astype(np.int32)),
            "outputfilebytes": pa.array(np.where(finished, wl.outputbytes[spec], 0).astype(np.int64)),
            "proddblock": _take(wl.datasets.name, ds),
            "dispatchdblock": dis_block,
            "destinationdblock": dblock,
            "destinationse": dest_se,
            "sourcesite": _take(srv.atlas_names, np.where(wl.ninput[spec] > 0, source, -1)),
            "transfertype": pc.if_else(pa.array(direct), pa.scalar("direct"), pa.scalar(None, pa.string())),
            "piloterrorcode": pa.array(jobs.column("pilot_error")),
            "exeerrorcode": pa.array(jobs.column("exe_error")),
            "ddmerrorcode": pa.array(jobs.column("ddm_error")),
            "taskbuffererrorcode": pa.array(jobs.column("tb_error")),
            "pilottiming": pilottiming,
            "wall_time": pa.array(wall, mask=~ended),
            "queue_time": pa.array(queue, mask=~started),
            "cpu_eff": pa.array(eff, mask=np.isnan(eff)),
        }
        return pa.table(cols, schema=SC.JOBS)

    # -------------------------------------------------------------- status log
    def status_log_table(self) -> pa.Table:
        jobs = self.srv.jobs
        rows, times, status, sites = jobs.log_arrays()
        order = np.argsort(rows, kind="stable")  # per job, entries are already chronological
        rows = rows[order]
        return pa.table({
            "pandaid": pa.array(jobs.first_pandaid + rows),
            "modificationtime": _ts(times[order], self.epoch_ms),
            "jobstatus": _take(list(STATUS_NAMES), status[order]),
            "computingsite": _take(self.site_names, sites[order]),
        }, schema=SC.JOB_STATUS_LOG)

    # -------------------------------------------------------------- files
    def job_files_table(self) -> pa.Table:
        wl = self.srv.wl
        jobs = self.srv.jobs
        parts: list[pa.Table] = []
        # inputs: every created job reads its spec's files
        rows_in = np.flatnonzero(wl.ninput[self.spec] > 0)
        if len(rows_in):
            n_per = wl.ninput[self.spec[rows_in]].astype(np.int64)
            rep_row = np.repeat(rows_in, n_per)
            _, ds, fidx = wl.input_file_indices(self.spec[rows_in])
            lfn = self.input_lfns(ds, fidx)
            dis = jobs.column("dis").astype(bool)[rep_row]
            disb = self.dis_names(rep_row)
            parts.append(pa.table({
                "pandaid": pa.array(self.pandaid[rep_row]),
                "jeditaskid": pa.array(wl.jeditaskid[self.task[rep_row]].astype(np.int64)),
                "scope": _take(wl.datasets.scope, ds),
                "lfn": lfn,
                "type": pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(rep_row), np.int8)),
                                                       pa.array(["input"])).cast(pa.string()),
                "fsize": pa.array(wl.datasets.file_sizes(ds, fidx)),
                "dataset": _take(wl.datasets.name, ds),
                "dispatchdblock": pc.if_else(pa.array(dis), disb, pa.scalar(None, pa.string())),
                "destinationse": pa.nulls(len(rep_row), pa.string()),
            }, schema=SC.JOB_FILES))
        # outputs of finished jobs and logs of every job that started
        dblock, dest_se = self._destinations()
        started = ~np.isnan(jobs.column("t_start"))
        finished = self.status == JobStatus.finished
        all_rows = np.arange(self.n, dtype=np.int64)
        scope_arr = self.output_scopes(all_rows)
        for kind, mask in (("output", finished), ("log", started)):
            idx = pa.array(np.flatnonzero(mask))
            lfn = self.output_lfns(all_rows, kind == "log")
            if kind == "output":
                size = np.where(finished, wl.outputbytes[self.spec], 0)
            else:
                size = np.where(started, log_file_bytes(self.pandaid), 0)
            parts.append(pa.table({
                "pandaid": pa.array(self.pandaid).take(idx),
                "jeditaskid": pa.array(wl.jeditaskid[self.task].astype(np.int64)).take(idx),
                "scope": scope_arr.take(idx),
                "lfn": lfn.take(idx),
                "type": pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(idx), np.int8)),
                                                       pa.array([kind])).cast(pa.string()),
                "fsize": pa.array(size.astype(np.int64)).take(idx),
                "dataset": dblock.take(idx),
                "dispatchdblock": pa.nulls(len(idx), pa.string()),
                "destinationse": dest_se.take(idx),
            }, schema=SC.JOB_FILES))
        if not parts:
            return SC.JOB_FILES.empty_table()
        # inputs, then outputs, then logs; each part in pandaid order
        return pa.concat_tables(parts)

    # -------------------------------------------------------------- names (shared with the Rucio tables)
    def input_lfns(self, ds: np.ndarray, fidx: np.ndarray) -> pa.Array:
        """e.g. ``<dataset>._000023.pool.root.1`` for file index 22 of a dataset."""
        return pc.binary_join_element_wise(_take(self.srv.wl.datasets.name, ds), "._",
                                           pc.utf8_lpad(_int_str(np.asarray(fidx) + 1), 6, "0"), ".pool.root.1", "")

    def dis_names(self, rows: np.ndarray) -> pa.Array:
        """The dispatch dataset of job rows: ``panda.<jeditaskid>_dis<pandaid>``."""
        return pc.binary_join_element_wise("panda.", _int_str(self.srv.wl.jeditaskid[self.task[rows]]), "_dis",
                                           _int_str(self.pandaid[rows]), "")

    def sub_names(self, task: np.ndarray, site: np.ndarray) -> pa.Array:
        """The ``_sub`` dataset of (task, queue) pairs: ``<task name>_sub<10 digits>``."""
        sub_id = (np.asarray(task, np.int64) * self.srv.sub_base + np.maximum(np.asarray(site, np.int64), 0)) % 10**10
        return pc.binary_join_element_wise(_take(self.srv.wl.taskname, task), pc.utf8_lpad(_int_str(sub_id), 10, "0"),
                                           "_sub")

    def output_scopes(self, rows: np.ndarray) -> pa.Array:
        """``user.<name>`` for analysis jobs, the production scope otherwise."""
        wl = self.srv.wl
        task = self.task[rows]
        is_user = np.array([c.prodsourcelabel == "user" for c in wl.categories], dtype=bool)[wl.category[task]]
        return pc.if_else(pa.array(is_user), pc.binary_join_element_wise("user.", _take(wl.username, task), ""),
                          pa.scalar("mc23_13p6TeV"))

    def output_lfns(self, rows: np.ndarray, log: bool) -> pa.Array:
        """e.g. ``HITS.40000123._000042.pool.root.1`` or ``log.40000123._000042.job.log.tgz.1`` (the
        last number is the attempt)."""
        wl = self.srv.wl
        task = self.task[rows]
        tid = pc.utf8_lpad(_int_str(wl.jeditaskid[task]), 8, "0")
        kk = pc.utf8_lpad(_int_str(self.spec[rows] - wl.first_job[task] + 1), 6, "0")
        att = _int_str(self.attempt[rows])
        if log:
            return pc.binary_join_element_wise("log.", tid, "._", kk, ".job.log.tgz.", att, "")
        otype = _take([c.output_type for c in wl.categories], wl.category[task])
        return pc.binary_join_element_wise(otype, ".", tid, "._", kk, ".pool.root.", att, "")

    # -------------------------------------------------------------- sites and metrics
    def sites_table(self) -> pa.Table:
        st = self.srv.states
        return pa.table({
            "site": [s.name for s in st],
            "atlas_site": [s.atlas_site for s in st],
            "cloud": [s.site.cloud for s in st],
            "country": [s.site.country for s in st],
            "tier": pa.array([s.site.tier for s in st], pa.int32()),
            "corecount": pa.array([s.site.corecount for s in st], pa.int32()),
            "corepower": pa.array([float(s.site.corepower) for s in st], pa.float64()),
            "total_cores": pa.array([s.total_cores for s in st], pa.int32()),
            "is_nucleus": pa.array([s.site.is_nucleus for s in st], pa.bool_()),
            "status": [s.site.status for s in st],
        }, schema=SC.SITES)

    def site_metrics_table(self, rec: SiteMetricsRecorder) -> pa.Table:
        cols = {"time": _ts(np.asarray(rec.time, dtype=np.float64), self.epoch_ms),
                "site": _take(self.site_names, np.asarray(rec.site, dtype=np.int64))}
        for k, v in rec.cols.items():
            typ = SC.SITE_METRICS.field(k).type
            cols[k] = pa.array(np.asarray(v, dtype=np.int64), type=pa.int64()).cast(typ)
        return pa.table(cols, schema=SC.SITE_METRICS)

    def write(self, out: Path, metrics: SiteMetricsRecorder, progress=None) -> dict[str, int]:
        """Write every table into ``out``; return row counts."""
        return write_tables(out, (("jobs", self.jobs_table), ("job_status_log", self.status_log_table),
                                  ("job_files", self.job_files_table), ("sites", self.sites_table),
                                  ("site_metrics", lambda: self.site_metrics_table(metrics))), progress)


def write_tables(out: Path, builders, progress=None) -> dict[str, int]:
    """Build and write ``(name, build)`` tables as ``out/<name>.parquet`` one at a time (a table is freed
    before the next is built); return row counts by name."""
    counts = {}
    for name, build in builders:
        table = build()
        path = out / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(table, path)
        counts[name] = table.num_rows
        del table
        if progress is not None:
            progress(name)
    return counts


def finite_or_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)

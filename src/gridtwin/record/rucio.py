"""The data-management record tables of a run: transfers (Rucio's transfer-done / transfer-failed
events), link metrics, rules, deletions, and the ground truth of which transfer fed which job.

Names match the workload tables: input files as in ``job_files``, outputs and logs as the pilot
names them, dispatch datasets ``panda.<jeditaskid>_dis<pandaid>`` and ``_sub`` datasets as in
``jobs.destinationdblock``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridtwin.ddm.judge import ROLES
from gridtwin.ddm.requests import ACTIVITIES, DONE, FAILED, NO_SOURCES, REASONS
from gridtwin.record import schema as SC
from gridtwin.record.recorder import RunRecorder, _take, _ts, write_tables

if TYPE_CHECKING:
    from gridtwin.ddm.rucio import RucioServer

FTS_JOB_URL = "https://fts3-atlas.cern.ch:8449/fts3/ftsmon/#/job/"
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _np(a, dtype) -> np.ndarray:
    return np.frombuffer(a, dtype=dtype).copy() if len(a) else np.zeros(0, dtype=dtype)


class RucioRecorder:
    """Builds and writes the data-management tables of one finished run."""

    def __init__(self, ddm: RucioServer, runrec: RunRecorder) -> None:
        self.ddm = ddm
        self.rr = runrec
        self.cat = ddm.catalog
        self.epoch_ms = runrec.epoch_ms
        rules = ddm.judge.rules
        self.rule_kind = np.array([r.did_kind for r in rules], dtype=np.int64)
        self.rule_owner = np.array([r.owner for r in rules], dtype=np.int64)

    # -------------------------------------------------------------- names
    def file_names(self, fid: np.ndarray) -> tuple[pa.Array, pa.Array]:
        """(scope, name) of catalog files."""
        cat = self.cat
        fid = np.asarray(fid, dtype=np.int64)
        ds = _np(cat.f_ds, np.int32).astype(np.int64)[fid]
        owner = _np(cat.f_owner, np.int64)[fid]
        kind = _np(cat.f_kind, np.int8)[fid]
        first = np.asarray(cat.ds_first_fid, dtype=np.int64)
        scope = pa.nulls(len(fid), pa.string())
        name = pa.nulls(len(fid), pa.string())
        inp = ds >= 0
        parts_s, parts_n, order = [], [], []
        if inp.any():
            i = np.flatnonzero(inp)
            parts_s.append(_take(cat.ds_scopes, ds[i]))
            parts_n.append(self.rr.input_lfns(ds[i], fid[i] - first[ds[i]]))
            order.append(i)
        for k, log in ((1, False), (2, True)):
            i = np.flatnonzero(kind == k)
            if len(i):
                parts_s.append(self.rr.output_scopes(owner[i]))
                parts_n.append(self.rr.output_lfns(owner[i], log))
                order.append(i)
        if order:
            idx = np.concatenate(order)
            back = np.empty(len(fid), dtype=np.int64)
            back[idx] = np.arange(len(idx))
            scope = pa.concat_arrays([a.cast(pa.string()) for a in parts_s]).take(pa.array(back))
            name = pa.concat_arrays([a.cast(pa.string()) for a in parts_n]).take(pa.array(back))
        return scope, name

    def rule_names(self, rule: np.ndarray) -> pa.Array:
        """The DID name each rule is on."""
        rule = np.asarray(rule, dtype=np.int64)
        kind = self.rule_kind[rule]
        owner = self.rule_owner[rule]
        parts, order = [], []
        for k in (0, 1, 2):
            i = np.flatnonzero(kind == k)
            if not len(i):
                continue
            if k == 0:
                parts.append(self.rr.dis_names(owner[i]))
            elif k == 1:
                base = self.rr.srv.sub_base
                parts.append(self.rr.sub_names(owner[i] // base, owner[i] % base))
            else:
                parts.append(_take(self.cat.ds_names, owner[i]))
            order.append(i)
        if not order:
            return pa.array([], pa.string())
        idx = np.concatenate(order)
        back = np.empty(len(rule), dtype=np.int64)
        back[idx] = np.arange(len(idx))
        return pa.concat_arrays([a.cast(pa.string()) for a in parts]).take(pa.array(back))

    @staticmethod
    def request_ids(rid: np.ndarray) -> pa.Array:
        """Rucio request ids: 32 hexadecimal digits (vectorised: ids are non-negative 64-bit integers)."""
        v = np.asarray(rid, dtype=np.int64).astype(np.uint64)
        digits = np.full((len(v), 32), ord("0"), dtype=np.uint8)
        for i in range(16):
            digits[:, 31 - i] = _HEX[(v >> np.uint64(4 * i)) & np.uint64(15)]
        return pa.array(digits.view("S32").ravel(), type=pa.binary(32)).cast(pa.string())

    # -------------------------------------------------------------- tables
    def transfers_table(self) -> pa.Table:
        req = self.ddm.requests
        state = req.column("state")
        rid = np.flatnonzero((state == DONE) | (state == FAILED) | (state == NO_SOURCES))
        cat = self.cat
        fid = req.column("fid")[rid]
        src = req.column("src")[rid].astype(np.int64)
        dst = req.column("dst")[rid].astype(np.int64)
        rule = req.column("rule")[rid].astype(np.int64)
        prev = req.column("previous")[rid]
        started = req.column("started")[rid]
        transferred = req.column("transferred")[rid]
        scope, name = self.file_names(fid)
        ok = state[rid] == DONE
        dur = np.where(np.isnan(started) | np.isnan(transferred), -1,
                       np.floor(np.nan_to_num(transferred - started, nan=0.0))).astype(np.int64)
        ids = self.request_ids(rid)
        types = ["TAPE" if t else "DISK" for t in cat.rse_is_tape]
        ext = self.request_ids(rid + 7_000_000_000)
        link = pc.if_else(pa.array(np.isnan(started)), pa.scalar(None, pa.string()),
                          pc.binary_join_element_wise(FTS_JOB_URL, ext, ""))
        return pa.table({
            "event_type": pa.array(np.where(ok, "transfer-done", "transfer-failed")),
            "request_id": ids,
            "previous_request_id": pc.if_else(pa.array(prev < 0), pa.scalar(None, pa.string()),
                                              self.request_ids(np.maximum(prev, 0))),
            "scope": scope,
            "name": name,
            "dataset": self.rule_names(rule),
            "bytes": pa.array(_np(cat.f_size, np.int64)[fid]),
            "src_rse": _take(cat.rse_names, src),
            "dst_rse": _take(cat.rse_names, dst),
            "src_type": _take(types, src),
            "dst_type": _take(types, dst),
            "activity": _take(list(ACTIVITIES), req.column("activity")[rid].astype(np.int64)),
            "created_at": _ts(req.column("created")[rid], self.epoch_ms),
            "submitted_at": _ts(req.column("submitted")[rid], self.epoch_ms),
            "started_at": _ts(started, self.epoch_ms),
            "transferred_at": _ts(transferred, self.epoch_ms),
            "duration": pa.array(dur),
            "reason": _take(list(REASONS), req.column("reason")[rid].astype(np.int64)),
            "transfer_link": link,
            "staging_started_at": _ts(req.column("stage_start")[rid], self.epoch_ms),
            "staging_finished_at": _ts(req.column("stage_end")[rid], self.epoch_ms),
            "retry_count": pa.array(req.column("retry")[rid].astype(np.int32)),
            "rule_id": pa.array(rule),
        }, schema=SC.TRANSFERS)

    def link_metrics_table(self) -> pa.Table:
        m = self.ddm.link_metrics
        links = self.ddm.conveyor.link_list
        li = np.asarray(m.link, dtype=np.int64)
        cols = {"time": _ts(np.asarray(m.time, dtype=np.float64), self.epoch_ms),
                "src": _take([lk.src for lk in links], li), "dst": _take([lk.dst for lk in links], li)}
        for k, v in m.cols.items():
            typ = SC.LINK_METRICS.field(k).type
            cols[k] = pa.array(np.asarray(v), type=typ) if len(v) else pa.array([], type=typ)
        return pa.table(cols, schema=SC.LINK_METRICS)

    def rules_table(self) -> pa.Table:
        rules = self.ddm.judge.rules
        ids = np.arange(len(rules), dtype=np.int64)
        state = [("DELETED" if r.deleted_at == r.deleted_at else r.state.name) for r in rules]
        f = lambda attr: np.array([getattr(r, attr) for r in rules], dtype=np.float64)  # noqa: E731
        expires = f("expires_at")
        return pa.table({
            "rule_id": pa.array(ids),
            "account": pa.array([r.account for r in rules], pa.string()),
            "scope": pa.array([r.scope for r in rules], pa.string()),
            "name": self.rule_names(ids),
            "rse_expression": pa.array([r.rse_expression for r in rules], pa.string()),
            "copies": pa.array([r.copies for r in rules], pa.int32()),
            "grouping": pa.array([r.grouping for r in rules], pa.string()),
            "activity": pa.array([ACTIVITIES[r.activity] for r in rules], pa.string()),
            "state": pa.array(state, pa.string()),
            "locks_ok_cnt": pa.array([r.locks_ok for r in rules], pa.int64()),
            "locks_replicating_cnt": pa.array([r.locks_replicating for r in rules], pa.int64()),
            "locks_stuck_cnt": pa.array([r.locks_stuck for r in rules], pa.int64()),
            "created_at": _ts(f("created_at"), self.epoch_ms),
            "expires_at": _ts(np.where(np.isinf(expires), np.nan, expires), self.epoch_ms),
            "ok_at": _ts(f("ok_at"), self.epoch_ms),
            "stuck_at": _ts(f("stuck_at"), self.epoch_ms),
            "deleted_at": _ts(f("deleted_at"), self.epoch_ms),
        }, schema=SC.RULES)

    def deletions_table(self) -> pa.Table:
        rp = self.ddm.reaper
        fid = _np(rp.d_fid, np.int64)
        scope, name = self.file_names(fid)
        return pa.table({
            "event_type": pa.array(["deletion-done"] * len(fid), pa.string()),
            "scope": scope,
            "name": name,
            "rse": _take(self.cat.rse_names, _np(rp.d_rse, np.int32).astype(np.int64)),
            "bytes": pa.array(_np(rp.d_bytes, np.int64)),
            "created_at": _ts(_np(rp.d_time, np.float64), self.epoch_ms),
        }, schema=SC.DELETIONS)

    def truth_table(self) -> pa.Table:
        j = self.ddm.judge
        rows = _np(j.t_row, np.int64)
        return pa.table({
            "pandaid": pa.array(self.rr.pandaid[rows] if len(rows) else np.zeros(0, np.int64)),
            "request_id": self.request_ids(_np(j.t_req, np.int64)),
            "role": _take(list(ROLES), _np(j.t_role, np.int8).astype(np.int64)),
        }, schema=SC.JOB_TRANSFER_LINKS)

    def write(self, out: Path, progress=None) -> dict[str, int]:
        """Write the data-management tables into ``out``; return row counts."""
        return write_tables(out, (("transfers", self.transfers_table), ("link_metrics", self.link_metrics_table),
                                  ("rules", self.rules_table), ("deletions", self.deletions_table),
                                  ("truth/job_transfer_links", self.truth_table)), progress)



"""Properties of the data-management layer on small random grids, checked on the written records
(and, where a table cannot show it, on the simulation while it runs):

1. delivered bytes and files add up the same in link_metrics, transfers and the conveyor;
2. no RSE ever holds more than its capacity;
3. the reaper deletes only unlocked, tombstoned replicas that are neither a file's last copy nor the
   source of a transfer under way;
4. a job waiting for its ``_dis`` data (assigned) is later activated, fails with ddmerrorcode 100, or
   is closed by a downtime (taskbuffererrorcode 105);
5. a file is never sent to an RSE that holds it (or is already receiving it);
6. the truth table links every transfer to the job that waited for it;
7. retries form chains of failed attempts no longer than max_retries + 1;
8. the data-management records are byte-identical for the same scenario and seed.

Random grids come from hypothesis (derandomized: the same examples every run); a fixed busy grid
takes every path (tape, rules, no space, retries, deletions) for properties 1-8; a hand-set case pins
the reaper's treatment of transfer sources; and one run of the built-in grid has tape-only inputs.
"""

from __future__ import annotations

import itertools
import json
import math
import tempfile
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from helpers_core import NO_FAILURES, TaskSpec, make_rse, make_scenario, make_site, make_workload, simulation_with
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from gridtwin import scenario as scenario_mod
from gridtwin.config import scenario_from_dict
from gridtwin.ddm.catalog import AVAILABLE, COPYING, Catalog
from gridtwin.ddm.reaper import Reaper
from gridtwin.ddm.requests import ACT_PROD_IN, PREPARING, SUBMITTED
from gridtwin.ddm.rucio import RucioServer
from gridtwin.errors import ConfigError
from gridtwin.scenario import RunResult, Simulation, run_scenario
from gridtwin.wms.failures import DDM_DISPATCH_FAILED, TB_REASSIGNED

DONE, FAILED = "transfer-done", "transfer-failed"
NO_FILE_REASON = "SOURCE [2] SOURCE  No such file or directory"
DRAIN_H = 2000.0
"""Long enough for every job (walltime limit 96 h, three attempts, queues backed up) to end."""

DDM_TABLES = ("transfers", "link_metrics", "rules", "deletions", "truth/job_transfer_links")


# ---------------------------------------------------------------------------------------------- scenarios
@st.composite
def ddm_scenarios(draw) -> dict[str, Any]:
    """3-6 inline queues (one ATLAS site each), some with little disk, random links, a Tier-1 nucleus
    with a TAPE RSE sometimes, and random data-management knobs."""
    n = draw(st.integers(3, 6), label="sites")
    with_tape = draw(st.booleans(), label="tape")
    sites, rses = [], []
    for i in range(n):
        name = f"Q{i}"
        own = [f"{name}_DATADISK"]
        # the task broker wants 10 TB free at a nucleus: Q0 (and a lucky other) has room, the rest are small
        big = i == 0 or draw(st.integers(0, 5)) == 0
        rses.append(make_rse(own[0], name, 200.0 if big else draw(st.sampled_from([0.02, 0.05, 0.1, 0.3, 5.0]))))
        if draw(st.integers(0, 3)) == 0:
            own.append(f"{name}_SCRATCHDISK")
            rses.append(make_rse(own[1], name, draw(st.sampled_from([0.001, 0.01, 1.0]))))
        sites.append(make_site(name, total_cores=draw(st.sampled_from([8, 16, 32])), tier=1 if i == 0 else 2,
                               is_nucleus=i == 0 or draw(st.booleans()),
                               direct_access=i > 0 and draw(st.integers(0, 7)) == 0, rses=own))
    if with_tape:
        rses.append(make_rse("Q0_MCTAPE", "Q0", 1000.0, "TAPE"))
    links = []
    for a in range(n):
        for b in range(n):
            if a != b and draw(st.booleans()):
                links.append({"src": f"Q{a}", "dst": f"Q{b}",
                              "bandwidth_gbps": draw(st.sampled_from([0.02, 0.2, 1.0, 10.0])),
                              "latency_ms": draw(st.sampled_from([1.0, 20.0, 150.0])),
                              "closeness": draw(st.integers(0, 11))})
    hwm = draw(st.sampled_from([0.7, 0.85, 0.95, 1.0]))
    min_active = draw(st.integers(1, 2))
    max_active = draw(st.sampled_from([None, 1, 2, 5]))
    ddm = {
        "failure_rate": draw(st.sampled_from([0.0, 0.05, 0.15, 0.3])),
        "max_retries": draw(st.integers(0, 3)),
        "optimizer": {"min_active": min_active,
                      "max_active": None if max_active is None else max(max_active, min_active)},
        "high_watermark": hwm,
        "low_watermark": hwm - draw(st.sampled_from([0.0, 0.05, 0.2])),
        "tape_only_fraction": draw(st.sampled_from([0.0, 0.3, 0.7])),
        "release_dis_at_job_end": draw(st.booleans()),
        "dis_lifetime_h": draw(st.sampled_from([0.5, 168.0])),
        "tombstone_delay_h": draw(st.sampled_from([0.0, 0.5])),
        "flow_model": draw(st.sampled_from(["linksharing", "maxmin"])),
        "source_selection": draw(st.sampled_from(["closeness", "queue-aware"])),
        "submitter_interval_s": draw(st.sampled_from([10.0, 30.0, 120.0])),
        "tape": {"drives": draw(st.integers(1, 3)), "drive_rate_mbps": draw(st.sampled_from([50.0, 300.0])),
                 "mount_s": draw(st.sampled_from([0.0, 120.0]))},
    }
    if draw(st.integers(0, 2)) == 0:
        # replicate the production inputs somewhere (Data Rebalancing): jobs there then wait on the rule's
        # transfers, and its locked replicas fill the RSE
        targets = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=2, unique=True))
        ddm["rules"] = [{"did": "mc23_13p6TeV:*_tid*", "rse_expression": "|".join(f"Q{k}_DATADISK" for k in targets),
                         "grouping": draw(st.sampled_from(["ALL", "DATASET", "NONE"])),
                         "lifetime_h": draw(st.sampled_from([None, 1.0])), "at_h": draw(st.sampled_from([0.0, 0.5]))}]
    duration_h = draw(st.sampled_from([1.0, 2.0, 3.0]))
    downtimes = []
    if draw(st.integers(0, 3)) == 0:
        start = draw(st.sampled_from([0.25, 0.5, 1.0, 2.0]))
        downtimes.append({"site": f"Q{draw(st.integers(0, n - 1))}", "start_h": start,
                          "end_h": start + draw(st.sampled_from([0.5, 3.0]))})
    sc = make_scenario(
        sites, rses, links,
        seed=draw(st.integers(0, 2**16), label="seed"),
        drain_h=DRAIN_H,
        workload={"scale": draw(st.sampled_from([0.0005, 0.001, 0.002, 0.003])), "duration_h": duration_h},
        storage={"initial_fill": draw(st.sampled_from([0.3, 0.6, 0.85, 0.95]))},
        failures=dict(NO_FAILURES) if draw(st.booleans()) else {},
        ddm=ddm,
        downtimes=downtimes,
    )
    sc["platform"]["default_bandwidth_gbps"] = draw(st.sampled_from([0.1, 1.0]))
    sc["platform"]["default_latency_ms"] = draw(st.sampled_from([10.0, 100.0]))
    return sc


# ---------------------------------------------------------------------------------------------- in-run checks
class Monitor:
    """Wraps the catalog, reaper and server calls that change what an RSE holds, and checks after each
    one that the RSE is within its capacity; checks each reaper deletion before it happens."""

    def __init__(self) -> None:
        self.sim: Simulation | None = None
        self.initial_used: list[int] = []
        self.initial_replicas: list[frozenset[str]] = []
        self.written = defaultdict(int)  # RSE index -> bytes taken by write_bytes
        self.reap_now: float | None = None
        self.deleted: list[tuple[float, int, int]] = []  # (time, RSE index, fid) of reaper deletions
        self.space_checks = 0

    def simulation(self, sc, policy=None, **given) -> Simulation:
        sim = Simulation(sc, policy, **given)
        assert self.sim is None, "one simulation per monitored run"
        self.sim = sim
        cat = sim.catalog
        self.initial_used = [r.used_bytes for r in cat.rses]
        self.initial_replicas = [frozenset(cat.replicas(d)) for d in range(len(cat))]
        return sim

    def check_space(self, cat: Catalog, rse: int, where: str) -> None:
        self.space_checks += 1
        r = cat.rses[rse]
        assert r.used_bytes >= 0, f"{where}: {r.name} holds {r.used_bytes} bytes"
        if r.capacity_bytes > 0:
            assert r.used_bytes <= r.capacity_bytes, \
                f"property 2: {where} left {r.name} with {r.used_bytes} bytes > capacity {r.capacity_bytes}"

    def before_remove(self, cat: Catalog, s: int) -> None:
        fid, rse = cat.r_fid[s], cat.r_rse[s]
        what = f"replica of file {fid} on {cat.rse_names[rse]}"
        if self.reap_now is None:
            # the only other removal: the COPYING replica of a transfer that gave up
            assert cat.r_state[s] == COPYING, f"{what} removed outside the reaper in state {cat.r_state[s]}"
            return
        now = self.reap_now
        assert cat.r_state[s] == AVAILABLE, f"property 3: reaper deletes {what} in state {cat.r_state[s]}"
        assert cat.r_lock[s] == 0, f"property 3: reaper deletes locked {what} ({cat.r_lock[s]} locks)"
        assert cat.r_tomb[s] <= now, f"property 3: reaper deletes {what} whose tombstone {cat.r_tomb[s]} > {now}"
        assert cat.n_available(fid) >= 2, f"property 3: reaper deletes the last available {what}"
        # nor one that a transfer reads from (Rucio's reaper leaves out replicas used as sources)
        req = self.sim.ddm.requests
        for rid in np.flatnonzero(np.frombuffer(req.fid, dtype=np.int64) == fid).tolist():
            assert not (req.src[rid] == rse and req.state[rid] in (SUBMITTED, PREPARING)), \
                f"property 3: reaper deletes {what} while transfer {rid} reads from it"
        self.deleted.append((now, rse, fid))

    def install(self, stack: ExitStack) -> None:
        mon = self
        create, reserve, remove = Catalog.create_replica, Catalog.reserve, Catalog.remove_replica
        clean, write_bytes = Reaper.clean, RucioServer.write_bytes

        def create_replica(cat, fid, rse, *a, **k):
            s = create(cat, fid, rse, *a, **k)
            mon.check_space(cat, rse, "create_replica")
            return s

        def reserve_(cat, s):
            reserve(cat, s)
            mon.check_space(cat, cat.r_rse[s], "reserve")

        def remove_replica(cat, s):
            mon.before_remove(cat, s)
            rse = cat.r_rse[s]
            remove(cat, s)
            mon.check_space(cat, rse, "remove_replica")

        def clean_(reaper, rse, now, incoming=0):
            assert mon.reap_now is None
            mon.reap_now = now
            try:
                return clean(reaper, rse, now, incoming)
            finally:
                mon.reap_now = None

        def write_bytes_(srv, rse, nbytes):
            ok = write_bytes(srv, rse, nbytes)
            if ok:
                mon.written[rse] += nbytes
            mon.check_space(srv.catalog, rse, "write_bytes")
            return ok

        for cls, name, fn in ((Catalog, "create_replica", create_replica), (Catalog, "reserve", reserve_),
                              (Catalog, "remove_replica", remove_replica), (Reaper, "clean", clean_),
                              (RucioServer, "write_bytes", write_bytes_)):
            stack.enter_context(mock.patch.object(cls, name, fn))
        stack.enter_context(mock.patch.object(scenario_mod, "Simulation", self.simulation))


@dataclass
class Run:
    out: Path
    result: RunResult
    sim: Simulation
    mon: Monitor
    sc: dict[str, Any]
    _tables: dict[str, pa.Table] = field(default_factory=dict)
    _ds_index: dict[str, int] | None = None

    def table(self, name: str) -> pa.Table:
        """A record table with its timestamps as int64 milliseconds (null stays null)."""
        t = self._tables.get(name)
        if t is None:
            t = pq.read_table(self.out / f"{name}.parquet")
            for i, f in enumerate(t.schema):
                if pa.types.is_timestamp(f.type):
                    t = t.set_column(i, f.name, t[f.name].cast(pa.int64()))
            self._tables[name] = t
        return t

    def rows(self, name: str) -> list[dict[str, Any]]:
        return self.table(name).to_pylist()


def run_monitored(sc: dict[str, Any], out: Path) -> Run:
    mon = Monitor()
    with ExitStack() as stack:
        mon.install(stack)
        try:
            result = run_scenario(scenario_from_dict(sc), out, report=False)
        except ConfigError as e:
            if "matches no input dataset" not in str(e):
                raise
            reject()  # a workload too small to have production inputs for the scenario's rule
    assert mon.sim is not None
    return Run(out, result, mon.sim, mon, sc)


# ---------------------------------------------------------------------------------------------- properties
def check_run_ended(run: Run) -> None:
    """Everything ended before the horizon: no job or transfer is left in flight."""
    sim = run.sim
    assert run.result.sim_end_s < sim.horizon_s, "the run hit its horizon; raise DRAIN_H"
    assert run.result.unfinished == 0
    assert sim.ddm.conveyor.in_flight == 0
    assert not sim.catalog.r_src_use, "replicas still marked as the source of a transfer"
    final = {"finished", "failed", "closed", "cancelled"}
    assert set(run.table("jobs")["jobstatus"].to_pylist()) <= final


def check_bytes_add_up(run: Run) -> None:
    """Property 1: link_metrics, transfers and the conveyor count the same delivered bytes and files."""
    tr, lm = run.table("transfers"), run.table("link_metrics")
    conv = run.sim.ddm.conveyor
    done = tr.filter(pc.equal(tr["event_type"], DONE))
    failed = tr.filter(pc.equal(tr["event_type"], FAILED))
    total = lambda t, c: pc.sum(t[c]).as_py() or 0  # noqa: E731
    assert total(lm, "bytes_done") == total(done, "bytes") == conv.bytes_delivered, "property 1: bytes"
    assert total(lm, "files_done") == done.num_rows == conv.n_done, "property 1: files"
    attempted = failed.filter(pc.is_valid(failed["started_at"]))  # the others found no source
    assert total(lm, "files_failed") == attempted.num_rows == conv.n_failed_attempts, "property 1: failed files"
    # and link by link (a link joins the ATLAS sites of the two RSEs)
    cat = run.sim.catalog
    site = {n: cat.rse_site[i] for n, i in cat.rse_index.items()}
    per_link: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in done.select(["src_rse", "dst_rse", "bytes"]).to_pylist():
        acc = per_link[(site[r["src_rse"]], site[r["dst_rse"]])]
        acc[0] += r["bytes"]
        acc[1] += 1
    sampled: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in lm.select(["src", "dst", "bytes_done", "files_done"]).to_pylist():
        acc = sampled[(r["src"], r["dst"])]
        acc[0] += r["bytes_done"]
        acc[1] += r["files_done"]
    assert {k: v for k, v in sampled.items() if v != [0, 0]} == dict(per_link), "property 1: per link"
    summary = json.loads((run.out / "run.json").read_text())["ddm"]
    assert summary["transfers_done"] == done.num_rows and summary["bytes_delivered"] == conv.bytes_delivered


def check_capacity(run: Run) -> None:
    """Property 2: every storage sample and every RSE at the end are within capacity; the catalog's byte
    count of each RSE is its initial fill + its file replicas + the bytes written without a replica."""
    m = run.table("site_metrics")
    over = m.filter(pc.greater(m["storage_used"], m["storage_total"]))
    assert over.num_rows == 0, f"property 2: site_metrics samples over capacity: {over.slice(0, 3).to_pylist()}"
    cat = run.sim.catalog
    for i, r in enumerate(cat.rses):
        if r.capacity_bytes > 0:
            assert 0 <= r.used_bytes <= r.capacity_bytes, f"property 2: {r.name} {r.used_bytes}/{r.capacity_bytes}"
        replicas = sum(cat.r_bytes[s] for s in cat.slots_on(i).tolist())
        assert r.used_bytes == run.mon.initial_used[i] + replicas + run.mon.written[i], f"byte count of {r.name}"
    assert run.mon.space_checks > 0


def _input_dataset(run: Run, name: str) -> int | None:
    """Catalog index of the input dataset an input file name belongs to (None for outputs and logs)."""
    idx = run._ds_index
    if idx is None:
        idx = run._ds_index = {n: d for d, n in enumerate(run.sim.catalog.ds_names)}
    return idx.get(name.rsplit("._", 1)[0]) if name.endswith(".pool.root.1") else None


def check_deletions(run: Run) -> None:
    """Property 3 (the in-run half is Monitor.before_remove): the deletions table is the reaper's
    deletions; no replica is deleted while a transfer reads from it; and each deleted replica's file had
    another replica alive at the time: an initial one, or one brought by a done transfer and not deleted
    since."""
    dels = run.rows("deletions")
    assert len(dels) == len(run.mon.deleted) == len(run.sim.ddm.reaper.d_fid)
    arrived: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in run.rows("transfers"):
        if r["event_type"] == DONE:
            arrived[(r["name"], r["dst_rse"])].append(r["transferred_at"])
    deleted: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in dels:
        deleted[(r["name"], r["rse"])].append(r["created_at"])
    holders_by_name: dict[str, set[str]] = defaultdict(set)
    for name, rse in arrived:
        holders_by_name[name].add(rse)

    def alive(name: str, rse: str, t: int) -> bool:
        last_in = max((a for a in arrived.get((name, rse), ()) if a <= t), default=None)
        return last_in is not None and not any(last_in <= d <= t for d in deleted.get((name, rse), ()))

    for r in run.rows("transfers"):  # a source is not deleted while its transfer is under way
        if r["src_rse"] is not None and r["submitted_at"] is not None:
            key = (r["name"], r["src_rse"])
            during = [d for d in deleted.get(key, ()) if r["submitted_at"] < d < r["transferred_at"]]
            assert not during, f"property 3: {r['name']} deleted from {r['src_rse']} while sent from there ({r})"
    for r in dels:
        name, rse, t = r["name"], r["rse"], r["created_at"]
        ds = _input_dataset(run, name)
        others = set(run.mon.initial_replicas[ds]) - {rse} if ds is not None else set()
        others |= {x for x in holders_by_name[name] - {rse} if alive(name, x, t)}
        assert others, f"property 3: {name} deleted from {rse} at {t} ms with no other replica left"
        assert arrived.get((name, rse)) or ds is None, f"{name} deleted from {rse}, where no transfer brought it"


def check_assigned_jobs(run: Run) -> None:
    """Property 4: each job that waited in assigned was activated afterwards, or failed with a DDM
    dispatch error after one of its transfers gave up, or was closed by a downtime (and rebrokered)."""
    jobs = {r["pandaid"]: r for r in run.table("jobs").select(
        ["pandaid", "jobstatus", "ddmerrorcode", "taskbuffererrorcode", "dispatchdblock"]).to_pylist()}
    log = defaultdict(list)
    for r in run.table("job_status_log").select(["pandaid", "jobstatus"]).to_pylist():
        log[r["pandaid"]].append(r["jobstatus"])
    tr = {r["request_id"]: r for r in run.table("transfers").select(
        ["request_id", "event_type", "retry_count", "reason"]).to_pylist()}
    gave_up = {rid for rid, r in tr.items() if r["event_type"] == FAILED and (
        r["retry_count"] == run.sc["ddm"]["max_retries"] or r["reason"] == NO_FILE_REASON)}
    links = defaultdict(set)
    for r in run.rows("truth/job_transfer_links"):
        links[r["pandaid"]].add(r["request_id"])
    assigned = {p for p, states in log.items() if "assigned" in states}
    for p in assigned:
        states, job = log[p], jobs[p]
        after = states[states.index("assigned") + 1:]
        if "activated" in after:
            continue
        if job["jobstatus"] == "failed" and job["ddmerrorcode"] == DDM_DISPATCH_FAILED:
            assert links[p] & gave_up, f"property 4: job {p} failed with ddmerrorcode 100, but no transfer gave up"
            continue
        assert job["jobstatus"] == "closed" and job["taskbuffererrorcode"] == TB_REASSIGNED and \
            run.sc["downtimes"], f"property 4: job {p} was assigned, then {after} ({job})"
    failed_ddm = {p for p, j in jobs.items() if j["ddmerrorcode"] == DDM_DISPATCH_FAILED}
    assert failed_ddm <= assigned, "property 4: ddmerrorcode 100 on a job that never waited for data"
    assert {p for p, j in jobs.items() if j["dispatchdblock"] is not None} == assigned


def check_no_double_sends(run: Run) -> None:
    """Property 5: no transfer has its source as destination, none goes to an initial replica's RSE,
    and the attempts for one file and RSE never overlap in time: a done one is followed by another
    only after that replica was deleted."""
    rows = run.rows("transfers")
    retry_of = {r["previous_request_id"]: r for r in rows if r["previous_request_id"] is not None}
    deleted = defaultdict(list)
    for r in run.rows("deletions"):
        deleted[(r["name"], r["rse"])].append(r["created_at"])
    chains: dict[tuple[str, str, str], list[tuple[int, int, str]]] = defaultdict(list)
    for r in rows:
        assert r["src_rse"] != r["dst_rse"], f"property 5: transfer from {r['src_rse']} to itself"
        ds = _input_dataset(run, r["name"])
        if ds is not None:
            assert r["dst_rse"] not in run.mon.initial_replicas[ds], \
                f"property 5: {r['name']} sent to {r['dst_rse']}, which has its dataset from the start"
        if r["previous_request_id"] is None:  # the first attempt of a chain: follow it to its last
            last = r
            while last["request_id"] in retry_of:
                last = retry_of[last["request_id"]]
            chains[(r["scope"], r["name"], r["dst_rse"])].append(
                (r["created_at"], last["transferred_at"], last["event_type"]))
    assert sum(1 for r in rows if r["previous_request_id"] is None) == sum(map(len, chains.values()))
    for (_, name, dst), cs in chains.items():
        cs.sort()
        for (s0, e0, ev0), (s1, _e1, _) in itertools.pairwise(cs):
            assert e0 <= s1, f"property 5: two transfers of {name} to {dst} overlap ({s0}-{e0} and from {s1})"
            if ev0 == DONE:
                assert any(e0 <= d <= s1 for d in deleted[(name, dst)]), \
                    f"property 5: {name} sent again to {dst} at {s1} though it arrived at {e0} and was not deleted"


def check_truth(run: Run) -> None:
    """Property 6: truth links name transfers of the table; ``_dis`` transfers link to their job, and
    output transfers to the job whose destinationdblock is the transfer's dataset."""
    tr = {r["request_id"]: r for r in run.table("transfers").select(
        ["request_id", "dataset", "activity", "name"]).to_pylist()}
    jobs = {r["pandaid"]: r for r in run.table("jobs").select(
        ["pandaid", "jeditaskid", "destinationdblock", "dispatchdblock"]).to_pylist()}
    links = run.rows("truth/job_transfer_links")
    linked = defaultdict(set)
    for r in links:
        assert r["request_id"] in tr, f"property 6: truth names unknown request {r['request_id']}"
        assert r["pandaid"] in jobs, f"property 6: truth names unknown job {r['pandaid']}"
        linked[r["request_id"]].add((r["pandaid"], r["role"]))
    for rid, t in tr.items():
        ds = t["dataset"]
        if "_dis" in ds:
            pandaid = int(ds.rsplit("_dis", 1)[1])
            assert (pandaid, "input") in linked[rid], f"property 6: {ds} transfer {rid} not linked to {pandaid}"
            assert jobs[pandaid]["dispatchdblock"] == ds
            assert ds.startswith(f"panda.{jobs[pandaid]['jeditaskid']}_dis")
        if t["activity"] == "Production Output":
            outs = [p for p, role in linked[rid] if role == "output"]
            assert outs, f"property 6: output transfer {rid} of {t['name']} linked to no job"
            for p in outs:
                assert jobs[p]["destinationdblock"] == ds, \
                    f"property 6: output transfer {rid} in {ds} linked to job {p} of {jobs[p]['destinationdblock']}"


def check_retries(run: Run) -> None:
    """Property 7: a retry names a failed attempt of the same file and RSE, counts one more retry, and
    chains end within max_retries + 1 attempts; a failed attempt with retries left has one retry."""
    max_retries = run.sc["ddm"]["max_retries"]
    rows = run.rows("transfers")
    by_id = {r["request_id"]: r for r in rows}
    retried = defaultdict(int)
    for r in rows:
        prev_id = r["previous_request_id"]
        if prev_id is None:
            assert r["retry_count"] == 0
            continue
        prev = by_id.get(prev_id)
        assert prev is not None, f"property 7: previous_request_id {prev_id} is not in transfers"
        assert prev["event_type"] == FAILED and prev["reason"] != NO_FILE_REASON
        assert (prev["scope"], prev["name"], prev["dst_rse"], prev["dataset"]) == \
            (r["scope"], r["name"], r["dst_rse"], r["dataset"]), f"property 7: retry {r['request_id']} of another file"
        assert r["retry_count"] == prev["retry_count"] + 1, "property 7: retry_count does not go up by one"
        assert r["retry_count"] <= max_retries, f"property 7: chain longer than max_retries + 1 = {max_retries + 1}"
        assert prev["transferred_at"] <= r["created_at"]
        retried[prev_id] += 1
    assert all(n == 1 for n in retried.values()), "property 7: an attempt retried twice"
    for r in rows:
        if r["event_type"] == FAILED and r["reason"] != NO_FILE_REASON:
            assert retried[r["request_id"]] == (r["retry_count"] < max_retries), \
                f"property 7: failed attempt {r['request_id']} (retry {r['retry_count']}) retried wrongly"


PROPERTIES = (check_run_ended, check_bytes_add_up, check_capacity, check_deletions, check_assigned_jobs,
              check_no_double_sends, check_truth, check_retries)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sc=ddm_scenarios())
def test_ddm_properties_hold_on_random_grids(sc):
    with tempfile.TemporaryDirectory() as tmp:
        run = run_monitored(sc, Path(tmp) / "run")
        for check in PROPERTIES:
            check(run)


# ---------------------------------------------------------------------------------------------- determinism
def busy_scenario(seed: int) -> dict[str, Any]:
    """Five queues, four of them short of disk, half the inputs on tape only, a rebalancing rule,
    failing transfers and a low watermark: every data-management path is taken."""
    sites = [make_site(f"Q{i}", total_cores=16, tier=1 if i == 0 else 2, is_nucleus=i == 0) for i in range(5)]
    rses = [make_rse("Q0_DATADISK", "Q0", 200.0), make_rse("Q0_MCTAPE", "Q0", 1000.0, "TAPE")]
    rses += [make_rse(f"Q{i}_DATADISK", f"Q{i}", tb) for i, tb in ((1, 0.05), (2, 0.1), (3, 0.3), (4, 5.0))]
    links = [{"src": f"Q{a}", "dst": f"Q{b}", "bandwidth_gbps": 0.2 * (1 + (a + b) % 3), "latency_ms": 20.0,
              "closeness": (3 * a + b) % 12} for a in range(5) for b in range(5) if a != b]
    return make_scenario(
        sites, rses, links, seed=seed, drain_h=DRAIN_H, workload={"scale": 0.003, "duration_h": 2},
        storage={"initial_fill": 0.85},
        ddm={"failure_rate": 0.15, "max_retries": 2, "optimizer": {"max_active": 2}, "tape_only_fraction": 0.5,
             "high_watermark": 0.9, "low_watermark": 0.8, "tombstone_delay_h": 0.5,
             "rules": [{"did": "mc23_13p6TeV:*_tid*", "rse_expression": "Q2_DATADISK|Q3_DATADISK",
                        "lifetime_h": 1.0, "at_h": 0.5}]})


@pytest.mark.parametrize("seed", [1, 2])
def test_busy_grid_holds_the_properties_and_repeats_byte_for_byte(tmp_path, seed):
    """Property 8 on a run that takes every path (and 1-7 on it); the monitored run equals a plain one."""
    sc = busy_scenario(seed)
    run = run_monitored(sc, tmp_path / "a")
    for check in PROPERTIES:
        check(run)
    tr = run.table("transfers")
    assert {"Production Input", "Production Output", "Data Rebalancing"} <= set(tr["activity"].to_pylist())
    assert pc.sum(pc.is_valid(tr["staging_started_at"])).as_py() > 0 and run.mon.deleted
    assert pc.sum(pc.is_valid(tr["previous_request_id"])).as_py() > 0
    assert pc.sum(pc.equal(tr["reason"], "DESTINATION [28] DESTINATION  No space left on device")).as_py() > 0
    run_scenario(scenario_from_dict(sc), tmp_path / "b", report=False)
    for name in DDM_TABLES:
        a, b = ((tmp_path / k / f"{name}.parquet").read_bytes() for k in ("a", "b"))
        assert a == b, f"property 8: {name}.parquet differs between two runs of the same scenario"


@settings(max_examples=3, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sc=ddm_scenarios())
def test_same_scenario_and_seed_give_byte_identical_ddm_records(sc):
    """Property 8."""
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / k for k in ("a", "b")]
        for out in outs:
            run_scenario(scenario_from_dict(sc), out, report=False)
        for name in DDM_TABLES:
            a, b = ((o / f"{name}.parquet").read_bytes() for o in outs)
            assert a == b, f"property 8: {name}.parquet differs between two runs of the same scenario"


# ---------------------------------------------------------------------------------------------- a source in use
def test_reaper_spares_the_replica_a_transfer_reads_from():
    """A cached replica that a transfer is sending elsewhere is not deleted until that transfer ends (as
    in Rucio, whose reaper leaves out replicas used as sources); then it is cache again. The random runs
    above found a reaper that deleted such a source mid-transfer."""
    sites = [make_site(n) for n in ("A", "B", "C")]
    rses = [make_rse("A_DATADISK", "A", 0.01), make_rse("B_DATADISK", "B"), make_rse("C_DATADISK", "C")]
    links = [{"src": "C", "dst": "A", "bandwidth_gbps": 10.0, "latency_ms": 1.0, "closeness": 1},
             {"src": "A", "dst": "B", "bandwidth_gbps": 0.001, "latency_ms": 1.0, "closeness": 0},
             {"src": "C", "dst": "B", "bandwidth_gbps": 10.0, "latency_ms": 1.0, "closeness": 11}]
    sc = make_scenario(sites, rses, links, storage={"initial_fill": 0.0},
                       ddm={"failure_rate": 0.0, "tape_only_fraction": 0.0})
    sim = simulation_with(sc, make_workload([TaskSpec(works=[1.0])]))  # the server is never started
    cat, ddm, eng = sim.catalog, sim.ddm, sim.engine
    d = cat.add_dataset(["C_DATADISK"], name="data.test", scope="data", nfiles=1, file_sizes=np.array([4 * 10**9]))
    f = cat.fid(d, 0)
    a, b = cat.rse_index["A_DATADISK"], cat.rse_index["B_DATADISK"]
    ok: list[int] = []
    group = ddm.dispatch(0, [f], a, ACT_PROD_IN, ok.append, None)
    eng.run(until=600.0)
    assert ok == [0]
    ddm.release(group)  # A's copy is cache now: unlocked, tombstoned
    assert cat.r_lock[cat.slot(f, a)] == 0
    ddm.dispatch(1, [f], b, ACT_PROD_IN, ok.append, None)
    eng.run(until=1200.0)
    rid = len(ddm.requests) - 1
    assert cat.rse_names[ddm.requests.src[rid]] == "A_DATADISK" and ddm.requests.started[rid] < 1200.0
    # A (10 GB, 4 GB used) is asked for 7 GB more: its only candidate is the source of the running transfer
    assert not ddm.write_output(cat.new_file(7 * 10**9, -1, 1), a, True)
    assert cat.r_state[cat.slot(f, a)] == AVAILABLE and not ddm.reaper.d_fid
    eng.run(until=10**6)
    assert ok == [0, 1] and not cat.r_src_use
    assert ddm.write_output(cat.new_file(7 * 10**9, -1, 1), a, True)  # now the copy on A may go
    assert list(ddm.reaper.d_fid) == [f] and cat.slot(f, a) < 0


# ---------------------------------------------------------------------------------------------- built-in grid
def test_builtin_grid_moves_production_data_and_recalls_tape(tmp_path):
    sc = scenario_from_dict({"seed": 3, "drain_h": DRAIN_H, "workload": {"scale": 0.002, "duration_h": 2},
                             "ddm": {"tape_only_fraction": 0.5}})
    result = run_scenario(sc, tmp_path / "run", report=False)
    assert result.unfinished == 0
    tr = pq.read_table(tmp_path / "run" / "transfers.parquet")
    activities = set(tr["activity"].to_pylist())
    assert {"Production Input", "Production Output"} <= activities
    staged = tr.filter(pc.is_valid(tr["staging_started_at"]))
    assert staged.num_rows > 0, "half the production inputs live on tape only: some transfers recall from tape"
    assert set(staged["src_type"].to_pylist()) == {"TAPE"}
    assert pc.all(pc.less_equal(staged["staging_finished_at"], staged["started_at"])).as_py()
    jobs = pq.read_table(tmp_path / "run" / "jobs.parquet", columns=["pandaid", "dispatchdblock"])
    log = pq.read_table(tmp_path / "run" / "job_status_log.parquet", columns=["pandaid", "jobstatus"])
    with_dis = set(jobs.filter(pc.is_valid(jobs["dispatchdblock"]))["pandaid"].to_pylist())
    assigned = set(log.filter(pc.equal(log["jobstatus"], "assigned"))["pandaid"].to_pylist())
    assert with_dis and with_dis == assigned
    assert math.isfinite(result.sim_end_s)

"""The Rucio server of a run: catalog, judge, conveyor, reaper and placement wired together, and
the calls the workload system makes (dispatch datasets, job outputs, ``_sub`` datasets).

PanDA's side of the protocol (``pandaserver/dataservice/setupper_atlas_plugin.py``):

- a job whose input files are not all AVAILABLE at its queue's storage gets a dispatch dataset
  ``panda.<jeditaskid>_dis<pandaid>`` holding the missing files, with a rule to the queue's DATADISK
  (activity Production Input or Analysis Input, lifetime 7 days); the job stays ``assigned`` until
  the rule's locks are all OK (``datasetlock_ok``), then it is ``activated``;
- a finished payload's output and log are written to the queue's storage and attached to the
  ``<task output>_sub<id>`` dataset, whose rule sends them to the task's nucleus; the job is
  ``transferring`` until both locks are OK.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from gridtwin.ddm.catalog import AVAILABLE, NO_TOMBSTONE, Catalog
from gridtwin.ddm.conveyor import Conveyor, ConveyorParams
from gridtwin.ddm.judge import ROLE_INPUT, ROLE_OUTPUT, Judge, JudgeParams, LockGroup, Rule, RuleState
from gridtwin.ddm.reaper import Reaper, ReaperParams
from gridtwin.ddm.requests import ACTIVITIES, RequestTable
from gridtwin.ddm.rse_expression import resolve_rse_expression
from gridtwin.errors import ConfigError, PolicyError
from gridtwin.kernel import Engine, RandomStreams
from gridtwin.network.flow import FlowModel
from gridtwin.network.linksharing import LinkSharing
from gridtwin.network.maxmin import MaxMin
from gridtwin.platform.model import Platform
from gridtwin.policies.source_selection import SourceSelector

FLOW_MODELS: dict[str, type[FlowModel]] = {"linksharing": LinkSharing, "maxmin": MaxMin}


@dataclass(frozen=True)
class DdmParams:
    """Everything that steers data management in a run."""

    flow_model: str = "linksharing"
    flow_factors: dict = field(default_factory=dict)
    """Keyword arguments of the flow model (bandwidth_factor, latency_factor, window_bytes)."""
    conveyor: ConveyorParams = field(default_factory=ConveyorParams)
    reaper: ReaperParams = field(default_factory=ReaperParams)
    judge: JudgeParams = field(default_factory=JudgeParams)
    dis_lifetime_s: float = 7 * 86400.0
    """Lifetime of ``_dis`` rules (PanDA's setupper: 7 days)."""
    release_dis_at_job_end: bool = True
    """Delete a job's ``_dis`` rule when the job ends (its replicas then become cache the reaper may clean)."""
    direct_read_bps: float = 10e6
    """Rate at which a payload streams input remotely at a direct-access queue, bytes/s per job."""

    def __post_init__(self) -> None:
        if self.flow_model not in FLOW_MODELS:
            raise ConfigError(f"ddm.flow_model: must be one of {sorted(FLOW_MODELS)}, got {self.flow_model!r}")
        if not self.direct_read_bps > 0:
            raise ConfigError(f"ddm.direct_read_mbps: must be > 0, got {self.direct_read_bps / 1e6}")


class LinkMetricsRecorder:
    """Samples of the FTS links that had something to do since the previous sample."""

    def __init__(self) -> None:
        self.time: list[float] = []
        self.link: list[int] = []
        self.cols: dict[str, list] = {k: [] for k in (
            "active", "queued", "bytes_done", "files_done", "files_failed", "throughput_mbps", "max_active")}
        self._last = -math.inf
        self._carry: set = set()  # links busy at the last sample

    def __call__(self, now: float, conveyor: Conveyor) -> None:
        dt = now - self._last if math.isfinite(self._last) else 0.0
        self._last = now
        c = self.cols
        links = set(conveyor.dirty)
        links.update(self._carry)
        conveyor.dirty.clear()
        carry = set()
        for lk in sorted(links, key=lambda x: x.index):
            b0, f0, x0 = lk.sampled
            busy = lk.active or lk.queue
            if busy:
                carry.add(lk)
            elif lk.files_done == f0 and lk.files_failed == x0:
                continue
            self.time.append(now)
            self.link.append(lk.index)
            db = lk.bytes_done - b0
            c["active"].append(lk.active)
            c["queued"].append(len(lk.queue))
            c["bytes_done"].append(db)
            c["files_done"].append(lk.files_done - f0)
            c["files_failed"].append(lk.files_failed - x0)
            c["throughput_mbps"].append(db / dt / 1e6 if dt > 0 else 0.0)
            c["max_active"].append(lk.opt.limit)
            lk.sampled = (lk.bytes_done, lk.files_done, lk.files_failed)
        self._carry = carry


class DdmView:
    """The read-only view placement policies get (implements ``policies.placement.DataView``)."""

    def __init__(self, server: RucioServer) -> None:
        self._s = server
        self._c = server.catalog
        self._bytes: dict[int, int] = {}

    @property
    def now(self) -> float:
        return self._s.engine.now

    def rse_names(self) -> list[str]:
        return list(self._c.rse_names)

    def rse_site(self, rse: str) -> str:
        return self._c.rse_site[self._c.rse_index[rse]]

    def rse_is_tape(self, rse: str) -> bool:
        return self._c.rse_is_tape[self._c.rse_index[rse]]

    def rse_free_bytes(self, rse: str) -> int:
        return self._c.free_bytes(self._c.rse_index[rse])

    def dataset_name(self, dataset: int) -> str:
        return self._c.ds_names[dataset]

    def dataset_bytes(self, dataset: int) -> int:
        b = self._bytes.get(dataset)
        if b is None:
            c = self._c
            first = c.ds_first_fid[dataset]
            b = self._bytes[dataset] = sum(c.f_size[first:first + c.ds_nfiles[dataset]])
        return b

    def dataset_rses(self, dataset: int) -> list[str]:
        names = self._c.rse_names
        out = set(self._c.replicas(dataset))
        placed = self._s._placed.get(dataset)
        if placed:
            # only rules still bringing a replica: not deleted (expired) and not STUCK
            placed[:] = [(rule, rses) for rule, rses in placed if math.isnan(rule.deleted_at)]
            out.update(names[r] for rule, rses in placed if rule.state != RuleState.STUCK for r in rses)
        return sorted(out)

    def link_mbps(self, src_site: str, dst_site: str) -> float:
        lk = self._s.platform.link(src_site, dst_site)
        return lk.mbps if lk.mbps else lk.bandwidth_bps / 1e6


class RucioServer:
    """Data management for one run."""

    def __init__(self, engine: Engine, platform: Platform, catalog: Catalog, params: DdmParams,
                 streams: RandomStreams, selector: SourceSelector,
                 queued_hook: Callable[[str, str, int], None] | None = None) -> None:
        self.engine = engine
        self.platform = platform
        self.catalog = catalog
        self.params = params
        self.requests = RequestTable()
        self.reaper = Reaper(catalog, params.reaper)
        model = FLOW_MODELS[params.flow_model]
        factors = dict(params.flow_factors)
        self.conveyor = Conveyor(engine, platform, catalog, self.requests,
                                 lambda eng, cb: model(eng, cb, **factors), selector, params.conveyor,
                                 streams.stream("conveyor"), self.reaper, queued_hook)
        self.judge = Judge(engine, catalog, self.requests, self.conveyor, params.judge, streams.stream("judge"))
        self._sub_rules: dict[int, Rule] = {}
        self.link_metrics = LinkMetricsRecorder()
        self.placement = None  # a placement policy driven by read events and ticks (see set_placement)
        self._placed: dict[int, list[tuple[Rule, frozenset[int]]]] = {}  # dataset -> (rule, RSEs it fills)
        self.view = DdmView(self)
        self.n_outputs_refused = 0

    # ------------------------------------------------------------------ rules on input datasets
    def add_dataset_rule(self, dataset: int, rse_expression: str, *, copies: int = 1, lifetime_s: float | None = None,
                         activity: str = "Data Brokering", grouping: str = "DATASET", account: str = "panda") -> Rule:
        """A rule on an input dataset (placement policies, scenario rules)."""
        if activity not in ACTIVITIES:
            raise ConfigError(f"rule on {self.catalog.ds_names[dataset]}: unknown activity {activity!r}; known: "
                              f"{', '.join(ACTIVITIES)}")
        cat = self.catalog
        names = resolve_rse_expression(rse_expression, self.platform.rses)
        rule = self.judge.add_rule(account=account, scope=cat.ds_scopes[dataset], name=cat.ds_names[dataset],
                                   rses=[cat.rse_index[n] for n in names], rse_expression=rse_expression,
                                   activity=ACTIVITIES.index(activity), copies=copies, grouping=grouping,
                                   lifetime_s=lifetime_s, did_kind=2, owner=dataset)
        first = cat.ds_first_fid[dataset]
        self.judge.attach(rule, list(range(first, first + cat.ds_nfiles[dataset])))
        if rule.slots:
            self._placed.setdefault(dataset, []).append((rule, frozenset(cat.r_rse[s] for s in rule.slots)))
        return rule

    def set_placement(self, policy) -> None:
        """Drive ``policy``: reads come through :meth:`dataset_read`, ticks every ``policy.tick_s``."""
        self.placement = policy
        if getattr(policy, "tick_s", 0) > 0:
            self.engine.schedule(policy.tick_s, self._on_placement_tick)

    def dataset_read(self, dataset: int, site: str) -> None:
        """A job was brokered to read ``dataset`` at ATLAS site ``site``."""
        if self.placement is not None:
            self._apply(self.placement.on_read(dataset, site, self.view))

    def _on_placement_tick(self, _=None) -> None:
        self._apply(self.placement.tick(self.view))
        self.engine.schedule(self.placement.tick_s, self._on_placement_tick)

    def _apply(self, requests) -> None:
        for r in requests or ():
            try:
                self.add_dataset_rule(r.dataset, r.rse_expression, copies=r.copies, lifetime_s=r.lifetime_s,
                                      activity=r.activity, grouping=r.grouping)
            except ConfigError as e:
                raise PolicyError(f"placement policy {self.placement.name!r} asked for a bad rule: {e}") from None

    # ------------------------------------------------------------------ input: dispatch datasets
    def missing_at(self, fids: list[int], rse: int) -> list[int]:
        """The files of ``fids`` that ``rse`` does not hold AVAILABLE."""
        cat = self.catalog
        st = cat.r_state
        out = []
        for f in fids:
            if cat.has_bulk(f, rse):
                continue
            s = cat.slot(f, rse)
            if s < 0 or st[s] != AVAILABLE:
                out.append(f)
        return out

    def dispatch(self, row: int, fids: list[int], rse: int, activity: int, on_ok: Callable, on_stuck: Callable,
                 ) -> LockGroup:
        """A ``_dis`` rule bringing ``fids`` to ``rse`` for job ``row``; the group calls back with ``row``."""
        rule = self.judge.add_rule(account="panda", scope="panda", name="", rses=[rse],
                                   rse_expression=self.catalog.rse_names[rse], activity=activity,
                                   lifetime_s=self.params.dis_lifetime_s, did_kind=0, owner=row)
        group = LockGroup(rule, row, ROLE_INPUT, on_ok, on_stuck, row)
        self.judge.attach(rule, fids, group)
        return group

    def release(self, group: LockGroup) -> None:
        """The job that waited on ``group`` ended (or was closed)."""
        group.cancel()
        if self.params.release_dis_at_job_end:
            self.judge.delete_rule(group.rule)

    def read(self, fids: list[int], rse: int) -> None:
        """A job at a queue read these files from ``rse``: set accessed_at."""
        now = self.engine.now
        touch = self.catalog.touch
        for f in fids:
            touch(f, rse, now)

    # ------------------------------------------------------------------ output
    def write_output(self, fid: int, rse: int, final: bool) -> bool:
        """A pilot stages a job's output or log out to ``rse``; False if the RSE has no room.

        ``final``: the replica is the output's permanent home (no tombstone); otherwise it is a source
        for the ``_sub`` transfer and may be cleaned once that transfer is done."""
        now = self.engine.now
        size = self.catalog.f_size[fid]
        if self.catalog.rses[rse].used_bytes + size > self.reaper.fast_limit[rse] and \
                not self.reaper.make_room(rse, size, now):
            self.n_outputs_refused += 1
            return False
        self.catalog.create_replica(fid, rse, AVAILABLE, now, 0, NO_TOMBSTONE if final else now)
        return True

    def write_bytes(self, rse: int, nbytes: int) -> bool:
        """Bytes written to ``rse`` that the catalog does not follow file by file (analysis outputs on
        SCRATCHDISK); False if they do not fit."""
        if not self.reaper.make_room(rse, nbytes, self.engine.now):
            self.n_outputs_refused += 1
            return False
        self.catalog.rses[rse].used_bytes += nbytes
        return True

    def ship_output(self, row: int, sub_key: int, fids: list[int], dst: int, activity: int, on_ok: Callable,
                    on_stuck: Callable) -> LockGroup:
        """Attach a job's output files to its ``_sub`` dataset, whose rule sends them to ``dst``."""
        rule = self._sub_rules.get(sub_key)
        if rule is None:
            rule = self._sub_rules[sub_key] = self.judge.add_rule(
                account="panda", scope="panda", name="", rses=[dst], rse_expression=self.catalog.rse_names[dst],
                activity=activity, did_kind=1, owner=sub_key)
        group = LockGroup(rule, row, ROLE_OUTPUT, on_ok, on_stuck, row)
        self.judge.attach(rule, fids, group)
        return group

    # ------------------------------------------------------------------ run state
    def busy(self) -> bool:
        """Whether transfers are still queued or moving."""
        return self.conveyor.busy()

    def sample(self, now: float) -> None:
        self.link_metrics(now, self.conveyor)

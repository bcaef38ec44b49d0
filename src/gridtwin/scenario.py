"""Compose a run from a validated scenario: platform, workload, catalog, policy, engine; run it;
write the record folder. Everything the CLI does is reachable from here (``run_scenario``)."""

from __future__ import annotations

import dataclasses
import fnmatch
import gc
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridtwin import __version__
from gridtwin.config import Scenario
from gridtwin.ddm.catalog import Catalog, place_initial_replicas
from gridtwin.ddm.conveyor import ConveyorParams, TapeParams
from gridtwin.ddm.fts_optimizer import OptimizerParams
from gridtwin.ddm.judge import JudgeParams
from gridtwin.ddm.reaper import ReaperParams
from gridtwin.ddm.rse_expression import resolve_rse_expression
from gridtwin.ddm.rucio import DdmParams, RucioServer
from gridtwin.errors import ConfigError, PolicyError
from gridtwin.kernel import Engine, RandomStreams
from gridtwin.network.plain import PlainBandwidth
from gridtwin.platform.cric import load_cric_queues
from gridtwin.platform.model import RSE, Link, LinkDefaults, Platform, Site
from gridtwin.platform.netmatrix import load_atlas_snapshot
from gridtwin.platform.wlcg import build_wlcg_like
from gridtwin.policies.base import BrokeragePolicy
from gridtwin.policies.panda import PandaParams, PandaPolicy
from gridtwin.policies.registry import make_plugin, make_policy
from gridtwin.record.recorder import RunRecorder, SiteMetricsRecorder
from gridtwin.wms.brokerage import TaskBrokerParams
from gridtwin.wms.failures import FailureRates
from gridtwin.wms.jedi import JediParams
from gridtwin.wms.panda import Downtime, PandaServer, WmsParams
from gridtwin.wms.pilot import PilotParams
from gridtwin.workload.file import file_sha256, read_workload
from gridtwin.workload.generator import WorkloadParams, generate_workload
from gridtwin.workload.spec import Workload


def build_platform(sc: Scenario) -> Platform:
    """The scenario's grid, with its overrides applied and storage pre-filled."""
    pc = sc.platform
    if pc.cric is not None:
        if pc.network is not None:
            # the matrix's site names steer the queue -> ATLAS-site mapping, so load both together
            platform = load_atlas_snapshot(pc.cric, pc.network, name=sc.name)
        else:
            platform = load_cric_queues(pc.cric)
    elif pc.sites is not None:
        platform = _inline_platform(sc)
    else:
        platform = build_wlcg_like()
    for name, ov in sorted(pc.overrides.items()):
        site = platform.sites.get(name)
        if site is None:
            raise ConfigError(f"platform.overrides.{name}: unknown queue (the platform has {len(platform.sites)} "
                              f"queues, e.g. {', '.join(sorted(platform.sites)[:3])})")
        for k, v in ov.model_dump(exclude_none=True).items():
            setattr(site, k, v)
        try:
            site.__post_init__()
        except ConfigError as e:
            raise ConfigError(f"platform.overrides.{name}: {e}") from None
    apply_link_scales(platform, pc.link_scales)
    for rse in platform.rses.values():
        if rse.rse_type == "DISK" and rse.used_bytes == 0 and "SCRATCH" not in rse.name:
            rse.used_bytes = int(rse.capacity_bytes * sc.storage.initial_fill)
    platform.derive_rse_attributes()
    platform.validate()
    return platform


def apply_link_scales(platform: Platform, scales: dict[str, float]) -> None:
    """Multiply the bandwidth of each directed link ``"SRC:DST"`` by its factor (a pair the matrix does not
    list gets its default link first)."""
    atlas = {s.atlas_site for s in platform.sites.values()}
    for key, factor in sorted(scales.items()):
        src, sep, dst = key.partition(":")
        if not sep or src not in atlas or dst not in atlas:
            raise ConfigError(f"platform.link_scales.{key}: expected \"SRC:DST\" with both ATLAS sites of the "
                              f"platform (e.g. {', '.join(sorted(atlas)[:2])})")
        if not (factor > 0 and math.isfinite(factor)):
            raise ConfigError(f"platform.link_scales.{key}: a factor > 0 was expected, got {factor}")
        link = platform.link(src, dst)
        platform.links[(src, dst)] = dataclasses.replace(link, bandwidth_bps=link.bandwidth_bps * factor)


def _inline_platform(sc: Scenario) -> Platform:
    pc = sc.platform
    rses: dict[str, RSE] = {}
    for i, r in enumerate(pc.rses):
        if r.name in rses:
            raise ConfigError(f"platform.rses[{i}].name: duplicate RSE {r.name!r}")
        rses[r.name] = RSE(r.name, r.atlas_site, r.rse_type, int(r.capacity_tb * 1e12))
    sites: dict[str, Site] = {}
    for i, s in enumerate(pc.sites or []):
        where = f"platform.sites[{i}] ({s.name})"
        if s.name in sites:
            raise ConfigError(f"{where}.name: duplicate queue name")
        for r in s.rses:
            if r not in rses:
                raise ConfigError(f"{where}.rses: RSE {r!r} is not defined under platform.rses")
        data = s.model_dump()
        data["atlas_site"] = s.atlas_site or s.name
        try:
            sites[s.name] = Site(**data)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    atlas = {s.atlas_site for s in sites.values()}
    links: dict[tuple[str, str], Link] = {}
    for i, lk in enumerate(pc.links):
        for end in (lk.src, lk.dst):
            if end not in atlas:
                raise ConfigError(f"platform.links[{i}]: {end!r} is not the ATLAS site of any queue")
        links[(lk.src, lk.dst)] = Link(lk.src, lk.dst, lk.bandwidth_gbps * 1e9 / 8, lk.latency_ms / 1000.0,
                                       lk.closeness, lk.mbps)
    defaults = LinkDefaults(bandwidth_bps=pc.default_bandwidth_gbps * 1e9 / 8, latency_s=pc.default_latency_ms / 1000)
    return Platform(sc.name, sites, rses, links, defaults)


def check_platform_storage(platform: Platform) -> None:
    """Input datasets need at least one DISK RSE associated with a queue."""
    for site in platform.sites.values():
        for r in site.rses:
            rse = platform.rses.get(r)
            if rse is not None and rse.rse_type == "DISK":
                return
    raise ConfigError(
        f"platform {platform.name}: no queue has a DISK RSE, so input datasets have nowhere to live; "
        "list RSEs under platform.rses and name them in platform.sites[i].rses (or, in a CRIC file, "
        "give the queues astorages)")


def build_downtimes(sc: Scenario, platform: Platform) -> list[Downtime]:
    """Downtime windows, each naming a queue or an ATLAS site of the platform."""
    atlas = {s.atlas_site for s in platform.sites.values()}
    out = []
    for i, d in enumerate(sc.downtimes):
        if d.site not in platform.sites and d.site not in atlas:
            near = sorted(n for n in platform.sites if n[:3].lower() == d.site[:3].lower())[:5]
            hint = f" (similar: {', '.join(near)})" if near else ""
            raise ConfigError(f"downtimes[{i}].site: unknown site {d.site!r}: neither a queue nor an ATLAS site "
                              f"of the platform{hint}")
        out.append(Downtime(d.site, d.start_h * 3600.0, d.end_h * 3600.0))
    return out


def build_policy(sc: Scenario, policy: str | BrokeragePolicy | None = None) -> BrokeragePolicy:
    b = sc.brokerage
    spec = policy if policy is not None else b.policy
    if spec == "panda":
        return PandaPolicy(PandaParams(top_n=b.top_n, nqueued_sat_cap=b.nqueued_sat_cap,
                                       queue_cap_min=b.queue_cap_min, queue_cap_factor=b.queue_cap_factor,
                                       network_active=b.network_active))
    try:
        return make_policy(spec)
    except PolicyError as e:
        raise PolicyError(f"brokerage.policy: {e}") from None


def wms_params(sc: Scenario) -> WmsParams:
    f = sc.failures
    return WmsParams(
        pilot=PilotParams(**sc.pilot.model_dump()),
        jedi=JediParams(**sc.jedi.model_dump()),
        failures=FailureRates(stagein=f.stagein, oom=f.oom, walltime=f.walltime, payload=f.payload,
                              stageout=f.stageout, exe_codes=tuple(f.exe_codes),
                              exe_code_weights=tuple(f.exe_code_weights), max_attempts=f.max_attempts),
        network=PlainBandwidth(stream_rate_bps=sc.network.stream_rate_mbps * 1e6,
                               lan_rate_bps=sc.network.lan_rate_mbps * 1e6, wan_overhead_s=sc.network.wan_overhead_s),
        taskbroker=TaskBrokerParams(),
        metrics_interval_s=sc.metrics_interval_s,
        enforce_requests=sc.resources.enforce,
    )


def ddm_params(sc: Scenario) -> DdmParams:
    d = sc.ddm
    o = d.optimizer
    return DdmParams(
        flow_model=d.flow_model,
        conveyor=ConveyorParams(
            submitter_interval_s=d.submitter_interval_s, max_retries=d.max_retries, failure_rate=d.failure_rate,
            reason_weights=tuple(d.reason_weights),
            optimizer=OptimizerParams(tick_s=o.tick_s, min_active=o.min_active, max_active=o.max_active,
                                      se_limit=o.se_limit, mode=o.mode),
            tape=TapeParams(drives=d.tape.drives, drive_rate_bps=d.tape.drive_rate_mbps * 1e6,
                            mount_s=d.tape.mount_s)),
        reaper=ReaperParams(high_watermark=d.high_watermark, low_watermark=d.low_watermark),
        judge=JudgeParams(tombstone_delay_s=d.tombstone_delay_h * 3600.0),
        dis_lifetime_s=d.dis_lifetime_h * 3600.0,
        release_dis_at_job_end=d.release_dis_at_job_end,
        direct_read_bps=d.direct_read_mbps * 1e6,
    )


def scenario_rules(sc: Scenario, platform: Platform, catalog: Catalog) -> list[tuple[float, int, dict]]:
    """The scenario's rules as (time, dataset, arguments), checked now: an RSE expression that does not
    parse or matches no RSE, or a DID pattern matching no input dataset, is a ConfigError."""
    out = []
    for i, r in enumerate(sc.ddm.rules):
        where = f"ddm.rules[{i}]"
        try:
            names = resolve_rse_expression(r.rse_expression, platform.rses)
        except ConfigError as e:
            raise ConfigError(f"{where}.rse_expression: {e}") from None
        if r.copies > len(names):
            raise ConfigError(f"{where}.copies: {r.copies} copies asked, but \"{r.rse_expression}\" matches only "
                              f"{len(names)} RSE(s): {', '.join(names[:5])}")
        dids = [d for d in range(len(catalog)) if fnmatch.fnmatchcase(
            f"{catalog.ds_scopes[d]}:{catalog.ds_names[d]}", r.did)]
        if not dids:
            ex = f"{catalog.ds_scopes[0]}:{catalog.ds_names[0]}" if len(catalog) else "none"
            raise ConfigError(f"{where}.did: pattern {r.did!r} matches no input dataset (e.g. {ex})")
        from gridtwin.ddm.requests import ACTIVITIES

        if r.activity not in ACTIVITIES:
            raise ConfigError(f"{where}.activity: unknown activity {r.activity!r}; known: {', '.join(ACTIVITIES)}")
        args = dict(copies=r.copies, lifetime_s=None if r.lifetime_h is None else r.lifetime_h * 3600.0,
                    activity=r.activity, grouping=r.grouping, account=r.account)
        out.extend((r.at_h * 3600.0, d, {"rse_expression": r.rse_expression, **args}) for d in dids)
    return out


@dataclass
class RunResult:
    """What a run produced: where, how much, how fast, and its KPIs."""

    out: Path
    scenario: Scenario
    n_jobs: int
    n_tasks: int
    events: int
    wall_time_s: float
    sim_end_s: float
    counts: dict[str, int]
    status: dict[str, int]
    kpis: dict[str, Any] = field(default_factory=dict)
    unfinished: int = 0
    tasks_broken: int = 0
    specs_never_created: int = 0
    """Jobs of the workload that brokerage never placed (broken tasks, or pending at the horizon)."""


class Simulation:
    """A built, not yet run, simulation: useful from notebooks and tests."""

    def __init__(self, sc: Scenario, policy: str | BrokeragePolicy | None = None, *,
                 workload: Workload | None = None, platform: Platform | None = None) -> None:
        """``workload`` and ``platform``, when given (a replay builds both from a trace), are used instead of
        the scenario's; the scenario's epoch and duration must then match the workload."""
        self.scenario = sc
        self.platform = platform if platform is not None else build_platform(sc)
        self.downtimes = build_downtimes(sc, self.platform)
        self.policy = build_policy(sc, policy)
        if callable(getattr(self.policy, "reset", None)):
            self.policy.reset()  # a policy object reused across runs starts each run afresh
        self.streams = RandomStreams(sc.seed)
        self.placement = None
        if sc.ddm.enabled:
            try:
                self.placement = make_plugin("placement", sc.ddm.placement.policy, sc.ddm.placement.options)
                self.selector = make_plugin("source selection", sc.ddm.source_selection)
            except PolicyError as e:
                raise PolicyError(f"ddm: {e}") from None
            if callable(getattr(self.placement, "setup", None)):
                self.placement.setup(self.platform)  # may add cache RSEs
        w = sc.workload
        self.workload_file: dict[str, str] | None = None
        """Path and SHA-256 of the workload file the run read (None: the workload was generated)."""
        if workload is not None:
            self.workload = workload
        elif w.file is not None:
            # a workload file replaces the generator; its epoch and duration replace the scenario's
            self.workload, epoch = read_workload(w.file)
            self.workload_file = {"path": str(w.file), "sha256": file_sha256(w.file)}
            sc = self.scenario = sc.model_copy(update={"epoch": epoch, "workload": w.model_copy(
                update={"duration_h": self.workload.duration_s / 3600.0})})
        else:
            self.workload = generate_workload(
                WorkloadParams(scale=w.scale, duration_s=w.duration_h * 3600.0, n_users=w.n_users,
                               analysis_datasets_per_task=w.analysis_datasets_per_task,
                               peak_hour_utc=w.peak_hour_utc),
                self.streams.stream("workload"))
        self.resources: dict[str, Any] | None = None
        """Requests with and without the resource predictor (None: the workload's own requests)."""
        if sc.resources.predictor is not None:
            from gridtwin.ml.requests import apply_predictor

            maxtimes = sorted(s.maxtime_s for s in self.platform.sites.values())
            self.workload = dataclasses.replace(self.workload)  # the predictor sets new arrays on this copy only
            self.resources = apply_predictor(self.workload, sc.resources.predictor, sc.resources.memory_margin,
                                             sc.resources.walltime_margin, float(maxtimes[len(maxtimes) // 2]))
        check_platform_storage(self.platform)
        self.engine = Engine()
        site_names = sorted(self.platform.sites)
        self.catalog = Catalog(self.platform, site_names)
        place_initial_replicas(self.catalog, self.workload.datasets, self.streams.stream("replicas"),
                               tape_only_fraction=sc.ddm.tape_only_fraction if sc.ddm.enabled else 0.0)
        self.metrics = SiteMetricsRecorder()
        self.ddm: RucioServer | None = None
        self.rules: list[tuple[float, int, dict]] = []
        if sc.ddm.enabled:
            self.rules = scenario_rules(sc, self.platform, self.catalog)
            self.ddm = RucioServer(self.engine, self.platform, self.catalog, ddm_params(sc), self.streams,
                                   self.selector)
            self.ddm.set_placement(self.placement)
        self.server = PandaServer(self.engine, self.platform, self.workload, self.catalog, self.policy,
                                  wms_params(sc), self.streams, self.downtimes, self.metrics, self.ddm)
        if self.ddm is not None:
            self.ddm.conveyor.queued_hook = self.server.grid.add_queued_files
            for t, d, args in self.rules:
                self.engine.schedule_at(t, self._add_rule, (d, args))

    def _add_rule(self, item: tuple[int, dict]) -> None:
        d, args = item
        self.ddm.add_dataset_rule(d, args.pop("rse_expression"), **args)

    def ddm_summary(self) -> dict[str, Any] | None:
        """Counts of the data-management layer for run.json (None when it is off)."""
        d = self.ddm
        if d is None:
            return None
        c = d.conveyor
        from gridtwin.ddm.judge import rule_states

        return {
            "flow_model": self.scenario.ddm.flow_model, "requests": len(d.requests), "transfers_done": c.n_done,
            "attempts_failed": c.n_failed_attempts, "requests_stuck": c.n_stuck,
            "requests_unfinished": c.in_flight, "bytes_delivered": c.bytes_delivered,
            "rules_by_state": rule_states(d.judge.rules), "links_used": len(c.link_list),
            "reaper_passes": d.reaper.passes, "replicas_deleted": len(d.reaper.d_fid),
            "bytes_deleted": int(sum(d.reaper.d_bytes)), "outputs_refused_no_space": d.n_outputs_refused,
            "jobs_failed_input_stuck": self.server.n_input_stuck,
            "jobs_failed_output_stuck": self.server.n_output_stuck,
            "file_replicas": self.catalog.n_file_replicas(),
            "placement": getattr(self.placement, "name", None), "source_selection": self.selector.name,
        }

    def busy(self) -> bool:
        """Whether jobs or transfers are still under way."""
        return self.server.busy() or (self.ddm is not None and self.ddm.busy())

    @property
    def horizon_s(self) -> float:
        return self.scenario.workload.duration_h * 3600.0 + self.scenario.drain_h * 3600.0

    def run(self, progress: Callable[[float, float], None] | None = None, step_s: float = 3600.0) -> None:
        """Run to the end of the work or the horizon, calling ``progress(now, horizon)`` every ``step_s``."""
        self.server.start()
        eng = self.engine
        horizon = self.horizon_s
        # Speed: the event loop allocates millions of short-lived objects but creates no reference
        # cycles, so Python's cyclic collector only costs time here (about 25% of a full-scale run,
        # with the same peak memory when it is off; benchmarks/bench_default_day.py measures it).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            while True:
                nxt = eng.peek()
                if nxt == math.inf or nxt > horizon:
                    break
                eng.run(until=min(horizon, eng.now + step_s))
                if progress is not None:
                    progress(eng.now, horizon)
                if not self.busy():
                    break
            self.server.finish_run()
            if self.ddm is not None:
                self.ddm.sample(eng.now)  # the last link-metrics sample covers the end of the run
        finally:
            if gc_was_enabled:
                gc.enable()


def _epoch_ms(sc: Scenario) -> int:
    return round(sc.epoch.timestamp() * 1000)


def check_output_folder(out: Path, force: bool = False, markers: tuple[str, ...] = ("run.json", "import.json"),
                        what: str = "a gridtwin run") -> Path:
    """Resolve ``out`` and make sure writing a run there destroys nothing but an earlier run.

    An existing folder is replaced only if it is empty, holds an earlier gridtwin run (``run.json``) or
    import (``import.json``), or ``force`` is set; a file of that name, or a parent that cannot be created,
    is an error."""
    out = Path(out).expanduser().resolve()
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"--out {out}: a file of that name exists; a folder was expected")
        earlier = any((out / m).exists() for m in markers)
        if any(out.iterdir()) and not earlier and not force:
            raise ConfigError(f"--out {out}: the folder exists and does not hold {what}; "
                              "choose another folder (or pass --force to replace its contents)")
        if out == Path.cwd() or out in Path.cwd().parents:
            raise ConfigError(f"--out {out}: refusing to replace the current folder or one of its parents")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot create its parent folder ({e.strerror})") from None
    return out


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Write a folder atomically: yield a hidden ``.<name>.partial`` sibling to fill; on success it
    replaces ``out``, on any error it is removed and ``out`` is left as it was."""
    partial = out.with_name(f".{out.name}.partial")
    try:
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
    except OSError as e:
        raise ConfigError(f"{out}: cannot write there ({e.strerror})") from None
    try:
        yield partial
        if out.exists():
            shutil.rmtree(out)
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def run_scenario(sc: Scenario, out: Path, *, policy: str | BrokeragePolicy | None = None,
                 progress: Callable[[str, float, float], None] | None = None, report: bool = True,
                 force: bool = False, workload: Workload | None = None,
                 platform: Platform | None = None,
                 observer: Callable[[Simulation], object] | None = None) -> RunResult:
    """Build, run and record a scenario into ``out`` (written atomically: a folder appears only when complete).
    ``observer(simulation)`` is called once it is built, before it runs (the live dashboard attaches there)."""
    t0 = time.perf_counter()
    out = check_output_folder(out, force)
    sim = Simulation(sc, policy, workload=workload, platform=platform)  # input errors surface here, before writing
    sc = sim.scenario  # a workload file sets the epoch and duration
    if observer is not None:
        observer(sim)
    if progress:
        progress("simulate", 0.0, sim.horizon_s)
    sim.run(None if progress is None else (lambda now, h: progress("simulate", now, h)))
    sim_wall = time.perf_counter() - t0
    with atomic_folder(out) as partial:
        rec = RunRecorder(sim.server, sim.platform, _epoch_ms(sc))
        counts = rec.write(partial, sim.metrics, None if progress is None else (lambda name: progress(name, 1, 1)))
        if sim.ddm is not None:
            from gridtwin.record.rucio import RucioRecorder

            counts.update(RucioRecorder(sim.ddm, rec).write(
                partial, None if progress is None else (lambda name: progress(name, 1, 1))))
        srv = sim.server
        status = srv.counts_by_status()
        from gridtwin.analytics.kpi import compute_kpis

        kpis = compute_kpis(partial, sc.workload.duration_h * 3600.0)
        result = RunResult(
            out=out, scenario=sc, n_jobs=len(srv.jobs), n_tasks=sim.workload.n_tasks,
            events=sim.engine.events_processed, wall_time_s=0.0, sim_end_s=sim.engine.now, counts=counts,
            status=status, kpis=kpis, unfinished=srv.n_active, tasks_broken=len(srv.jedi.tasks_without_candidates),
            specs_never_created=srv.specs_never_created())
        result.wall_time_s = time.perf_counter() - t0
        run_json = {
            "scenario": sc.name, "seed": sc.seed, "gridtwin_version": __version__,
            "policy": sim.policy.name, "platform": sim.platform.name,
            "wall_time_s": round(result.wall_time_s, 3), "simulation_wall_time_s": round(sim_wall, 3),
            "event_count": result.events, "n_jobs": result.n_jobs, "n_tasks": result.n_tasks,
            "n_job_specs": sim.workload.n_jobs, "unfinished_jobs": result.unfinished,
            "tasks_broken": result.tasks_broken, "job_specs_never_created": result.specs_never_created,
            "sim_end_s": result.sim_end_s, "epoch": sc.epoch.isoformat(),
            "rows": counts, "jobs_by_status": status, "kpis": kpis, "platform_notes": sim.platform.notes,
            "ddm": sim.ddm_summary(), "workload_file": sim.workload_file, "resources": sim.resources,
            "config": json.loads(sc.model_dump_json()),
        }
        (partial / "run.json").write_text(json.dumps(run_json, indent=2, sort_keys=True) + "\n")
        if report:
            from gridtwin.analytics.report import write_report

            write_report(partial, kpis)
    return result

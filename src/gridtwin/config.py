"""The scenario schema (pydantic): validated once at the edge, with errors that name the key path."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gridtwin.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteSpec(_Strict):
    """A PanDA queue defined inline in a scenario."""

    name: str
    atlas_site: str | None = None
    cloud: str = "WORLD"
    country: str = ""
    tier: int = Field(2, ge=0, le=3)
    corecount: int = Field(8, ge=1)
    corepower: float = Field(10.0, gt=0)
    total_cores: int = Field(ge=1)
    capability: Literal["score", "mcore", "ucore"] = "ucore"
    type: Literal["production", "analysis", "unified"] = "unified"
    minrss_mb: int = Field(0, ge=0)
    maxrss_mb: int = Field(16000, ge=0)
    mintime_s: int = Field(0, ge=0)
    maxtime_s: int = Field(345600, gt=0)
    status: Literal["online", "offline", "brokeroff", "test"] = "online"
    is_nucleus: bool = False
    rses: list[str] = Field(default_factory=list)
    direct_access: bool = False
    efficiency: float = Field(1.0, gt=0, le=1.5)


class RSESpec(_Strict):
    name: str
    atlas_site: str
    rse_type: Literal["DISK", "TAPE"] = "DISK"
    capacity_tb: float = Field(ge=0)


class LinkSpec(_Strict):
    src: str
    dst: str
    bandwidth_gbps: float = Field(gt=0)
    latency_ms: float = Field(ge=0)
    closeness: int = Field(5, ge=0, le=11)
    mbps: float | None = Field(None, ge=0)


class SiteOverride(_Strict):
    """Attributes of a loaded queue that a scenario changes."""

    status: Literal["online", "offline", "brokeroff", "test"] | None = None
    total_cores: int | None = Field(None, ge=1)
    corepower: float | None = Field(None, gt=0)
    efficiency: float | None = Field(None, gt=0, le=1.5)
    is_nucleus: bool | None = None
    direct_access: bool | None = None
    maxrss_mb: int | None = Field(None, ge=0)
    maxtime_s: int | None = Field(None, gt=0)


class PlatformConfig(_Strict):
    """At most one source: ``builtin``, ``cric`` (+ optional ``network``), or inline ``sites``; none
    means the built-in ``wlcg-like`` grid."""

    builtin: Literal["wlcg-like"] | None = None
    cric: Path | None = None
    network: Path | None = None
    sites: list[SiteSpec] | None = None
    rses: list[RSESpec] = Field(default_factory=list)
    links: list[LinkSpec] = Field(default_factory=list)
    default_bandwidth_gbps: float = Field(1.0, gt=0)
    default_latency_ms: float = Field(100.0, ge=0)
    overrides: dict[str, SiteOverride] = Field(default_factory=dict)
    link_scales: dict[str, float] = Field(default_factory=dict)
    """``"SRC:DST"`` (ATLAS sites, as the network matrix spells pairs) -> factor on that directed link's
    bandwidth (``gridtwin calibrate`` writes them)."""

    @model_validator(mode="after")
    def _one_source(self) -> PlatformConfig:
        n = sum(x is not None for x in (self.builtin, self.cric, self.sites))
        if n > 1:
            raise ValueError("give exactly one of builtin, cric or sites")
        if self.network is not None and self.cric is None:
            raise ValueError("network needs cric (the matrix is keyed by the queues' ATLAS sites)")
        return self


class WorkloadConfig(_Strict):
    """The generator's knobs, or ``file``: a workload file (Parquet, ``gridtwin.workload.file``) to run
    instead; with a file, the other keys do not apply and the file sets the epoch and duration."""

    file: Path | None = None
    scale: float = Field(1.0, gt=0, le=20)
    duration_h: float = Field(24.0, gt=0, le=24 * 31)
    n_users: int = Field(600, ge=1)
    analysis_datasets_per_task: float = Field(0.3, gt=0, le=10)
    peak_hour_utc: float = Field(15.0, ge=0, lt=24)


class BrokerageConfig(_Strict):
    policy: str = "panda"
    top_n: int = Field(10, ge=1)
    nqueued_sat_cap: int = Field(150, ge=1)
    queue_cap_min: int = Field(20, ge=0)
    queue_cap_factor: float = Field(2.0, ge=0)
    network_active: bool = True


class PilotConfig(_Strict):
    getjob_s: float = Field(15.0, ge=0)
    setup_s: float = Field(60.0, ge=0)
    jitter: bool = True
    mcore_drain_after_s: float = Field(3600.0, ge=0)
    latency_median_s: float = Field(0.0, ge=0)
    """Pilot arrival latency: an activated job waits a lognormal time (this median) for a pilot."""
    latency_sigma: float = Field(0.0, ge=0, le=5)


class JediConfig(_Strict):
    cycle_s: float = Field(300.0, gt=0)
    task_pend_s: float = Field(3600.0, ge=0)
    chunk_size: int = Field(2000, ge=1)


class FailureConfig(_Strict):
    stagein: float = Field(0.01, ge=0, le=1)
    oom: float = Field(0.01, ge=0, le=1)
    walltime: float = Field(0.001, ge=0, le=1)
    payload: float = Field(0.05, ge=0, le=1)
    stageout: float = Field(0.005, ge=0, le=1)
    exe_codes: list[int] = Field(default_factory=lambda: [65, 68, 85, 137])
    exe_code_weights: list[float] = Field(default_factory=lambda: [0.6, 0.2, 0.1, 0.1])
    max_attempts: int = Field(3, ge=1, le=100)

    @model_validator(mode="after")
    def _sums(self) -> FailureConfig:
        total = self.stagein + self.oom + self.walltime + self.payload + self.stageout
        if total > 1:
            raise ValueError(f"the failure rates add up to {total:.3f}; at most 1 was expected")
        if len(self.exe_codes) != len(self.exe_code_weights) or not self.exe_codes:
            raise ValueError("exe_codes and exe_code_weights must be non-empty lists of the same length")
        return self


class NetworkConfig(_Strict):
    stream_rate_mbps: float = Field(100.0, gt=0)
    lan_rate_mbps: float = Field(200.0, gt=0)
    wan_overhead_s: float = Field(60.0, ge=0)


class DowntimeConfig(_Strict):
    site: str
    start_h: float = Field(ge=0)
    end_h: float = Field(gt=0)

    @model_validator(mode="after")
    def _order(self) -> DowntimeConfig:
        if self.end_h <= self.start_h:
            raise ValueError(f"end_h ({self.end_h}) must be after start_h ({self.start_h})")
        return self


class StorageConfig(_Strict):
    initial_fill: float = Field(0.6, ge=0, le=1)


class OptimizerConfig(_Strict):
    """FTS optimizer of every link (FTS defaults)."""

    mode: Literal["conservative", "normal", "aggressive"] = "conservative"
    min_active: int = Field(2, ge=1)
    max_active: int | None = Field(None, ge=1)
    se_limit: int = Field(60, ge=1)
    tick_s: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _range(self) -> OptimizerConfig:
        if self.max_active is not None and self.max_active < self.min_active:
            raise ValueError(f"max_active ({self.max_active}) is below min_active ({self.min_active})")
        return self


class TapeConfig(_Strict):
    drives: int = Field(16, ge=1)
    drive_rate_mbps: float = Field(300.0, gt=0)
    mount_s: float = Field(60.0, ge=0)


class RuleConfig(_Strict):
    """A replication rule the scenario creates at ``at_h`` on every input dataset matching ``did``."""

    did: str
    """``scope:name`` pattern with shell wildcards, e.g. ``mc23_13p6TeV:*DAOD_PHYS.*``."""
    rse_expression: str
    copies: int = Field(1, ge=1)
    grouping: Literal["ALL", "DATASET", "NONE"] = "DATASET"
    lifetime_h: float | None = Field(None, gt=0)
    activity: str = "Data Rebalancing"
    account: str = "root"
    at_h: float = Field(0.0, ge=0)


class PlacementConfig(_Strict):
    policy: str = "none"
    """none, popularity, diskless-cache, or module:Class."""
    options: dict[str, Any] = Field(default_factory=dict)


class DdmConfig(_Strict):
    """Data management: rules, transfers over the network model, reaper, tape."""

    enabled: bool = True
    flow_model: Literal["linksharing", "maxmin"] = "linksharing"
    source_selection: str = "closeness"
    submitter_interval_s: float = Field(30.0, gt=0)
    max_retries: int = Field(3, ge=0, le=100)
    failure_rate: float = Field(0.03, ge=0, lt=1)
    reason_weights: list[float] = Field(default_factory=lambda: [0.4, 0.3, 0.2, 0.1])
    dis_lifetime_h: float = Field(168.0, gt=0)
    release_dis_at_job_end: bool = True
    tombstone_delay_h: float = Field(0.0, ge=0)
    high_watermark: float = Field(0.95, ge=0, le=1)
    low_watermark: float = Field(0.90, ge=0, le=1)
    direct_read_mbps: float = Field(10.0, gt=0)
    tape_only_fraction: float = Field(0.1, ge=0, le=1)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    tape: TapeConfig = Field(default_factory=TapeConfig)
    rules: list[RuleConfig] = Field(default_factory=list)
    placement: PlacementConfig = Field(default_factory=PlacementConfig)

    @model_validator(mode="after")
    def _check(self) -> DdmConfig:
        if self.low_watermark > self.high_watermark:
            raise ValueError(f"low_watermark ({self.low_watermark}) is above high_watermark ({self.high_watermark})")
        if len(self.reason_weights) != 4 or min(self.reason_weights) < 0 or sum(self.reason_weights) <= 0:
            raise ValueError("reason_weights must be 4 weights >= 0 with a positive sum (timeout, performance "
                             "marker, checksum, permission)")
        return self


class ResourcesConfig(_Strict):
    """Requested memory and walltime of each job. By default they come from the workload (the task's
    ramcount; the queue's maxtime). ``predictor`` takes them from a model of ``gridtwin ml train-resources``:
    its upper quantile of maxrss and of walltime (at a 10-HS06 core, scaled by the site's corepower),
    times the margins; brokerage's memory and walltime filters then use them, and with ``enforce`` a
    first attempt that goes over its request is killed (1212 memory, 1213 time); retries get the
    queue's limits, as JEDI raises a failed job's requests."""

    predictor: Path | None = None
    memory_margin: float = Field(1.0, gt=0)
    walltime_margin: float = Field(1.0, gt=0)
    enforce: bool = True


class Scenario(_Strict):
    """A whole run: platform, workload, policies and knobs."""

    name: str = "default-day"
    seed: int = Field(1, ge=0)
    epoch: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    drain_h: float = Field(336.0, ge=0)
    """How long after the last arrival the run may continue for jobs to finish."""
    metrics_interval_s: float = Field(600.0, gt=0)
    platform: PlatformConfig = Field(default_factory=PlatformConfig)
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    brokerage: BrokerageConfig = Field(default_factory=BrokerageConfig)
    pilot: PilotConfig = Field(default_factory=PilotConfig)
    jedi: JediConfig = Field(default_factory=JediConfig)
    failures: FailureConfig = Field(default_factory=FailureConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    ddm: DdmConfig = Field(default_factory=DdmConfig)
    downtimes: list[DowntimeConfig] = Field(default_factory=list)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)

    @field_validator("epoch")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; `gridtwin scenario template` lists the valid keys)"
        lines.append(f"  {path}: {msg}")
    return f"{source}: invalid scenario\n" + "\n".join(lines)


def scenario_from_dict(data: dict[str, Any], source: str = "scenario", base_dir: Path | None = None) -> Scenario:
    """Validate a scenario mapping; relative file paths resolve against ``base_dir``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a mapping of keys at the top level was expected, got {type(data).__name__}")
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None
    if base_dir is not None:
        upd = {}
        for key in ("cric", "network"):
            p = getattr(sc.platform, key)
            if p is not None and not p.is_absolute():
                upd[key] = (base_dir / p)
        if upd:
            sc = sc.model_copy(update={"platform": sc.platform.model_copy(update=upd)})
        wf = sc.workload.file
        if wf is not None and not wf.is_absolute():
            sc = sc.model_copy(update={"workload": sc.workload.model_copy(update={"file": base_dir / wf})})
        rp = sc.resources.predictor
        if rp is not None and not rp.is_absolute():
            sc = sc.model_copy(update={"resources": sc.resources.model_copy(update={"predictor": base_dir / rp})})
    return sc


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: scenario file not found") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} YAML syntax error: {getattr(e, 'problem', e)}") from None
    if data is None:
        data = {}
    return scenario_from_dict(data, str(path), path.parent)


TEMPLATE = """\
# gridtwin scenario: every key is optional; the values shown are the defaults.
name: default-day
seed: 1                      # same seed, same records (byte-identical Parquet)
epoch: 2025-01-01T00:00:00Z  # simulated time 0, UTC
drain_h: 336                 # how long jobs may run on after the last task arrived
metrics_interval_s: 600      # site_metrics sample period

platform:
  builtin: wlcg-like         # the built-in grid; or instead:
  # cric: queues.json        #   CRIC pandaqueue JSON (or the site_info.json snapshot shape)
  # network: matrix.json     #   site-to-site network matrix (closeness, throughput)
  # sites:                   #   or an inline grid:
  #   - {name: SITE_A, total_cores: 800, corecount: 8, corepower: 12, rses: [SITE_A_DATADISK], is_nucleus: true}
  # rses:
  #   - {name: SITE_A_DATADISK, atlas_site: SITE_A, capacity_tb: 500}
  # links:
  #   - {src: SITE_A, dst: SITE_B, bandwidth_gbps: 10, latency_ms: 20, closeness: 3}
  default_bandwidth_gbps: 1.0   # for site pairs without a link
  default_latency_ms: 100
  overrides: {}              # e.g. {BNL: {status: offline}, MWT2: {total_cores: 20000}}

workload:
  # file: workload.parquet   # run a workload file instead (then the keys below do not apply)
  scale: 1.0                 # 1.0 is about 1M jobs per day
  duration_h: 24             # tasks arrive during this window
  n_users: 600               # analysis users
  analysis_datasets_per_task: 0.3
  peak_hour_utc: 15          # analysis submission peaks in the European afternoon

brokerage:
  policy: panda              # panda, random, round-robin, least-loaded, data-locality, or module:Class
  top_n: 10
  nqueued_sat_cap: 150
  queue_cap_min: 20          # a queue is skipped when queued > max(queue_cap_min, queue_cap_factor x running)
  queue_cap_factor: 2.0
  network_active: true

pilot: {getjob_s: 15, setup_s: 60, jitter: true, mcore_drain_after_s: 3600,  # drain cores for waiting 8-core jobs
        latency_median_s: 0, latency_sigma: 0}  # activated jobs wait lognormal(median, sigma) for a pilot
jedi: {cycle_s: 300, task_pend_s: 3600, chunk_size: 2000}

failures:                    # per-attempt probabilities; memory and walltime limits act on top
  stagein: 0.01              # pilot 1099
  oom: 0.01                  # pilot 1212
  walltime: 0.001            # pilot 1213 (the payload hangs until the queue's maxtime)
  payload: 0.05              # pilot 1305 with a transformation exit code
  stageout: 0.005            # pilot 1137
  exe_codes: [65, 68, 85, 137]
  exe_code_weights: [0.6, 0.2, 0.1, 0.1]
  max_attempts: 3

network: {stream_rate_mbps: 100, lan_rate_mbps: 200, wan_overhead_s: 60}  # pilot copies; WAN terms if ddm is off
storage: {initial_fill: 0.6}  # DATADISK fill at the start

ddm:
  enabled: true              # false: fixed-delay transfers, no shared links (the simulation core's model)
  flow_model: linksharing    # or maxmin (SimGrid LV08 semantics; slower)
  source_selection: closeness  # or queue-aware, or module:Class
  submitter_interval_s: 30
  max_retries: 3             # then the lock is STUCK and the job fails (ddmerrorcode 100 input, 200 output)
  failure_rate: 0.03         # FTS attempt failures, with reasons weighted:
  reason_weights: [0.4, 0.3, 0.2, 0.1]  # timeout, performance marker, checksum, permission
  dis_lifetime_h: 168        # _dis rules (PanDA setupper)
  release_dis_at_job_end: true
  tombstone_delay_h: 0
  high_watermark: 0.95       # reaper: clean an RSE above 95% full down to 90%
  low_watermark: 0.90
  direct_read_mbps: 10       # per-job remote streaming rate at direct-access queues
  tape_only_fraction: 0.1    # production inputs that live only on Tier-1 tape
  optimizer: {mode: conservative, min_active: 2, max_active: null, se_limit: 60, tick_s: 60}
  tape: {drives: 16, drive_rate_mbps: 300, mount_s: 60}  # per Tier-1 tape system
  rules: []                  # e.g. [{did: "data23*:*", rse_expression: "tier=1&type=DATADISK", copies: 1, at_h: 2}]
  placement: {policy: none, options: {}}  # popularity ({threshold: 20}), diskless-cache, or module:Class

downtimes: []                # e.g. [{site: BNL, start_h: 6, end_h: 10}] (a queue or an ATLAS site)

resources:                   # requested memory and walltime of each job
  predictor: null            # a model.json of `gridtwin ml train-resources`: its upper quantiles become the requests
  memory_margin: 1.0         # request = predicted upper quantile x margin
  walltime_margin: 1.0
  enforce: true              # a first attempt over its request is killed (1212 memory, 1213 time)
"""

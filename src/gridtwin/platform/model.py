"""What exists on the grid: PanDA queues (`Site`), Rucio storage elements (`RSE`) and network `Link`s.

Units: bytes, seconds, bytes per second, HS06 per core, MB for CRIC memory windows (as CRIC
publishes them). Sites are PanDA queues; links join network endpoints, named after the ATLAS site
(``atlas_site``) that several queues may share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gridtwin.errors import ConfigError

SITE_STATUSES = ("online", "offline", "brokeroff", "test")
CAPABILITIES = ("score", "mcore", "ucore")
RSE_TYPES = ("DISK", "TAPE")


@dataclass(slots=True)
class RSE:
    """A Rucio storage element."""

    name: str
    atlas_site: str
    rse_type: str = "DISK"
    capacity_bytes: int = 0
    used_bytes: int = 0
    attributes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rse_type not in RSE_TYPES:
            raise ConfigError(f"RSE {self.name}: rse_type must be one of {RSE_TYPES}, got {self.rse_type!r}")
        if self.capacity_bytes < 0:
            raise ConfigError(f"RSE {self.name}: capacity_bytes must be >= 0, got {self.capacity_bytes}")


@dataclass(slots=True)
class Site:
    """A PanDA queue (PQ): a pool of slots with CRIC's brokerage attributes."""

    name: str
    atlas_site: str
    cloud: str = "WORLD"
    country: str = ""
    tier: int = 2
    corecount: int = 8
    corepower: float = 10.0
    total_cores: int = 1000
    capability: str = "ucore"
    type: str = "unified"
    minrss_mb: int = 0
    maxrss_mb: int = 16000
    mintime_s: int = 0
    maxtime_s: int = 345600
    status: str = "online"
    is_nucleus: bool = False
    rses: list[str] = field(default_factory=list)
    direct_access: bool = False
    efficiency: float = 1.0
    """Multiplier on the payload's CPU efficiency at this site (calibration knob; 1 = as drawn)."""

    def __post_init__(self) -> None:
        where = f"site {self.name}"
        if self.corecount < 1:
            raise ConfigError(f"{where}: corecount must be >= 1, got {self.corecount}")
        if self.total_cores < 0:
            raise ConfigError(f"{where}: total_cores must be >= 0, got {self.total_cores}")
        if self.total_cores and self.total_cores < self.corecount:
            raise ConfigError(
                f"{where}: total_cores ({self.total_cores}) is smaller than one slot (corecount {self.corecount})"
            )
        if not self.corepower > 0:
            raise ConfigError(f"{where}: corepower must be > 0 HS06 per core, got {self.corepower}")
        if self.capability not in CAPABILITIES:
            raise ConfigError(f"{where}: capability must be one of {CAPABILITIES}, got {self.capability!r}")
        if self.status not in SITE_STATUSES:
            raise ConfigError(f"{where}: status must be one of {SITE_STATUSES}, got {self.status!r}")
        if self.maxrss_mb < self.minrss_mb:
            raise ConfigError(f"{where}: maxrss ({self.maxrss_mb}) is below minrss ({self.minrss_mb})")
        if self.maxtime_s < self.mintime_s:
            raise ConfigError(f"{where}: maxtime ({self.maxtime_s}) is below mintime ({self.mintime_s})")
        if self.tier not in (0, 1, 2, 3):
            raise ConfigError(f"{where}: tier must be 0, 1, 2 or 3, got {self.tier}")
        if not 0 < self.efficiency <= 1.5:
            raise ConfigError(f"{where}: efficiency must be in (0, 1.5], got {self.efficiency}")

    def accepts_cores(self, cores: int) -> bool:
        """Whether a job asking for ``cores`` cores fits this queue's slots (CRIC capability)."""
        if cores > self.corecount:
            return False
        if self.capability == "score":
            return cores == 1
        if self.capability == "mcore":
            return cores > 1
        return True


@dataclass(slots=True)
class Link:
    """A directed network path between two ATLAS sites."""

    src: str
    dst: str
    bandwidth_bps: float
    """Bytes per second available to transfers on this link."""
    latency_s: float
    closeness: int = 11
    """CRIC/AGIS closeness: 0 best (same site), 11 worst."""
    mbps: float | None = None
    """Measured FTS throughput in MB/s from the network matrix, if any."""

    def __post_init__(self) -> None:
        if not self.bandwidth_bps > 0:
            raise ConfigError(f"link {self.src}->{self.dst}: bandwidth must be > 0, got {self.bandwidth_bps}")
        if not self.latency_s >= 0:
            raise ConfigError(f"link {self.src}->{self.dst}: latency must be >= 0, got {self.latency_s}")


@dataclass(slots=True)
class LinkDefaults:
    """Values for site pairs the network matrix does not list, and for transfers within one site."""

    bandwidth_bps: float = 125e6  # 1 Gb/s
    latency_s: float = 0.1
    closeness: int = 11
    local_bandwidth_bps: float = 1.25e9  # 10 Gb/s inside a site (LAN)
    local_latency_s: float = 0.001


@dataclass
class Platform:
    """The grid: queues, storage elements and links, with lookups the models use."""

    name: str
    sites: dict[str, Site]
    rses: dict[str, RSE] = field(default_factory=dict)
    links: dict[tuple[str, str], Link] = field(default_factory=dict)
    link_defaults: LinkDefaults = field(default_factory=LinkDefaults)
    notes: list[str] = field(default_factory=list)
    """Human-readable remarks from loaders (derived values, defaults applied, rows set aside)."""

    def link(self, src: str, dst: str) -> Link:
        """The link between two ATLAS sites; a documented default when the matrix has no entry."""
        found = self.links.get((src, dst))
        if found is not None:
            return found
        d = self.link_defaults
        if src == dst:
            return Link(src, dst, d.local_bandwidth_bps, d.local_latency_s, 0)
        return Link(src, dst, d.bandwidth_bps, d.latency_s, d.closeness)

    def nuclei(self) -> list[Site]:
        """Queues flagged as nucleus (Tier-0, Tier-1s, large Tier-2s), in name order."""
        return [s for _, s in sorted(self.sites.items()) if s.is_nucleus]

    def total_cores(self) -> int:
        return sum(s.total_cores for s in self.sites.values())

    def disk_rses_of(self, site: Site) -> list[RSE]:
        """The DISK RSEs associated with a queue, in the queue's order."""
        return [self.rses[r] for r in site.rses if r in self.rses and self.rses[r].rse_type == "DISK"]

    def derive_rse_attributes(self) -> None:
        """Give RSEs the attributes RSE expressions match on (``tier``, ``cloud``, ``country``) from
        the queues that use them, unless already set; an RSE shared by queues of several tiers takes
        the lowest tier number."""
        for _, site in sorted(self.sites.items()):
            for r in site.rses:
                rse = self.rses.get(r)
                if rse is None:
                    continue
                a = rse.attributes
                if "tier" not in a or int(a["tier"]) > site.tier:
                    a["tier"] = str(site.tier)
                a.setdefault("cloud", site.cloud)
                if site.country:
                    a.setdefault("country", site.country)

    def validate(self) -> None:
        """Cross-checks: every queue's RSEs exist, link endpoints are known sites."""
        if not self.sites:
            raise ConfigError(f"platform {self.name}: no sites")
        for s in self.sites.values():
            for r in s.rses:
                if r not in self.rses:
                    raise ConfigError(f"site {s.name}: associated RSE {r!r} is not defined in the platform")

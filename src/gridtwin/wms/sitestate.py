"""Live per-queue state kept incrementally (counters, free cores, activated queues), and the
read-only views of it that brokerage policies receive."""

from __future__ import annotations

from operator import attrgetter
from types import MappingProxyType

from gridtwin.platform.model import Link, Platform, Site
from gridtwin.policies.base import JobChunk
from gridtwin.wms.pilot import Attempt


class SiteState:
    """Mutable state of one PanDA queue during a run."""

    __slots__ = (
        "activated", "assigned", "atlas_index", "atlas_site", "defined", "downtimes", "free_cores", "index", "name",
        "online", "queue_mcore", "queue_score", "running", "running_jobs", "scratch_rse", "site", "starting",
        "storage_total", "total_cores", "view",
    )

    def __init__(self, index: int, site: Site, atlas_index: int, storage_total: int, scratch_rse: str) -> None:
        self.index = index
        self.site = site
        self.name = site.name
        self.atlas_site = site.atlas_site
        self.atlas_index = atlas_index
        self.total_cores = site.total_cores
        self.free_cores = site.total_cores
        self.online = site.status == "online"
        self.downtimes = 0  # downtime windows in force (they may overlap)
        self.running = 0
        self.activated = 0
        self.assigned = 0
        self.starting = 0
        self.defined = 0
        self.queue_score: list[tuple[int, int]] = []  # heap of (-priority, row)
        self.queue_mcore: list[tuple[int, int]] = []
        self.running_jobs: dict[int, Attempt] = {}  # row -> its attempt (holds the end event's handle)
        self.storage_total = storage_total
        self.scratch_rse = scratch_rse
        self.view = SiteStateView(self)


class SiteStateView:
    """Read-only view of a queue for policies (implements ``policies.base.SiteView``)."""

    __slots__ = ("_s",)

    def __init__(self, state: SiteState) -> None:
        self._s = state

    # attrgetter properties: read-only, and cheaper than lambdas on this hot path
    index = property(attrgetter("_s.index"))
    name = property(attrgetter("_s.name"))
    atlas_site = property(attrgetter("_s.atlas_site"))
    tier = property(attrgetter("_s.site.tier"))
    cloud = property(attrgetter("_s.site.cloud"))
    corepower = property(attrgetter("_s.site.corepower"))
    corecount = property(attrgetter("_s.site.corecount"))
    total_cores = property(attrgetter("_s.total_cores"))
    free_cores = property(attrgetter("_s.free_cores"))
    running = property(attrgetter("_s.running"))
    activated = property(attrgetter("_s.activated"))
    assigned = property(attrgetter("_s.assigned"))
    starting = property(attrgetter("_s.starting"))
    defined = property(attrgetter("_s.defined"))
    is_nucleus = property(attrgetter("_s.site.is_nucleus"))
    online = property(attrgetter("_s.online"))

    @property
    def workers(self) -> int:
        """Idle pilot slots: free cores in whole slots of the queue's corecount."""
        return self._s.free_cores // self._s.site.corecount

    def __repr__(self) -> str:
        return f"<site {self._s.name}>"


class Grid:
    """The grid as brokerage sees it: queue states, links, replica locality (implements ``GridView``)."""

    def __init__(self, platform: Platform, states: list[SiteState], local_sites, clock) -> None:
        self._platform = platform
        self._states = states
        self._views = [s.view for s in states]
        self._local_sites = local_sites  # callable: dataset index -> frozenset of queue indices
        self._clock = clock  # callable returning the simulated time
        self._links: dict[tuple[str, str], Link] = {}
        self.link_queued: dict[tuple[str, str], int] = {}
        self._queued_to: dict[str, dict[str, int]] = {}

    @property
    def now(self) -> float:
        return self._clock()

    def sites(self) -> list[SiteStateView]:
        return self._views

    def link_between(self, src: str, dst: str) -> Link:
        """The link between two ATLAS sites (cached)."""
        key = (src, dst)
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = self._platform.link(src, dst)
        return link

    def closeness(self, src, dst) -> int:
        return self.link_between(src.atlas_site, dst.atlas_site).closeness

    def link_mbps(self, src, dst) -> float | None:
        return self.link_between(src.atlas_site, dst.atlas_site).mbps

    def add_queued_files(self, src: str, dst: str, n: int) -> None:
        """Files queued on the src->dst link (ATLAS sites) change by ``n``."""
        key = (src, dst)
        v = self.link_queued.get(key, 0) + n
        self.link_queued[key] = v
        self._queued_to.setdefault(dst, {})[src] = v

    def queued_files_to(self, dst) -> dict[str, int]:
        """Files queued on links into ``dst``, by source ATLAS site (links with none may be absent)."""
        return MappingProxyType(self._queued_to.get(dst.atlas_site, {}))

    def link_queued_files(self, src, dst) -> int:
        return self.link_queued.get((src.atlas_site, dst.atlas_site), 0)

    def local_site_indices(self, chunk: JobChunk) -> frozenset[int]:
        """Indices of the queues that hold the chunk's whole input on their own storage."""
        ds = chunk.dataset_index
        return self._local_sites(ds) if ds >= 0 else frozenset()

    def local_bytes(self, chunk: JobChunk, site) -> float:
        ds = chunk.dataset_index
        if ds < 0:
            return 0.0
        return chunk.input_bytes if site.index in self._local_sites(ds) else 0.0

"""Placement plugins (DESIGN.md section 5): given reads of datasets and periodic ticks, return rules
to create.

A policy sees a read-only :class:`DataView` and answers with :class:`RuleRequest` objects; the data
management layer turns them into Rucio rules (account ``panda``, activity ``Data Brokering`` unless
the request says otherwise), so their transfers, locks and lifetimes behave as any other rule's.

Built-ins:

- ``none``: no placement beyond what jobs need;
- ``popularity``: a dataset read by more than ``threshold`` jobs gets one more replica (and again
  after each further ``threshold`` reads, up to
  ``max_replicas``) on the DATADISK of the site best connected to the sites that read it, with a
  lifetime (PanDA-owned secondary replicas, panda-server PR #710);
- ``diskless-cache``: queues without storage get a volatile cache RSE at their site
  (``<SITE>_CACHE``, like an XCache); jobs there bring their input into it by dispatch rules and
  later jobs find it cached until the reaper evicts it, least recently used first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gridtwin.errors import ConfigError
from gridtwin.platform.model import RSE, Platform


@dataclass(frozen=True, slots=True)
class RuleRequest:
    """A rule a placement policy asks for, on an input dataset (by index)."""

    dataset: int
    rse_expression: str
    copies: int = 1
    lifetime_s: float | None = None
    activity: str = "Data Brokering"
    grouping: str = "DATASET"


class DataView(Protocol):
    """What a placement policy may read about data and storage."""

    @property
    def now(self) -> float: ...
    def rse_names(self) -> Sequence[str]: ...
    def rse_site(self, rse: str) -> str: ...
    def rse_is_tape(self, rse: str) -> bool: ...
    def rse_free_bytes(self, rse: str) -> int: ...
    def dataset_name(self, dataset: int) -> str: ...
    def dataset_bytes(self, dataset: int) -> int: ...
    def dataset_rses(self, dataset: int) -> Sequence[str]:
        """RSEs with a complete replica, or with a rule bringing one."""
        ...
    def link_mbps(self, src_site: str, dst_site: str) -> float:
        """Measured throughput of a link (MB/s), else its bandwidth."""
        ...


@runtime_checkable
class PlacementPolicy(Protocol):
    name: str
    tick_s: float
    """Seconds between :meth:`tick` calls; 0 for none."""

    def setup(self, platform: Platform) -> None:
        """Called once before the run; may add RSEs (caches) to the platform."""
        ...

    def on_read(self, dataset: int, site: str, view: DataView) -> list[RuleRequest]:
        """A job was brokered to the queue whose ATLAS site is ``site`` to read ``dataset``."""
        ...

    def tick(self, view: DataView) -> list[RuleRequest]: ...


class NoPlacement:
    """No placement beyond what jobs need."""

    name = "none"
    tick_s = 0.0

    def setup(self, platform: Platform) -> None:
        return None

    def on_read(self, dataset: int, site: str, view: DataView) -> list[RuleRequest]:
        return []

    def tick(self, view: DataView) -> list[RuleRequest]:
        return []


class PopularityPlacement(NoPlacement):
    """One more replica of a dataset read more than ``threshold`` times, at the best-connected site."""

    name = "popularity"

    def __init__(self, threshold: int = 20, max_replicas: int = 3, lifetime_h: float = 168.0,
                 rse_type: str = "DATADISK") -> None:
        if threshold < 1 or max_replicas < 1 or not lifetime_h > 0:
            raise ConfigError("placement popularity: threshold and max_replicas must be >= 1 and lifetime_h > 0, "
                              f"got {threshold}, {max_replicas}, {lifetime_h}")
        self.threshold = threshold
        self.max_replicas = max_replicas
        self.lifetime_s = lifetime_h * 3600.0
        self.rse_type = rse_type
        self.reads: dict[int, int] = {}
        self.readers: dict[int, dict[str, int]] = {}

    def on_read(self, dataset: int, site: str, view: DataView) -> list[RuleRequest]:
        n = self.reads.get(dataset, 0) + 1
        self.reads[dataset] = n
        by_site = self.readers.setdefault(dataset, {})
        by_site[site] = by_site.get(site, 0) + 1
        if n <= self.threshold or (n - self.threshold - 1) % self.threshold:
            return []  # act at read threshold + 1, then again after each further `threshold` reads
        have = list(view.dataset_rses(dataset))
        disk = [r for r in have if not view.rse_is_tape(r)]
        if len(disk) >= self.max_replicas:
            return []
        need = view.dataset_bytes(dataset)
        held_sites = {view.rse_site(r) for r in have}
        best, best_key = None, None
        for r in view.rse_names():
            if not r.endswith(self.rse_type) or view.rse_site(r) in held_sites or view.rse_free_bytes(r) < need:
                continue
            s = view.rse_site(r)
            score = sum(k * view.link_mbps(s, reader) for reader, k in by_site.items())
            key = (-score, r)
            if best_key is None or key < best_key:
                best, best_key = r, key
        if best is None:
            return []
        return [RuleRequest(dataset, best, 1, self.lifetime_s)]


class DisklessCache(NoPlacement):
    """A volatile cache RSE at every queue without DISK storage (or the queues named in ``sites``)."""

    name = "diskless-cache"

    def __init__(self, cache_tb: float = 100.0, sites: Sequence[str] = ()) -> None:
        if not cache_tb > 0:
            raise ConfigError(f"placement diskless-cache: cache_tb must be > 0, got {cache_tb}")
        self.cache_bytes = int(cache_tb * 1e12)
        self.sites = list(sites)
        self.caches: list[str] = []

    def setup(self, platform: Platform) -> None:
        for name in self.sites:
            if name not in platform.sites:
                raise ConfigError(f"placement diskless-cache: sites: unknown queue {name!r}")
        for name, site in sorted(platform.sites.items()):
            has_disk = any(platform.rses[r].rse_type == "DISK" for r in site.rses if r in platform.rses)
            if has_disk and name not in self.sites:
                continue
            site.rses = [r for r in site.rses if r in platform.rses and platform.rses[r].rse_type != "DISK"]
            cache = f"{site.atlas_site}_CACHE"
            if cache not in platform.rses:
                platform.rses[cache] = RSE(cache, site.atlas_site, "DISK", self.cache_bytes,
                                           attributes={"volatile": "true", "type": "CACHE"})
                self.caches.append(cache)
            site.rses.insert(0, cache)


BUILTIN_PLACEMENTS = {"none": NoPlacement, "popularity": PopularityPlacement, "diskless-cache": DisklessCache}

"""The brokerage plugin protocol (DESIGN.md section 5) and the read-only views a policy sees.

A brokerage policy receives a chunk of jobs of one task, the candidate queues that passed the hard
filters (status, cores, memory, walltime) and a view of the grid; it returns one queue (or None)
per job. Policies never get the simulator's internals: views expose numbers, not objects to mutate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class SiteView(Protocol):
    """What a policy may read about a queue (a PanDA queue)."""

    @property
    def index(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def atlas_site(self) -> str: ...
    @property
    def tier(self) -> int: ...
    @property
    def cloud(self) -> str: ...
    @property
    def corepower(self) -> float: ...
    @property
    def total_cores(self) -> int: ...
    @property
    def free_cores(self) -> int: ...
    @property
    def running(self) -> int: ...
    @property
    def workers(self) -> int:
        """Idle pilot slots at the queue (Harvester's nWorkers in the brokerage formula)."""
        ...
    @property
    def activated(self) -> int: ...
    @property
    def assigned(self) -> int: ...
    @property
    def starting(self) -> int:
        """Always 0 in gridtwin: jobs being fetched or set up by a pilot count as ``running``."""
        ...
    @property
    def defined(self) -> int:
        """Always 0 in gridtwin: a job is assigned or activated the moment it is created."""
        ...
    @property
    def is_nucleus(self) -> bool: ...


class GridView(Protocol):
    """Grid-wide lookups a policy may use."""

    @property
    def now(self) -> float: ...
    def sites(self) -> Sequence[SiteView]: ...
    def closeness(self, src: SiteView, dst: SiteView) -> int: ...
    def link_mbps(self, src: SiteView, dst: SiteView) -> float | None: ...
    def link_queued_files(self, src: SiteView, dst: SiteView) -> int: ...
    def queued_files_to(self, dst: SiteView) -> Mapping[str, int]: ...
    def local_bytes(self, chunk: JobChunk, site: SiteView) -> float: ...
    def local_site_indices(self, chunk: JobChunk) -> frozenset[int]: ...


@dataclass(frozen=True, slots=True)
class JobChunk:
    """Jobs of one task to be brokered together, with what JEDI knows about them."""

    jeditaskid: int
    prodsourcelabel: str
    processingtype: str
    priority: int
    corecount: int
    ramcount_mb: int
    walltime_estimate_s: float
    io_intensity: float
    n_jobs: int
    input_dataset: str | None
    input_bytes: float
    """Total input bytes of the chunk's jobs."""
    input_files: int
    nucleus: SiteView | None
    """The task's nucleus (production), or None (analysis)."""
    retry: bool = False
    dataset_index: int = -1
    """Catalog index of the input dataset (-1: none); lets the grid view answer locality questions."""


@runtime_checkable
class BrokeragePolicy(Protocol):
    """Choose queues for a chunk's jobs. A policy with state may also define ``reset()``, which the
    simulation calls at the start of every run, so a reused object gives reproducible runs."""

    name: str

    def assign(
        self, chunk: JobChunk, candidates: Sequence[SiteView], grid: GridView, rng: np.random.Generator
    ) -> Sequence[SiteView | None]:
        """Return ``chunk.n_jobs`` entries: the queue of each job, or None to leave it pending."""
        ...


class PerJobPolicy:
    """Convenience base: implement ``choose`` for one job; ``assign`` calls it per job."""

    name = "per-job"

    def choose(
        self, chunk: JobChunk, candidates: Sequence[SiteView], grid: GridView, rng: np.random.Generator
    ) -> SiteView | None:
        raise NotImplementedError

    def assign(
        self, chunk: JobChunk, candidates: Sequence[SiteView], grid: GridView, rng: np.random.Generator
    ) -> list[SiteView | None]:
        return [self.choose(chunk, candidates, grid, rng) for _ in range(chunk.n_jobs)]

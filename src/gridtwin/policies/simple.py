"""Baseline brokerage policies: random, round-robin, least-loaded, data-locality."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gridtwin.policies.base import GridView, JobChunk, SiteView


class RandomPolicy:
    """Uniformly random among the candidates, ignoring load and data."""

    name = "random"

    def assign(self, chunk: JobChunk, candidates: Sequence[SiteView], grid: GridView,
               rng: np.random.Generator) -> list[SiteView | None]:
        if not candidates:
            return [None] * chunk.n_jobs
        picks = rng.integers(0, len(candidates), chunk.n_jobs)
        return [candidates[i] for i in picks.tolist()]


class RoundRobinPolicy:
    """Cycle over the candidates in name order, continuing where the previous chunk stopped."""

    name = "round-robin"

    def __init__(self) -> None:
        self._next = 0

    def reset(self) -> None:
        """Start the cycle from the first queue again (called at the start of every run)."""
        self._next = 0

    def assign(self, chunk: JobChunk, candidates: Sequence[SiteView], grid: GridView,
               rng: np.random.Generator) -> list[SiteView | None]:
        if not candidates:
            return [None] * chunk.n_jobs
        ordered = sorted(candidates, key=lambda s: s.name)
        out = []
        for _ in range(chunk.n_jobs):
            out.append(ordered[self._next % len(ordered)])
            self._next += 1
        return out


class LeastLoadedPolicy:
    """Each job to the queue with the most free cores net of its queue, counting earlier picks."""

    name = "least-loaded"

    def assign(self, chunk: JobChunk, candidates: Sequence[SiteView], grid: GridView,
               rng: np.random.Generator) -> list[SiteView | None]:
        if not candidates:
            return [None] * chunk.n_jobs
        # headroom in cores: free cores minus cores already queued there
        head = [s.free_cores - (s.activated + s.assigned + s.starting) * chunk.corecount for s in candidates]
        out = []
        for _ in range(chunk.n_jobs):
            best = max(range(len(candidates)), key=lambda i: (head[i], -i))
            out.append(candidates[best])
            head[best] -= chunk.corecount
        return out


class DataLocalityPolicy:
    """Prefer queues holding the input; among them (or all, if none) the least loaded."""

    name = "data-locality"

    def __init__(self) -> None:
        self._least = LeastLoadedPolicy()

    def assign(self, chunk: JobChunk, candidates: Sequence[SiteView], grid: GridView,
               rng: np.random.Generator) -> list[SiteView | None]:
        if chunk.input_bytes > 0:
            local = [s for s in candidates if grid.local_bytes(chunk, s) >= chunk.input_bytes]
            if local:
                candidates = local
        return self._least.assign(chunk, candidates, grid, rng)

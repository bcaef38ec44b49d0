"""Seeded random streams, one per named component.

Each stream's seed is derived from the scenario seed and a stable hash of the component name, so
adding a component never changes the draws of another one.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _name_key(name: str) -> int:
    # a stable 64-bit key: Python's hash() of a str changes between processes
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


class RandomStreams:
    """Factory of independent ``numpy.random.Generator`` streams keyed by component name."""

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        self._streams: dict[str, np.random.Generator] = {}

    def stream(self, name: str) -> np.random.Generator:
        """Return the generator of component ``name`` (the same object on every call)."""
        gen = self._streams.get(name)
        if gen is None:
            seq = np.random.SeedSequence(entropy=self.seed, spawn_key=(_name_key(name),))
            gen = np.random.Generator(np.random.PCG64(seq))
            self._streams[name] = gen
        return gen


class UniformBuffer:
    """Uniform [0, 1) numbers drawn from a generator in blocks, for cheap scalar draws in hot loops."""

    __slots__ = ("_block", "_buf", "_gen", "_i")

    def __init__(self, gen: np.random.Generator, block: int = 65536) -> None:
        self._gen = gen
        self._block = block
        self._buf: list[float] = []
        self._i = 0

    def next(self) -> float:
        """One uniform draw."""
        i = self._i
        buf = self._buf
        if i >= len(buf):
            buf = self._buf = self._gen.random(self._block).tolist()
            i = 0
        self._i = i + 1
        return buf[i]

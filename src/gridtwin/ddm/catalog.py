"""A replica catalog at dataset granularity: which RSEs hold a complete replica of each dataset.

This is the read side that brokerage needs (PanDA's ``get_sites_with_data``); file-level replicas,
rules and transfers come with the full data-management model.
"""

from __future__ import annotations

import numpy as np

from gridtwin.platform.model import Platform
from gridtwin.workload.spec import Datasets


class ReplicaCatalog:
    """Dataset -> RSEs with a complete replica; queue-level locality derived from the queues' RSEs."""

    def __init__(self, platform: Platform, site_names: list[str]) -> None:
        self.platform = platform
        self.site_names = site_names
        self._replicas: list[list[str]] = []
        self._rse_queues: dict[str, list[int]] = {}
        for qi, name in enumerate(site_names):
            for r in platform.sites[name].rses:
                rse = platform.rses.get(r)
                if rse is not None and rse.rse_type == "DISK":
                    self._rse_queues.setdefault(r, []).append(qi)
        self._local_cache: dict[int, frozenset[int]] = {}

    def add_dataset(self, rses: list[str]) -> int:
        """Register a dataset with complete replicas on ``rses``; return its index."""
        self._replicas.append(list(rses))
        return len(self._replicas) - 1

    def add_replica(self, dataset: int, rse: str) -> None:
        if rse not in self._replicas[dataset]:
            self._replicas[dataset].append(rse)
            self._local_cache.pop(dataset, None)

    def replicas(self, dataset: int) -> list[str]:
        """RSE names holding a complete replica of ``dataset``."""
        return self._replicas[dataset]

    def local_sites(self, dataset: int) -> frozenset[int]:
        """Indices of queues that read ``dataset`` from one of their own DISK RSEs."""
        hit = self._local_cache.get(dataset)
        if hit is None:
            qs: set[int] = set()
            for r in self._replicas[dataset]:
                qs.update(self._rse_queues.get(r, ()))
            hit = self._local_cache[dataset] = frozenset(qs)
        return hit

    def __len__(self) -> int:
        return len(self._replicas)


def place_initial_replicas(
    catalog: ReplicaCatalog, datasets: Datasets, rng: np.random.Generator, popular_extra: int = 2
) -> None:
    """Place each dataset on DATADISK RSEs chosen in proportion to capacity.

    Production inputs get one disk replica; derivations get two, and the most popular tenth of them
    (lowest indices among the analysis pool, which the generator ranks by popularity) ``popular_extra`` more.
    """
    disks = [r for r in sorted(catalog.platform.rses.values(), key=lambda x: x.name)
             if r.rse_type == "DISK" and r.capacity_bytes > 0 and r.name in catalog._rse_queues
             and "SCRATCH" not in r.name and "LOCALGROUP" not in r.name]
    if not disks:
        disks = [catalog.platform.rses[r] for r in sorted(catalog._rse_queues)]
    if not disks:
        raise ValueError("the platform has no DISK RSE associated with a queue: nowhere to place input data")
    cap = np.array([max(r.capacity_bytes, 1) for r in disks], dtype=np.float64)
    p = cap / cap.sum()
    deriv_idx = [i for i, t in enumerate(datasets.file_type) if t.startswith("DAOD")]
    first_deriv = deriv_idx[0] if deriv_idx else len(datasets)
    n_deriv = len(deriv_idx)
    for d in range(len(datasets)):
        if datasets.file_type[d].startswith("DAOD"):
            k = 2 + (popular_extra if (d - first_deriv) < max(1, n_deriv // 10) else 0)
        else:
            k = 1
        k = min(k, len(disks))
        chosen = rng.choice(len(disks), size=k, replace=False, p=p)
        catalog.add_dataset([disks[i].name for i in sorted(chosen)])

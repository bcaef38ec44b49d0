"""The Rucio-like catalog: files and datasets (DIDs), replicas on RSEs with Rucio's states, lock
counts, tombstones and access times, and the dataset-level locality brokerage reads.

Two kinds of replica, for speed at a million jobs:

- *bulk* replicas: the complete dataset replicas present at the start of a run (primary copies on
  DATADISK and TAPE). Every file of the dataset is AVAILABLE there, locked by the dataset's
  primary rule, so they are never deleted; they cost one list entry per dataset, not per file.
- *file* replicas: every replica created during the run (by rules, job outputs, placement). Each
  has a slot in flat columns: state, lock count, tombstone, accessed_at, bytes. The key of a file
  replica is ``fid * n_rse + rse``.

A dataset whose files all become AVAILABLE on one RSE during the run counts as a complete replica
there for locality (``local_sites``), until one of those files is deleted.

Files are integers (``fid``): the files of input dataset ``d`` are ``first_fid[d] ..
first_fid[d] + nfiles[d] - 1`` in file order; job outputs and logs get new fids as they appear.
"""

from __future__ import annotations

import math
from array import array
from enum import IntEnum

import numpy as np

from gridtwin.errors import ConfigError
from gridtwin.platform.model import Platform
from gridtwin.workload.spec import Datasets


class ReplicaState(IntEnum):
    """Rucio's replica states (``ReplicaState``), as stored in ``Catalog.r_state``."""

    AVAILABLE = 0
    COPYING = 1
    BEING_DELETED = 2
    UNAVAILABLE = 3
    BAD = 4
    DELETED = 5  # gridtwin: the slot's replica is gone (Rucio removes the row)


AVAILABLE, COPYING, BEING_DELETED, UNAVAILABLE, BAD, DELETED = (int(s) for s in ReplicaState)

NO_TOMBSTONE = math.inf
"""Tombstone value of a replica that must not be deleted (Rucio: tombstone NULL)."""


class Catalog:
    """DIDs and replicas of one run; queue-level locality derived from the queues' DISK RSEs."""

    def __init__(self, platform: Platform, site_names: list[str]) -> None:
        self.platform = platform
        self.site_names = site_names
        self.rse_names = sorted(platform.rses)
        self.rse_index = {n: i for i, n in enumerate(self.rse_names)}
        self.n_rse = len(self.rse_names)
        self.rses = [platform.rses[n] for n in self.rse_names]
        self.rse_site = [r.atlas_site for r in self.rses]
        self.rse_is_tape = [r.rse_type == "TAPE" for r in self.rses]
        self._rse_queues: list[list[int]] = [[] for _ in self.rse_names]
        for qi, name in enumerate(site_names):
            for r in platform.sites[name].rses:
                i = self.rse_index.get(r)
                if i is not None and not self.rse_is_tape[i]:
                    self._rse_queues[i].append(qi)
        # datasets
        self.ds_names: list[str] = []
        self.ds_scopes: list[str] = []
        self.ds_nfiles: list[int] = []
        self.ds_first_fid: list[int] = []
        self._bulk: list[list[int]] = []  # dataset -> RSE indices with an initial complete replica
        self._complete: list[list[int]] = []  # dataset -> RSE indices completed during the run
        self._local_cache: dict[int, frozenset[int]] = {}
        self._ds_avail: dict[int, int] = {}  # ds * n_rse + rse -> AVAILABLE file replicas of ds there
        # files
        self.f_size = array("q")
        self.f_ds = array("i")  # input dataset of the file, -1 for outputs and logs
        self.f_owner = array("q")  # job row whose output or log this is, -1 for input files
        self.f_kind = array("b")  # 0 input, 1 output, 2 log
        # file replicas
        self._rep: dict[int, int] = {}
        self.r_fid = array("q")
        self.r_rse = array("i")
        self.r_state = array("b")
        self.r_lock = array("i")
        self.r_bytes = array("q")
        self.r_tomb = array("d")
        self.r_acc = array("d")  # accessed_at, NaN = never
        self.r_src_use: dict[int, int] = {}  # slot -> transfers reading from it (staging, queued at FTS, active)
        # each file's replicas as a chain through the slots: f_head[fid] -> r_next[slot] -> ... -> -1
        self.f_head = array("q")
        self.r_next = array("q")
        self.deleted_bytes = [0] * self.n_rse
        self.deleted_files = [0] * self.n_rse

    # ------------------------------------------------------------------ datasets and files
    def add_dataset(self, rses: list[str], *, name: str = "", scope: str = "", nfiles: int = 0,
                    file_sizes: np.ndarray | None = None) -> int:
        """Register an input dataset with complete replicas on ``rses``; return its index."""
        idx = []
        for r in rses:
            i = self.rse_index.get(r)
            if i is None:
                raise ConfigError(f"dataset {name or len(self.ds_names)}: unknown RSE {r!r}")
            idx.append(i)
        d = len(self.ds_names)
        self.ds_names.append(name)
        self.ds_scopes.append(scope)
        self.ds_nfiles.append(int(nfiles))
        self.ds_first_fid.append(len(self.f_size))
        if nfiles:
            sizes = np.zeros(nfiles, dtype=np.int64) if file_sizes is None else np.asarray(file_sizes, np.int64)
            self.f_size.frombytes(sizes.tobytes())
            self.f_ds.extend([d] * nfiles)
            self.f_owner.frombytes(np.full(nfiles, -1, np.int64).tobytes())
            self.f_kind.frombytes(bytes(nfiles))
            self.f_head.frombytes(np.full(nfiles, -1, np.int64).tobytes())
        self._bulk.append(sorted(idx))
        self._complete.append([])
        return d

    def new_file(self, size: int, owner_row: int, kind: int) -> int:
        """A new output (kind 1) or log (kind 2) file of job row ``owner_row``; return its fid."""
        self.f_size.append(int(size))
        self.f_ds.append(-1)
        self.f_owner.append(owner_row)
        self.f_kind.append(kind)
        self.f_head.append(-1)
        return len(self.f_size) - 1

    def fid(self, dataset: int, file_index: int) -> int:
        return self.ds_first_fid[dataset] + file_index

    # ------------------------------------------------------------------ locality (brokerage)
    def replicas(self, dataset: int) -> list[str]:
        """RSE names holding a complete replica of ``dataset`` (initial ones, then those completed)."""
        names = self.rse_names
        return [names[i] for i in self._bulk[dataset]] + [names[i] for i in self._complete[dataset]]

    def dataset_rses(self, dataset: int) -> list[int]:
        """RSE indices holding a complete replica of ``dataset``."""
        c = self._complete[dataset]
        return self._bulk[dataset] + c if c else self._bulk[dataset]

    def local_sites(self, dataset: int) -> frozenset[int]:
        """Indices of queues that read ``dataset`` from one of their own DISK RSEs (complete replicas)."""
        hit = self._local_cache.get(dataset)
        if hit is None:
            qs: set[int] = set()
            for r in self.dataset_rses(dataset):
                qs.update(self._rse_queues[r])
            hit = self._local_cache[dataset] = frozenset(qs)
        return hit

    def add_replica(self, dataset: int, rse: str) -> None:
        """Declare a complete bulk replica of ``dataset`` on ``rse`` (set-up time only)."""
        i = self.rse_index[rse]
        if i not in self._bulk[dataset]:
            self._bulk[dataset].append(i)
            self._bulk[dataset].sort()
            self._local_cache.pop(dataset, None)

    def __len__(self) -> int:
        return len(self.ds_names)

    # ------------------------------------------------------------------ replicas
    def has_bulk(self, fid: int, rse: int) -> bool:
        d = self.f_ds[fid]
        return d >= 0 and rse in self._bulk[d]

    def slot(self, fid: int, rse: int) -> int:
        """The file-replica slot of ``fid`` on ``rse``, or -1."""
        return self._rep.get(fid * self.n_rse + rse, -1)

    def holds(self, fid: int, rse: int) -> bool:
        """Whether ``rse`` has a replica of ``fid`` that is AVAILABLE or being copied there."""
        return self.has_bulk(fid, rse) or (fid * self.n_rse + rse) in self._rep

    def available_sources(self, fid: int) -> list[int]:
        """RSE indices with an AVAILABLE replica of ``fid`` (bulk ones first)."""
        d = self.f_ds[fid]
        out = list(self._bulk[d]) if d >= 0 else []
        s = self.f_head[fid]
        if s >= 0:
            st, rr, nxt = self.r_state, self.r_rse, self.r_next
            while s >= 0:
                if st[s] == AVAILABLE:
                    out.append(rr[s])
                s = nxt[s]
        return out

    def n_available(self, fid: int) -> int:
        """AVAILABLE replicas of ``fid`` grid-wide (bulk and file replicas, tape included)."""
        d = self.f_ds[fid]
        n = len(self._bulk[d]) if d >= 0 else 0
        s = self.f_head[fid]
        st, nxt = self.r_state, self.r_next
        while s >= 0:
            if st[s] == AVAILABLE:
                n += 1
            s = nxt[s]
        return n

    def create_replica(self, fid: int, rse: int, state: int, now: float, lock: int, tombstone: float,
                       reserve: bool = True) -> int:
        """A new file replica; with ``reserve`` its bytes count on the RSE now (else at :meth:`reserve`,
        when its transfer starts). The caller checks for space. Return its slot."""
        key = fid * self.n_rse + rse
        if key in self._rep:
            raise ValueError(f"file {fid} already has a replica on {self.rse_names[rse]}")
        s = len(self.r_fid)
        self._rep[key] = s
        self.r_fid.append(fid)
        self.r_rse.append(rse)
        self.r_state.append(state)
        self.r_lock.append(lock)
        size = self.f_size[fid]
        self.r_bytes.append(size if reserve else 0)
        if reserve:
            self.rses[rse].used_bytes += size
        self.r_tomb.append(tombstone)
        self.r_acc.append(math.nan)
        self.r_next.append(self.f_head[fid])
        self.f_head[fid] = s
        if state == AVAILABLE and self.f_ds[fid] >= 0:
            self._count_available(fid, rse, +1)
        return s

    def reserve(self, s: int) -> None:
        """Count a COPYING replica's bytes on its RSE (the transfer is starting)."""
        if self.r_bytes[s] == 0:
            size = self.f_size[self.r_fid[s]]
            self.r_bytes[s] = size
            self.rses[self.r_rse[s]].used_bytes += size

    def slots_on(self, rse: int) -> np.ndarray:
        """Slots of the file replicas on ``rse`` that are not deleted, in slot order (a scan: the reaper
        and checks use it, the hot path does not)."""
        if not len(self.r_rse):
            return np.zeros(0, dtype=np.int64)
        on = np.frombuffer(self.r_rse, dtype=np.int32) == rse
        alive = np.frombuffer(self.r_state, dtype=np.int8) != DELETED
        return np.flatnonzero(on & alive)

    def mark_available(self, s: int, now: float) -> None:
        """A COPYING replica's transfer is done."""
        self.r_state[s] = AVAILABLE
        fid = self.r_fid[s]
        if self.f_ds[fid] >= 0:
            self._count_available(fid, self.r_rse[s], +1)

    def remove_replica(self, s: int) -> None:
        """Drop a replica (deleted by the reaper, or a COPYING one whose transfer gave up); frees its bytes."""
        fid, rse = self.r_fid[s], self.r_rse[s]
        if self.r_state[s] == AVAILABLE:
            self._count_available(fid, rse, -1)
        self.r_state[s] = DELETED
        del self._rep[fid * self.n_rse + rse]
        nxt = self.r_next
        if self.f_head[fid] == s:
            self.f_head[fid] = nxt[s]
        else:
            p = self.f_head[fid]
            while nxt[p] != s:
                p = nxt[p]
            nxt[p] = nxt[s]
        self.rses[rse].used_bytes -= self.r_bytes[s]

    def _count_available(self, fid: int, rse: int, delta: int) -> None:
        d = self.f_ds[fid]
        if d < 0 or rse in self._bulk[d]:
            return
        key = d * self.n_rse + rse
        n = self._ds_avail.get(key, 0) + delta
        full = self.ds_nfiles[d]
        if n:
            self._ds_avail[key] = n
        else:
            self._ds_avail.pop(key, None)
        if delta > 0 and n == full and not self.rse_is_tape[rse]:
            self._complete[d].append(rse)
            self._local_cache.pop(d, None)
        elif delta < 0 and n == full - 1 and rse in self._complete[d]:
            self._complete[d].remove(rse)
            self._local_cache.pop(d, None)

    def lock(self, s: int) -> None:
        """One more rule lock on replica ``s``: no tombstone while locked."""
        self.r_lock[s] += 1
        self.r_tomb[s] = NO_TOMBSTONE

    def unlock(self, s: int, tombstone: float) -> None:
        """Release one lock; the last one gives the replica ``tombstone`` (the reaper may then delete it)."""
        n = self.r_lock[s] - 1
        self.r_lock[s] = n
        if n == 0:
            self.r_tomb[s] = tombstone

    def touch(self, fid: int, rse: int, now: float) -> None:
        """A read of ``fid`` on ``rse``: sets accessed_at (bulk replicas keep no access time)."""
        s = self._rep.get(fid * self.n_rse + rse)
        if s is not None:
            self.r_acc[s] = now

    # ------------------------------------------------------------------ storage
    def free_bytes(self, rse: int) -> int:
        r = self.rses[rse]
        return r.capacity_bytes - r.used_bytes

    def n_file_replicas(self) -> int:
        return len(self._rep)


ReplicaCatalog = Catalog
"""The name used before file-level replicas existed."""


def place_initial_replicas(
    catalog: Catalog, datasets: Datasets, rng: np.random.Generator, popular_extra: int = 2,
    tape_only_fraction: float = 0.0,
) -> None:
    """Place each dataset on DATADISK RSEs chosen in proportion to capacity.

    Production inputs get one disk replica; derivations get two, and the most popular tenth of them
    (lowest indices among the analysis pool, which the generator ranks by popularity) ``popular_extra`` more.
    With ``tape_only_fraction`` > 0 that share of the production inputs lives only on a Tier-1 TAPE
    RSE (as data recalled by the data carousel), when the platform has tape.
    """
    plat = catalog.platform
    attached = {catalog.rse_names[i] for i, q in enumerate(catalog._rse_queues) if q}
    disks = [r for r in sorted(plat.rses.values(), key=lambda x: x.name)
             if r.rse_type == "DISK" and r.capacity_bytes > 0 and r.name in attached
             and "SCRATCH" not in r.name and "LOCALGROUP" not in r.name and r.attributes.get("volatile") != "true"]
    if not disks:
        disks = [plat.rses[r] for r in sorted(attached)]
    if not disks:
        raise ConfigError("the platform has no DISK RSE associated with a queue: nowhere to place input data")
    tapes = [r for r in sorted(plat.rses.values(), key=lambda x: x.name)
             if r.rse_type == "TAPE" and r.capacity_bytes > 0]
    cap = np.array([max(r.capacity_bytes, 1) for r in disks], dtype=np.float64)
    p = cap / cap.sum()
    deriv_idx = [i for i, t in enumerate(datasets.file_type) if t.startswith("DAOD")]
    first_deriv = deriv_idx[0] if deriv_idx else len(datasets)
    n_deriv = len(deriv_idx)
    tape_draw = rng.random(len(datasets)) if tapes and tape_only_fraction > 0 else None
    for d in range(len(datasets)):
        nf = int(datasets.nfiles[d])
        sizes = datasets.file_sizes(np.full(nf, d, dtype=np.int64), np.arange(nf, dtype=np.int64))
        is_deriv = datasets.file_type[d].startswith("DAOD")
        if tape_draw is not None and not is_deriv and tape_draw[d] < tape_only_fraction:
            chosen_names = [tapes[int(rng.integers(len(tapes)))].name]
        else:
            popular = (d - first_deriv) < max(1, n_deriv // 10)
            k = min(2 + (popular_extra if popular else 0) if is_deriv else 1, len(disks))
            chosen = rng.choice(len(disks), size=k, replace=False, p=p)
            chosen_names = [disks[i].name for i in sorted(chosen)]
        catalog.add_dataset(chosen_names, name=datasets.name[d], scope=datasets.scope[d], nfiles=nf, file_sizes=sizes)

"""The workload of a run as columns: tasks, their jobs, and the datasets they read.

Job-level values are numpy arrays (one entry per job *specification*; retries of a job share its
specification). Strings live at task and dataset level only, so a million jobs stay compact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridtwin.workload.categories import CATEGORIES, Category


@dataclass
class Datasets:
    """Input datasets (Rucio DIDs ``scope:name``) with their files."""

    scope: list[str]
    name: list[str]
    nfiles: np.ndarray  # int64
    file_bytes: np.ndarray  # float64, mean file size of the dataset
    file_type: list[str]

    def __len__(self) -> int:
        return len(self.name)

    def file_sizes(self, dataset: np.ndarray, file_index: np.ndarray) -> np.ndarray:
        """Size in bytes of file ``file_index`` of ``dataset`` (deterministic, +-30% around the mean)."""
        return (self.file_bytes[dataset] * (0.7 + 0.6 * _unit_hash(dataset, file_index))).astype(np.int64)

    def lfns(self, dataset: int, file_index: np.ndarray) -> list[str]:
        """Logical file names of files of one dataset."""
        stem = self.name[dataset].split(":")[-1]
        return [f"{stem}._{int(i) + 1:06d}.pool.root.1" for i in file_index]


def _unit_hash(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A deterministic pseudo-random number in [0, 1) per (a, b) pair (splitmix64 finaliser)."""
    with np.errstate(over="ignore"):
        x = (np.asarray(a, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.asarray(b, dtype=np.uint64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass
class Workload:
    """Tasks and job specifications of a run. Times in seconds from the run epoch."""

    # --- tasks (length T)
    jeditaskid: np.ndarray  # int64
    category: np.ndarray  # int8 (wider for more than 127 families), index into ``categories``
    arrival: np.ndarray  # float64, s
    priority: np.ndarray  # int32
    corecount: np.ndarray  # int32
    ramcount_mb: np.ndarray  # int32, per core
    walltime_estimate_s: np.ndarray  # float64, on a 10 HS06 core, for brokerage's walltime filter
    io_intensity: np.ndarray  # float64, kB/s per core
    dataset: np.ndarray  # int32, input dataset index or -1
    first_job: np.ndarray  # int64, index of the task's first job spec
    njobs: np.ndarray  # int32
    taskname: list[str]
    username: list[str]
    workinggroup: list[str | None]
    # --- job specifications (length N)
    task: np.ndarray  # int32
    work_hs06s: np.ndarray  # float64, CPU work in HS06-seconds
    cpu_eff: np.ndarray  # float64, payload CPU efficiency in (0, 1]
    maxrss_kb: np.ndarray  # int64
    nevents: np.ndarray  # int64
    ninput: np.ndarray  # int32
    first_file: np.ndarray  # int64, index of the first input file in the dataset (wraps)
    inputbytes: np.ndarray  # int64
    outputbytes: np.ndarray  # int64
    datasets: Datasets
    duration_s: float
    categories: tuple[Category, ...] = CATEGORIES
    """The families that ``category`` indexes (the generator's built-in ones unless read from a file)."""
    # --- optional per-job resource requests (length N), None when the workload has none
    request_rss_kb: np.ndarray | None = None
    """int64, requested memory per job in kB; -1 where a job has no request."""
    request_wall_s: np.ndarray | None = None
    """float64, requested wall time per job in seconds; NaN where a job has no request."""
    # --- optional per-task pinning (length T), None when brokerage places every task
    pinned_site: list[str | None] | None = None
    """Per task, the queue its jobs must run at (a replayed trace's recorded computingsite), None for a task
    brokerage places. Honoured only under the ``historical`` policy; not kept in workload files."""

    @property
    def n_tasks(self) -> int:
        return len(self.jeditaskid)

    @property
    def n_jobs(self) -> int:
        return len(self.task)

    def input_file_indices(self, job: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For job specs ``job``: (job spec repeated per file, dataset, file index) of every input file."""
        job = np.asarray(job, dtype=np.int64)
        n = self.ninput[job].astype(np.int64)
        rep = np.repeat(job, n)
        starts = np.repeat(np.cumsum(n) - n, n)
        k = np.arange(len(rep), dtype=np.int64) - starts
        ds = self.dataset[self.task[rep]].astype(np.int64)
        nf = self.datasets.nfiles[ds]
        return rep, ds, (self.first_file[rep] + k) % nf

"""The job table: one row per PanDA job (an attempt), kept as Python lists for cheap scalar updates.

Columns that the hot loop touches are plain lists indexed by row; the recorder turns them into
Arrow arrays once at the end of the run. ``pandaid = first_pandaid + row``.
"""

from __future__ import annotations

import math

import numpy as np

from gridtwin.wms.states import JobStatus

NAN = math.nan


class JobTable:
    """Columns of all jobs created in a run, plus their status log."""

    def __init__(self, first_pandaid: int = 6_500_000_000) -> None:
        self.first_pandaid = first_pandaid
        self.spec: list[int] = []
        self.parent: list[int] = []  # row of the previous attempt, -1 for a first attempt
        self.attempt: list[int] = []
        self.site: list[int] = []
        self.status: list[int] = []
        self.t_create: list[float] = []
        self.t_start: list[float] = []
        self.t_end: list[float] = []
        self.t_mod: list[float] = []
        self.t_sent: list[float] = []
        self.pilot_error: list[int] = []
        self.exe_error: list[int] = []
        self.ddm_error: list[int] = []
        self.tb_error: list[int] = []
        self.cpu_s: list[float] = []
        self.maxrss_kb: list[int] = []
        self.source: list[int] = []  # ATLAS-site index the input came from, -1: no input
        self.direct: list[bool] = []
        self.dis: list[bool] = []  # input came through a dispatch dataset
        self.timing: list[tuple[float, float, float, float, float] | None] = []
        # status log, flat: row, time, status, site, row, time, ... (one extend per entry is the cheapest)
        self._log: list[float] = []
        self._extend = self._log.extend

    def __len__(self) -> int:
        return len(self.spec)

    def new(self, spec: int, parent: int, attempt: int, now: float) -> int:
        """Append a job in state ``defined``; return its row."""
        row = len(self.spec)
        self.spec.append(spec)
        self.parent.append(parent)
        self.attempt.append(attempt)
        self.site.append(-1)
        self.status.append(JobStatus.defined)
        self.t_create.append(now)
        self.t_start.append(NAN)
        self.t_end.append(NAN)
        self.t_mod.append(now)
        self.t_sent.append(NAN)
        self.pilot_error.append(0)
        self.exe_error.append(0)
        self.ddm_error.append(0)
        self.tb_error.append(0)
        self.cpu_s.append(0.0)
        self.maxrss_kb.append(0)
        self.source.append(-1)
        self.direct.append(False)
        self.dis.append(False)
        self.timing.append(None)
        return row

    def log(self, row: int, time: float, status: int, site: int) -> None:
        """Record a status change (the caller has already set ``status[row]``)."""
        self._extend((row, time, status, site))

    def log_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The status log as arrays (row, time, status, site), in the order entries were made."""
        flat = np.asarray(self._log, dtype=np.float64).reshape(-1, 4)
        return (flat[:, 0].astype(np.int64), flat[:, 1].copy(), flat[:, 2].astype(np.int64),
                flat[:, 3].astype(np.int64))

    @property
    def log_row(self) -> list[int]:
        return self._log[0::4]

    @property
    def log_time(self) -> list[float]:
        return self._log[1::4]

    @property
    def log_status(self) -> list[int]:
        return self._log[2::4]

    @property
    def log_site(self) -> list[int]:
        return self._log[3::4]

    def pandaid(self, row: int) -> int:
        return self.first_pandaid + row

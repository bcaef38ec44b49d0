"""The job table: one row per PanDA job (an attempt), kept as typed ``array.array`` columns.

Typed arrays index about as fast as lists from Python, but store 8 bytes per value instead of a
pointer plus a boxed object, so a million-job day stays small; the recorder reads them into numpy
without copying. ``pandaid = first_pandaid + row``.
"""

from __future__ import annotations

from array import array
from itertools import repeat

import numpy as np

from gridtwin.wms.pilot import Attempt
from gridtwin.wms.states import JobStatus

NAN = float("nan")

# column name -> array typecode; every column gets one value per job in JobTable.new
_COLUMNS = {
    "spec": "q", "parent": "q", "attempt": "i", "site": "i", "status": "b",
    "t_create": "d", "t_start": "d", "t_end": "d", "t_mod": "d", "t_sent": "d",
    "pilot_error": "i", "exe_error": "i", "ddm_error": "i", "tb_error": "i",
    "cpu_s": "d", "maxrss_kb": "q", "source": "i", "direct": "b", "dis": "b",
    "tm_getjob": "d", "tm_stagein": "d", "tm_exe": "d", "tm_stageout": "d", "tm_setup": "d",
}


class JobTable:
    """Columns of all jobs created in a run, plus their status log.

    ``source`` is the ATLAS-site index the input came from (-1: no input); ``dis`` tells that the
    input came through a dispatch dataset; ``tm_*`` are the pilot timing parts in seconds.
    """

    spec: array
    parent: array
    attempt: array
    site: array
    status: array
    t_create: array
    t_start: array
    t_end: array
    t_mod: array
    t_sent: array
    pilot_error: array
    exe_error: array
    ddm_error: array
    tb_error: array
    cpu_s: array
    maxrss_kb: array
    source: array
    direct: array
    dis: array
    tm_getjob: array
    tm_stagein: array
    tm_exe: array
    tm_stageout: array
    tm_setup: array

    def __init__(self, first_pandaid: int = 6_500_000_000) -> None:
        self.first_pandaid = first_pandaid
        for name, code in _COLUMNS.items():
            setattr(self, name, array(code))
        # status log, flat: row, time, status, site, row, time, ... (one extend per entry is the cheapest)
        self._log = array("d")
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
        for col in (self.pilot_error, self.exe_error, self.ddm_error, self.tb_error, self.maxrss_kb,
                    self.direct, self.dis):
            col.append(0)
        self.source.append(-1)
        for col in (self.cpu_s, self.tm_getjob, self.tm_stagein, self.tm_exe, self.tm_stageout, self.tm_setup):
            col.append(0.0)
        return row

    def new_batch(self, specs: list[int], parents: list[int], attempts: list[int], sites: list[int],
                  now: float) -> int:
        """Append jobs in state ``defined`` at their sites; return the row of the first one."""
        first = len(self.spec)
        n = len(specs)
        self.spec.extend(specs)
        self.parent.extend(parents)
        self.attempt.extend(attempts)
        self.site.extend(sites)
        self.status.extend(repeat(JobStatus.defined, n))
        for col in (self.t_create, self.t_mod):
            col.extend(repeat(now, n))
        for col in (self.t_start, self.t_end, self.t_sent):
            col.extend(repeat(NAN, n))
        for col in (self.pilot_error, self.exe_error, self.ddm_error, self.tb_error, self.maxrss_kb,
                    self.direct, self.dis):
            col.extend(repeat(0, n))
        self.source.extend(repeat(-1, n))
        for col in (self.cpu_s, self.tm_getjob, self.tm_stagein, self.tm_exe, self.tm_stageout, self.tm_setup):
            col.extend(repeat(0.0, n))
        return first

    def record_attempt(self, row: int, a: Attempt) -> None:
        """Store an attempt's pilot timing parts, CPU time and memory."""
        self.tm_getjob[row] = a.getjob
        self.tm_stagein[row] = a.stagein
        self.tm_exe[row] = a.exe
        self.tm_stageout[row] = a.stageout
        self.tm_setup[row] = a.setup
        self.cpu_s[row] = a.cpu_s
        self.maxrss_kb[row] = a.maxrss_kb

    def log(self, row: int, time: float, status: int, site: int) -> None:
        """Record a status change (the caller has already set ``status[row]``)."""
        self._extend((row, time, status, site))

    def column(self, name: str) -> np.ndarray:
        """A column as a numpy array (a view on the table's memory: copy it before the table grows)."""
        return np.frombuffer(getattr(self, name), dtype=np.dtype(getattr(self, name).typecode))

    def log_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The status log as arrays (row, time, status, site), in the order entries were made."""
        flat = np.frombuffer(self._log, dtype=np.float64).reshape(-1, 4)
        return (flat[:, 0].astype(np.int64), flat[:, 1].copy(), flat[:, 2].astype(np.int64),
                flat[:, 3].astype(np.int64))

    @property
    def log_row(self) -> list[int]:
        return [int(x) for x in self._log[0::4]]

    @property
    def log_time(self) -> list[float]:
        return list(self._log[1::4])

    @property
    def log_status(self) -> list[int]:
        return [int(x) for x in self._log[2::4]]

    @property
    def log_site(self) -> list[int]:
        return [int(x) for x in self._log[3::4]]

    def pandaid(self, row: int) -> int:
        return self.first_pandaid + row


def log_file_bytes(pandaid):
    """Size of a job's log tarball, bytes (a deterministic 2-3 MB; works on ints and numpy arrays)."""
    return 2_000_000 + pandaid % 1_000_000

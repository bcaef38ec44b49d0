"""Transfer requests as columns: one row per attempt, in Rucio's request states and terms.

A retry is a new request whose ``previous`` is the failed one, as Rucio's finisher does
(``previous_attempt_id``). Times are simulation seconds, NaN while unset.
"""

from __future__ import annotations

import math
from array import array
from enum import IntEnum

import numpy as np


class RequestState(IntEnum):
    """Rucio's ``RequestState`` values the twin uses."""

    QUEUED = 0
    SUBMITTED = 1
    DONE = 2
    FAILED = 3
    NO_SOURCES = 4
    PREPARING = 5  # waiting for a tape recall (FTS bring-online)


QUEUED, SUBMITTED, DONE, FAILED, NO_SOURCES, PREPARING = (int(s) for s in RequestState)

ACTIVITIES = (
    "Production Input", "Production Output", "Analysis Input", "Analysis Output", "Data Brokering",
    "Data Rebalancing", "Staging", "User Subscriptions",
)
"""Rucio activities (ATLAS names); requests store the index."""
ACT_PROD_IN, ACT_PROD_OUT, ACT_ANA_IN, ACT_ANA_OUT, ACT_BROKERING, ACT_REBALANCING, ACT_STAGING, ACT_USER = range(8)

REASONS = (
    "",
    "TRANSFER [110] TRANSFER  ERROR: Connection timed out",
    "TRANSFER [70] TRANSFER  Transfer canceled because the gsiftp performance marker timeout of 360 seconds has "
    "been exceeded",
    "SOURCE [2] SOURCE  CHECKSUM MISMATCH: User defined checksum and source checksum do not match",
    "DESTINATION [5] DESTINATION  OVERWRITE Permission denied",
    "DESTINATION [28] DESTINATION  No space left on device",
    "SOURCE [2] SOURCE  No such file or directory",
    "STAGING [62] STAGING  Bring online timeout exceeded",
)
"""FTS error texts (``reason`` of transfer-failed events); requests store the index."""
R_NONE, R_TIMEOUT, R_MARKER, R_CHECKSUM, R_PERMISSION, R_NO_SPACE, R_NO_FILE, R_STAGING = range(8)
RANDOM_REASONS = (R_TIMEOUT, R_MARKER, R_CHECKSUM, R_PERMISSION)
"""Reasons of random transfer failures, with ``TransferFailureConfig.reason_weights``."""


class RequestTable:
    """Every transfer request of a run, as typed columns."""

    def __init__(self) -> None:
        self.fid = array("q")
        self.dst = array("i")
        self.src = array("i")
        self.slot = array("q")  # the destination replica's catalog slot
        self.rule = array("i")
        self.activity = array("b")
        self.state = array("b")
        self.reason = array("b")
        self.created = array("d")
        self.submitted = array("d")
        self.started = array("d")
        self.transferred = array("d")
        # sparse columns: most requests are first attempts from disk
        self.previous: dict[int, int] = {}  # retry -> the failed request it retries
        self.retry: dict[int, int] = {}  # retry -> its retry count (absent: 0)
        self.stage_start: dict[int, float] = {}  # tape recalls only
        self.stage_end: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.fid)

    def new(self, fid: int, dst: int, slot: int, rule: int, activity: int, now: float, previous: int = -1,
            retry: int = 0) -> int:
        """A QUEUED request; return its id."""
        nan = math.nan
        rid = len(self.fid)
        self.fid.append(fid)
        self.dst.append(dst)
        self.src.append(-1)
        self.slot.append(slot)
        self.rule.append(rule)
        self.activity.append(activity)
        self.state.append(QUEUED)
        self.reason.append(R_NONE)
        self.created.append(now)
        self.submitted.append(nan)
        self.started.append(nan)
        self.transferred.append(nan)
        if previous >= 0:
            self.previous[rid] = previous
            self.retry[rid] = retry
        return rid

    def column(self, name: str) -> np.ndarray:
        """A copy of one column as a numpy array (sparse ones filled: -1 previous, 0 retry, NaN times)."""
        a = getattr(self, name)
        if isinstance(a, dict):
            fill, dtype = {"previous": (-1, np.int64), "retry": (0, np.int8)}.get(name, (np.nan, np.float64))
            out = np.full(len(self), fill, dtype=dtype)
            if a:
                out[np.fromiter(a.keys(), np.int64, len(a))] = np.fromiter(a.values(), dtype, len(a))
            return out
        return np.frombuffer(a, dtype=a.typecode).copy() if len(a) else np.zeros(0, dtype=a.typecode)

"""PanDA job states and the legal transitions between them (reference/panda_rucio.md section 1)."""

from __future__ import annotations

from enum import IntEnum


class JobStatus(IntEnum):
    """PanDA ``jobstatus`` values; the int order is the usual order of a job's life."""

    pending = 0
    defined = 1
    assigned = 2
    activated = 3
    sent = 4
    starting = 5
    running = 6
    holding = 7
    transferring = 8
    finished = 9
    failed = 10
    cancelled = 11
    closed = 12


# plain-int aliases for hot paths: attribute access on an Enum class costs ~20x a global lookup
PENDING, DEFINED, ASSIGNED, ACTIVATED, SENT, STARTING, RUNNING, HOLDING, TRANSFERRING = range(9)
FINISHED, FAILED, CANCELLED, CLOSED = range(9, 13)

STATUS_NAMES: tuple[str, ...] = tuple(s.name for s in JobStatus)
TERMINAL = frozenset({JobStatus.finished, JobStatus.failed, JobStatus.cancelled, JobStatus.closed})

LEGAL_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.pending: frozenset({JobStatus.defined}),
    JobStatus.defined: frozenset({JobStatus.assigned, JobStatus.activated, JobStatus.closed, JobStatus.cancelled}),
    JobStatus.assigned: frozenset({JobStatus.activated, JobStatus.closed, JobStatus.failed, JobStatus.cancelled}),
    JobStatus.activated: frozenset({JobStatus.sent, JobStatus.closed, JobStatus.cancelled}),
    JobStatus.sent: frozenset({JobStatus.starting, JobStatus.running, JobStatus.failed}),
    JobStatus.starting: frozenset({JobStatus.running, JobStatus.failed}),
    JobStatus.running: frozenset({JobStatus.holding, JobStatus.transferring, JobStatus.finished, JobStatus.failed}),
    JobStatus.holding: frozenset({JobStatus.transferring, JobStatus.finished, JobStatus.failed}),
    JobStatus.transferring: frozenset({JobStatus.finished, JobStatus.failed}),
}


def is_legal(old: JobStatus | None, new: JobStatus) -> bool:
    """Whether a job may go from ``old`` (None for a new job) to ``new``."""
    if old is None:
        return new in (JobStatus.pending, JobStatus.defined)
    return new in LEGAL_TRANSITIONS.get(old, frozenset())

"""JEDI: tasks arrive, get a nucleus (production), and have their jobs generated in chunks that
brokerage places. Jobs that could not be placed, and retries of failed or closed jobs, wait for the
next JEDI cycle; a task none of whose jobs could be placed pends for an hour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gridtwin.wms.panda import PandaServer


@dataclass(frozen=True)
class JediParams:
    """Cadence and sizes of JEDI's job generation."""

    cycle_s: float = 300.0
    task_pend_s: float = 3600.0
    chunk_size: int = 2000


class Jedi:
    """Task bookkeeping and job generation for a :class:`PandaServer`."""

    def __init__(self, server: PandaServer, params: JediParams) -> None:
        self.server = server
        self.params = params
        wl = server.wl
        self.wl = wl
        n = wl.n_tasks
        self.nucleus: list[int] = [-1] * n
        self.next_spec: list[int] = wl.first_job.tolist()
        self.end_spec: list[int] = (wl.first_job + wl.njobs).tolist()
        self.pending: dict[int, list[tuple[int, int, int]]] = {}  # task -> [(spec, parent row, attempt)]
        self.pend_until: dict[int, float] = {}
        self.waiting: dict[int, None] = {}  # tasks with work left to generate, in insertion order
        self.is_user = [wl.categories[c].prodsourcelabel == "user" for c in wl.category.tolist()]
        self.arrived = 0
        self.tasks_without_candidates: set[int] = set()

    def on_task_arrival(self, task: int) -> None:
        """A task arrives: choose its nucleus (production), then generate a first chunk."""
        self.arrived += 1
        srv = self.server
        if not srv.broker.static_candidates(task):
            self.generate(task)  # marks the task broken; no nucleus, so no remaining work is booked
            return
        if not self.is_user[task]:
            nuc = srv.choose_nucleus(task)
            self.nucleus[task] = nuc.index if nuc is not None else -1
        self.waiting[task] = None
        self.generate(task)

    def add_retry(self, task: int, spec: int, parent_row: int, attempt: int) -> None:
        """Queue a new attempt of a job spec for the next cycle."""
        self.pending.setdefault(task, []).append((spec, parent_row, attempt))
        self.waiting[task] = None

    def has_work(self) -> bool:
        return bool(self.waiting)

    def generate(self, task: int) -> None:
        """Generate and broker one chunk of ``task``: pending attempts first, then fresh jobs."""
        srv = self.server
        if not srv.broker.static_candidates(task):
            # no queue can ever run these jobs (cores, memory, walltime): JEDI marks the task broken
            self.tasks_without_candidates.add(task)
            self.pending.pop(task, None)
            self.waiting.pop(task, None)
            return
        size = self.params.chunk_size
        todo = self.pending.pop(task, [])
        retry = bool(todo)
        take = max(0, min(size - len(todo), self.end_spec[task] - self.next_spec[task]))
        if take:
            s0 = self.next_spec[task]
            todo.extend((s, -1, 1) for s in range(s0, s0 + take))
            self.next_spec[task] = s0 + take
        if not todo:
            self.waiting.pop(task, None)
            return
        nucleus = srv.states[self.nucleus[task]] if self.nucleus[task] >= 0 else None
        sites = srv.broker.broker(task, [t[0] for t in todo], nucleus, retry)
        placed = srv.create_jobs(task, todo, sites)
        left = [t for t, s in zip(todo, sites, strict=True) if s < 0]
        if left:
            self.pending[task] = left + self.pending.get(task, [])
        if placed == 0:
            self.pend_until[task] = srv.engine.now + self.params.task_pend_s
        if not left and self.next_spec[task] >= self.end_spec[task] and task not in self.pending:
            self.waiting.pop(task, None)

    def cycle(self) -> None:
        """One JEDI cycle: every task with work left and not pending gets one chunk, by priority."""
        now = self.server.engine.now
        prio = self.wl.priority
        order = sorted(self.waiting, key=lambda t: (-int(prio[t]), t))
        for t in order:
            if self.pend_until.get(t, 0.0) > now:
                continue
            self.pend_until.pop(t, None)
            self.generate(t)

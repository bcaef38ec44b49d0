"""Rules and the judge: a rule asks for ``copies`` replicas of a DID's files on RSEs of an RSE
expression; the judge places a lock per (file, RSE), creates a transfer request for every lock
whose replica is missing, and keeps the rule's state: REPLICATING while locks wait for transfers,
OK when all are satisfied, STUCK when a transfer gave up.

Locks on a replica that is already being copied by another rule wait for that transfer: a file is
never sent twice to the same RSE. Who waits for what is a :class:`LockGroup`: a set of locks (the
files of one job, say) with a callback when all are OK (Rucio's ``DATASETLOCK_OK`` for a ``_dis``
dataset) and one when any is STUCK.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from gridtwin.ddm.catalog import AVAILABLE, COPYING, DELETED, NO_TOMBSTONE, Catalog
from gridtwin.ddm.conveyor import Conveyor
from gridtwin.ddm.requests import RequestTable
from gridtwin.errors import ConfigError
from gridtwin.kernel import Engine


class RuleState(IntEnum):
    """Rucio's rule states used here."""

    REPLICATING = 0
    OK = 1
    STUCK = 2


GROUPINGS = ("ALL", "DATASET", "NONE")
ROLES = ("input", "output", "log", "placement")
"""What a lock group's files are to the job that waits (``truth/job_transfer_links`` ``role``)."""
ROLE_INPUT, ROLE_OUTPUT, ROLE_LOG, ROLE_PLACEMENT = range(4)


@dataclass(frozen=True)
class JudgeParams:
    tombstone_delay_s: float = 0.0
    """Delay between a replica losing its last lock and becoming deletable (RSE attribute in Rucio)."""


class Rule:
    """A replication rule (Rucio's ``ReplicationRule``): state and lock counters."""

    __slots__ = (
        "account",
        "activity",
        "copies",
        "created_at",
        "deleted_at",
        "did_kind",
        "expires_at",
        "grouping",
        "id",
        "locks_ok",
        "locks_replicating",
        "locks_stuck",
        "name",
        "ok_at",
        "owner",
        "rse_expression",
        "rses",
        "scope",
        "slots",
        "state",
        "stuck_at",
    )

    def __init__(self, rid: int, account: str, scope: str, name: str, rses: list[int], rse_expression: str,
                 copies: int, grouping: str, activity: int, now: float, expires_at: float, did_kind: int,
                 owner: int) -> None:
        self.id = rid
        self.account = account
        self.scope = scope
        self.name = name
        self.rses = rses
        self.rse_expression = rse_expression
        self.copies = copies
        self.grouping = grouping
        self.activity = activity
        self.created_at = now
        self.expires_at = expires_at
        self.did_kind = did_kind
        """What the DID is: 0 a ``_dis`` dataset, 1 a ``_sub`` dataset, 2 an input dataset (placement, scenario)."""
        self.owner = owner
        """Job row (``_dis``), task x queue key (``_sub``) or dataset index (others)."""
        self.state = RuleState.OK
        self.locks_ok = 0
        self.locks_replicating = 0
        self.locks_stuck = 0
        self.slots: list[int] = []  # file-replica slots this rule locks
        self.ok_at = math.nan
        self.stuck_at = math.nan
        self.deleted_at = math.nan


class LockGroup:
    """Locks someone waits for: ``on_ok(arg)`` once all are OK, ``on_stuck(arg)`` at the first STUCK one."""

    __slots__ = ("arg", "done", "on_ok", "on_stuck", "pending", "role", "row", "rule")

    def __init__(self, rule: Rule, row: int, role: int, on_ok: Callable | None, on_stuck: Callable | None,
                 arg: object) -> None:
        self.rule = rule
        self.row = row
        self.role = role
        self.on_ok = on_ok
        self.on_stuck = on_stuck
        self.arg = arg
        self.pending = 0
        self.done = False

    def cancel(self) -> None:
        """The waiter is gone (job closed): no callback will come."""
        self.done = True


class Judge:
    """Creates rules, evaluates them into locks and requests, and follows their transfers."""

    def __init__(self, engine: Engine, catalog: Catalog, requests: RequestTable, conveyor: Conveyor,
                 params: JudgeParams, rng: np.random.Generator) -> None:
        self.engine = engine
        self.catalog = catalog
        self.req = requests
        self.conveyor = conveyor
        self.params = params
        self.rng = rng
        conveyor.judge = self
        self.rules: list[Rule] = []
        self._waiting: dict[int, list[LockGroup]] = {}
        # truth: which request attempt carried a file a job waited for
        self.t_row = array("q")
        self.t_req = array("q")
        self.t_role = array("b")

    # ------------------------------------------------------------------ rules
    def add_rule(self, *, account: str, scope: str, name: str, rses: Sequence[int], rse_expression: str,
                 activity: int, copies: int = 1, grouping: str = "DATASET", lifetime_s: float | None = None,
                 did_kind: int = 2, owner: int = -1) -> Rule:
        """A new rule, with no files yet (give them with :meth:`attach`)."""
        if grouping not in GROUPINGS:
            raise ConfigError(f"rule on {scope}:{name}: grouping must be one of {GROUPINGS}, got {grouping!r}")
        if not rses:
            raise ConfigError(f'rule on {scope}:{name}: RSE expression "{rse_expression}" matches no RSE')
        if copies < 1 or copies > len(rses):
            raise ConfigError(f'rule on {scope}:{name}: {copies} copies asked but RSE expression "{rse_expression}" '
                              f"matches {len(rses)} RSE(s)")
        now = self.engine.now
        expires = now + lifetime_s if lifetime_s is not None else math.inf
        rule = Rule(len(self.rules), account, scope, name, list(rses), rse_expression, copies, grouping, activity,
                    now, expires, did_kind, owner)
        self.rules.append(rule)
        if lifetime_s is not None:
            self.engine.schedule_at(expires, self._on_expired, rule)
        return rule

    def attach(self, rule: Rule, fids: Sequence[int], group: LockGroup | None = None) -> LockGroup | None:
        """Files join the rule's DID: lock them on the rule's RSEs, requesting transfers as needed.

        With ``group`` given, it waits for these locks; if they are all OK at once, its ``on_ok`` is not
        called here (the caller sees ``group.pending == 0``)."""
        now = self.engine.now
        targets = self._targets(rule, fids)
        for fid, rses in zip(fids, targets, strict=True):
            for rse in rses:
                if not self._lock(rule, fid, rse, group, now) and group is not None:
                    group.pending += 1
        self._update_state(rule, now)
        return group

    def _targets(self, rule: Rule, fids: Sequence[int]) -> list[Sequence[int]]:
        """The RSEs each file is locked on: all of them when the expression gives exactly ``copies``;
        otherwise RSEs that already hold the files first, then at random weighted by free space (as
        Rucio), the same for all files (ALL, DATASET) or per file (NONE)."""
        rses = rule.rses
        if len(rses) == rule.copies:
            return [rses] * len(fids)
        if rule.grouping != "NONE":
            return [self._pick(rule, fids)] * len(fids)
        return [self._pick(rule, [f]) for f in fids]

    def _pick(self, rule: Rule, fids: Sequence[int]) -> list[int]:
        cat = self.catalog
        held = [sum(cat.holds(f, r) for f in fids) for r in rule.rses]
        free = np.array([max(cat.free_bytes(r), 1) for r in rule.rses], dtype=np.float64)
        noise = self.rng.random(len(rule.rses)) ** (1.0 / free * free.max())  # weighted draw without replacement
        order = sorted(range(len(rule.rses)), key=lambda i: (-held[i], -noise[i], rule.rses[i]))
        return sorted(rule.rses[i] for i in order[: rule.copies])

    def _lock(self, rule: Rule, fid: int, rse: int, group: LockGroup | None, now: float) -> bool:
        """Lock ``fid`` on ``rse`` for ``rule``; True if the lock is OK now."""
        cat = self.catalog
        if cat.has_bulk(fid, rse):
            rule.locks_ok += 1
            return True
        s = cat.slot(fid, rse)
        if s < 0:
            s = cat.create_replica(fid, rse, COPYING, now, 1, NO_TOMBSTONE, reserve=False)
            rid = self.req.new(fid, rse, s, rule.id, rule.activity, now)
            self.conveyor.in_flight += 1
            self.conveyor.submit(rid)
            rule.slots.append(s)
            rule.locks_replicating += 1
            self._waiting[s] = [group or LockGroup(rule, -1, ROLE_PLACEMENT, None, None, None)]
            return False
        cat.lock(s)
        rule.slots.append(s)
        if cat.r_state[s] == AVAILABLE:
            rule.locks_ok += 1
            return True
        rule.locks_replicating += 1
        self._waiting[s].append(group or LockGroup(rule, -1, ROLE_PLACEMENT, None, None, None))
        return False

    def _update_state(self, rule: Rule, now: float) -> None:
        if rule.locks_stuck:
            if rule.state != RuleState.STUCK:
                rule.state = RuleState.STUCK
                rule.stuck_at = now
        elif rule.locks_replicating:
            rule.state = RuleState.REPLICATING
        elif rule.state != RuleState.OK or math.isnan(rule.ok_at):
            rule.state = RuleState.OK
            rule.ok_at = now

    def delete_rule(self, rule: Rule) -> None:
        """Remove a rule: its locks go; replicas left without locks get a tombstone (the reaper may
        delete them when their RSE runs short of space)."""
        if not math.isnan(rule.deleted_at):
            return
        now = self.engine.now
        rule.deleted_at = now
        cat = self.catalog
        tomb = now + self.params.tombstone_delay_s
        st = cat.r_state
        for s in rule.slots:
            if st[s] != DELETED:
                cat.unlock(s, tomb)
        rule.slots = []

    def _on_expired(self, rule: Rule) -> None:
        self.delete_rule(rule)

    # ------------------------------------------------------------------ transfers
    def attempt_ended(self, rid: int, ok: bool, final: bool) -> None:
        """Called by the conveyor when a request attempt ends (``final``: no retry follows)."""
        s = self.req.slot[rid]
        groups = self._waiting.get(s)
        if groups:
            for g in groups:
                if g.row >= 0:
                    self.t_row.append(g.row)
                    self.t_req.append(rid)
                    self.t_role.append(g.role)
        if not final:
            return
        now = self.engine.now
        cat = self.catalog
        groups = self._waiting.pop(s, ())
        if ok:
            cat.mark_available(s, now)
            if cat.r_lock[s] == 0:  # every rule that wanted it was deleted meanwhile
                cat.r_tomb[s] = now + self.params.tombstone_delay_s
        else:
            cat.remove_replica(s)
        for g in groups:
            rule = g.rule
            rule.locks_replicating -= 1
            if ok:
                rule.locks_ok += 1
            else:
                rule.locks_stuck += 1
            if math.isnan(rule.deleted_at):
                self._update_state(rule, now)
            if g.done:
                continue
            if ok:
                g.pending -= 1
                if g.pending == 0:
                    g.done = True
                    if g.on_ok is not None:
                        g.on_ok(g.arg)
            else:
                g.done = True
                if g.on_stuck is not None:
                    g.on_stuck(g.arg)

    def busy(self) -> bool:
        return self.conveyor.busy()


def rule_states(rules: list[Rule]) -> dict[str, int]:
    """Rules by state name (deleted ones counted apart)."""
    out: dict[str, int] = {}
    for r in rules:
        key = "DELETED" if not math.isnan(r.deleted_at) else r.state.name
        out[key] = out.get(key, 0) + 1
    return out


__all__ = ["GROUPINGS", "ROLES", "Judge", "JudgeParams", "LockGroup", "Rule", "RuleState", "rule_states"]

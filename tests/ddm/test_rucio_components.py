"""Component tests of the Rucio-like layer on tiny hand-built platforms: catalog, judge, conveyor,
tape, reaper and FTS optimizer driven together by a RucioServer, every number computed by hand.

Conventions: a rule made at time t is submitted at the first multiple of ``submitter_interval_s``
(30 s) after t; with neutral flow factors a lone flow of S bytes on a link of capacity C and latency
L takes L + S/C, and n flows started together end together after L + n S/C.
"""

from __future__ import annotations

import math

import pytest

from gridtwin.ddm.catalog import AVAILABLE, COPYING, DELETED, NO_TOMBSTONE, Catalog
from gridtwin.ddm.conveyor import ConveyorParams, TapeParams
from gridtwin.ddm.fts_optimizer import OptimizerParams
from gridtwin.ddm.judge import JudgeParams, RuleState
from gridtwin.ddm.reaper import ReaperParams
from gridtwin.ddm.requests import (
    ACT_PROD_IN,
    DONE,
    FAILED,
    NO_SOURCES,
    PREPARING,
    QUEUED,
    R_NO_FILE,
    R_NO_SPACE,
    RANDOM_REASONS,
    SUBMITTED,
)
from gridtwin.ddm.rucio import DdmParams, RucioServer
from gridtwin.errors import ConfigError
from gridtwin.kernel import Engine, RandomStreams
from gridtwin.platform.model import RSE, Link, LinkDefaults, Platform, Site
from gridtwin.policies.source_selection import ClosenessSelector, QueueAwareSelector

GB = 10**9
NEUTRAL = {"bandwidth_factor": 1.0, "latency_factor": 1.0, "window_bytes": 0}
WIDE = OptimizerParams(max_active=50, min_active=2)
"""An optimizer limit (50 from the start) above every file count used here."""
SERIAL = OptimizerParams(max_active=1, min_active=1)
BIG = 10**15
ALMOST_ALWAYS = 1 - 1e-12
"""A failure rate that fails every attempt (the rate must stay below 1)."""


def approx(x: float):
    return pytest.approx(x, rel=1e-9, abs=1e-9)


def platform(rses: dict[str, tuple[str, int] | tuple[str, int, str]], links: list[Link] = (),
             queues: dict[str, list[str]] | None = None) -> Platform:
    """RSEs as name -> (atlas site, capacity[, type]); one queue per ATLAS site (named after it) using
    its RSEs, unless ``queues`` (queue -> RSE names, queue name = ATLAS site) says otherwise."""
    rse_objs = {n: RSE(n, v[0], v[2] if len(v) > 2 else "DISK", v[1]) for n, v in rses.items()}
    if queues is None:
        queues = {}
        for n, r in rse_objs.items():
            queues.setdefault(r.atlas_site, []).append(n)
    sites = {q: Site(q, q, rses=list(rs)) for q, rs in queues.items()}
    return Platform("t", sites, rse_objs, {(lk.src, lk.dst): lk for lk in links}, LinkDefaults())


def server(plat: Platform, *, failure_rate: float = 0.0, max_retries: int = 3, optimizer: OptimizerParams = WIDE,
           tape: TapeParams | None = None, flow_factors: dict | None = None, selector=None,
           reaper: ReaperParams | None = None, judge: JudgeParams | None = None, flow_model: str = "linksharing",
           seed: int = 1) -> RucioServer:
    conv = ConveyorParams(failure_rate=failure_rate, max_retries=max_retries, optimizer=optimizer,
                          tape=tape or TapeParams())
    params = DdmParams(flow_model=flow_model, flow_factors=NEUTRAL if flow_factors is None else flow_factors,
                       conveyor=conv, reaper=reaper or ReaperParams(), judge=judge or JudgeParams())
    cat = Catalog(plat, sorted(plat.sites))
    return RucioServer(Engine(), plat, cat, params, RandomStreams(seed), selector or ClosenessSelector())


def two_sites(bandwidth: float = 1e8, latency: float = 0.5, cap_b: int = BIG) -> Platform:
    return platform({"A_DATADISK": ("A", BIG), "B_DATADISK": ("B", cap_b)},
                    [Link("A", "B", bandwidth, latency, 5)])


def files_of(cat: Catalog, d: int) -> list[int]:
    first = cat.ds_first_fid[d]
    return list(range(first, first + cat.ds_nfiles[d]))


def col(srv: RucioServer, name: str) -> list:
    return srv.requests.column(name).tolist()


# ============================================================================ 1. analytical timings
@pytest.mark.parametrize("flow_model", ["linksharing", "maxmin"])
def test_n_equal_files_on_one_link_finish_together(flow_model: str) -> None:
    n, size, cap, lat = 4, GB, 1e8, 0.5
    srv = server(two_sites(cap, lat), flow_model=flow_model)
    cat = srv.catalog
    d = cat.add_dataset(["A_DATADISK"], name="ds", scope="s", nfiles=n, file_sizes=[size] * n)
    srv.engine.run(until=45.0)
    rule = srv.add_dataset_rule(d, "B_DATADISK")
    assert rule.state == RuleState.REPLICATING
    assert col(srv, "state") == [QUEUED] * n
    assert col(srv, "created") == [45.0] * n
    b, a = cat.rse_index["B_DATADISK"], cat.rse_index["A_DATADISK"]
    srv.engine.run()
    t_end = 60.0 + lat + n * size / cap  # submitter at 60 (first multiple of 30 after 45)
    assert t_end == 100.5
    assert col(srv, "submitted") == [60.0] * n
    assert col(srv, "started") == [60.0] * n
    assert col(srv, "transferred") == [approx(t_end)] * n
    assert col(srv, "state") == [DONE] * n
    assert col(srv, "src") == [a] * n
    assert col(srv, "dst") == [b] * n
    assert rule.state == RuleState.OK and rule.ok_at == approx(t_end)
    assert rule.locks_ok == n and rule.locks_replicating == 0
    for f in files_of(cat, d):
        s = cat.slot(f, b)
        assert cat.r_state[s] == AVAILABLE and cat.r_bytes[s] == size and cat.r_lock[s] == 1
    assert cat.rses[b].used_bytes == n * size
    assert "B_DATADISK" in cat.replicas(d)  # a complete replica now counts for locality
    conv = srv.conveyor
    assert (conv.n_done, conv.bytes_delivered, conv.in_flight, conv.n_failed_attempts) == (n, n * size, 0, 0)
    assert not srv.busy()
    (lk,) = conv.link_list
    assert (lk.src, lk.dst, lk.files_done, lk.bytes_done, lk.active, len(lk.queue)) == ("A", "B", n, n * size, 0, 0)


def test_lv08_default_factors() -> None:
    # defaults: latency x 13.01, capacity x 0.97; the TCP window bound 4194304/(2 x 0.01) x 0.97 = 2.03e8 B/s per
    # flow does not bind for 4 flows sharing 0.97e8
    n, size, cap, lat = 4, GB, 1e8, 0.01
    srv = server(two_sites(cap, lat), flow_factors={})
    d = srv.catalog.add_dataset(["A_DATADISK"], nfiles=n, file_sizes=[size] * n)
    srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run()
    assert col(srv, "transferred") == [approx(30.0 + 13.01 * lat + n * size / (0.97 * cap))] * n


def test_lv08_window_bound_caps_a_lone_flow() -> None:
    # L = 0.1 s: the window bound 0.97 x 4194304 / 0.2 = 20.3 MB/s is far below 0.97 x 1e9
    srv = server(two_sites(1e9, 0.1), flow_factors={})
    d = srv.catalog.add_dataset(["A_DATADISK"], nfiles=1, file_sizes=[GB])
    srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run()
    assert col(srv, "transferred") == [approx(30.0 + 13.01 * 0.1 + GB / (0.97 * 4194304 / 0.2))]


def test_optimizer_limit_one_serialises_the_link_fifo() -> None:
    # limit 1: each transfer starts when the previous one ends and pays its own latency: file k (1-based)
    # ends at t0 + k (L + S/C)
    n, size, cap, lat = 4, GB, 1e8, 0.5
    srv = server(two_sites(cap, lat), optimizer=SERIAL)
    d = srv.catalog.add_dataset(["A_DATADISK"], nfiles=n, file_sizes=[size] * n)
    srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run(until=30.0)
    (lk,) = srv.conveyor.link_list
    assert (lk.active, len(lk.queue)) == (1, n - 1)
    srv.engine.run()
    step = lat + size / cap
    assert col(srv, "submitted") == [30.0] * n
    assert col(srv, "started") == [approx(30.0 + k * step) for k in range(n)]
    assert col(srv, "transferred") == [approx(30.0 + (k + 1) * step) for k in range(n)]
    assert col(srv, "transferred")[-1] == approx(72.0)
    # the link was backlogged over the ticks at 60 s: a fixed range keeps the limit at 1
    assert lk.opt.limit == 1
    assert lk.opt.decisions and all(x.value == 1 for x in lk.opt.decisions)
    assert lk.opt.decisions[0].time == 60.0 and lk.opt.decisions[0].queued == 1


# ============================================================================ 2. one transfer per (file, RSE)
def test_two_rules_and_dispatches_share_one_request_per_file() -> None:
    n, size = 3, GB
    srv = server(two_sites(1e8, 0.5))
    cat, req = srv.catalog, srv.requests
    d = cat.add_dataset(["A_DATADISK"], nfiles=n, file_sizes=[size] * n)
    fids = files_of(cat, d)
    b = cat.rse_index["B_DATADISK"]
    srv.engine.run(until=10.0)
    rule1 = srv.add_dataset_rule(d, "B_DATADISK")
    rule2 = srv.add_dataset_rule(d, "B_DATADISK")  # same files, same RSE: waits for rule1's transfers
    calls: list[tuple[str, int]] = []

    def ok(row: int) -> None:
        calls.append(("ok", row))

    def stuck(row: int) -> None:
        calls.append(("stuck", row))

    g1 = srv.dispatch(7, fids, b, ACT_PROD_IN, ok, stuck)
    assert len(req) == n
    assert g1.pending == n
    assert rule2.state == RuleState.REPLICATING and rule2.locks_replicating == n
    for i, f in enumerate(fids):
        s = cat.slot(f, b)
        assert s == req.slot[i] and req.fid[i] == f
        assert cat.holds(f, b)
        assert cat.r_state[s] == COPYING and cat.r_lock[s] == 3 and cat.r_bytes[s] == 0
        assert cat.r_tomb[s] == NO_TOMBSTONE
    assert cat.rses[b].used_bytes == 0  # nothing counted before the transfers start

    srv.engine.run(until=30.2)  # started at 30, still paying the 0.5 s latency
    for f in fids:
        s = cat.slot(f, b)
        assert cat.r_state[s] == COPYING and cat.r_bytes[s] == size
    assert cat.rses[b].used_bytes == n * size
    g2 = srv.dispatch(8, fids[:2], b, ACT_PROD_IN, ok, stuck)  # attach while COPYING: waits
    assert len(req) == n and g2.pending == 2
    assert calls == []

    srv.engine.run(until=1000.0)  # (the _dis rules expire after 7 days)
    t_end = 30.0 + 0.5 + n * size / 1e8
    assert sorted(calls) == [("ok", 7), ("ok", 8)]  # each group called once
    assert g1.pending == 0 and g2.pending == 0 and g1.done and g2.done
    assert len(req) == n and col(srv, "state") == [DONE] * n
    assert col(srv, "transferred") == [approx(t_end)] * n
    assert [cat.r_lock[cat.slot(f, b)] for f in fids] == [4, 4, 3]
    assert cat.rses[b].used_bytes == n * size  # counted once
    for r in (rule1, rule2, g1.rule, g2.rule):
        assert r.state == RuleState.OK and r.ok_at == approx(t_end)
    assert rule1.locks_ok == rule2.locks_ok == n and g2.rule.locks_ok == 2

    # everything is there now: no request, no callback, the group has nothing pending
    g3 = srv.dispatch(9, fids, b, ACT_PROD_IN, ok, stuck)
    assert g3.pending == 0 and not g3.done and len(req) == n
    assert g3.rule.state == RuleState.OK and g3.rule.ok_at == srv.engine.now
    assert sorted(calls) == [("ok", 7), ("ok", 8)]
    assert srv.missing_at(fids, b) == []
    assert [cat.r_lock[cat.slot(f, b)] for f in fids] == [5, 5, 4]  # its locks count all the same

    # releasing the job's group deletes its _dis rule: one lock less each, still locked by the others
    srv.release(g1)
    assert g1.rule.deleted_at == srv.engine.now
    assert [cat.r_lock[cat.slot(f, b)] for f in fids] == [4, 4, 3]
    assert all(cat.r_tomb[cat.slot(f, b)] == NO_TOMBSTONE for f in fids)


# ============================================================================ 3. retries and STUCK
def test_failing_attempts_retry_then_stuck_frees_the_replica() -> None:
    assert ALMOST_ALWAYS < 1
    with pytest.raises(ConfigError):
        ConveyorParams(failure_rate=1.0)
    size, lat, cap = GB, 0.5, 1e8
    plat = two_sites(cap, lat)
    plat.rses["B_DATADISK"].used_bytes = 123_456
    srv = server(plat, failure_rate=ALMOST_ALWAYS, max_retries=2)
    cat, req = srv.catalog, srv.requests
    d = cat.add_dataset(["A_DATADISK"], nfiles=1, file_sizes=[size])
    (fid,) = files_of(cat, d)
    b = cat.rse_index["B_DATADISK"]
    calls: list[tuple[str, int]] = []
    g1 = srv.dispatch(3, [fid], b, ACT_PROD_IN, lambda r: calls.append(("ok", r)),
                      lambda r: calls.append(("stuck", r)))
    g2 = srv.dispatch(4, [fid], b, ACT_PROD_IN, lambda r: calls.append(("ok", r)),
                      lambda r: calls.append(("stuck", r)))
    slot = cat.slot(fid, b)
    srv.engine.run(until=30.1)
    assert cat.rses[b].used_bytes == 123_456 + size  # reserved while the attempt runs
    srv.engine.run()

    assert len(req) == 3  # max_retries + 1 attempts
    assert req.previous == {1: 0, 2: 1}
    assert req.retry == {1: 1, 2: 2}
    assert col(srv, "previous") == [-1, 0, 1]
    assert col(srv, "state") == [FAILED] * 3
    assert all(r in RANDOM_REASONS for r in col(srv, "reason"))
    assert col(srv, "slot") == [slot] * 3
    created, submitted, started, done = (col(srv, k) for k in ("created", "submitted", "started", "transferred"))
    assert created[0] == 0.0 and submitted[0] == 30.0
    for i in range(3):
        if i:
            assert created[i] == done[i - 1]  # the finisher makes the retry when the attempt fails
            assert submitted[i] == (math.floor(created[i] / 30) + 1) * 30
        assert started[i] == submitted[i]
        assert started[i] + lat <= done[i] <= started[i] + lat + size / cap  # dies part-way
    assert calls == [("stuck", 3), ("stuck", 4)]  # once each, at the last attempt
    assert g1.done and g2.done
    rule = g1.rule
    assert rule.state == RuleState.STUCK and rule.stuck_at == done[2] and rule.locks_stuck == 1
    assert rule.locks_replicating == 0 and math.isnan(rule.ok_at)
    assert cat.r_state[slot] == DELETED and cat.slot(fid, b) == -1 and not cat.holds(fid, b)
    assert cat.rses[b].used_bytes == 123_456
    conv = srv.conveyor
    assert (conv.n_stuck, conv.n_failed_attempts, conv.n_done, conv.in_flight) == (1, 3, 0, 0)
    assert conv.link_list[0].files_failed == 3
    assert srv.missing_at([fid], b) == [fid]


def test_no_source_is_stuck_at_once() -> None:
    srv = server(two_sites())
    cat = srv.catalog
    d = cat.add_dataset([], nfiles=1, file_sizes=[GB])  # no replica anywhere
    rule = srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run()
    assert col(srv, "state") == [NO_SOURCES]
    assert col(srv, "reason") == [R_NO_FILE]
    assert col(srv, "transferred") == [30.0]
    assert len(srv.requests) == 1  # no retry
    assert rule.state == RuleState.STUCK and rule.stuck_at == 30.0
    assert srv.conveyor.in_flight == 0 and srv.conveyor.n_stuck == 1


# ============================================================================ 4. space and the reaper
def test_full_destination_fails_with_no_space_and_never_overfills() -> None:
    # capacity 10 GB, 8 GB used by data the catalog does not know (nothing deletable); 3 files of 1 GB:
    # the first fits under the high watermark (9.5 GB), the second fits the capacity after an empty
    # reaper pass, the third does not fit: "No space left on device"; its retry at 60 s neither
    cap_b = 10 * GB
    plat = two_sites(1e8, 0.5, cap_b=cap_b)
    plat.rses["B_DATADISK"].used_bytes = 8 * GB
    srv = server(plat, max_retries=1)
    cat = srv.catalog
    b = cat.rse_index["B_DATADISK"]
    d = cat.add_dataset(["A_DATADISK"], nfiles=3, file_sizes=[GB] * 3)
    rule = srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run()
    assert col(srv, "state") == [DONE, DONE, FAILED, FAILED]
    assert col(srv, "reason")[2:] == [R_NO_SPACE, R_NO_SPACE]
    assert col(srv, "started")[2:] == [30.0, 60.0]
    assert col(srv, "transferred")[2:] == [30.0, 60.0]
    assert col(srv, "previous") == [-1, -1, -1, 2]
    assert col(srv, "transferred")[:2] == [approx(30.0 + 0.5 + 2 * GB / 1e8)] * 2
    assert cat.rses[b].used_bytes == cap_b  # full, never above
    assert srv.reaper.passes == 1  # the second scan waits interval_s
    assert len(srv.reaper.d_fid) == 0
    assert rule.state == RuleState.STUCK and rule.locks_ok == 2 and rule.locks_stuck == 1
    assert not cat.holds(files_of(cat, d)[2], b)


def test_reaper_makes_room_lru_first_never_locked_or_last_copy() -> None:
    cap_b = 20 * GB  # high watermark 19 GB, low 18 GB
    size_new, lat, bw = 5 * GB, 0.5, 1e9
    srv = server(two_sites(bw, lat, cap_b=cap_b))
    cat = srv.catalog
    b = cat.rse_index["B_DATADISK"]
    # four 2 GB cache replicas (another copy on A), unlocked with a tombstone: accessed at 25, 5, never, 15
    old = cat.add_dataset(["A_DATADISK"], nfiles=5, file_sizes=[2 * GB] * 5)
    of = files_of(cat, old)
    for f in of[:4]:
        cat.create_replica(f, b, AVAILABLE, 0.0, 0, 0.0)
    cat.touch(of[0], b, 25.0)
    cat.touch(of[1], b, 5.0)
    cat.touch(of[3], b, 15.0)
    cat.create_replica(of[4], b, AVAILABLE, 0.0, 0, 1e6)  # tombstone in the future
    locked = cat.add_dataset(["A_DATADISK"], nfiles=1, file_sizes=[3 * GB])
    cat.create_replica(files_of(cat, locked)[0], b, AVAILABLE, 0.0, 1, NO_TOMBSTONE)
    last = cat.new_file(3 * GB, 0, 1)  # an output whose only copy is here, never accessed
    cat.create_replica(last, b, AVAILABLE, 0.0, 0, 0.0)
    assert cat.rses[b].used_bytes == 16 * GB
    cat.rses[b].used_bytes += 2 * GB  # data the catalog does not follow
    new = cat.add_dataset(["A_DATADISK"], nfiles=1, file_sizes=[size_new])
    rule = srv.add_dataset_rule(new, "B_DATADISK")
    srv.engine.run()
    # at 30 s: 18 + 5 > 19 GB: delete never-accessed first (of[2]; `last` is skipped, a last copy), then
    # accessed at 5 (of[1]), at 15 (of[3]): 18 + 5 - 6 = 17 <= 18 GB, stop
    assert list(srv.reaper.d_fid) == [of[2], of[1], of[3]]
    assert list(srv.reaper.d_time) == [30.0] * 3
    assert list(srv.reaper.d_rse) == [b] * 3
    assert list(srv.reaper.d_bytes) == [2 * GB] * 3
    assert cat.deleted_bytes[b] == 6 * GB and cat.deleted_files[b] == 3
    for f in (of[1], of[2], of[3]):
        assert not cat.holds(f, b) and cat.n_available(f) == 1  # the copy on A is left
    for f in (of[0], of[4], files_of(cat, locked)[0], last):
        assert cat.r_state[cat.slot(f, b)] == AVAILABLE
    assert col(srv, "state") == [DONE]
    assert col(srv, "transferred") == [approx(30.0 + lat + size_new / bw)]
    assert rule.state == RuleState.OK
    assert cat.rses[b].used_bytes == 17 * GB <= 0.9 * cap_b


# ============================================================================ 5. tape
def tape_platform() -> Platform:
    return platform({"T_DATADISK": ("T", BIG), "T_TAPE": ("T", BIG, "TAPE"), "B_DATADISK": ("B", BIG)},
                    [Link("T", "B", 1e9, 0.5, 3)])


@pytest.mark.parametrize("drives", [1, 2])
def test_tape_only_dataset_is_recalled_by_the_drives_in_turn(drives: int) -> None:
    n, size, mount, rate = 4, GB, 100.0, 1e8  # a recall takes 100 + 10 = 110 s
    srv = server(tape_platform(), tape=TapeParams(drives=drives, drive_rate_bps=rate, mount_s=mount))
    cat, req = srv.catalog, srv.requests
    tape = cat.rse_index["T_TAPE"]
    d = cat.add_dataset(["T_TAPE"], nfiles=n, file_sizes=[size] * n)
    rule = srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run(until=31.0)
    assert col(srv, "state") == [PREPARING] * n
    assert col(srv, "src") == [tape] * n
    assert req.stage_start == {k: 30.0 for k in range(drives)}
    srv.engine.run(until=140.2)  # first round recalled at 140, its transfers on the link until 140.5 + ...
    assert col(srv, "state") == [SUBMITTED] * drives + [PREPARING] * (n - drives)
    assert col(srv, "started")[:drives] == [140.0] * drives
    srv.engine.run()
    recall = mount + size / rate
    rounds = [k // drives + 1 for k in range(n)]  # the drive round that recalls file k
    stage_end = [30.0 + r * recall for r in rounds]
    assert col(srv, "stage_start") == [approx(30.0 + (r - 1) * recall) for r in rounds]
    assert col(srv, "stage_end") == [approx(t) for t in stage_end]
    assert col(srv, "submitted") == [30.0] * n
    assert col(srv, "started") == [approx(t) for t in stage_end]
    # the files recalled together share the link: drives x S / C after the latency
    assert col(srv, "transferred") == [approx(t + 0.5 + drives * size / 1e9) for t in stage_end]
    assert col(srv, "state") == [DONE] * n
    assert rule.state == RuleState.OK
    if drives == 1:
        assert col(srv, "transferred") == [approx(30.0 + k * 110.0 + 1.5) for k in range(1, n + 1)]


def test_disk_source_preferred_over_a_closer_tape() -> None:
    # the tape sits at the destination site (closeness 0), the disk copy far away: disk still wins
    plat = platform({"A_DATADISK": ("A", BIG), "B_TAPE": ("B", BIG, "TAPE"), "B_DATADISK": ("B", BIG)},
                    [Link("A", "B", 1e8, 0.5, 11, mbps=1.0)])
    srv = server(plat, tape=TapeParams(drives=1, drive_rate_bps=1e8, mount_s=100.0))
    cat = srv.catalog
    d = cat.add_dataset(["A_DATADISK", "B_TAPE"], nfiles=2, file_sizes=[GB] * 2)
    srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run()
    assert col(srv, "src") == [cat.rse_index["A_DATADISK"]] * 2
    assert srv.requests.stage_start == {} and srv.requests.stage_end == {}
    assert col(srv, "transferred") == [approx(30.0 + 0.5 + 2 * GB / 1e8)] * 2


# ============================================================================ 6. source choice in the conveyor
def three_sources(closeness_a: int, closeness_c: int, mbps_a: float, mbps_c: float) -> Platform:
    return platform({"A_DATADISK": ("A", BIG), "B_DATADISK": ("B", BIG), "C_DATADISK": ("C", BIG)},
                    [Link("A", "B", 1e8, 0.5, closeness_a, mbps_a), Link("C", "B", 1e8, 0.5, closeness_c, mbps_c)])


def test_conveyor_takes_the_closer_source() -> None:
    srv = server(three_sources(5, 2, 500.0, 50.0))
    cat = srv.catalog
    d = cat.add_dataset(["A_DATADISK", "C_DATADISK"], nfiles=3, file_sizes=[GB] * 3)
    srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run()
    assert col(srv, "src") == [cat.rse_index["C_DATADISK"]] * 3
    assert [(lk.src, lk.dst) for lk in srv.conveyor.link_list] == [("C", "B")]


def test_conveyor_same_closeness_takes_the_faster_link() -> None:
    srv = server(three_sources(4, 4, 50.0, 500.0))
    cat = srv.catalog
    d = cat.add_dataset(["A_DATADISK", "C_DATADISK"], nfiles=2, file_sizes=[GB] * 2)
    srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run()
    assert col(srv, "src") == [cat.rse_index["C_DATADISK"]] * 2


@pytest.mark.parametrize("selector, expected", [(ClosenessSelector(), "AAAA"), (QueueAwareSelector(), "ACAC")])
def test_queue_aware_source_selection_spreads_over_links(selector, expected: str) -> None:
    # two equal links, one transfer at a time each: queue-aware sends each file where fewer are ahead of it
    # (ties: closeness, then the RSE name); closeness always takes A (name order)
    srv = server(three_sources(5, 5, 100.0, 100.0), optimizer=SERIAL, selector=selector)
    cat = srv.catalog
    d = cat.add_dataset(["A_DATADISK", "C_DATADISK"], nfiles=4, file_sizes=[GB] * 4)
    srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run()
    assert "".join(cat.rse_names[s][0] for s in col(srv, "src")) == expected
    assert col(srv, "state") == [DONE] * 4


# ============================================================================ 7. rule semantics
def four_disks(cap_z: int = BIG) -> Platform:
    return platform({"A_DATADISK": ("A", BIG), "X_DATADISK": ("X", BIG), "Y_DATADISK": ("Y", BIG),
                     "Z_DATADISK": ("Z", cap_z)})


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_two_copies_over_three_rses_prefer_the_one_holding_the_files(seed: int) -> None:
    srv = server(four_disks(), seed=seed)
    cat = srv.catalog
    d = cat.add_dataset(["A_DATADISK", "Y_DATADISK"], nfiles=3, file_sizes=[GB] * 3)
    rule = srv.add_dataset_rule(d, "X_DATADISK|Y_DATADISK|Z_DATADISK", copies=2)
    y = cat.rse_index["Y_DATADISK"]
    assert rule.locks_ok == 3 and rule.locks_replicating == 3  # Y's locks OK at once
    dsts = set(col(srv, "dst"))
    assert len(srv.requests) == 3 and len(dsts) == 1 and y not in dsts  # grouping DATASET: one other RSE
    assert dsts <= {cat.rse_index["X_DATADISK"], cat.rse_index["Z_DATADISK"]}
    srv.engine.run()
    assert rule.state == RuleState.OK and rule.locks_ok == 6
    (other,) = dsts
    assert sorted(r for r in range(cat.n_rse) if cat.rse_names[r] in cat.replicas(d)) == sorted([
        cat.rse_index["A_DATADISK"], y, other])


@pytest.mark.parametrize("seed", range(1, 11))
def test_choice_is_weighted_by_free_space(seed: int) -> None:
    # Z has a millionth of X's free space: the weighted draw u**(1/w) practically never picks it
    srv = server(four_disks(cap_z=10**9), seed=seed)
    cat = srv.catalog
    d = cat.add_dataset(["A_DATADISK"], nfiles=2, file_sizes=[1000] * 2)
    srv.add_dataset_rule(d, "X_DATADISK|Z_DATADISK")
    assert set(col(srv, "dst")) == {cat.rse_index["X_DATADISK"]}


def test_grouping_none_spreads_files_dataset_keeps_them_together() -> None:
    srv = server(four_disks())
    cat = srv.catalog
    d = cat.add_dataset(["A_DATADISK"], nfiles=20, file_sizes=[1000] * 20)
    srv.add_dataset_rule(d, "X_DATADISK|Z_DATADISK", grouping="NONE")
    spread = col(srv, "dst")
    assert set(spread) == {cat.rse_index["X_DATADISK"], cat.rse_index["Z_DATADISK"]}
    for grouping in ("DATASET", "ALL"):
        n0 = len(srv.requests)
        d2 = cat.add_dataset(["A_DATADISK"], nfiles=20, file_sizes=[1000] * 20)
        srv.add_dataset_rule(d2, "X_DATADISK|Z_DATADISK|Y_DATADISK", grouping=grouping)
        new = col(srv, "dst")[n0:]
        assert len(new) == 20 and len(set(new)) == 1  # all files on one RSE
    with pytest.raises(ConfigError):
        srv.add_dataset_rule(d, "X_DATADISK|Z_DATADISK", grouping="FILE")
    with pytest.raises(ConfigError):
        srv.add_dataset_rule(d, "X_DATADISK|Z_DATADISK", copies=3)


def test_rule_lifetime_deletes_it_at_expiry_and_tombstones_its_replicas() -> None:
    srv = server(two_sites(1e8, 0.5), judge=JudgeParams(tombstone_delay_s=3600.0))
    cat = srv.catalog
    b = cat.rse_index["B_DATADISK"]
    d = cat.add_dataset(["A_DATADISK"], nfiles=2, file_sizes=[GB] * 2)
    rule = srv.add_dataset_rule(d, "B_DATADISK", lifetime_s=1000.0)
    keep = srv.add_dataset_rule(d, "B_DATADISK")  # a second lock on each replica
    assert rule.expires_at == 1000.0 and math.isinf(keep.expires_at)
    srv.engine.run(until=999.0)
    assert rule.state == RuleState.OK and rule.ok_at == approx(30.5 + 20.0)
    assert math.isnan(rule.deleted_at)
    srv.judge.delete_rule(keep)  # first: still locked by `rule`, no tombstone
    assert keep.deleted_at == 999.0
    slots = [cat.slot(f, b) for f in files_of(cat, d)]
    assert [cat.r_lock[s] for s in slots] == [1, 1]
    assert [cat.r_tomb[s] for s in slots] == [NO_TOMBSTONE] * 2
    srv.engine.run()
    assert rule.deleted_at == 1000.0
    assert [cat.r_lock[s] for s in slots] == [0, 0]
    assert [cat.r_tomb[s] for s in slots] == [4600.0, 4600.0]
    assert [cat.r_state[s] for s in slots] == [AVAILABLE] * 2  # deletable, not deleted
    srv.judge.delete_rule(rule)  # again: nothing changes
    assert rule.deleted_at == 1000.0 and [cat.r_lock[s] for s in slots] == [0, 0]


def test_rule_expiring_while_its_transfer_runs_leaves_a_tombstoned_replica() -> None:
    srv = server(two_sites(1e8, 0.5), judge=JudgeParams(tombstone_delay_s=100.0))
    cat = srv.catalog
    b = cat.rse_index["B_DATADISK"]
    d = cat.add_dataset(["A_DATADISK"], nfiles=1, file_sizes=[GB])
    rule = srv.add_dataset_rule(d, "B_DATADISK", lifetime_s=35.0)
    srv.engine.run()
    s = cat.slot(files_of(cat, d)[0], b)
    assert rule.deleted_at == 35.0
    assert cat.r_state[s] == AVAILABLE and cat.r_lock[s] == 0
    assert cat.r_tomb[s] == approx(40.5 + 100.0)  # transferred at 30 + 0.5 + 10, tombstone from then


def test_delete_rule_gives_tombstones_now() -> None:
    srv = server(two_sites(1e8, 0.5))
    cat = srv.catalog
    b = cat.rse_index["B_DATADISK"]
    d = cat.add_dataset(["A_DATADISK"], nfiles=2, file_sizes=[GB] * 2)
    rule = srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run(until=500.0)
    srv.judge.delete_rule(rule)
    slots = [cat.slot(f, b) for f in files_of(cat, d)]
    assert rule.deleted_at == 500.0 and rule.slots == []
    assert [cat.r_tomb[s] for s in slots] == [500.0, 500.0]
    assert [cat.r_lock[s] for s in slots] == [0, 0]


# ============================================================================ 9. FTS optimizer on a conveyor link
def test_optimizer_raises_the_limit_on_a_long_healthy_queue() -> None:
    # range 1..10 with no configured max: the first decision is halfway (5); every later tick sees rising
    # throughput and a queue longer than the limit: conservative +1 per tick up to the range max
    srv = server(two_sites(1e8, 0.5), optimizer=OptimizerParams(min_active=1, se_limit=10))
    d = srv.catalog.add_dataset(["A_DATADISK"], nfiles=100, file_sizes=[GB] * 100)
    srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run(until=30.0)
    (lk,) = srv.conveyor.link_list
    assert (lk.opt.limit, lk.active, len(lk.queue)) == (5, 5, 95)
    srv.engine.run(until=600.0)
    dec = list(lk.opt.decisions)
    assert [x.time for x in dec[:6]] == [60.0, 120.0, 180.0, 240.0, 300.0, 360.0]
    assert [x.value for x in dec[:6]] == [5, 6, 7, 8, 9, 10]
    assert all(x.reason.startswith("throughput rising: increase") for x in dec[1:])
    assert all(x.value == 10 for x in dec[5:]) and lk.opt.limit == 10
    assert all(x.active <= x.previous for x in dec)  # FTS never runs more than the limit
    assert lk.active == 10
    srv.engine.run(until=2000.0)
    assert col(srv, "state") == [DONE] * 100 and srv.conveyor.n_failed_attempts == 0


def test_optimizer_backs_off_to_min_active_when_attempts_fail() -> None:
    # range 2..20: first decision 11; a 90% failure rate keeps the success rate far below 97%: -1 per tick
    srv = server(two_sites(1e8, 0.5), failure_rate=0.9, optimizer=OptimizerParams(min_active=2, se_limit=20))
    d = srv.catalog.add_dataset(["A_DATADISK"], nfiles=100, file_sizes=[GB] * 100)
    srv.add_dataset_rule(d, "B_DATADISK")
    srv.engine.run(until=900.0)
    (lk,) = srv.conveyor.link_list
    values = [x.value for x in lk.opt.decisions]
    assert values[0] == 11
    assert values[1:10] == list(range(10, 1, -1))
    assert values[10:] and all(v == 2 for v in values[10:])
    assert all(x.success_rate < 97 for x in list(lk.opt.decisions)[1:])
    assert lk.opt.limit == 2 and lk.active <= 2
    assert srv.conveyor.n_failed_attempts > srv.conveyor.n_done

"""Source-selection plugins on hand-made candidates, and placement policies driven through a RucioServer
on tiny platforms (popularity: when and where a new replica goes; diskless cache: the cache RSE)."""

from __future__ import annotations

import pytest

from gridtwin.ddm.catalog import AVAILABLE, Catalog
from gridtwin.ddm.conveyor import ConveyorParams
from gridtwin.ddm.fts_optimizer import OptimizerParams
from gridtwin.ddm.requests import ACT_PROD_IN, DONE
from gridtwin.ddm.rucio import DdmParams, RucioServer
from gridtwin.errors import ConfigError
from gridtwin.kernel import Engine, RandomStreams
from gridtwin.platform.model import RSE, Link, LinkDefaults, Platform, Site
from gridtwin.policies.placement import DisklessCache, NoPlacement, PopularityPlacement
from gridtwin.policies.source_selection import ClosenessSelector, QueueAwareSelector, SourceCandidate

GB = 10**9
BIG = 10**15
NEUTRAL = {"bandwidth_factor": 1.0, "latency_factor": 1.0, "window_bytes": 0}


def cand(rse: str, *, tape: bool = False, closeness: int = 5, mbps: float | None = 100.0, bw: float = 1e9,
         queued: int = 0, active: int = 0) -> SourceCandidate:
    return SourceCandidate(rse, rse.split("_")[0], tape, closeness, mbps, bw, queued, active)


# ============================================================================ source selection
def test_closeness_lower_closeness_first_then_higher_mbps_then_name() -> None:
    sel = ClosenessSelector()
    cs = [cand("A_DATADISK", closeness=5, mbps=900.0), cand("B_DATADISK", closeness=3, mbps=10.0),
          cand("C_DATADISK", closeness=3, mbps=50.0), cand("D_DATADISK", closeness=3, mbps=20.0)]
    assert sel.choose(cs, "X_DATADISK", GB) == 2
    # no measured throughput: the bandwidth in MB/s stands in (200 MB/s beats 50)
    cs.append(cand("E_DATADISK", closeness=3, mbps=None, bw=200e6))
    assert sel.choose(cs, "X_DATADISK", GB) == 4
    # full tie: the RSE name
    assert sel.choose([cand("Q_DATADISK"), cand("P_DATADISK")], "X_DATADISK", GB) == 1
    assert sel.static and sel.name == "closeness"


def test_closeness_tape_last() -> None:
    sel = ClosenessSelector()
    cs = [cand("T_TAPE", tape=True, closeness=0, mbps=10_000.0), cand("F_DATADISK", closeness=11, mbps=1.0)]
    assert sel.choose(cs, "X_DATADISK", GB) == 1
    tapes = [cand("T_TAPE", tape=True, closeness=4), cand("U_TAPE", tape=True, closeness=2)]
    assert sel.choose(tapes, "X_DATADISK", GB) == 1


def test_queue_aware_prefers_the_shorter_wait() -> None:
    sel = QueueAwareSelector()
    # waits: A (10 + 2 + 1) x 1 GB / 100 MB/s = 130 s; C 1 x 1 GB / 10 MB/s = 100 s
    busy_fast = cand("A_DATADISK", closeness=1, mbps=100.0, queued=10, active=2)
    idle_slow = cand("C_DATADISK", closeness=9, mbps=10.0)
    assert sel.choose([busy_fast, idle_slow], "X_DATADISK", GB) == 1
    # C at 5 MB/s: 200 s > 130 s
    assert sel.choose([busy_fast, cand("C_DATADISK", closeness=9, mbps=5.0)], "X_DATADISK", GB) == 0
    # equal waits: closeness decides, then the name
    assert sel.choose([cand("A_DATADISK", closeness=6), cand("C_DATADISK", closeness=2)], "X", GB) == 1
    assert sel.choose([cand("C_DATADISK"), cand("A_DATADISK")], "X", GB) == 1
    # no measured throughput: the link bandwidth (bytes/s)
    assert sel.choose([cand("A_DATADISK", mbps=None, bw=1e9, queued=5),
                       cand("C_DATADISK", mbps=None, bw=2e8)], "X", GB) == 1  # 6 s vs 5 s
    assert not sel.static and sel.name == "queue-aware"


def test_queue_aware_tape_last_even_when_idle() -> None:
    sel = QueueAwareSelector()
    cs = [cand("T_TAPE", tape=True, closeness=0, mbps=10_000.0), cand("F_DATADISK", mbps=1.0, queued=500)]
    assert sel.choose(cs, "X_DATADISK", GB) == 1


# ============================================================================ placement set-up
def make_server(plat: Platform, seed: int = 1, failure_rate: float = 0.0) -> RucioServer:
    params = DdmParams(flow_factors=NEUTRAL, conveyor=ConveyorParams(
        failure_rate=failure_rate, max_retries=0, optimizer=OptimizerParams(max_active=50)))
    return RucioServer(Engine(), plat, Catalog(plat, sorted(plat.sites)), params, RandomStreams(seed),
                       ClosenessSelector())


def popularity_platform(cap_y: int = BIG) -> Platform:
    """A holds the data; jobs read it at R (a queue without storage); X and Y are candidates, Y far better
    connected to R (1000 MB/s against 10), though X comes first by name."""
    rses = {n: RSE(n, n[0], "DISK", cap_y if n[0] == "Y" else BIG) for n in ("A_DATADISK", "X_DATADISK", "Y_DATADISK")}
    sites = {"A": Site("A", "A", rses=["A_DATADISK"]), "R": Site("R", "R", rses=[]),
             "X": Site("X", "X", rses=["X_DATADISK"]), "Y": Site("Y", "Y", rses=["Y_DATADISK"])}
    links = [Link("X", "R", 1e9, 0.01, 5, mbps=10.0), Link("Y", "R", 1e9, 0.01, 5, mbps=1000.0)]
    return Platform("t", sites, rses, {(lk.src, lk.dst): lk for lk in links}, LinkDefaults())


def rule_rses(srv: RucioServer) -> list[str]:
    return [r.rse_expression for r in srv.judge.rules]


def test_popularity_first_rule_after_more_than_threshold_reads() -> None:
    # "a dataset read by more than `threshold` jobs gets one more replica": with threshold 3, the 4th read
    srv = make_server(popularity_platform())
    srv.set_placement(PopularityPlacement(threshold=3, max_replicas=3, lifetime_h=2.0))
    d = srv.catalog.add_dataset(["A_DATADISK"], nfiles=2, file_sizes=[GB] * 2)
    for _ in range(3):
        srv.dataset_read(d, "R")
    assert srv.judge.rules == []
    srv.dataset_read(d, "R")
    assert rule_rses(srv) == ["Y_DATADISK"]


def test_popularity_goes_to_the_best_connected_site_up_to_max_replicas() -> None:
    srv = make_server(popularity_platform())
    pol = PopularityPlacement(threshold=3, max_replicas=3, lifetime_h=2.0)
    srv.set_placement(pol)
    cat = srv.catalog
    d = cat.add_dataset(["A_DATADISK"], nfiles=2, file_sizes=[GB] * 2)
    n = 0
    while not srv.judge.rules:
        srv.dataset_read(d, "R")
        n += 1
        assert n <= 6
    (rule,) = srv.judge.rules
    assert rule.rse_expression == "Y_DATADISK"  # score 1000 x reads against 10 x reads for X
    assert rule.account == "panda" and rule.copies == 1 and rule.owner == d
    assert rule.expires_at == pytest.approx(srv.engine.now + 7200.0, rel=1e-12)
    y = cat.rse_index["Y_DATADISK"]
    assert list(srv.requests.dst) == [y, y]
    assert srv.view.dataset_rses(d) == ["A_DATADISK", "Y_DATADISK"]  # counted while being filled
    for _ in range(60):
        srv.dataset_read(d, "R")
    # a second one at the only site left (X); then A, Y, X are 3 disk copies = max_replicas
    assert rule_rses(srv) == ["Y_DATADISK", "X_DATADISK"]
    srv.engine.run(until=1000.0)
    assert list(srv.requests.state) == [DONE] * 4
    assert sorted(cat.replicas(d)) == ["A_DATADISK", "X_DATADISK", "Y_DATADISK"]


def test_popularity_max_replicas_two_gives_one_rule() -> None:
    srv = make_server(popularity_platform())
    srv.set_placement(PopularityPlacement(threshold=3, max_replicas=2))
    d = srv.catalog.add_dataset(["A_DATADISK"], nfiles=1, file_sizes=[GB])
    for _ in range(50):
        srv.dataset_read(d, "R")
    assert rule_rses(srv) == ["Y_DATADISK"]


def test_popularity_skips_a_site_without_room() -> None:
    srv = make_server(popularity_platform(cap_y=GB))  # Y cannot hold 2 GB
    srv.set_placement(PopularityPlacement(threshold=3, max_replicas=2))
    d = srv.catalog.add_dataset(["A_DATADISK"], nfiles=2, file_sizes=[GB] * 2)
    for _ in range(20):
        srv.dataset_read(d, "R")
    assert rule_rses(srv) == ["X_DATADISK"]


def test_no_placement_makes_no_rules() -> None:
    srv = make_server(popularity_platform())
    srv.set_placement(NoPlacement())
    d = srv.catalog.add_dataset(["A_DATADISK"], nfiles=1, file_sizes=[GB])
    for _ in range(100):
        srv.dataset_read(d, "R")
    assert srv.judge.rules == []


def test_popularity_rejects_bad_options() -> None:
    with pytest.raises(ConfigError):
        PopularityPlacement(threshold=0)
    with pytest.raises(ConfigError):
        PopularityPlacement(max_replicas=0)
    with pytest.raises(ConfigError):
        PopularityPlacement(lifetime_h=0)


# ============================================================================ diskless cache
def cache_platform() -> Platform:
    rses = {"P_DATADISK": RSE("P_DATADISK", "PS", "DISK", BIG), "Q_TAPE": RSE("Q_TAPE", "QS", "TAPE", BIG)}
    sites = {"P": Site("P", "PS", rses=["P_DATADISK"]), "Q": Site("Q", "QS", rses=["Q_TAPE"])}
    links = [Link("PS", "QS", 1e8, 0.5, 5)]
    return Platform("t", sites, rses, {(lk.src, lk.dst): lk for lk in links}, LinkDefaults())


def test_diskless_cache_gives_a_queue_without_disk_a_cache_rse() -> None:
    plat = cache_platform()
    pol = DisklessCache(cache_tb=2.5)
    pol.setup(plat)
    assert pol.caches == ["QS_CACHE"]
    cache = plat.rses["QS_CACHE"]
    assert (cache.atlas_site, cache.rse_type, cache.capacity_bytes) == ("QS", "DISK", 2_500_000_000_000)
    assert cache.attributes["volatile"] == "true"
    assert plat.sites["Q"].rses == ["QS_CACHE", "Q_TAPE"]
    assert plat.disk_rses_of(plat.sites["Q"]) == [cache]
    assert plat.sites["P"].rses == ["P_DATADISK"]  # has disk: untouched
    pol.setup(plat)  # idempotent
    assert plat.sites["Q"].rses == ["QS_CACHE", "Q_TAPE"] and pol.caches == ["QS_CACHE"]

    # the cache is the queue's input storage: a dataset brought there is local to Q
    srv = make_server(plat)
    cat = srv.catalog
    q = sorted(plat.sites).index("Q")
    d = cat.add_dataset(["P_DATADISK"], nfiles=2, file_sizes=[GB] * 2)
    first = cat.ds_first_fid[d]
    c = cat.rse_index["QS_CACHE"]
    got: list[int] = []
    srv.dispatch(0, [first, first + 1], c, ACT_PROD_IN, got.append, got.append)
    assert q not in cat.local_sites(d)
    srv.engine.run(until=100.0)
    assert got == [0]
    assert all(cat.r_state[cat.slot(f, c)] == AVAILABLE for f in (first, first + 1))
    assert q in cat.local_sites(d)
    assert srv.requests.transferred.tolist() == [pytest.approx(30.0 + 0.5 + 2 * GB / 1e8, rel=1e-9)] * 2


def test_diskless_cache_named_queue_loses_its_disks() -> None:
    plat = cache_platform()
    DisklessCache(sites=["P"]).setup(plat)
    assert plat.sites["P"].rses == ["PS_CACHE"]
    assert [r.name for r in plat.disk_rses_of(plat.sites["P"])] == ["PS_CACHE"]
    assert plat.sites["Q"].rses == ["QS_CACHE", "Q_TAPE"]
    with pytest.raises(ConfigError):
        DisklessCache(sites=["NOPE"]).setup(cache_platform())
    with pytest.raises(ConfigError):
        DisklessCache(cache_tb=0)


def test_view_forgets_a_placed_replica_once_its_rule_expired_and_the_reaper_took_a_file() -> None:
    # DataView.dataset_rses: "RSEs with a complete replica, or with a rule bringing one"
    srv = make_server(popularity_platform())
    srv.set_placement(PopularityPlacement(threshold=1, max_replicas=2, lifetime_h=1.0))
    cat = srv.catalog
    d = cat.add_dataset(["A_DATADISK"], nfiles=2, file_sizes=[GB] * 2)
    for _ in range(2):
        srv.dataset_read(d, "R")
    assert rule_rses(srv) == ["Y_DATADISK"]
    srv.engine.run(until=3599.0)
    assert srv.view.dataset_rses(d) == ["A_DATADISK", "Y_DATADISK"]  # complete there, rule alive
    srv.engine.run(until=3601.0)
    assert srv.judge.rules[0].deleted_at == 3600.0
    assert srv.view.dataset_rses(d) == ["A_DATADISK", "Y_DATADISK"]  # still complete
    # Y runs short of space: the reaper takes the unlocked secondary copies (A keeps the primary)
    y = cat.rse_index["Y_DATADISK"]
    cat.rses[y].used_bytes = cat.rses[y].capacity_bytes
    assert srv.reaper.clean(y, srv.engine.now) == 2 * GB
    assert "Y_DATADISK" not in cat.replicas(d)
    assert srv.view.dataset_rses(d) == ["A_DATADISK"]
    # the dataset is popular again: one more replica, at the best-connected site again
    for _ in range(2):
        srv.dataset_read(d, "R")
    assert rule_rses(srv) == ["Y_DATADISK", "Y_DATADISK"]


def test_view_forgets_a_stuck_placement_and_the_policy_tries_elsewhere() -> None:
    srv = make_server(popularity_platform(), failure_rate=1 - 1e-12)  # every attempt fails, no retry
    srv.set_placement(PopularityPlacement(threshold=1, max_replicas=2))
    d = srv.catalog.add_dataset(["A_DATADISK"], nfiles=1, file_sizes=[GB])
    for _ in range(2):
        srv.dataset_read(d, "R")
    assert rule_rses(srv) == ["Y_DATADISK"]
    assert srv.view.dataset_rses(d) == ["A_DATADISK", "Y_DATADISK"]  # being filled
    srv.engine.run(until=100.0)
    assert srv.judge.rules[0].state.name == "STUCK"
    assert srv.view.dataset_rses(d) == ["A_DATADISK"]  # no rule brings it any more
    srv.dataset_read(d, "R")
    assert rule_rses(srv) == ["Y_DATADISK", "Y_DATADISK"]

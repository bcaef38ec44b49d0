"""PanDA brokerage weights on a fixed grid state, against the formula worked out by hand, and the
baseline policies. Every expected value is written as the arithmetic of the formula
(reference/panda_rucio.md section 2, policies/panda.py docstring)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from gridtwin.errors import PolicyError
from gridtwin.policies import PandaParams, PandaPolicy, available_policies, make_policy
from gridtwin.policies.base import JobChunk
from gridtwin.policies.panda import analysis_weight, convert_mbps_to_weight, many_assigned, production_weight
from gridtwin.policies.simple import DataLocalityPolicy, LeastLoadedPolicy, RandomPolicy, RoundRobinPolicy

GB = 1e9


@dataclass(frozen=True)
class FakeSite:
    """A queue's counters as a policy sees them (implements ``SiteView``)."""

    name: str
    index: int = 0
    atlas_site: str = ""
    running: int = 0
    workers: int = 0
    activated: int = 0
    assigned: int = 0
    starting: int = 0
    defined: int = 0
    free_cores: int = 100
    total_cores: int = 100
    tier: int = 2
    cloud: str = "DE"
    corepower: float = 10.0
    is_nucleus: bool = False

    def __post_init__(self) -> None:
        if not self.atlas_site:
            object.__setattr__(self, "atlas_site", self.name)


@dataclass
class FakeGrid:
    """The grid's queues; links keyed by (src atlas site, dst atlas site); the chunk's input bytes at each
    queue, by queue index (implements ``GridView``)."""

    sites_: list = field(default_factory=list)
    closeness_: dict[tuple[str, str], int] = field(default_factory=dict)
    mbps: dict[tuple[str, str], float] = field(default_factory=dict)
    queued: dict[tuple[str, str], int] = field(default_factory=dict)
    local: dict[int, float] = field(default_factory=dict)
    now: float = 0.0

    def sites(self):
        return self.sites_

    def closeness(self, src, dst) -> int:
        return self.closeness_.get((src.atlas_site, dst.atlas_site), 11)

    def link_mbps(self, src, dst):
        return self.mbps.get((src.atlas_site, dst.atlas_site))

    def link_queued_files(self, src, dst) -> int:
        return self.queued.get((src.atlas_site, dst.atlas_site), 0)

    def queued_files_to(self, dst) -> dict[str, int]:
        return {src: n for (src, d), n in self.queued.items() if d == dst.atlas_site}

    def local_bytes(self, chunk, site) -> float:
        return self.local.get(site.index, 0.0)

    def local_site_indices(self, chunk) -> frozenset[int]:
        return frozenset(i for i, b in self.local.items() if b >= chunk.input_bytes)


def make_chunk(n_jobs: int = 1, input_bytes: float = 0.0, input_files: int = 0, nucleus=None,
               label: str = "managed", io_intensity: float = 0.0, priority: int = 900,
               corecount: int = 1) -> JobChunk:
    return JobChunk(
        jeditaskid=1, prodsourcelabel=label, processingtype="evgen", priority=priority, corecount=corecount,
        ramcount_mb=2000, walltime_estimate_s=3600.0, io_intensity=io_intensity, n_jobs=n_jobs,
        input_dataset="mc23:x" if input_bytes else None, input_bytes=input_bytes, input_files=input_files,
        nucleus=nucleus, dataset_index=0 if input_bytes else -1)


class ScriptedRng:
    """Stands in for numpy's Generator: ``random(n)`` returns the given numbers."""

    def __init__(self, values):
        self.values = list(values)

    def random(self, n):
        out, self.values = self.values[:n], self.values[n:]
        return np.array(out)


# ---------------------------------------------------------------- production weight
def test_fully_local_input():
    site = FakeSite("Q", running=50, activated=10, starting=0, defined=2, assigned=7)
    chunk = make_chunk(input_bytes=4 * GB, input_files=40)
    grid = FakeGrid(local={0: 4 * GB})
    # (R+1)/(Act+Start+Def+10), assigned not counted; data term (total+local)/total / (0/100+1) = 2
    expected = (50 + 1) / (10 + 0 + 2 + 10) * ((4 + 4) / 4) / (0 / 100 + 1)
    assert production_weight(site, chunk, grid) == pytest.approx(expected)
    assert production_weight(site, chunk, grid, local=4 * GB) == pytest.approx(expected)


@pytest.mark.parametrize(("running", "workers", "r"), [(0, 100, 20), (0, 7, 7), (50, 100, 50), (3, 0, 3)])
def test_idle_pilots_count_as_running_up_to_20(running, workers, r):
    # R = max(running, min(nWorkers, 20)): an idle queue with pilots waiting is not starved
    site = FakeSite("Q", running=running, workers=workers, activated=4)
    chunk = make_chunk(input_bytes=0, input_files=0)
    expected = (r + 1) / (4 + 0 + 0 + 10)
    assert production_weight(site, chunk, FakeGrid()) == pytest.approx(expected)


def test_no_input_has_no_data_term():
    site = FakeSite("Q", running=9, activated=3, starting=1, defined=1, assigned=20)
    expected = (9 + 1) / (3 + 1 + 1 + 10)
    assert production_weight(site, make_chunk(), FakeGrid()) == pytest.approx(expected)


@pytest.mark.parametrize(("assigned", "activated", "many"), [
    (5, 1, 2.0),  # (5+1)/(1+1) = 3, clamped to 2
    (2, 1, 1.5),  # (2+1)/(1+1)
    (2, 2, 1.0),  # (2+1)/(2+1)
    (0, 9, 1.0),  # 1/10, clamped to 1
])
def test_many_assigned_clamp(assigned, activated, many):
    assert many_assigned(FakeSite("Q", assigned=assigned, activated=activated)) == many


def test_not_local_with_many_assigned_clamp():
    site = FakeSite("Q", running=50, activated=1, assigned=5, starting=0, defined=0)
    chunk = make_chunk(input_bytes=2 * GB, input_files=20)
    grid = FakeGrid()  # nothing local
    # manyAssigned = clamp((5+1)/(1+1), 1, 2) = 2.0; data term (total+0)/total / (20/100+1)
    expected = (50 + 1) / (1 + 5 + 0 + 0 + 10) / 2.0 * ((2 + 0) / 2) / (20 / 100 + 1)
    assert production_weight(site, chunk, grid) == pytest.approx(expected)


def test_partly_local_data_term_counts_files_to_move():
    site = FakeSite("Q", running=19, activated=4, assigned=4, starting=1, defined=0)
    chunk = make_chunk(input_bytes=10 * GB, input_files=50)
    grid = FakeGrid(local={0: 5 * GB})
    # not fully local: assigned counts, manyAssigned = (4+1)/(4+1) = 1
    expected = (19 + 1) / (4 + 4 + 1 + 0 + 10) / 1.0 * ((10 + 5) / 10) / (50 / 100 + 1)
    assert production_weight(site, chunk, grid) == pytest.approx(expected)


def test_nucleus_with_io_intensive_task():
    nucleus = FakeSite("T1_A", atlas_site="T1", is_nucleus=True)
    site = FakeSite("T1_B", atlas_site="T1", running=9)  # another queue of the nucleus' ATLAS site
    grid = FakeGrid()
    base = (9 + 1) / (0 + 0 + 0 + 10)
    chunk = make_chunk(nucleus=nucleus, io_intensity=700)
    assert production_weight(site, chunk, grid) == pytest.approx(base * 4 * 2.5)  # t1Weight x network 2.5/2.5
    at_limit = make_chunk(nucleus=nucleus, io_intensity=500)  # not > 500: t1Weight 1
    assert production_weight(site, at_limit, grid) == pytest.approx(base * 1 * 2.5)
    no_net = PandaParams(network_active=False)
    assert production_weight(site, chunk, grid, no_net) == pytest.approx(base * 4)


@pytest.mark.parametrize(("mbps", "weight"), [
    (0.0, 1.0), (1.0, 1.0), (1.001, 1.1), (2.0, 1.1), (2.5, 1.2), (10.0, 1.2), (10.5, 1.3), (20.0, 1.3),
    (20.5, 1.5), (50.0, 1.5), (50.5, 1.6), (75.0, 1.6), (75.5, 1.8), (100.0, 1.8), (100.5, 1.9), (200.0, 1.9),
    (200.5, 2.0), (10_000.0, 2.0),
])
def test_convert_mbps_to_weight_thresholds_are_strict(mbps, weight):
    assert convert_mbps_to_weight(mbps) == weight


def test_satellite_with_measured_throughput_and_queued_files():
    nucleus = FakeSite("NUC", is_nucleus=True)
    site = FakeSite("SAT", running=29, activated=5, defined=5)
    grid = FakeGrid(sites_=[nucleus, site], mbps={("SAT", "NUC"): 60.0}, queued={("SAT", "NUC"): 30},
                    closeness_={("SAT", "NUC"): 1})
    chunk = make_chunk(nucleus=nucleus, io_intensity=700)  # io intensity matters only at the nucleus
    queue_w = 2 - 30 / 150
    throughput_w = 1.6  # 60 MB/s > 50
    expected = (29 + 1) / (5 + 0 + 5 + 10) * (0.5 * queue_w + 0.5 * throughput_w)
    assert production_weight(site, chunk, grid) == pytest.approx(expected)
    assert production_weight(site, chunk, grid, PandaParams(network_active=False)) == pytest.approx(30 / 20)


def test_satellite_without_metrics_uses_closeness():
    nucleus = FakeSite("NUC", is_nucleus=True)
    site = FakeSite("SAT", running=9)
    grid = FakeGrid(sites_=[nucleus, site], closeness_={("SAT", "NUC"): 3}, queued={("SAT", "NUC"): 15})
    expected = (9 + 1) / (0 + 10) * (0.5 * (2 - 15 / 150) + 0.5 * (1 + (11 - 3) / 11))
    assert production_weight(site, make_chunk(nucleus=nucleus), grid) == pytest.approx(expected)


# ---------------------------------------------------------------- analysis weight
def test_analysis_weight():
    site = FakeSite("ANA", running=50, activated=10, assigned=3, defined=2, starting=1)
    grid = FakeGrid(local={0: 5 * GB})
    chunk = make_chunk(label="user", input_bytes=5 * GB, input_files=5)
    expected = (50 + 1) / (10 + 3 + 2 + 1 + 1) * (1 + 5 / 10)
    assert analysis_weight(site, chunk, grid) == pytest.approx(expected)
    no_data = FakeGrid()
    assert analysis_weight(site, chunk, no_data) == pytest.approx((50 + 1) / (10 + 3 + 2 + 1 + 1))


def test_analysis_locality_filter_and_relaxation():
    with_data = FakeSite("A_DATA", index=0, running=0)
    busy_free = FakeSite("B_FREE", index=1, running=1000)
    grid = FakeGrid(local={0: 2 * GB})
    policy = PandaPolicy()
    strict = make_chunk(label="user", input_bytes=2 * GB, input_files=2, io_intensity=1500)
    assert [s.name for s, _ in policy.weights(strict, [with_data, busy_free], grid)] == ["A_DATA"]
    for relaxed in (replace(strict, priority=2000), replace(strict, io_intensity=100)):
        names = [s.name for s, _ in policy.weights(relaxed, [with_data, busy_free], grid)]
        assert names == ["B_FREE", "A_DATA"]  # (1000+1)/1 beats (0+1)/1 x (1 + 2/10)


# ---------------------------------------------------------------- PandaPolicy
def test_queue_cap_skips_queues_with_too_many_queued():
    sites = [
        FakeSite("A_SMALL", index=0, running=5, activated=21),  # cap max(20, 10) = 20 < 21: skipped
        FakeSite("B_EDGE", index=1, running=5, activated=20),  # 20 is not > 20: kept
        FakeSite("C_BIG", index=2, running=20, activated=39, starting=1),  # cap 40, 40 not > 40: kept
        FakeSite("D_BIG", index=3, running=20, activated=40, starting=1),  # 41 > 40: skipped
    ]
    policy = PandaPolicy()
    assert policy.queue_cap(sites[0]) == 20 and policy.queue_cap(sites[2]) == 40
    ranked = policy.weights(make_chunk(), sites, FakeGrid())
    # best first: C_BIG (20+1)/(39+1+10) = 0.42 before B_EDGE (5+1)/(20+10) = 0.2
    assert [s.name for s, _ in ranked] == ["C_BIG", "B_EDGE"]
    assert [w for _, w in ranked] == pytest.approx([(20 + 1) / (39 + 1 + 0 + 10), (5 + 1) / (20 + 0 + 0 + 10)])


def test_satellite_link_backlog_filter():
    nucleus = FakeSite("NUC", index=0, is_nucleus=True)
    sat = FakeSite("SAT", index=1)
    grid = FakeGrid(sites_=[nucleus, sat], queued={("SAT", "NUC"): 151})  # > NQUEUED_SAT_CAP 150
    ranked = PandaPolicy().weights(make_chunk(nucleus=nucleus), [nucleus, sat], grid)
    assert [s.name for s, _ in ranked] == ["NUC"]
    grid.queued[("SAT", "NUC")] = 150
    ranked = PandaPolicy().weights(make_chunk(nucleus=nucleus), [nucleus, sat], grid)
    assert [s.name for s, _ in ranked] == ["NUC", "SAT"]
    # NUC: (0+1)/10 x 2.5; SAT: (0+1)/10 x (0.5 x (2 - 150/150) + 0.5 x (1 + (11-11)/11))
    assert [w for _, w in ranked] == pytest.approx([1 / 10 * 2.5, 1 / 10 * (0.5 * 1 + 0.5 * 1)])


def test_policy_weights_equal_the_formula_for_a_mixed_grid():
    nucleus = FakeSite("T1_DATADISK_Q", index=0, atlas_site="T1", running=100, activated=30, is_nucleus=True)
    sites = [
        nucleus,
        FakeSite("T1_OTHER", index=1, atlas_site="T1", running=40, activated=5, defined=3),
        FakeSite("T2_FAST", index=2, atlas_site="T2A", running=60, activated=10, assigned=12, starting=2),
        FakeSite("T2_SLOW", index=3, atlas_site="T2B", running=15, activated=1, assigned=4),
        FakeSite("T2_NOMETRIC", index=4, atlas_site="T2C", running=7, activated=0, assigned=0),
    ]
    grid = FakeGrid(sites_=sites, mbps={("T2A", "T1"): 120.0, ("T2B", "T1"): 1.5},
                    queued={("T2A", "T1"): 45, ("T2B", "T1"): 3}, closeness_={("T2C", "T1"): 4},
                    local={0: 6 * GB, 2: 6 * GB})
    chunk = make_chunk(n_jobs=5, input_bytes=6 * GB, input_files=30, nucleus=nucleus, io_intensity=800)
    expected = {
        # the nucleus' own queues: fully local (T1_DATADISK_Q) or not, x t1Weight 4 x network 2.5
        "T1_DATADISK_Q": (100 + 1) / (30 + 0 + 0 + 10) * (6 + 6) / 6 / (0 / 100 + 1) * 4 * 2.5,
        "T1_OTHER": (40 + 1) / (5 + 0 + 0 + 3 + 10) / 1.0 * (6 + 0) / 6 / (30 / 100 + 1) * 4 * 2.5,
        # satellites: x (0.5 queueW + 0.5 throughputW)
        "T2_FAST": (60 + 1) / (10 + 2 + 0 + 10) * (6 + 6) / 6 / 1 * (0.5 * (2 - 45 / 150) + 0.5 * 1.9),
        "T2_SLOW": (15 + 1) / (1 + 4 + 0 + 0 + 10) / 2.0 * (6 + 0) / 6 / (30 / 100 + 1)
        * (0.5 * (2 - 3 / 150) + 0.5 * 1.1),
        "T2_NOMETRIC": (7 + 1) / (0 + 0 + 0 + 0 + 10) / 1.0 * (6 + 0) / 6 / (30 / 100 + 1)
        * (0.5 * 2 + 0.5 * (1 + (11 - 4) / 11)),
    }
    for s in sites:
        assert production_weight(s, chunk, grid) == pytest.approx(expected[s.name]), s.name
    ranked = PandaPolicy().weights(chunk, sites, grid)
    assert {s.name: w for s, w in ranked} == pytest.approx(expected)
    assert [s.name for s, _ in ranked] == sorted(expected, key=lambda k: -expected[k])


def test_top_n_keeps_the_best_sorted():
    sites = [FakeSite(f"Q{i}", index=i, running=10 * i) for i in range(6)]
    ranked = PandaPolicy(PandaParams(top_n=3)).weights(make_chunk(), sites, FakeGrid())
    assert [s.name for s, _ in ranked] == ["Q5", "Q4", "Q3"]
    assert [w for _, w in ranked] == pytest.approx([51 / 10, 41 / 10, 31 / 10])
    rng = np.random.default_rng(0)
    picks = PandaPolicy(PandaParams(top_n=3)).assign(make_chunk(n_jobs=200), sites, FakeGrid(), rng)
    assert {p.name for p in picks} <= {"Q5", "Q4", "Q3"}


def test_equal_weights_keep_the_candidates_name_order():
    # JobBroker hands candidates over in queue-name order; equal weights keep that order
    sites = [FakeSite("A", index=0), FakeSite("B", index=1), FakeSite("C", index=2)]
    ranked = PandaPolicy(PandaParams(top_n=2)).weights(make_chunk(), sites, FakeGrid(sites_=sites))
    assert [s.name for s, _ in ranked] == ["A", "B"]
    ranked = PandaPolicy(PandaParams(top_n=2)).weights(make_chunk(label="user"), sites, FakeGrid(sites_=sites))
    assert [s.name for s, _ in ranked] == ["A", "B"]


def test_weighted_choice_and_decay_step_by_step():
    a, b = FakeSite("A", index=0), FakeSite("B", index=1)  # both weight (0+1)/10 = 0.1
    # draw 0.25: x = 0.25 x 0.2 = 0.05 <= 0.1 -> A, whose weight decays by (0+1)/(0+2) to 0.05
    # draw 0.40: x = 0.40 x 0.15 = 0.06; 0.06 - 0.05 > 0, then B
    # draw 0.60: weights 0.05, 0.05: x = 0.06 -> B again; B decays by (1+1)/(1+2) to 0.1/3
    # draw 0.60: x = 0.6 x (0.05 + 0.1/3) = 0.05 -> A (0.05 - 0.05 <= 0)
    picks = PandaPolicy().assign(make_chunk(n_jobs=4), [a, b], FakeGrid(), ScriptedRng([0.25, 0.4, 0.6, 0.6]))
    assert [p.name for p in picks] == ["A", "B", "B", "A"]


def test_decay_spreads_jobs_roughly_in_proportion_to_weights_on_long_queues():
    # weights 1000/1010 : 2000/1010 : 3000/1010 (running 999/1999/2999, 1000 activated each); with 1000
    # jobs already queued the decay (q+1)/(q+2) per pick is mild, so the jobs split about 1 : 2 : 3
    sites = [FakeSite(n, index=i, running=r, activated=1000)
             for i, (n, r) in enumerate((("A", 999), ("B", 1999), ("C", 2999)))]
    ranked = PandaPolicy().weights(make_chunk(), sites, FakeGrid())
    assert [w for _, w in ranked] == pytest.approx([3000 / 1010, 2000 / 1010, 1000 / 1010])
    counts: Counter = Counter()
    for seed in range(10):  # ten chunks of 300 jobs, each from the same starting state
        counts.update(p.name for p in PandaPolicy().assign(make_chunk(n_jobs=300), sites, FakeGrid(),
                                                           np.random.default_rng(seed)))
    assert sum(counts.values()) == 3000
    for name, share in (("A", 1 / 6), ("B", 2 / 6), ("C", 3 / 6)):
        assert counts[name] == pytest.approx(3000 * share, rel=0.08), counts


def test_decay_on_idle_queues_spreads_as_the_square_root_of_the_weights():
    # From q = 0 the weight after k picks is w0 x 1/2 x 2/3 x ... x k/(k+1) = w0/(k+1). Picking with
    # probability proportional to w0/(k+1) makes k grow as sqrt(w0): weights 1 : 4 give counts 1 : 2.
    sites = [FakeSite("A", index=0, running=999), FakeSite("B", index=1, running=3999)]  # w0 100 and 400
    counts = Counter(p.name for p in PandaPolicy().assign(make_chunk(n_jobs=600), sites, FakeGrid(),
                                                          np.random.default_rng(12345)))
    assert counts["A"] == pytest.approx(600 * 1 / 3, rel=0.1), counts
    assert counts["B"] == pytest.approx(600 * 2 / 3, rel=0.05), counts


def test_decay_spreads_equal_queues_more_evenly_than_independent_draws():
    sites = [FakeSite(n, index=i, running=100) for i, n in enumerate("ABCD")]
    counts = np.array([
        [Counter(p.name for p in PandaPolicy().assign(make_chunk(n_jobs=100), sites, FakeGrid(),
                                                       np.random.default_rng(seed)))[n] for n in "ABCD"]
        for seed in range(40)])
    assert (counts.sum(axis=1) == 100).all()
    assert abs(counts.mean() - 25) < 1e-9
    # independent draws: sd sqrt(100 x 1/4 x 3/4) = 4.3 per queue; the decay keeps it well below
    assert counts.std() < 3.3


def test_assign_stops_at_the_queue_cap():
    # one idle queue, cap max(20, 0) = 20: picks while queued <= 20, i.e. 21 jobs, then None
    picks = PandaPolicy().assign(make_chunk(n_jobs=25), [FakeSite("Q")], FakeGrid(), np.random.default_rng(1))
    assert [p is not None for p in picks] == [True] * 21 + [False] * 4


def test_assign_none_without_candidates():
    policy = PandaPolicy()
    assert policy.assign(make_chunk(n_jobs=3), [], FakeGrid(), np.random.default_rng(0)) == [None] * 3
    full = FakeSite("FULL", activated=100)
    assert policy.assign(make_chunk(n_jobs=2), [full], FakeGrid(), np.random.default_rng(0)) == [None, None]


# ---------------------------------------------------------------- baseline policies
def test_random_policy_uses_the_generator_uniformly():
    sites = [FakeSite(n, index=i) for i, n in enumerate("ABC")]
    picks = RandomPolicy().assign(make_chunk(n_jobs=30), sites, FakeGrid(), np.random.default_rng(3))
    expected = [sites[i] for i in np.random.default_rng(3).integers(0, 3, 30)]
    assert picks == expected
    assert RandomPolicy().assign(make_chunk(n_jobs=2), [], FakeGrid(), np.random.default_rng(3)) == [None, None]


def test_round_robin_in_name_order_across_chunks():
    sites = [FakeSite("C", index=0), FakeSite("A", index=1), FakeSite("B", index=2)]
    policy = RoundRobinPolicy()
    rng = np.random.default_rng(0)
    assert [p.name for p in policy.assign(make_chunk(n_jobs=4), sites, FakeGrid(), rng)] == ["A", "B", "C", "A"]
    assert [p.name for p in policy.assign(make_chunk(n_jobs=2), sites, FakeGrid(), rng)] == ["B", "C"]


def test_least_loaded_counts_earlier_picks():
    sites = [
        FakeSite("A", index=0, free_cores=10),  # headroom 10
        FakeSite("B", index=1, free_cores=16, activated=2),  # 16 - 2 x 1 = 14
        FakeSite("C", index=2, free_cores=4),  # 4
    ]
    picks = LeastLoadedPolicy().assign(make_chunk(n_jobs=6), sites, FakeGrid(), np.random.default_rng(0))
    # B 14 -> 13 -> 12 -> 11 -> 10; tie A 10 vs B 10 goes to the first candidate (A); then B (10 > 9)
    assert [p.name for p in picks] == ["B", "B", "B", "B", "A", "B"]


def test_least_loaded_multicore_headroom():
    sites = [FakeSite("A", index=0, free_cores=32, activated=3), FakeSite("B", index=1, free_cores=16)]
    # 8-core jobs: A 32 - 3 x 8 = 8, B 16 -> B (16 -> 8), then A (8, first on the tie)
    picks = LeastLoadedPolicy().assign(make_chunk(n_jobs=2, corecount=8), sites, FakeGrid(), None)
    assert [p.name for p in picks] == ["B", "A"]


def test_data_locality_prefers_queues_with_the_input():
    sites = [FakeSite("FREE", index=0, free_cores=1000), FakeSite("DATA", index=1, free_cores=1),
             FakeSite("PART", index=2, free_cores=500)]
    grid = FakeGrid(local={1: 3 * GB, 2: 1 * GB})
    chunk = make_chunk(n_jobs=3, input_bytes=3 * GB, input_files=3)
    assert [p.name for p in DataLocalityPolicy().assign(chunk, sites, grid, None)] == ["DATA"] * 3
    nowhere = FakeGrid()
    assert [p.name for p in DataLocalityPolicy().assign(chunk, sites, nowhere, None)] == ["FREE"] * 3


# ---------------------------------------------------------------- registry
def test_registry_builtins_and_unknown():
    assert set(available_policies()) >= {"panda", "random", "round-robin", "least-loaded", "data-locality"}
    assert isinstance(make_policy("round-robin"), RoundRobinPolicy)
    assert make_policy("panda").name == "panda"
    with pytest.raises(PolicyError, match="unknown brokerage policy 'nope'"):
        make_policy("nope")
    with pytest.raises(PolicyError, match="no attribute"):
        make_policy("gridtwin.policies.simple:NoSuchClass")
    obj = LeastLoadedPolicy()
    assert make_policy(obj) is obj

"""Analytical and property tests of the flow models (``LinkSharing``, ``MaxMin``)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridtwin.errors import ConfigError
from gridtwin.kernel.engine import Engine
from gridtwin.network import (
    LV08_WEIGHT_S,
    TCP_GAMMA_BYTES,
    FlowModel,
    LinkSharing,
    MaxMin,
    PlatformRoutes,
    Resource,
    route_between,
)
from gridtwin.platform.model import Link, Platform, Site

MODELS = [LinkSharing, MaxMin]
PURE = {"bandwidth_factor": 1.0, "latency_factor": 1.0, "window_bytes": 0.0}
"""Textbook processor sharing: no LV08 corrections, no window bound."""

FlowSpec = tuple[float, tuple[Resource, ...], float]  # start time, route, size


def run(model_cls: type[FlowModel], flows: Sequence[FlowSpec], **kw: float) -> dict[int, float]:
    """Completion time of every flow (ids are positions in ``flows``)."""
    engine = Engine()
    done: dict[int, float] = {}
    model = model_cls(engine, lambda fid, now: done.__setitem__(fid, now), **kw)
    for i, (t, route, size) in enumerate(flows):
        engine.schedule_at(t, lambda a: model.start(*a), (i, route, size))
    engine.run()
    assert model.active() == 0
    assert len(done) == len(flows)
    return done


# ---------------------------------------------------------------------------- analytical cases
@pytest.mark.parametrize("model_cls", MODELS)
def test_one_flow_one_link_lv08(model_cls: type[FlowModel]) -> None:
    link = Resource("a->b", 1e8, 0.01)
    (t,) = run(model_cls, [(0.0, (link,), 1e9)]).values()
    # 13.01 x latency before data moves, then 0.97 x bandwidth (window bound 4194304/0.02 = 2.1e8 > 1e8)
    assert t == pytest.approx(13.01 * 0.01 + 1e9 / (0.97 * 1e8), rel=1e-12)


@pytest.mark.parametrize("model_cls", MODELS)
def test_one_flow_one_link_pure(model_cls: type[FlowModel]) -> None:
    link = Resource("a->b", 1e8, 0.05)
    (t,) = run(model_cls, [(2.0, (link,), 5e8)], **PURE).values()
    assert t == pytest.approx(2.0 + 0.05 + 5e8 / 1e8, rel=1e-12)


@pytest.mark.parametrize("model_cls", MODELS)
@pytest.mark.parametrize("n", [1, 2, 7, 50])
def test_n_equal_flows_finish_together(model_cls: type[FlowModel], n: int) -> None:
    link = Resource("a->b", 1.25e8, 0.002)  # window bound 4194304 / 0.004 = 1.05e9 B/s: not binding
    size = 3e8
    times = run(model_cls, [(0.0, (link,), size)] * n, **PURE)
    expected = 0.002 + n * size / 1.25e8  # n x size / bandwidth + latency
    assert set(times.values()) == {times[0]}, "equal flows must finish at the very same time"
    assert times[0] == pytest.approx(expected, rel=1e-12)
    lv08 = run(model_cls, [(0.0, (link,), size)] * n)
    assert set(lv08.values()) == {lv08[0]}
    assert lv08[0] == pytest.approx(13.01 * 0.002 + n * size / (0.97 * 1.25e8), rel=1e-12)


@pytest.mark.parametrize("model_cls", MODELS)
@pytest.mark.parametrize("latency", [0.0, 0.5])
def test_processor_sharing_staggered_arrivals(model_cls: type[FlowModel], latency: float) -> None:
    """Hand-computed schedule on a 100 B/s link (latency shifts every arrival by the same amount).

    A = 300 B at t=0, B = 100 B at t=1, C = 200 B at t=2 (data starts moving ``latency`` later):
    - [0, 1): A alone at 100 B/s: A has 200 B left at 1.
    - [1, 2): A and B at 50 B/s: A 150 left, B 50 left at 2.
    - from 2: three flows at 100/3 B/s: B's 50 B take 1.5 s, B finishes at 3.5; A 100 left, C 150 left.
    - from 3.5: A and C at 50 B/s: A's 100 B take 2 s, A finishes at 5.5; C 50 left.
    - from 5.5: C alone at 100 B/s: 0.5 s, C finishes at 6.0 (600 B at 100 B/s from t=0: work-conserving).
    """
    link = Resource("a->b", 100.0, latency)
    flows = [(0.0, (link,), 300.0), (1.0, (link,), 100.0), (2.0, (link,), 200.0)]
    times = run(model_cls, flows, **PURE)
    assert times[1] == pytest.approx(latency + 3.5, rel=1e-12)
    assert times[0] == pytest.approx(latency + 5.5, rel=1e-12)
    assert times[2] == pytest.approx(latency + 6.0, rel=1e-12)


@pytest.mark.parametrize("model_cls", MODELS)
def test_tcp_window_caps_a_lone_flow_on_a_long_fat_link(model_cls: type[FlowModel]) -> None:
    link = Resource("cern->bnl", 1.25e9, 0.05)  # 10 Gb/s, 50 ms one way
    bound = TCP_GAMMA_BYTES / (2 * 0.05)  # 41.9 MB/s, far below the link
    engine = Engine()
    done: dict[str, float] = {}
    model = model_cls(engine, lambda fid, now: done.__setitem__(fid, now))
    model.start("f", (link,), 4e9)
    assert model.rate("f") == 0.0 and model.remaining("f") == 4e9  # paying its latency
    engine.run(until=1.0)
    assert model.rate("f") == pytest.approx(0.97 * bound, rel=1e-12)
    assert model.remaining("f") == pytest.approx(4e9 - 0.97 * bound * (1.0 - 13.01 * 0.05), rel=1e-9)
    engine.run()
    assert done["f"] == pytest.approx(13.01 * 0.05 + 4e9 / (0.97 * bound), rel=1e-12)
    # two flows share nothing while both are window-bound: each still gets the bound
    times = run(model_cls, [(0.0, (link,), 4e9)] * 2)
    assert times[0] == times[1] == pytest.approx(done["f"], rel=1e-12)


@pytest.mark.parametrize("model_cls", MODELS)
def test_cancel_removes_a_flow_and_speeds_up_the_others(model_cls: type[FlowModel]) -> None:
    """Two 1000 B flows on a 100 B/s link; cancelling one at t=4 (each has 200 B done, 800 left)
    lets the other run alone at 100 B/s: it finishes at 4 + 8 = 12 instead of 20."""
    link = Resource("a->b", 100.0, 0.0)
    engine = Engine()
    done: dict[str, float] = {}
    model = model_cls(engine, lambda fid, now: done.__setitem__(fid, now), **PURE)
    model.start("x", (link,), 1000.0)
    model.start("y", (link,), 1000.0)
    model.start("z", (Resource("slow", 1.0, 5.0),), 10.0)  # still paying its latency at t=4
    engine.run(until=4.0)
    assert model.active() == 3
    assert model.rate("x") == pytest.approx(50.0)
    assert model.remaining("y") == pytest.approx(800.0)
    assert model.cancel("y") == pytest.approx(200.0)
    assert model.cancel("z") == 0.0
    assert model.active() == 1
    assert model.rate("x") == pytest.approx(100.0)
    engine.run()
    assert done == {"x": pytest.approx(12.0, rel=1e-12)}
    with pytest.raises(KeyError):
        model.rate("y")


@pytest.mark.parametrize("model_cls", MODELS)
def test_zero_size_completes_after_latency_and_duplicates_are_refused(model_cls: type[FlowModel]) -> None:
    link = Resource("a->b", 100.0, 0.5)
    engine = Engine()
    done: dict[str, float] = {}
    model = model_cls(engine, lambda fid, now: done.__setitem__(fid, now), **PURE)
    model.start("e", (link,), 0.0)
    with pytest.raises(ValueError, match="already active"):
        model.start("e", (link,), 1.0)
    with pytest.raises(ValueError, match="empty route"):
        model.start("n", (), 1.0)
    engine.run()
    assert done == {"e": 0.5}


@pytest.mark.parametrize("model_cls", MODELS)
def test_completion_callback_may_start_flows_on_the_same_link(model_cls: type[FlowModel]) -> None:
    """A chain of 5 transfers, each started by the previous one's completion: 5 x (1 + 100/100) s."""
    link = Resource("a->b", 100.0, 1.0)
    engine = Engine()
    done: dict[int, float] = {}

    def on_complete(fid: int, now: float) -> None:
        done[fid] = now
        if fid < 4:
            model.start(fid + 1, (link,), 100.0)

    model = model_cls(engine, on_complete, **PURE)
    model.start(0, (link,), 100.0)
    engine.run()
    assert done == {i: pytest.approx(2.0 * (i + 1), rel=1e-12) for i in range(5)}


def test_maxmin_weights_flows_by_rtt_and_shares_across_links() -> None:
    """Two flows share link s (C=1e8); g also crosses a long link. LV08 weights w = L + S/C per route;
    the level t fills s: t/w_f + t/w_g = C, so the shorter-RTT flow f gets the larger share."""
    s = Resource("s", 1e8, 0.001)
    far = Resource("far", 1e10, 0.04)
    engine = Engine()
    model = MaxMin(engine, lambda fid, now: None, window_bytes=0.0)
    model.start("f", (s,), 1e12)
    model.start("g", (s, far), 1e12)
    engine.run(until=1.0)
    w_f = 0.001 + LV08_WEIGHT_S / 1e8
    w_g = 0.041 + LV08_WEIGHT_S / 1e8 + LV08_WEIGHT_S / 1e10
    level = 1e8 / (1 / w_f + 1 / w_g)
    assert model.rate("f") == pytest.approx(0.97 * level / w_f, rel=1e-12)
    assert model.rate("g") == pytest.approx(0.97 * level / w_g, rel=1e-12)
    assert model.rate("f") + model.rate("g") == pytest.approx(0.97 * 1e8, rel=1e-12)


def test_linksharing_transit_flow_gets_its_bottleneck_share() -> None:
    """A transit flow over (a, b) with b the bottleneck gets min(C_a/n_a, C_b/n_b); the local flow of
    a takes what the transit flow leaves (work conserving), and nothing is oversubscribed."""
    a, b = Resource("a", 100.0, 0.0), Resource("b", 30.0, 0.0)
    engine = Engine()
    model = LinkSharing(engine, lambda fid, now: None, **PURE)
    model.start("local", (a,), 1e6)
    model.start("transit", (a, b), 1e6)
    assert model.rate("transit") == pytest.approx(30.0)  # min(100/2, 30/1)
    assert model.rate("local") == pytest.approx(70.0)
    model.start("local_b", (b,), 1e6)
    assert model.rate("transit") == pytest.approx(15.0)  # min(100/2, 30/2)
    assert model.rate("local_b") == pytest.approx(15.0)
    assert model.rate("local") == pytest.approx(85.0)
    model.cancel("local_b")
    assert model.rate("transit") == pytest.approx(30.0)


# ---------------------------------------------------------------------------- routes
def test_platform_routes_share_one_resource_per_link() -> None:
    sites = {n: Site(n, n) for n in ("CERN", "BNL")}
    platform = Platform("p", sites, links={("CERN", "BNL"): Link("CERN", "BNL", 1.25e9, 0.045)})
    routes = PlatformRoutes(platform)
    (r,) = routes.route("CERN", "BNL")
    assert routes.route("CERN", "BNL")[0] is r
    assert (r.capacity_bps, r.latency_s, r.name) == (1.25e9, 0.045, "CERN->BNL")
    (back,) = routes.route("BNL", "CERN")  # not in the matrix: the documented default
    assert back.capacity_bps == platform.link_defaults.bandwidth_bps
    (lan,) = routes.route("CERN", "CERN")
    assert lan.capacity_bps == platform.link_defaults.local_bandwidth_bps
    assert routes.resources() == [r, back, lan]
    assert route_between(platform, "CERN", "BNL")[0] is not r


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_resource_rejects_a_bad_capacity(bad: float) -> None:
    with pytest.raises(ConfigError, match="capacity"):
        Resource("a->b", bad, 0.0)


def test_models_reject_bad_factors() -> None:
    with pytest.raises(ConfigError, match="bandwidth_factor"):
        LinkSharing(Engine(), lambda fid, now: None, bandwidth_factor=0.0)
    with pytest.raises(ConfigError, match="window_bytes"):
        MaxMin(Engine(), lambda fid, now: None, window_bytes=-1.0)


# ---------------------------------------------------------------------------- properties
def drive(
    model_cls: type[FlowModel],
    flows: Sequence[FlowSpec],
    check: Callable[..., None] | None = None,
    cancels: dict[int, float] | None = None,
) -> dict:
    """Run ``flows`` event time by event time, sampling every active flow's rate after each time.

    ``cancels`` maps a flow to the time it is cancelled (if still running then). Returns completion
    times, the bytes every flow delivered (the integral of its sampled rate: rates change only at
    events, so the integral is exact up to rounding) and what ``cancel`` returned.
    """
    engine = Engine()
    done: dict[int, float] = {}
    cancelled: dict[int, float] = {}
    model = model_cls(engine, lambda fid, now: done.__setitem__(fid, now))
    for i, (t, route, size) in enumerate(flows):
        engine.schedule_at(t, lambda a: model.start(*a), (i, route, size))

    def cancel(i: int) -> None:
        if i not in done:
            cancelled[i] = model.cancel(i)

    for i, t in (cancels or {}).items():
        engine.schedule_at(max(t, flows[i][0]), cancel, i)
    delivered: dict[int, float] = defaultdict(float)
    rates: dict[int, float] = {}
    t_prev = 0.0
    while (t := engine.peek()) < math.inf:
        for fid, r in rates.items():
            delivered[fid] += r * (t - t_prev)
        engine.run(until=t)
        started = [i for i, (s, _, _) in enumerate(flows) if s <= t and i not in done and i not in cancelled]
        rates = {i: model.rate(i) for i in started}
        for i in started:
            # what the model says is left matches what its rates delivered
            assert model.remaining(i) == pytest.approx(flows[i][2] - delivered[i], rel=1e-7, abs=1e-3)
        if check is not None:
            check(model, t, rates)
        t_prev = t
    assert model.active() == 0
    assert model.completed == len(done)
    return {"done": done, "delivered": dict(delivered), "cancelled": cancelled}


def _no_oversubscription(flows: Sequence[FlowSpec], bwf: float = 0.97) -> Callable[..., None]:
    def check(model: FlowModel, t: float, rates: dict[int, float]) -> None:
        load: dict[Resource, float] = defaultdict(float)
        for fid, r in rates.items():
            assert r >= 0.0
            for res in dict.fromkeys(flows[fid][1]):
                load[res] += r
        for res, used in load.items():
            assert used <= bwf * res.capacity_bps * (1 + 1e-9), f"{res} oversubscribed at t={t}: {used}"

    return check


RESOURCES = [
    Resource("r0", 1e8, 0.010),
    Resource("r1", 5e7, 0.002),
    Resource("r2", 1.25e9, 0.050),
    Resource("r3", 2e7, 0.0),
]

single_flows = st.lists(
    st.tuples(
        st.floats(0.0, 50.0, allow_nan=False).map(lambda x: round(x, 3)),
        st.sampled_from(RESOURCES).map(lambda r: (r,)),
        st.integers(0, 3 * 10**9).map(float),
    ),
    min_size=1,
    max_size=14,
)
multi_flows = st.lists(
    st.tuples(
        st.floats(0.0, 50.0, allow_nan=False).map(lambda x: round(x, 3)),
        st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=3, unique=True).map(tuple),
        st.integers(1, 3 * 10**9).map(float),
    ),
    min_size=1,
    max_size=12,
)
PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("model_cls", MODELS)
@PROPS
@given(flows=multi_flows, data=st.data())
def test_invariants_on_random_flows(model_cls: type[FlowModel], flows: list[FlowSpec], data: st.DataObject) -> None:
    """Bytes delivered equal sizes of completed flows; no resource is ever oversubscribed; a cancelled
    flow reports the bytes it delivered; nothing beats the latency term."""
    cancels = data.draw(st.dictionaries(st.integers(0, len(flows) - 1), st.floats(0.0, 80.0), max_size=3))
    out = drive(model_cls, flows, _no_oversubscription(flows), cancels)
    done, delivered, cancelled = out["done"], out["delivered"], out["cancelled"]
    assert sorted([*done, *cancelled]) == list(range(len(flows)))
    total = sum(delivered.get(i, 0.0) for i in done)
    assert total == pytest.approx(sum(flows[i][2] for i in done), rel=1e-7, abs=1e-3)
    for i, (start, route, size) in enumerate(flows):
        if i in cancelled:
            assert cancelled[i] == pytest.approx(delivered.get(i, 0.0), rel=1e-7, abs=1e-3)
            continue
        assert delivered.get(i, 0.0) == pytest.approx(size, rel=1e-7, abs=1e-3)
        lone = start + 13.01 * sum(r.latency_s for r in route)
        assert done[i] >= lone * (1 - 1e-12)  # nothing beats the latency term


@pytest.mark.parametrize("model_cls", MODELS)
@PROPS
@given(flows=single_flows)
def test_completion_order_follows_rates_on_one_link(model_cls: type[FlowModel], flows: list[FlowSpec]) -> None:
    """On one link every flow runs at the same rate, so one that starts no later with no more bytes
    finishes no later."""
    done = run(model_cls, flows)
    for i, (si, ri, zi) in enumerate(flows):
        for j, (sj, rj, zj) in enumerate(flows):
            if ri == rj and si <= sj and zi <= zj:
                assert done[i] <= done[j] * (1 + 1e-12) + 1e-12


@PROPS
@given(flows=single_flows)
def test_linksharing_equals_maxmin_on_single_link_routes(flows: list[FlowSpec]) -> None:
    """With the default routes (one link each) LinkSharing is exact: it matches MaxMin."""
    a, b = run(LinkSharing, flows), run(MaxMin, flows)
    for i in a:
        assert a[i] == pytest.approx(b[i], rel=1e-9)


@PROPS
@given(flows=multi_flows)
def test_maxmin_allocation_is_max_min_fair(flows: list[FlowSpec]) -> None:
    """Certificate of weighted max-min fairness at every event time: each sharing flow is at its
    window bound, or crosses a saturated resource on which its weighted level x*w is the highest."""

    def info(route: tuple[Resource, ...]) -> tuple[float, float]:
        lat = sum(r.latency_s for r in route)
        w = lat + sum(LV08_WEIGHT_S / r.capacity_bps for r in route) if lat > 0 else 1.0
        bound = min(min(r.capacity_bps for r in route), TCP_GAMMA_BYTES / (2 * lat) if lat > 0 else math.inf)
        return w, bound

    def check(model: FlowModel, t: float, rates: dict[int, float]) -> None:
        _no_oversubscription(flows)(model, t, rates)
        sharing = {i: r / 0.97 for i, r in rates.items() if r > 0.0}  # past their latency phase
        load: dict[Resource, float] = defaultdict(float)
        level: dict[Resource, float] = defaultdict(float)
        for i, x in sharing.items():
            w, _ = info(flows[i][1])
            for res in flows[i][1]:
                load[res] += x
                level[res] = max(level[res], x * w)
        for i, x in sharing.items():
            w, bound = info(flows[i][1])
            if x >= bound * (1 - 1e-9):
                continue
            assert any(
                load[res] >= res.capacity_bps * (1 - 1e-9) and x * w >= level[res] * (1 - 1e-9) for res in flows[i][1]
            ), f"flow {i} at t={t} could get more"

    drive(MaxMin, flows, check)

"""Benchmark: the flow models on one 10k-transfer scenario, measured in one process.

A seeded scenario (random Poisson arrivals over a few hundred directed links with skewed
popularity, so some links carry dozens of concurrent transfers, log-normal file sizes) runs through
``LinkSharing`` and ``MaxMin``, and through a bare baseline that gives each transfer a fixed duration
(no sharing, the kernel's floor cost). Prints wall time, engine events, events/s, transfers/s and
the ratios. A measurement, not a test: it never fails on the figures.

    python benchmarks/bench_flow_models.py [--transfers 10000] [--links 300] [--hops 1] [--seed 1]

``--hops 2`` (or more) gives every transfer a route of that many links (transit flows for
``LinkSharing``, larger max-min components for ``MaxMin``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

from gridtwin.kernel.engine import Engine
from gridtwin.network import FlowModel, LinkSharing, MaxMin, Resource

Scenario = list[tuple[float, tuple[Resource, ...], float]]


def make_scenario(n_transfers: int, n_links: int, hops: int, seed: int, hours: float = 1.0) -> Scenario:
    """Arrival time, route and size of every transfer (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    gbps = rng.choice([1.0, 10.0, 10.0, 40.0, 100.0], size=n_links)
    links = [Resource(f"link{i}", float(gbps[i] * 1.25e8), float(rng.uniform(0.001, 0.150))) for i in range(n_links)]
    popularity = 1.0 / np.arange(1, n_links + 1) ** 0.8  # Zipf-like: a few busy links, a long tail
    popularity /= popularity.sum()
    horizon = hours * 3600.0
    arrivals = np.sort(rng.uniform(0.0, horizon, size=n_transfers))
    sizes = np.minimum(rng.lognormal(mean=np.log(1.5e9), sigma=1.0, size=n_transfers), 5e10)
    picks = rng.choice(n_links, size=(n_transfers, hops), p=popularity)
    out: Scenario = []
    for i in range(n_transfers):
        route = tuple(dict.fromkeys(links[j] for j in picks[i]))  # a link at most once per route
        out.append((float(arrivals[i]), route, float(sizes[i])))
    return out


def run_model(factory: Callable[[Engine, Callable[[object, float], object]], FlowModel], scenario: Scenario) -> dict:
    """Run the scenario through one model; return its figures."""
    engine = Engine()
    done: list[float] = []
    model = factory(engine, lambda _fid, now: done.append(now))
    load = [0, 0.0, 0.0]  # peak active flows, integral of active flows over time, time of last change

    def arrive(i: int) -> None:
        _, route, size = scenario[i]
        n = model.active()
        load[1] += n * (engine.now - load[2])  # sampled at arrivals only: a cheap, slightly low mean
        load[2] = engine.now
        model.start(i, route, size)
        load[0] = max(load[0], n + 1)

    for i, (t, _, _) in enumerate(scenario):
        engine.schedule_at(t, arrive, i)
    t0 = time.perf_counter()
    engine.run()
    wall = time.perf_counter() - t0
    assert len(done) == len(scenario), "every transfer must complete"
    return {
        "wall_s": wall,
        "events": engine.events_processed,
        "events_per_s": engine.events_processed / wall,
        "transfers_per_s": len(scenario) / wall,
        "makespan_s": max(done),
        "mean_completion_s": float(np.mean(done)),
        "peak_active": load[0],
        "mean_active_at_arrivals": load[1] / load[2] if load[2] > 0 else 0.0,
    }


class _Fixed(FlowModel):
    """Baseline: each transfer takes its lone-flow time on its slowest link; no sharing at all."""

    def __init__(self, engine: Engine, on_complete: Callable[[object, float], object]) -> None:
        super().__init__(engine, on_complete)
        self._n = 0

    def start(self, flow_id: object, route, size_bytes: float) -> None:  # type: ignore[override]
        self._n += 1
        rate = self.bandwidth_factor * min(r.capacity_bps for r in route)
        self.engine.schedule(size_bytes / rate, self._done, flow_id)

    def _done(self, flow_id: object) -> None:
        self._n -= 1
        self.on_complete(flow_id, self.engine.now)

    def cancel(self, flow_id: object) -> float:  # pragma: no cover - not used
        raise NotImplementedError

    def rate(self, flow_id: object) -> float:  # pragma: no cover - not used
        raise NotImplementedError

    def remaining(self, flow_id: object) -> float:  # pragma: no cover - not used
        raise NotImplementedError

    def active(self) -> int:
        return self._n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transfers", type=int, default=10_000)
    ap.add_argument("--links", type=int, default=300)
    ap.add_argument("--hops", type=int, default=1, help="links per route (1: the platform default)")
    ap.add_argument("--hours", type=float, default=1.0, help="arrivals spread over this many hours")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the figures as JSON to this file")
    args = ap.parse_args(argv)

    scenario = make_scenario(args.transfers, args.links, args.hops, args.seed, args.hours)
    results = {
        "bare": run_model(_Fixed, scenario),
        "LinkSharing": run_model(LinkSharing, scenario),
        "MaxMin": run_model(MaxMin, scenario),
    }
    ls = results["LinkSharing"]
    print(
        f"scenario: {args.transfers} transfers over {args.hours:g} h, {args.links} links, "
        f"{args.hops} link(s) per route, seed {args.seed}; "
        f"{ls['peak_active']} active flows at peak, {ls['mean_active_at_arrivals']:.0f} on average"
    )
    print(f"{'model':<12} {'wall s':>8} {'events':>9} {'events/s':>10} {'transfers/s':>12} {'makespan s':>11}")
    for name, r in results.items():
        print(
            f"{name:<12} {r['wall_s']:8.3f} {r['events']:9d} {r['events_per_s']:10.0f} "
            f"{r['transfers_per_s']:12.0f} {r['makespan_s']:11.1f}"
        )
    mm, bare = results["MaxMin"], results["bare"]
    ratios = {
        "LinkSharing/MaxMin events/s": ls["events_per_s"] / mm["events_per_s"],
        "LinkSharing/MaxMin transfers/s": ls["transfers_per_s"] / mm["transfers_per_s"],
        "LinkSharing/bare transfers/s": ls["transfers_per_s"] / bare["transfers_per_s"],
    }
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": results, "ratios": ratios}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

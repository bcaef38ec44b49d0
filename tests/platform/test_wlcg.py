"""The built-in wlcg-like grid: determinism, tiers, size, links."""

from __future__ import annotations

import pytest

from gridtwin.errors import ConfigError
from gridtwin.platform import build_wlcg_like


@pytest.fixture(scope="module")
def grid():
    return build_wlcg_like()


def test_deterministic(grid):
    assert build_wlcg_like(0) == grid
    other = build_wlcg_like(1)
    assert other != grid and set(other.sites) == set(grid.sites)


def test_tiers(grid):
    sites_by_tier = {t: {s.atlas_site for s in grid.sites.values() if s.tier == t} for t in (0, 1, 2)}
    assert sites_by_tier[0] == {"CERN-PROD"}
    assert 10 <= len(sites_by_tier[1]) <= 12 and len(sites_by_tier[2]) >= 100
    for site in grid.sites.values():
        tapes = [r for r in site.rses if grid.rses[r].rse_type == "TAPE"]
        assert (len(tapes) == 1) == (site.tier <= 1), site.name
        assert {r.rsplit("_", 1)[1] for r in site.rses} >= {"DATADISK", "SCRATCHDISK"}
    assert 20_000 <= grid.sites["CERN-PROD"].total_cores <= 30_000
    grid.validate()


def test_total_cores_and_storage(grid):
    assert 380_000 <= grid.total_cores() <= 420_000
    assert sum(r.capacity_bytes for r in grid.rses.values()) == pytest.approx(370e15, rel=1e-6)


def test_slots(grid):
    sites = list(grid.sites.values())
    assert all(9 <= s.corepower <= 14 and 2 * 86400 <= s.maxtime_s <= 4 * 86400 for s in sites)
    assert sum(s.capability == "score" and s.corecount == 1 for s in sites) >= 1
    assert sum(s.capability == "ucore" and s.corecount == 8 for s in sites) > 0.8 * len(sites)
    himem = [s for s in sites if s.maxrss_mb > 2000 * s.corecount]
    assert 1 <= len(himem) <= 10


def test_nuclei(grid):
    nuclei = grid.nuclei()
    assert {s.name for s in nuclei if s.tier <= 1} == {s.name for s in grid.sites.values() if s.tier <= 1}
    assert sum(s.tier == 2 for s in nuclei) == 10


def test_every_ordered_pair_has_a_symmetric_link(grid):
    names = {s.atlas_site for s in grid.sites.values()}
    assert len(grid.links) == len(names) ** 2
    for (a, b), link in grid.links.items():
        back = grid.links[(b, a)]
        assert link.latency_s == back.latency_s and link.bandwidth_bps == back.bandwidth_bps
        assert 0 <= link.closeness <= 11
    assert all((a, b) in grid.links for a in names for b in names)


@pytest.mark.parametrize(
    ("a", "b", "lo_ms", "hi_ms"),
    [
        ("CERN-PROD", "CERN-PROD", 1, 1),
        ("AGLT2", "MWT2", 5, 10),  # same country
        ("CERN-PROD", "FZK-LCG2", 20, 30),  # same continent
        ("CERN-PROD", "BNL-ATLAS", 80, 100),  # transatlantic
        ("CERN-PROD", "TOKYO-LCG2", 150, 250),  # to Asia
        ("BNL-ATLAS", "Taiwan-LCG2", 150, 250),
    ],
)
def test_latency_classes(grid, a, b, lo_ms, hi_ms):
    assert lo_ms <= grid.links[(a, b)].latency_s * 1000 <= hi_ms


def test_bandwidth_classes_and_closeness(grid):
    gbps = {k: link.bandwidth_bps * 8 / 1e9 for k, link in grid.links.items()}
    t1 = [s.name for s in grid.sites.values() if s.tier == 1]
    assert all(gbps[("CERN-PROD", t)] in (40, 100) for t in t1)  # LHCOPN
    assert gbps[("BNL-ATLAS", "AGLT2")] in (10, 20, 40)  # LHCONE within the cloud
    assert grid.links[("AGLT2", "AGLT2")].closeness == 0
    assert grid.links[("CERN-PROD", "TOKYO-LCG2")].closeness == 11
    assert grid.links[("AGLT2", "MWT2")].closeness in (3, 4, 5, 6)


def test_negative_seed():
    with pytest.raises(ConfigError, match="seed"):
        build_wlcg_like(-1)

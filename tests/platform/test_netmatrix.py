"""Network matrix loading: the real site_conn_info.json, the documented rules, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridtwin.errors import InputError
from gridtwin.platform import LinkDefaults, Platform, Site, load_atlas_snapshot, load_network_matrix
from gridtwin.platform.netmatrix import (
    closeness_bandwidth_bps,
    closeness_latency_s,
    latency_closeness,
    links_from_matrix,
)

ATLAS_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "atlas"


@pytest.fixture(scope="module")
def atlas():
    if not (ATLAS_DATA / "site_info.json").is_file() or not (ATLAS_DATA / "site_conn_info.json").is_file():
        pytest.skip(f"real ATLAS data not found in {ATLAS_DATA.resolve()}")
    return load_atlas_snapshot(ATLAS_DATA / "site_info.json", ATLAS_DATA / "site_conn_info.json")


def write(tmp_path: Path, data: object, name: str = "conn.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def pair(src: str, dst: str, closeness: object = 4, **extra) -> dict:
    entry = {"src": src, "dst": dst, "closeness": {"latest": closeness, "timestamp": "2024-08-08T12:00:03"}}
    entry.update(extra)
    return entry


# ---- the real snapshot -------------------------------------------------------------------------


def test_snapshot_counts(atlas):
    assert atlas.name == "atlas-2024-08"
    assert len(atlas.sites) == 150 and len(atlas.links) == 15_377
    assert sum(link.mbps is not None for link in atlas.links.values()) == 3_802  # 1d 3,380 + 1w only 422
    atlas.validate()


def test_measured_pair_by_hand(atlas):
    link = atlas.links[("CERN-PROD", "BNL-ATLAS")]  # dashb 1d = 3736.54 MB/s, closeness 1
    assert link.mbps == 3736.54 and link.closeness == 1
    assert link.bandwidth_bps == pytest.approx(2 * 3736.54e6)
    assert link.latency_s == pytest.approx(0.001 * 100 ** (1 / 11))


def test_near_idle_pair_keeps_the_closeness_floor(atlas):
    link = atlas.links[("AGLT2", "BEIJING-LCG2")]  # 1d = 0.01 MB/s, closeness 5
    assert link.mbps == 0.01 and link.closeness == 5
    assert link.bandwidth_bps == pytest.approx(1.25e9 * 10 ** (-5 / 11))  # ~3.5 Gb/s
    assert link.latency_s == pytest.approx(0.001 * 100 ** (5 / 11))  # ~8.1 ms


def test_self_pair_negative_and_missing_closeness(atlas):
    own = atlas.links[("AGLT2", "AGLT2")]  # only 1w = 0.07
    assert (own.closeness, own.mbps, own.latency_s, own.bandwidth_bps) == (0, 0.07, 0.001, 1.25e9)
    assert atlas.links[("ARNES", "ARNES")].closeness == 0  # file says 11 for this self pair
    negative = atlas.links[("TRIUMF-LCG2", "mainzgrid")]  # closeness -1 in the file
    assert (negative.closeness, negative.latency_s, negative.bandwidth_bps) == (11, 0.1, 1.25e8)
    assert atlas.links[("AGLT2", "BNLHPC")].closeness == 11  # no closeness in the file
    assert any("negative closeness" in n and "1 of 15377" in n for n in atlas.notes)
    assert any("no queue's atlas_site" in n for n in atlas.notes)


# ---- rules -------------------------------------------------------------------------------------


def test_closeness_tables():
    assert closeness_latency_s(0) == pytest.approx(0.001) and closeness_latency_s(11) == pytest.approx(0.1)
    assert closeness_bandwidth_bps(0) == pytest.approx(1.25e9)
    assert closeness_bandwidth_bps(11) == pytest.approx(1.25e8)
    lat = [closeness_latency_s(c) for c in range(12)]
    bw = [closeness_bandwidth_bps(c) for c in range(12)]
    assert lat == sorted(lat) and bw == sorted(bw, reverse=True)
    assert [latency_closeness(x) for x in lat] == list(range(12))
    assert latency_closeness(0.0005) == 0 and latency_closeness(0.25) == 11


def test_dict_variant_rules():
    data = {
        "A:B": pair("A", "B", 3, mbps={"dashb": {"1d": 1000.0, "1w": 10}}),  # 1d wins
        "B:A": pair("B", "A", "7", mbps={"dashb": {"1w": "0.5"}}),  # strings accepted
        "A:C": pair("A", "C", 42),
        "C:A": {"src": "C", "dst": "A"},
    }
    links, notes = links_from_matrix(data, "mem.json", LinkDefaults(), known_sites={"A", "B"})
    assert links[("A", "B")].bandwidth_bps == pytest.approx(2e9) and links[("A", "B")].mbps == 1000.0
    assert links[("B", "A")].closeness == 7 and links[("B", "A")].mbps == 0.5
    assert links[("B", "A")].bandwidth_bps == pytest.approx(closeness_bandwidth_bps(7))
    assert links[("A", "C")].closeness == 11 and links[("C", "A")].closeness == 11
    assert any("2 links have an endpoint" in n for n in notes)
    assert any("clamped" in n for n in notes) and any("closeness missing" in n for n in notes)


def test_load_network_matrix_fills_platform(tmp_path):
    platform = Platform("p", {"Q": Site("Q", "A")})
    load_network_matrix(write(tmp_path, {"A:B": pair("A", "B"), "A:A": pair("A", "A", 0)}), platform)
    assert set(platform.links) == {("A", "B"), ("A", "A")}
    assert platform.link("A", "B").closeness == 4


# ---- errors ------------------------------------------------------------------------------------


def test_truncated_file(tmp_path):
    path = write(tmp_path, '{"A:B": {"src": "A", "dst": "B", "closeness": {"lat', "cut_conn.json")
    with pytest.raises(InputError, match=r"cut_conn\.json.*line 1, column \d+"):
        load_network_matrix(path, Platform("p", {"Q": Site("Q", "A")}))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (["A", "B"], r"'A:B'.*expected an object.*list"),
        (pair("A", "B", "far"), r"'A:B'.*'closeness\.latest'.*'far'"),
        (pair("A", "B", mbps=[1, 2]), r"'A:B'.*'mbps'.*expected an object"),
        (pair("A", "B", mbps={"dashb": {"1d": "fast"}}), r"'A:B'.*'mbps\.dashb\.1d'.*'fast'"),
        ({"src": "A", "dst": 7}, r"'A:B'.*'dst'.*expected a site name"),
    ],
)
def test_bad_shapes(tmp_path, entry, message):
    path = write(tmp_path, {"A:B": entry}, "bad_conn.json")
    with pytest.raises(InputError, match=r"bad_conn\.json.*" + message):
        load_network_matrix(path, Platform("p", {"Q": Site("Q", "A")}))


def test_top_level_list(tmp_path):
    with pytest.raises(InputError, match=r"list_conn\.json.*'SRC:DST'"):
        load_network_matrix(write(tmp_path, [], "list_conn.json"), Platform("p", {"Q": Site("Q", "A")}))

"""CRIC-style PanDA queue loading: the real site_info.json snapshot, the CRIC shape, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridtwin.errors import InputError
from gridtwin.platform import load_cric_queues
from gridtwin.platform.cric import TB, platform_from_cric
from gridtwin.platform.netmatrix import network_site_names

ATLAS_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "atlas"


@pytest.fixture(scope="module")
def snapshot():
    if not (ATLAS_DATA / "site_info.json").is_file() or not (ATLAS_DATA / "site_conn_info.json").is_file():
        pytest.skip(f"real ATLAS data not found in {ATLAS_DATA.resolve()}")
    names = network_site_names(json.loads((ATLAS_DATA / "site_conn_info.json").read_text()))
    return load_cric_queues(ATLAS_DATA / "site_info.json", network_sites=names)


def write(tmp_path: Path, data: object, name: str = "queues.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


# ---- the real snapshot -------------------------------------------------------------------------


def test_snapshot_has_150_queues_and_about_390k_cores(snapshot):
    assert len(snapshot.sites) == 150
    # sum(GFLOPS) = 1,573,599,200 -> / 4000 per core = 393,400 before per-queue rounding
    assert snapshot.total_cores() == 393_409
    snapshot.validate()


def test_aglt2_values_by_hand(snapshot):
    s = snapshot.sites["AGLT2"]
    assert s.total_cores == 7102  # GFLOPS 28,407,840 / 4000 = 7101.96
    assert (s.atlas_site, s.tier, s.cloud, s.country) == ("AGLT2", 2, "US", "United States")
    assert (s.corecount, s.capability, s.maxrss_mb, s.maxtime_s) == (8, "ucore", 16000, 345600)
    assert s.status == "online" and s.corepower == 10.0
    assert s.rses[:2] == ["AGLT2_DATADISK", "AGLT2_SCRATCHDISK"]  # DATADISK first, then SCRATCHDISK
    assert snapshot.rses["AGLT2_DATADISK"].capacity_bytes == round(11239.99 * TB)
    assert not s.is_nucleus


def test_tiny_queue_gets_one_slot(snapshot):
    assert snapshot.sites["ARC-TEST_CONDOR"].total_cores == 8  # GFLOPS 2720 -> 0.68 cores


def test_name_hints(snapshot):
    assert snapshot.sites["ANALY_BNL_VP"].type == "analysis"
    assert snapshot.sites["RAL-LCG2_MCORE"].capability == "mcore"
    assert snapshot.sites["AGLT2_VHIMEM"].maxrss_mb == 4000 * 8


@pytest.mark.parametrize(
    ("queue", "site"),
    [
        ("AGLT2", "AGLT2"),  # rule 1: exact
        ("AGLT2_MERGE", "AGLT2"),  # rule 2: longest prefix
        ("ANALY_AGLT2_VP", "AGLT2"),  # rule 2 after ANALY_
        ("ANALY_ARNES_DIRECT", "ARNES"),
        ("UKI-NORTHGRID-LANCS-HEP-CEPH", "UKI-NORTHGRID-LANCS-HEP"),
        ("IL-TAU", "IL-TAU-HEP"),  # rule 3: only site sharing the first token
        ("TRIUMF_SIM", "TRIUMF-LCG2"),
        ("CERN", "CERN-PROD"),  # rule 4: RSE majority
        ("CA-TRIUMF-DISKLESS", "TRIUMF-LCG2"),
        ("DCSC", "NDGF-T1"),
        ("BNL", "BNL-ATLAS"),  # rule 5: shortest sharing the first token
        ("SLAC", "SLAC"),  # rule 6: unmapped
    ],
)
def test_atlas_site_rules(snapshot, queue, site):
    assert snapshot.sites[queue].atlas_site == site


def test_mapping_counts_in_notes(snapshot):
    assert any("149 of 150 queues" in n for n in snapshot.notes)
    assert any("UNMAPPED" in n and "SLAC" in n for n in snapshot.notes)
    assert len(snapshot.notes) < 40  # counted lines, not one per queue


def test_tiers_and_nuclei(snapshot):
    assert snapshot.sites["CERN-T0"].tier == 0
    assert snapshot.sites["BNL"].tier == 1  # BNL-OSG2_DATATAPE belongs to BNL-ATLAS
    assert snapshot.sites["RAL-LCG2-ECHO"].tier == 1  # RAL-LCG2 tape, site-name prefix
    assert snapshot.sites["ANALY_ARNES_DIRECT"].tier == 2  # NDGF-T1 tape is not ARNES's own
    assert all(s.is_nucleus == (s.tier <= 1) for s in snapshot.sites.values())


def test_shared_rses_are_single_objects(snapshot):
    listed = {r for s in snapshot.sites.values() for r in s.rses}
    assert set(snapshot.rses) == listed and len(snapshot.rses) == 268
    users = [s.name for s in snapshot.sites.values() if "NDGF-T1_DATADISK" in s.rses]
    assert len(users) > 10
    rse = snapshot.rses["NDGF-T1_DATADISK"]
    assert rse.atlas_site == "NDGF-T1" and rse.capacity_bytes == round(24769.80 * TB)
    tape = snapshot.rses["NDGF-T1_DATATAPE"]
    assert (tape.rse_type, tape.capacity_bytes) == ("TAPE", 0)  # 0 TB in the file: unknown
    assert snapshot.rses["BNL-OSG2_DATADISK"].atlas_site == "BNL-ATLAS"  # from the queues listing it


# ---- CRIC shape and derivations ----------------------------------------------------------------


def cric_entry(**over):
    entry = {
        "atlas_site": "AGLT2", "cloud": "US", "country": "United States", "tier": "T2D", "type": "unified",
        "status": "online", "capability": "ucore", "corecount": 8, "corepower": 12.5, "maxrss": 16000,
        "minrss": 0, "maxtime": 172800, "mintime": 0, "pledgedcpu": -1, "total_cores": 5000,
        "astorages": {"read_lan": ["AGLT2_DATADISK"], "write_lan": ["AGLT2_DATADISK", "AGLT2_SCRATCHDISK"]},
        "direct_access_lan": True,
    }
    entry.update(over)
    return entry


def test_cric_shape_fields_are_taken(tmp_path):
    p = load_cric_queues(write(tmp_path, {"AGLT2": cric_entry()}))
    s = p.sites["AGLT2"]
    assert (s.atlas_site, s.tier, s.corepower, s.total_cores, s.maxtime_s) == ("AGLT2", 2, 12.5, 5000, 172800)
    assert s.rses == ["AGLT2_DATADISK", "AGLT2_SCRATCHDISK"] and s.direct_access
    assert p.rses["AGLT2_DATADISK"].capacity_bytes == 0 and p.name == "queues"


def test_cric_numbers_as_strings_and_floats():
    data = {"Q": cric_entry(corecount="8.0", maxrss="16000", total_cores=800.0, corepower="10.5")}
    s = platform_from_cric(data, "mem.json").sites["Q"]
    assert (s.corecount, s.maxrss_mb, s.total_cores, s.corepower) == (8, 16000, 800, 10.5)


def test_cric_derived_values():
    data = {
        "A": cric_entry(total_cores=None, pledgedcpu=10000, corepower=10, status=None, state="ACTIVE"),
        "B": cric_entry(capability="score", corecount=None, maxrss=0, tier_level=1),
    }
    p = platform_from_cric(data, "mem.json")
    assert p.sites["A"].total_cores == 1000 and p.sites["A"].status == "online"
    assert (p.sites["B"].corecount, p.sites["B"].maxrss_mb, p.sites["B"].tier) == (1, 2000, 1)


def test_without_network_names_queue_names_are_used():
    caps = {"RSE": {"AGLT2_DATADISK": "100.5"}, "GFLOPS": 40000}
    p = platform_from_cric({"AGLT2": caps, "AGLT2_MERGE": caps}, "mem.json")
    assert p.sites["AGLT2_MERGE"].atlas_site == "AGLT2"
    assert p.sites["AGLT2"].total_cores == 10 and len(p.rses) == 1


# ---- errors ------------------------------------------------------------------------------------


def test_truncated_json_names_file_and_position(tmp_path):
    path = write(tmp_path, '{"AGLT2": {"RSE": {"AGLT2_DATADISK": "10"}, "GFL', "broken_site_info.json")
    with pytest.raises(InputError, match=r"broken_site_info\.json.*line 1, column \d+"):
        load_cric_queues(path)


def test_negative_core_count(tmp_path):
    path = write(tmp_path, {"MWT2": cric_entry(corecount=-8)}, "neg.json")
    with pytest.raises(InputError, match=r"neg\.json.*'MWT2'.*'corecount'.*non-negative"):
        load_cric_queues(path)


def test_negative_gflops_and_bad_capacity(tmp_path):
    with pytest.raises(InputError, match=r"snap\.json.*'Q1'.*'GFLOPS'"):
        load_cric_queues(write(tmp_path, {"Q1": {"RSE": {}, "GFLOPS": -5}}, "snap.json"))
    with pytest.raises(InputError, match=r"snap2\.json.*'Q1'.*'RSE\.X_DATADISK'.*'lots'"):
        load_cric_queues(write(tmp_path, {"Q1": {"RSE": {"X_DATADISK": "lots"}, "GFLOPS": 5}}, "snap2.json"))


def test_queue_entry_that_is_a_list(tmp_path):
    path = write(tmp_path, {"OK": {"RSE": {}, "GFLOPS": 8000}, "BAD_QUEUE": ["RSE", 1]}, "list.json")
    with pytest.raises(InputError, match=r"list\.json.*'BAD_QUEUE'.*expected an object.*list"):
        load_cric_queues(path)


def test_unknown_status(tmp_path):
    path = write(tmp_path, {"Q": cric_entry(status="sleeping")}, "status.json")
    with pytest.raises(InputError, match=r"status\.json.*'Q'.*'status'.*'sleeping'"):
        load_cric_queues(path)


def test_top_level_not_an_object_and_empty(tmp_path):
    with pytest.raises(InputError, match=r"top\.json.*keyed by queue name"):
        load_cric_queues(write(tmp_path, [1, 2], "top.json"))
    with pytest.raises(InputError, match=r"empty\.json.*no queues"):
        load_cric_queues(write(tmp_path, {}, "empty.json"))
    with pytest.raises(InputError, match=r"missing\.json.*cannot read"):
        load_cric_queues(tmp_path / "missing.json")


def test_model_errors_become_input_errors():
    with pytest.raises(InputError, match=r"mem\.json.*'Q'.*smaller than one slot"):
        platform_from_cric({"Q": cric_entry(total_cores=4)}, "mem.json")


def test_duplicate_queue_and_undecodable_bytes_are_named(tmp_path):
    dup = tmp_path / "dup.json"
    dup.write_text('{"A_Q": {"corecount": 8, "GFLOPS": 100}, "A_Q": {"corecount": 16, "GFLOPS": 100}}')
    with pytest.raises(InputError, match=r"dup\.json: duplicate key 'A_Q'"):
        load_cric_queues(dup)
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"A_Q": {"corecount": 8, "GFLOPS": 1\xff00}}')
    with pytest.raises(InputError, match=r"bad\.json: not UTF-8 text \(invalid start byte at byte 36\)"):
        load_cric_queues(bad)

"""Bad data-management input fails at load time with exit code 2 and a message naming the key and
the problem: RSE expressions that do not parse or match nothing, rules on no dataset, links without
bandwidth, unknown plugins, inconsistent watermarks. Nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gridtwin.cli import app


def inline_grid(**link) -> dict:
    names = ("AAA_Q", "BBB_Q")
    grid = {
        "sites": [{"name": n, "total_cores": 200, "corecount": 8, "maxrss_mb": 64000, "is_nucleus": n == "BBB_Q",
                   "rses": [f"{n}_DATADISK"]} for n in names],
        "rses": [{"name": f"{n}_DATADISK", "atlas_site": n, "capacity_tb": 200} for n in names],
    }
    if link:
        grid["links"] = [{"src": "AAA_Q", "dst": "BBB_Q", "latency_ms": 10, **link}]
    return grid


def scenario(tmp: Path, ddm: dict | None = None, platform: dict | None = None) -> Path:
    data = {"name": "bad-ddm", "drain_h": 48, "workload": {"scale": 0.0005, "duration_h": 1},
            "platform": platform or inline_grid()}
    if ddm is not None:
        data["ddm"] = ddm
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def rule(**kw) -> dict:
    return {"ddm": {"rules": [{"did": "*", "rse_expression": "tier=2", **kw}]}}


CASES = {
    "expression-does-not-parse": (
        rule(rse_expression="tier=2&(type=DATADISK"),
        ["ddm.rules[0].rse_expression", "tier=2&(type=DATADISK", "missing ')' at position 22"]),
    "expression-bad-character": (rule(rse_expression="tier==2"), ["ddm.rules[0].rse_expression", "tier==2"]),
    "expression-matches-nothing": (rule(rse_expression="tier=1&type=DATADISK"),
                                   ["ddm.rules[0].rse_expression", "matches no RSE"]),
    "unknown-rse-name": (rule(rse_expression="CCC_Q_DATADISK"), ["matches no RSE", "unknown RSE CCC_Q_DATADISK"]),
    "too-many-copies": (rule(copies=3), ["ddm.rules[0].copies", "3 copies", "2 RSE"]),
    "did-matches-nothing": (rule(did="data18_13TeV:*"), ["ddm.rules[0].did", "data18_13TeV:*", "no input dataset"]),
    "unknown-activity": (rule(activity="Teleport"), ["ddm.rules[0].activity", "Teleport", "Production Input"]),
    "unknown-placement": ({"ddm": {"placement": {"policy": "no-such-placement"}}},
                          ["no-such-placement", "popularity"]),
    "bad-placement-option": ({"ddm": {"placement": {"policy": "popularity", "options": {"threshhold": 3}}}},
                             ["popularity", "threshhold"]),
    "unknown-source-selection": ({"ddm": {"source_selection": "nearest-ish"}}, ["nearest-ish", "closeness"]),
    "watermarks-inverted": ({"ddm": {"high_watermark": 0.8, "low_watermark": 0.9}},
                            ["ddm", "low_watermark (0.9) is above high_watermark (0.8)"]),
    "negative-failure-rate": ({"ddm": {"failure_rate": -0.1}}, ["ddm.failure_rate", "greater than or equal to 0"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_ddm_input_exit_2(tmp_path, case):
    ddm, expected = CASES[case]
    path = scenario(tmp_path, ddm["ddm"])
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["simulate", str(path), "--out", str(out), "-q"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:"), result.output
    assert "Traceback" not in result.output
    for fragment in expected:
        assert fragment in result.output, (fragment, result.output)
    assert not out.exists()
    check = CliRunner().invoke(app, ["scenario", "validate", str(path)])
    assert check.exit_code == 2 and expected[0] in check.output, check.output


@pytest.mark.parametrize(("link", "key"), [
    ({"bandwidth_gbps": 0}, "platform.links.0.bandwidth_gbps"),
    ({"bandwidth_gbps": -5}, "platform.links.0.bandwidth_gbps"),
])
def test_link_without_bandwidth_exit_2(tmp_path, link, key):
    path = scenario(tmp_path, platform=inline_grid(**link))
    result = CliRunner().invoke(app, ["simulate", str(path), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2, result.output
    assert key in result.output and "greater than 0" in result.output, result.output


def test_default_bandwidth_zero_exit_2(tmp_path):
    grid = inline_grid()
    grid["default_bandwidth_gbps"] = 0
    path = scenario(tmp_path, platform=grid)
    result = CliRunner().invoke(app, ["simulate", str(path), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2 and "platform.default_bandwidth_gbps" in result.output, result.output


def test_valid_rules_pass_validation(tmp_path):
    path = scenario(tmp_path, {"rules": [{"did": "*", "rse_expression": "AAA_Q_DATADISK|BBB_Q_DATADISK",
                                          "copies": 2, "at_h": 0.5, "lifetime_h": 2}]})
    check = CliRunner().invoke(app, ["scenario", "validate", str(path)])
    assert check.exit_code == 0, check.output
    assert "rule(s) from the scenario" in check.output

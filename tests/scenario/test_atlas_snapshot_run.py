"""A small run on the real ATLAS site and network snapshot (read from shared data at run time)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gridtwin.config import scenario_from_dict
from gridtwin.scenario import run_scenario

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "atlas"


@pytest.mark.skipif(not (DATA / "site_info.json").exists(), reason=f"real ATLAS snapshot not found at {DATA}")
def test_run_on_real_snapshot(tmp_path: Path) -> None:
    sc = scenario_from_dict({
        "name": "atlas-snapshot",
        "platform": {"cric": str(DATA / "site_info.json"), "network": str(DATA / "site_conn_info.json")},
        "workload": {"scale": 0.003, "duration_h": 6},
        "downtimes": [{"site": "BNL-ATLAS", "start_h": 2, "end_h": 4}],
    })
    res = run_scenario(sc, tmp_path / "run", report=False)
    assert res.unfinished == 0
    jobs = pq.read_table(tmp_path / "run" / "jobs.parquet").to_pydict()
    sites = pq.read_table(tmp_path / "run" / "sites.parquet").to_pydict()
    assert len(sites["site"]) == 150
    real_queues = set(sites["site"])
    assert set(jobs["computingsite"]) <= real_queues
    assert len(set(jobs["computingsite"])) > 20  # work spreads over many real queues
    # BNL's queues were offline from 2 h to 4 h: no job started there in that window
    bnl = {q for q, a in zip(sites["site"], sites["atlas_site"], strict=True) if a == "BNL-ATLAS"}
    assert bnl
    epoch = sc.epoch.timestamp()
    for q, st in zip(jobs["computingsite"], jobs["starttime"], strict=True):
        if q in bnl and st is not None:
            h = (st.timestamp() - epoch) / 3600
            assert not (2.0 + 1e-6 < h < 4.0), (q, h)

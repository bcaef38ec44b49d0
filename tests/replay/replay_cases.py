"""Hand-made replay cases shared by the replay tests: a two-queue inline platform, a trace and its expected
timings (a module of its own, so tests import it by a name no other test folder uses)."""

from __future__ import annotations

from pathlib import Path

ATLAS_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "atlas"

PLATFORM_YAML = """\
name: two-queues
platform:
  rses:
    - {name: A_DATADISK, atlas_site: SITE-A, capacity_tb: 100}
    - {name: B_DATADISK, atlas_site: SITE-B, capacity_tb: 100}
  sites:
    - {name: QA, atlas_site: SITE-A, corepower: 10, corecount: 8, total_cores: 8, rses: [A_DATADISK]}
    - {name: QB, atlas_site: SITE-B, corepower: 20, corecount: 8, total_cores: 16, rses: [B_DATADISK],
       is_nucleus: true, tier: 1}
"""

HEADER = ("pandaid,jeditaskid,creationtime,starttime,endtime,computingsite,jobstatus,corecount,"
          "cpuconsumptiontime,pilottiming,ninputdatafiles,inputfilebytes,outputfilebytes\n")

# pandaid 103 gives its creation time as Unix epoch seconds (2025-01-10 00:20:00 UTC)
TRACE = HEADER + (
    "101,7,2025-01-10 00:00:00,2025-01-10 00:05:00,2025-01-10 00:22:40,QA,finished,1,900,5|10|1000|2|30,2,2000000000,"
    "400000000\n"
    "102,7,2025-01-10 00:10:00,2025-01-10 00:12:00,2025-01-10 00:46:00,QB,finished,8,8000,5|0|2000|0|30,0,0,0\n"
    "103,8,1736468400,2025-01-10 00:30:00,2025-01-10 01:00:00,QA,finished,1,500,,0,0,0\n"
    "104,8,2025-01-10 00:40:00,2025-01-10 00:41:00,2025-01-10 01:48:00,QB,finished,2,4000,5|0|4000|0|30,0,0,0\n"
)
EXPECTED_EXE = {101: 1000.0, 102: 2000.0, 103: 1800.0, 104: 4000.0}
"""Payload seconds the twin must give: cpu x corepower / (corepower x cores x eff), eff from the record."""
EXPECTED_STAGEIN = {101: 10.0, 102: 0.0, 103: 0.0, 104: 0.0}
"""inputfilebytes / the pilot's LAN copy rate (network.lan_rate_mbps, 200 MB/s by default)."""
EXPECTED_STAGEOUT = {101: 2.0, 102: 0.0, 103: 0.0, 104: 0.0}

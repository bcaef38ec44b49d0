"""The built-in ``wlcg-like`` grid: an ATLAS-sized WLCG generated from public aggregate figures.

Deterministic: ``build_wlcg_like(seed)`` draws from ``numpy.random.default_rng`` seeded with
``SeedSequence([0x57C6, seed])``; the same seed gives an equal Platform. One queue per ATLAS site
(queue name = site name). Figures and their sources (``reference/scale.md``):

- Size: 140 sites, within ">150 sites" for ATLAS (line 12) and ">170 centres" for WLCG (line 8):
  1 Tier-0 (CERN-PROD), 11 Tier-1s (BNL-ATLAS, FZK-LCG2, IN2P3-CC, RAL-LCG2, TRIUMF-LCG2, NDGF-T1,
  SARA-MATRIX, pic, INFN-T1, RRC-KI-T1, Taiwan-LCG2) and 128 Tier-2s: 85 real ATLAS Tier-2 names
  in their clouds plus 43 generated ``<CLOUD>-T2-<nn>``.
- Cores: 400k in total, between the 250-500k concurrently running ATLAS jobs (line 12) and
  above the ">250k cores" of 2017 (line 13); the real snapshot's GFLOPS give 393k
  (``docs/platform.md``). Tier-0 22-28k cores, Tier-1s 125k split by a per-site weight (BNL
  largest), Tier-2s the rest by lognormal(0, 0.8) weights, at least 200 cores; all rounded to
  whole 8-core slots.
- Slots: corecount 8 ucore; about 10% of the Tier-2s below median size are score-only (1 core);
  corepower HS06/core ~ normal(11.5, 0.8) clipped to 9-14; maxrss 2000 MB per core x corecount,
  4000 MB per core on 6 HIMEM Tier-2s; maxtime 2, 3 or 4 days (p = 0.2, 0.3, 0.5).
- Storage: 370 PB disk + tape (line 12), 45% disk / 55% tape. Disk: Tier-0 10%, Tier-1s 35%,
  Tier-2s 55%, each tier by cores; per site DATADISK 97% and SCRATCHDISK 3%. Tape (DATATAPE on
  Tier-0 and Tier-1s): Tier-0 20%, Tier-1s 80% by weight.
- Nuclei: the Tier-0, the Tier-1s and the 10 largest Tier-2s.
- Latency per site pair (symmetric, uniform in the range): same site 1 ms; same country 5-10 ms;
  same continent 20-30 ms; Europe-North America 80-100 ms; to or from Asia 150-250 ms; other
  intercontinental pairs per ``_CONTINENT_MS``. Closeness is the inverse of the network-matrix
  rule (``latency = 1 ms x 100 ** (c / 11)``), so 1 ms -> 0, 5-10 ms -> 4-5, 20-30 ms -> 7-8,
  80-100 ms -> 10-11, Asia -> 11.
- Bandwidth per site pair (symmetric, Gb/s, one value drawn from the list): same site 100
  (Tier-0/1) or 20 (Tier-2); LHCOPN Tier-0-Tier-1 100 for the five largest Tier-1s, else 40;
  LHCOPN Tier-1-Tier-1 10/20/40; LHCONE Tier-1-Tier-2 of the same cloud 10/20/40 (5/10 across
  continents), of another cloud 5/10 on one continent; Tier-0-Tier-2 10/20 on one continent
  (2/5/10 across); Tier-2-Tier-2 same cloud 5/10/20, same continent 2/5/10; other
  transcontinental pairs 1/2/5.
"""

from __future__ import annotations

import numpy as np

from gridtwin.errors import ConfigError
from gridtwin.platform.model import RSE, Link, LinkDefaults, Platform, Site
from gridtwin.platform.netmatrix import latency_closeness

TOTAL_CORES = 400_000
TIER1_CORES = 125_000
TOTAL_STORAGE_BYTES = 370e15
DISK_SHARE = 0.45
GBPS = 1e9 / 8  # bytes per second in one Gb/s

# (name, cloud, country, continent, weight): the Tier-0 first, then the Tier-1s
_T0 = ("CERN-PROD", "CERN", "Switzerland", "EU", 0.0)
_T1 = (
    ("BNL-ATLAS", "US", "United States", "NA", 1.6),
    ("FZK-LCG2", "DE", "Germany", "EU", 1.2),
    ("RAL-LCG2", "UK", "United Kingdom", "EU", 1.1),
    ("IN2P3-CC", "FR", "France", "EU", 1.0),
    ("INFN-T1", "IT", "Italy", "EU", 1.0),
    ("TRIUMF-LCG2", "CA", "Canada", "NA", 0.8),
    ("NDGF-T1", "ND", "Denmark", "EU", 0.6),
    ("SARA-MATRIX", "NL", "Netherlands", "EU", 0.6),
    ("pic", "ES", "Spain", "EU", 0.5),
    ("RRC-KI-T1", "RU", "Russia", "EU", 0.5),
    ("Taiwan-LCG2", "TW", "Taiwan", "AS", 0.4),
)
_T2_BY_COUNTRY: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # (cloud, country, continent, real ATLAS Tier-2 site names)
    ("US", "United States", "NA", ("AGLT2", "MWT2", "NET2", "SWT2_CPB", "OU_OSCER_ATLAS", "WT2")),
    ("CA", "Canada", "NA", ("CA-SFU-T2", "CA-VICTORIA-WESTGRID-T2", "CA-WATERLOO-T2", "CA-MCGILL-CLUMEQ-T2")),
    ("UK", "United Kingdom", "EU", (
        "UKI-NORTHGRID-MAN-HEP", "UKI-NORTHGRID-LANCS-HEP", "UKI-NORTHGRID-LIV-HEP", "UKI-NORTHGRID-SHEF-HEP",
        "UKI-LT2-QMUL", "UKI-LT2-RHUL", "UKI-LT2-Brunel", "UKI-LT2-IC-HEP", "UKI-SCOTGRID-GLASGOW",
        "UKI-SCOTGRID-ECDF", "UKI-SCOTGRID-DURHAM", "UKI-SOUTHGRID-OX-HEP", "UKI-SOUTHGRID-RALPP",
        "UKI-SOUTHGRID-BHAM-HEP", "UKI-SOUTHGRID-SUSX")),
    ("DE", "Germany", "EU", (
        "DESY-HH", "DESY-ZN", "LRZ-LMU", "MPPMU", "GoeGrid", "UNI-FREIBURG", "wuppertalprod", "UNI-BONN",
        "mainzgrid")),
    ("DE", "Switzerland", "EU", ("CSCS-LCG2", "UNIBE-LHEP")),
    ("DE", "Czech Republic", "EU", ("praguelcg2",)),
    ("DE", "Poland", "EU", ("CYFRONET-LCG2", "PSNC")),
    ("DE", "Slovakia", "EU", ("FMPhI-UNIBA", "IEPSAS-Kosice")),
    ("DE", "Austria", "EU", ("HEPHY-UIBK",)),
    ("FR", "France", "EU", (
        "GRIF-IRFU", "GRIF-LAL", "GRIF-LPNHE", "IN2P3-CPPM", "IN2P3-LAPP", "IN2P3-LPC", "IN2P3-LPSC")),
    ("FR", "Romania", "EU", ("RO-07-NIPNE", "RO-14-ITIM", "RO-16-UAIC", "RO-02-NIPNE")),
    ("FR", "Japan", "AS", ("TOKYO-LCG2",)),
    ("FR", "China", "AS", ("BEIJING-LCG2",)),
    ("IT", "Italy", "EU", (
        "INFN-MILANO-ATLASC", "INFN-NAPOLI-ATLAS", "INFN-ROMA1", "INFN-FRASCATI", "INFN-GENOVA", "INFN-LECCE",
        "INFN-ROMA2", "INFN-ROMA3", "INFN-COSENZA", "INFN-TRIESTE")),
    ("ES", "Spain", "EU", ("IFIC-LCG2", "ifae", "UAM-LCG2")),
    ("ES", "Portugal", "EU", ("NCG-INGRID-PT",)),
    ("ES", "Chile", "SA", ("EELA-UTFSM",)),
    ("ND", "Slovenia", "EU", ("SiGNET", "ARNES")),
    ("ND", "Norway", "EU", ("NO-NORGRID-T2",)),
    ("ND", "Sweden", "EU", ("SE-SNIC-T2",)),
    ("NL", "Israel", "EU", ("TECHNION-HEP", "WEIZMANN-LCG2", "IL-TAU-HEP")),
    ("NL", "Turkey", "EU", ("TR-10-ULAKBIM",)),
    ("NL", "South Africa", "AF", ("ZA-WITS-CORE", "ZA-CHPC")),
    ("RU", "Russia", "EU", ("JINR-LCG2", "RU-Protvino-IHEP", "ru-PNPI", "ITEP")),
    ("TW", "Taiwan", "AS", ("TW-FTT",)),
)
# generated Tier-2s per cloud, named <CLOUD>-T2-<nn>, in the cloud's Tier-1 country
_GENERATED_T2 = {"US": 10, "DE": 8, "UK": 5, "FR": 5, "IT": 4, "ES": 3, "ND": 2, "NL": 2, "CA": 2, "RU": 2}
# latency range in ms between continents (sorted pair), when not the same continent
_CONTINENT_MS = {
    ("EU", "NA"): (80, 100), ("AS", "EU"): (200, 250), ("AS", "NA"): (150, 200), ("AF", "AS"): (230, 250),
    ("AS", "SA"): (230, 250), ("EU", "SA"): (180, 220), ("NA", "SA"): (120, 160), ("AF", "EU"): (150, 180),
    ("AF", "NA"): (220, 250), ("AF", "SA"): (300, 340),
}
N_LARGE_T1_OPN100 = 5
N_T2_NUCLEI = 10
N_HIMEM_T2 = 6


def _rng(seed: int) -> np.random.Generator:
    if seed < 0:
        raise ConfigError(f"wlcg-like: seed must be >= 0, got {seed}")
    return np.random.default_rng(np.random.SeedSequence([0x57C6, int(seed)]))


def _round_slots(x: float, corecount: int = 8) -> int:
    return max(corecount, round(x / 8) * 8)


def _latency_ms(a: tuple, b: tuple, u: float) -> float:
    """a, b: (name, tier, cloud, country, continent)."""
    if a[0] == b[0]:
        return 1.0
    if a[3] == b[3]:
        lo, hi = 5, 10
    elif a[4] == b[4]:
        lo, hi = 20, 30
    else:
        lo, hi = _CONTINENT_MS[tuple(sorted((a[4], b[4])))]
    return lo + (hi - lo) * u


def _bandwidth_choices(a: tuple, b: tuple, large_t1: set[str]) -> tuple[float, ...]:
    """Gb/s values one is drawn from for the pair; a, b: (name, tier, cloud, country, continent)."""
    if a[0] == b[0]:
        return (100.0,) if a[1] <= 1 else (20.0,)
    tiers = tuple(sorted((a[1], b[1])))
    same_cloud, same_cont = a[2] == b[2], a[4] == b[4]
    if tiers == (0, 1):  # LHCOPN
        return (100.0,) if a[0] in large_t1 or b[0] in large_t1 else (40.0,)
    if tiers == (1, 1):  # LHCOPN
        return (10.0, 20.0, 40.0)
    if tiers[0] == 0:  # Tier-0 to a Tier-2
        return (10.0, 20.0) if same_cont else (2.0, 5.0, 10.0)
    if tiers[0] == 1:  # Tier-1 to a Tier-2: LHCONE within the cloud
        if same_cloud:
            return (10.0, 20.0, 40.0) if same_cont else (5.0, 10.0)
        return (5.0, 10.0) if same_cont else (1.0, 2.0, 5.0)
    if same_cloud and same_cont:
        return (5.0, 10.0, 20.0)
    return (2.0, 5.0, 10.0) if same_cont else (1.0, 2.0, 5.0)


def build_wlcg_like(seed: int = 0) -> Platform:
    """The deterministic built-in WLCG-like grid (see the module docstring for the figures)."""
    rng = _rng(seed)
    t1_country = {cloud: (country, cont) for _, cloud, country, cont, _ in _T1}
    t2: list[tuple[str, str, str, str]] = [
        (name, cloud, country, cont) for cloud, country, cont, names in _T2_BY_COUNTRY for name in names
    ]
    for cloud, count in _GENERATED_T2.items():
        country, cont = t1_country[cloud]
        t2.extend((f"{cloud}-T2-{k:02d}", cloud, country, cont) for k in range(1, count + 1))
    # (name, tier, cloud, country, continent)
    sites = [(_T0[0], 0, _T0[1], _T0[2], _T0[3])]
    sites += [(n, 1, c, co, ct) for n, c, co, ct, _ in _T1]
    sites += [(n, 2, c, co, ct) for n, c, co, ct in t2]
    n1, n2 = len(_T1), len(t2)

    t0_cores = _round_slots(rng.uniform(22_000, 28_000))
    w1 = np.array([w for *_, w in _T1]) * rng.lognormal(0.0, 0.1, n1)
    t1_cores = [_round_slots(x) for x in TIER1_CORES * w1 / w1.sum()]
    w2 = rng.lognormal(0.0, 0.8, n2)
    t2_budget = TOTAL_CORES - t0_cores - sum(t1_cores) - 200 * n2
    t2_cores = [_round_slots(200 + x) for x in t2_budget * w2 / w2.sum()]
    cores = [t0_cores, *t1_cores, *t2_cores]

    corepower = np.round(np.clip(rng.normal(11.5, 0.8, len(sites)), 9.0, 14.0), 1)
    maxtime = rng.choice([172800, 259200, 345600], size=len(sites), p=[0.2, 0.3, 0.5])
    small_t2 = [i for i in range(n2) if t2_cores[i] < np.median(t2_cores)]
    score = set(rng.choice(small_t2, size=max(1, round(0.1 * len(small_t2))), replace=False).tolist())
    himem = set(rng.choice([i for i in range(n2) if i not in score], size=N_HIMEM_T2, replace=False).tolist())
    big_t2 = {sites[1 + n1 + i][0] for i in np.argsort(-np.array(t2_cores), kind="stable")[:N_T2_NUCLEI]}

    disk = TOTAL_STORAGE_BYTES * DISK_SHARE
    tape = TOTAL_STORAGE_BYTES - disk
    t1_sum, t2_sum = sum(t1_cores), sum(t2_cores)
    platform_sites: dict[str, Site] = {}
    rses: dict[str, RSE] = {}
    for i, (name, tier, cloud, country, _cont) in enumerate(sites):
        j = i - 1 - n1  # Tier-2 index
        if tier == 0:
            site_disk, site_tape = 0.10 * disk, 0.20 * tape
        elif tier == 1:
            site_disk, site_tape = 0.35 * disk * cores[i] / t1_sum, 0.80 * tape * w1[i - 1] / w1.sum()
        else:
            site_disk, site_tape = 0.55 * disk * cores[i] / t2_sum, 0.0
        names = [f"{name}_DATADISK", f"{name}_SCRATCHDISK"] + ([f"{name}_DATATAPE"] if tier <= 1 else [])
        for rse, rtype, size in zip(
            names, ("DISK", "DISK", "TAPE"), (0.97 * site_disk, 0.03 * site_disk, site_tape), strict=False
        ):
            rses[rse] = RSE(rse, name, rtype, int(size), attributes={"type": rse.rsplit("_", 1)[1]})
        is_score = tier == 2 and j in score
        corecount = 1 if is_score else 8
        per_core_mb = 4000 if tier == 2 and j in himem else 2000
        platform_sites[name] = Site(
            name=name, atlas_site=name, cloud=cloud, country=country, tier=tier, corecount=corecount,
            corepower=float(corepower[i]), total_cores=cores[i], capability="score" if is_score else "ucore",
            type="unified", maxrss_mb=per_core_mb * corecount, maxtime_s=int(maxtime[i]),
            is_nucleus=tier <= 1 or name in big_t2, rses=names,
        )

    large_t1 = {n for n, *_ in sorted(_T1, key=lambda t: -t[4])[:N_LARGE_T1_OPN100]}
    n = len(sites)
    u_lat, u_bw = rng.random((n, n)), rng.random((n, n))
    defaults = LinkDefaults()
    links: dict[tuple[str, str], Link] = {}
    for a in range(n):
        for b in range(a, n):
            sa, sb = sites[a], sites[b]
            latency = float(_latency_ms(sa, sb, float(u_lat[a, b]))) / 1000.0
            choices = _bandwidth_choices(sa, sb, large_t1)
            bandwidth = choices[int(float(u_bw[a, b]) * len(choices))] * GBPS
            closeness = latency_closeness(latency, defaults)
            links[(sa[0], sb[0])] = Link(sa[0], sb[0], bandwidth, latency, closeness)
            if a != b:
                links[(sb[0], sa[0])] = Link(sb[0], sa[0], bandwidth, latency, closeness)

    platform = Platform(name="wlcg-like", sites=platform_sites, rses=rses, links=links)
    platform.notes.append(
        f"wlcg-like (seed {seed}): 1 Tier-0, {n1} Tier-1s, {n2} Tier-2s ({sum(_GENERATED_T2.values())} "
        f"generated names), {platform.total_cores()} cores, {disk / 1e15:.0f} PB disk + "
        f"{tape / 1e15:.0f} PB tape, {len(links)} links (every ordered site pair)"
    )
    return platform

"""PanDA queues from CRIC-style JSON: the real ``pandaqueue`` dump or the ``site_info.json`` snapshot.

Both shapes are a JSON object keyed by queue name. Every field is taken from the entry when present
and derived by the rules below otherwise; each rule that fills a value in appends one counted line
to ``Platform.notes``. ``docs/platform.md`` gives the rules with their measured outcome.

- Real CRIC fields (``reference/panda_rucio.md`` section 4): ``atlas_site``/``site``, ``cloud``,
  ``country``, ``tier_level``/``tier`` (``T1``, ``T2D``...), ``type``, ``status`` (or CRIC's object
  ``state``: ACTIVE -> online, DISABLED -> offline), ``capability``, ``corecount``, ``corepower``,
  ``maxrss``/``minrss`` (MB), ``maxtime``/``mintime`` (s), ``astorages`` {activity: [RSE]} (or the
  legacy comma-separated ``ddm``), ``direct_access_lan``/``direct_access_wan``, ``pledgedcpu``
  (HS06, -1 = opportunistic), and the gridtwin extensions ``total_cores`` and ``is_nucleus``.
- Snapshot fields: ``RSE`` {name: capacity in TB, as a string or a number} and ``GFLOPS``.

Derivation rules (when the field is absent; 0 counts as absent for corecount, corepower, maxrss
and maxtime, as CRIC uses 0 for "not set"):

- total cores: ``total_cores``; else ``round(GFLOPS / 4000)``; else ``pledgedcpu / corepower``
  when pledgedcpu > 0; else 1000. Never below one slot (``corecount``). 4000 GFLOPS units per
  core turns the snapshot's 1.57e9 into about 393k cores, the ATLAS scale of 250-500k concurrent
  jobs on >250k cores (``reference/scale.md`` lines 12-13).
- slot shape from name tokens (split at ``_ - .``): ``SCORE`` -> score, 1 core; ``MCORE`` -> mcore,
  8 cores; otherwise ucore, 8 cores. ``ANALY_`` prefix -> type analysis, else unified.
- memory: maxrss = 2000 MB per core x corecount (4000 MB per core when a token contains
  ``HIMEM``), minrss 0. Walltime: maxtime 345600 s (4 days), mintime 0. Corepower 10 HS06/core.
  Status online.
- ATLAS site (the network endpoint), first rule that gives an answer, names compared
  case-insensitively against the network site names (``site_conn_info.json``):
  1. the queue name itself is a network site;
  2. the longest network site that prefixes the queue name (``ANALY_`` removed) up to a
     separator ``_ - .`` (``AGLT2_MERGE`` -> ``AGLT2``);
  3. the only network site whose first token equals the queue's first token
     (``IL-TAU`` -> ``IL-TAU-HEP``);
  4. the network site most of the queue's RSEs belong to (ties: first in name order), an RSE
     belonging to the longest network site that prefixes its name (``CERN`` -> ``CERN-PROD``);
  5. the shortest of several network sites sharing the first token (``BNL`` -> ``BNL-ATLAS``);
  6. else the queue name itself (counted as unmapped).
  Without network site names, a queue maps to the longest other queue name that prefixes it,
  else to itself.
- RSEs: one object per name, shared by every queue listing it. TAPE when the name contains
  ``TAPE``. Capacity TB x 1e12 bytes; 0, "0.00" or empty means unknown -> 0. Site: the longest
  network site prefixing the name; else the site most queues listing it map to. Snapshot RSE lists
  (alphabetical in the file) are reordered DATADISK, SCRATCHDISK, other disks, tapes.
- tier: 0 for the site CERN-PROD; 1 when the queue lists a TAPE RSE of its own site (or of a site
  whose name prefixes it: RAL-LCG2 tape for RAL-LCG2-ECHO); else 2.
  Nucleus: tier 0 and 1. Cloud and country from the site-name prefix table ``CLOUD_PREFIXES``
  (ATLAS clouds), else cloud WORLD and no country.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridtwin.errors import ConfigError, InputError
from gridtwin.platform.model import CAPABILITIES, RSE, SITE_STATUSES, Platform, Site

GFLOPS_PER_CORE = 4000.0
DEFAULT_CORECOUNT = 8
DEFAULT_TOTAL_CORES = 1000
DEFAULT_COREPOWER = 10.0
MAXRSS_MB_PER_CORE = 2000
HIMEM_MAXRSS_MB_PER_CORE = 4000
DEFAULT_MAXTIME_S = 345600
TB = 10**12
TIER0_SITES = frozenset({"CERN-PROD"})
_STATE_TO_STATUS = {"ACTIVE": "online", "DISABLED": "offline", "INACTIVE": "offline"}
_SEP = "_-."
_TOKEN_RE = re.compile(r"[_\-.]")

CLOUD_PREFIXES: tuple[tuple[str, str, str], ...] = (
    # (ATLAS site name prefix, case-insensitive; cloud; country)
    ("CERN", "CERN", "Switzerland"),
    *((p, "US", "United States") for p in (
        "AGLT2", "BNL", "MWT2", "NET2", "SWT2", "OU_", "OUHEP", "SLAC", "WT2", "NERSC", "LBNL", "Nevis",
        "WISC")),
    ("TRIUMF", "CA", "Canada"), ("CA-", "CA", "Canada"),
    *((p, "DE", "Germany") for p in (
        "FZK", "DESY", "GoeGrid", "LRZ", "MPPMU", "UNI-FREIBURG", "UNI-SIEGEN", "UNI-BONN", "wuppertal",
        "mainz", "TUDresden")),
    ("CSCS", "DE", "Switzerland"), ("UNIBE", "DE", "Switzerland"), ("UNIGE", "DE", "Switzerland"),
    ("praguelcg2", "DE", "Czech Republic"), ("CYFRONET", "DE", "Poland"), ("PSNC", "DE", "Poland"),
    ("FMPhI", "DE", "Slovakia"), ("IEPSAS", "DE", "Slovakia"), ("HEPHY", "DE", "Austria"),
    ("IN2P3", "FR", "France"), ("GRIF", "FR", "France"), ("RO-", "FR", "Romania"),
    ("BEIJING", "FR", "China"), ("TOKYO", "FR", "Japan"),
    ("INFN", "IT", "Italy"),
    *((p, "ES", "Spain") for p in ("pic", "ifae", "IFIC", "UAM")),
    ("NCG-INGRID-PT", "ES", "Portugal"), ("EELA-UTFSM", "ES", "Chile"),
    ("NDGF", "ND", "Nordic"), ("DCSC", "ND", "Denmark"), ("HPC2N", "ND", "Sweden"), ("NSC", "ND", "Sweden"),
    ("SE-SNIC", "ND", "Sweden"), ("NO-NORGRID", "ND", "Norway"), ("ARNES", "ND", "Slovenia"),
    ("SiGNET", "ND", "Slovenia"),
    ("SARA", "NL", "Netherlands"), ("NIKHEF", "NL", "Netherlands"), ("TECHNION", "NL", "Israel"),
    ("IL-TAU", "NL", "Israel"), ("WEIZMANN", "NL", "Israel"), ("TR-", "NL", "Turkey"),
    ("ZA-", "NL", "South Africa"),
    ("UKI-", "UK", "United Kingdom"), ("RAL", "UK", "United Kingdom"),
    ("RRC-KI", "RU", "Russia"), ("JINR", "RU", "Russia"), ("ITEP", "RU", "Russia"), ("RU-", "RU", "Russia"),
    ("Taiwan", "TW", "Taiwan"), ("TW-", "TW", "Taiwan"),
)


class NoteTally:
    """Collects which items a default or rule applied to, and renders one counted line per rule."""

    def __init__(self) -> None:
        self._items: dict[str, list[str]] = {}

    def add(self, message: str, item: str) -> None:
        self._items.setdefault(message, []).append(item)

    def lines(self, total: int, unit: str) -> list[str]:
        out = []
        for message, items in self._items.items():
            shown = ", ".join(items[:3]) + (", ..." if len(items) > 3 else "")
            out.append(f"{message}: {len(items)} of {total} {unit} (e.g. {shown})")
        return out


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; InputError with the file and the line/column on failure."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    except _DuplicateKey as exc:
        raise InputError(f"{p}: duplicate key {exc.args[0]!r} in one JSON object (a queue or pair listed twice; "
                         "which one is meant cannot be told)") from None


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def number(value: Any, where: str, fld: str, *, integer: bool = False, signed: bool = False) -> float | None:
    """A non-negative number from a JSON value (numbers or numeric strings); None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    x: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        x = float(value)
    elif isinstance(value, str):
        try:
            x = float(value.strip())
        except ValueError:
            x = None
    what = "a number" if signed else "a non-negative number"
    if integer:
        what = "a whole number" if signed else "a non-negative whole number"
    if x is None or not math.isfinite(x) or (x < 0 and not signed) or (integer and x != int(x)):
        raise InputError(f"{where}: field {fld!r}: expected {what}, got {value!r}")
    return x


def _tokens(name: str) -> list[str]:
    return [t for t in _TOKEN_RE.split(name.upper()) if t]


def _strip_analy(name: str) -> str:
    return name[6:] if name.upper().startswith("ANALY_") and len(name) > 6 else name


class SiteIndex:
    """Network site names with the case-insensitive lookups of the mapping rules."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        self._lower = {n.lower(): n for n in self.names}
        self._by_token: dict[str, list[str]] = {}
        for n in self.names:
            self._by_token.setdefault(_TOKEN_RE.split(n.lower())[0], []).append(n)

    def exact(self, name: str) -> str | None:
        return self._lower.get(name.lower())

    def longest_prefix(self, name: str, exclude: str | None = None) -> str | None:
        low, best = name.lower(), None
        for n in self.names:
            nl = n.lower()
            at_sep = low.startswith(nl) and (len(low) == len(nl) or low[len(nl)] in _SEP)
            if n != exclude and at_sep and (best is None or len(n) > len(best)):
                best = n
        return best

    def same_first_token(self, name: str) -> list[str]:
        return list(self._by_token.get(_TOKEN_RE.split(name.lower())[0], ()))


@dataclass
class _Draft:
    name: str
    kwargs: dict[str, Any]
    rses: list[str]
    site: str | None
    tier: int | None
    cloud: str | None
    country: str | None
    is_nucleus: bool | None
    snapshot: bool
    rse_caps: dict[str, float | None] = field(default_factory=dict)


def _rse_names(entry: dict[str, Any], where: str) -> dict[str, float | None]:
    """RSE name -> capacity in TB (None when unknown), in the entry's order."""
    out: dict[str, float | None] = {}
    caps = entry.get("RSE")
    if isinstance(caps, dict):
        for rse, tb in caps.items():
            value = number(tb, where, f"RSE.{rse}")
            out[str(rse)] = value if value else None
    elif isinstance(caps, list):
        out.update((str(r), None) for r in caps)
    elif caps is not None:
        raise InputError(f"{where}: field 'RSE': expected an object {{rse: TB}}, got {type(caps).__name__}")
    astorages = entry.get("astorages")
    if isinstance(astorages, dict):
        for activity, names in astorages.items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise InputError(f"{where}: field 'astorages.{activity}': expected a list of RSE names")
            for n in names:
                out.setdefault(n, None)
    elif astorages is not None:
        raise InputError(f"{where}: field 'astorages': expected an object {{activity: [RSE]}}")
    ddm = entry.get("ddm")
    if not out and isinstance(ddm, str):
        for n in ddm.split(","):
            if n.strip():
                out.setdefault(n.strip(), None)
    return out


def _text(entry: dict[str, Any], keys: tuple[str, ...], where: str) -> str | None:
    for k in keys:
        v = entry.get(k)
        if v is None or v == "":
            continue
        if not isinstance(v, str):
            raise InputError(f"{where}: field {k!r}: expected a string, got {v!r}")
        return v.strip()
    return None


def _parse_tier(entry: dict[str, Any], where: str) -> int | None:
    if entry.get("tier_level") not in (None, ""):
        t = number(entry["tier_level"], where, "tier_level", integer=True)
    elif entry.get("tier") not in (None, ""):
        raw = entry["tier"]
        m = re.match(r"^\s*T?(\d)", raw, re.IGNORECASE) if isinstance(raw, str) else None
        t = float(m.group(1)) if m else number(raw, where, "tier", integer=True)
    else:
        return None
    if t not in (0, 1, 2, 3):
        raise InputError(f"{where}: field 'tier': expected 0-3 or T0-T3, got {t:g}")
    return int(t)


def _parse_queue(name: str, entry: Any, source: str, notes: NoteTally) -> _Draft:
    where = f"{source}: queue {name!r}"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected an object of queue fields, got {type(entry).__name__}")
    snapshot = ("RSE" in entry or "GFLOPS" in entry) and not ("atlas_site" in entry or "corecount" in entry)
    tokens = _tokens(name)
    kw: dict[str, Any] = {}

    capability = _text(entry, ("capability",), where)
    if capability is not None:
        capability = capability.lower()
        if capability not in CAPABILITIES:
            raise InputError(
                f"{where}: field 'capability': expected one of {CAPABILITIES}, got {capability!r}"
            )
    corecount = number(entry.get("corecount"), where, "corecount", integer=True)
    if capability is None:
        capability = "score" if "SCORE" in tokens else "mcore" if "MCORE" in tokens else "ucore"
        notes.add(f"capability {capability} from the queue name (no 'capability')", name)
    if not corecount:
        corecount = 1 if capability == "score" else DEFAULT_CORECOUNT
        notes.add(f"corecount {int(corecount)} from the capability (no 'corecount')", name)
    kw["capability"], kw["corecount"] = capability, int(corecount)

    corepower = number(entry.get("corepower"), where, "corepower")
    if not corepower:
        corepower = DEFAULT_COREPOWER
        notes.add(f"corepower {DEFAULT_COREPOWER:g} HS06/core by default", name)
    kw["corepower"] = corepower

    total = number(entry.get("total_cores"), where, "total_cores", integer=True)
    gflops = number(entry.get("GFLOPS"), where, "GFLOPS")
    pledged = number(entry.get("pledgedcpu"), where, "pledgedcpu", signed=True)
    if total is None:
        if gflops is not None:
            total = math.floor(gflops / GFLOPS_PER_CORE + 0.5)
            notes.add(f"total cores = GFLOPS / {GFLOPS_PER_CORE:g} (at least one slot)", name)
        elif pledged is not None and pledged > 0:
            total = math.floor(pledged / corepower + 0.5)
            notes.add("total cores = pledgedcpu / corepower (at least one slot)", name)
        else:
            total = DEFAULT_TOTAL_CORES
            notes.add(f"total cores {DEFAULT_TOTAL_CORES} by default", name)
        total = max(int(total), kw["corecount"])
    kw["total_cores"] = int(total)

    maxrss = number(entry.get("maxrss"), where, "maxrss", integer=True)
    if not maxrss:
        per_core = HIMEM_MAXRSS_MB_PER_CORE if any("HIMEM" in t for t in tokens) else MAXRSS_MB_PER_CORE
        maxrss = per_core * kw["corecount"]
        notes.add(f"maxrss {per_core} MB per core x corecount (no 'maxrss')", name)
    kw["maxrss_mb"] = int(maxrss)
    kw["minrss_mb"] = int(number(entry.get("minrss"), where, "minrss", integer=True) or 0)
    maxtime = number(entry.get("maxtime"), where, "maxtime", integer=True)
    if not maxtime:
        maxtime = DEFAULT_MAXTIME_S
        notes.add(f"maxtime {DEFAULT_MAXTIME_S} s by default", name)
    kw["maxtime_s"] = int(maxtime)
    kw["mintime_s"] = int(number(entry.get("mintime"), where, "mintime", integer=True) or 0)

    status = _text(entry, ("status",), where)
    if status is None:
        state = _text(entry, ("state",), where)
        if state is None:
            status = "online"
            notes.add("status online by default", name)
        elif state.upper() in _STATE_TO_STATUS:
            status = _STATE_TO_STATUS[state.upper()]
        else:
            expected = sorted(_STATE_TO_STATUS)
            raise InputError(f"{where}: field 'state': expected one of {expected}, got {state!r}")
    status = status.lower()
    if status not in SITE_STATUSES:
        raise InputError(f"{where}: field 'status': expected one of {SITE_STATUSES}, got {status!r}")
    kw["status"] = status

    qtype = _text(entry, ("type",), where)
    if qtype is None:
        qtype = "analysis" if name.upper().startswith("ANALY_") else "unified"
        notes.add(f"type {qtype} from the queue name", name)
    kw["type"] = qtype.lower()
    kw["direct_access"] = any(
        v is True or (isinstance(v, str) and v.strip().lower() in ("true", "yes", "1"))
        for v in (entry.get("direct_access_lan"), entry.get("direct_access_wan"))
    )
    caps = _rse_names(entry, where)
    nucleus = entry.get("is_nucleus")
    return _Draft(
        name=name, kwargs=kw, rses=list(caps), rse_caps=caps, snapshot=snapshot,
        site=_text(entry, ("atlas_site", "site"), where), tier=_parse_tier(entry, where),
        cloud=_text(entry, ("cloud",), where), country=_text(entry, ("country",), where),
        is_nucleus=None if nucleus is None else bool(nucleus),
    )


def _map_queue(d: _Draft, index: SiteIndex, rse_site: dict[str, str]) -> tuple[str, str]:
    """Apply the ATLAS-site rules to one queue: (site, rule description)."""
    base = _strip_analy(d.name)
    hit = index.exact(d.name) or index.exact(base)
    if hit:
        return hit, "queue name is a network site"
    hit = index.longest_prefix(base)
    if hit:
        return hit, "longest network site prefixing the queue name"
    same = index.same_first_token(base)
    if len(same) == 1:
        return same[0], "only network site sharing the queue's first token"
    votes = Counter(rse_site[r] for r in d.rses if r in rse_site)
    if votes:
        best = max(votes.values())
        return min(s for s, c in votes.items() if c == best), "network site of most of the queue's RSEs"
    if same:
        return min(same, key=lambda s: (len(s), s)), "shortest network site sharing the first token"
    return d.name, "UNMAPPED: no network site found, the queue name is used"


def _rse_order(name: str) -> int:
    up = name.upper()
    if "TAPE" in up:
        return 3
    return 0 if up.endswith("DATADISK") else 1 if up.endswith("SCRATCHDISK") else 2


def _same_site(rse_site: str, site: str) -> bool:
    """Whether an RSE's site is ``site`` or a site-name prefix of it (RAL-LCG2 for RAL-LCG2-ECHO)."""
    return site == rse_site or (site.startswith(rse_site) and site[len(rse_site)] in _SEP)


def cloud_of(site: str) -> tuple[str, str] | None:
    """(cloud, country) of an ATLAS site from ``CLOUD_PREFIXES``, or None."""
    low = site.lower()
    for prefix, cloud, country in CLOUD_PREFIXES:
        if low.startswith(prefix.lower()):
            return cloud, country
    return None


def platform_from_cric(
    data: Any, source: str = "<dict>", network_sites: Iterable[str] | None = None, name: str = "cric"
) -> Platform:
    """Build a Platform from parsed CRIC-style queue JSON (either shape); ``source`` names it in errors."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object keyed by queue name, got {type(data).__name__}")
    if not data:
        raise InputError(f"{source}: no queues in the file")
    notes = NoteTally()
    drafts = [_parse_queue(str(q), e, source, notes) for q, e in data.items()]
    nq = len(drafts)

    explicit = {d.site for d in drafts if d.site}
    index = SiteIndex(network_sites if network_sites is not None else explicit | {d.name for d in drafts})
    rse_site: dict[str, str] = {}
    for d in drafts:
        for r in d.rses:
            hit = index.longest_prefix(r)
            if hit:
                rse_site[r] = hit
    site_notes, rule_count = NoteTally(), Counter()
    for d in drafts:
        if d.site is None:
            if network_sites is None:
                hit = index.longest_prefix(_strip_analy(d.name), exclude=d.name)
                d.site, rule = hit or d.name, "longest other queue name prefixing it, else itself"
            else:
                d.site, rule = _map_queue(d, index, rse_site)
            site_notes.add(f"ATLAS site rule '{rule}'", d.name)
            rule_count[rule] += 1
    if network_sites is None and any(d.snapshot for d in drafts):
        notes.add("no network site names given: ATLAS sites derived from queue names only", "all")

    listing: dict[str, Counter[str]] = {}
    capacities: dict[str, list[float]] = {}
    for d in drafts:
        for r in d.rses:
            listing.setdefault(r, Counter())[d.site or d.name] += 1
            tb = d.rse_caps.get(r)
            capacities.setdefault(r, []).extend([tb] if tb else [])
        if d.snapshot:
            d.rses.sort(key=_rse_order)
    rses: dict[str, RSE] = {}
    rse_notes = NoteTally()
    for r, tbs in capacities.items():
        site = rse_site.get(r)
        if site is None:
            votes = listing[r]
            site = min(s for s, c in votes.items() if c == max(votes.values()))
            rse_notes.add("RSE site from the queues listing it", r)
        if not tbs:
            rse_notes.add("capacity unknown (0, empty or not given): 0 bytes", r)
        elif len(set(tbs)) > 1:
            rse_notes.add("capacity differs between queues: the largest is kept", r)
        token = r[len(rse_site[r]) + 1 :] if r in rse_site else r.partition("_")[2]
        rtype = "TAPE" if "TAPE" in r.upper() else "DISK"
        rses[r] = RSE(r, site, rtype, round(max(tbs, default=0.0) * TB), attributes={"type": token or r})

    sites: dict[str, Site] = {}
    for d in drafts:
        site = d.site or d.name
        if d.tier is None:
            tapes = [rses[r] for r in d.rses if rses[r].rse_type == "TAPE"]
            own_tape = any(_same_site(t.atlas_site, site) for t in tapes)
            d.tier = 0 if site in TIER0_SITES else 1 if own_tape else 2
            notes.add(f"tier {d.tier} derived (CERN-PROD 0, own TAPE RSE 1, else 2)", d.name)
        if d.cloud is None or d.country is None:
            found = cloud_of(site)
            if d.cloud is None:
                d.cloud = found[0] if found else "WORLD"
                how = "from the site-name table" if found else "WORLD (no table entry)"
                notes.add(f"cloud {how}", d.name)
            if d.country is None:
                d.country = found[1] if found else ""
        nucleus = d.tier <= 1 if d.is_nucleus is None else d.is_nucleus
        try:
            sites[d.name] = Site(
                name=d.name, atlas_site=site, cloud=d.cloud, country=d.country, tier=d.tier,
                is_nucleus=nucleus, rses=list(d.rses), **d.kwargs,
            )
        except ConfigError as exc:
            raise InputError(f"{source}: queue {d.name!r}: {exc}") from exc

    platform = Platform(name=name, sites=sites, rses=rses)
    tag = Path(source).name
    platform.notes.extend(f"{tag}: {line}" for line in notes.lines(nq, "queues"))
    platform.notes.extend(f"{tag}: {line}" for line in site_notes.lines(nq, "queues"))
    platform.notes.extend(f"{tag}: {line}" for line in rse_notes.lines(len(rses), "RSEs"))
    if network_sites is not None and rule_count:
        mapped = sum(c for r, c in rule_count.items() if not r.startswith("UNMAPPED"))
        total = sum(rule_count.values())
        platform.notes.append(f"{tag}: {mapped} of {total} queues lacking atlas_site got a network site")
    return platform


def load_cric_queues(
    path: str | Path, network_sites: Iterable[str] | None = None, name: str | None = None
) -> Platform:
    """Load a CRIC ``pandaqueue`` JSON dump or a ``site_info.json`` snapshot into a Platform.

    ``network_sites``: the ATLAS site names of the network matrix, used to map queues without an
    ``atlas_site`` field (see the module docstring); ``load_atlas_snapshot`` passes them.
    """
    p = Path(path)
    return platform_from_cric(read_json(p), str(p), network_sites, name or p.stem)

"""Site-to-site network matrix JSON (CRIC closeness, FTS dashboard throughput) -> ``Platform.links``.

Shape (``site_conn_info.json``): ``{"SRC:DST": {src, dst, closeness: {latest}, mbps: {dashb: {1h, 1d,
1w}}, files: {...}, bytes: {...}}}``. Keys are ATLAS site names (network endpoints); ``files`` and
``bytes`` (queue snapshots) are not used. Rules, each counted in ``Platform.notes`` when applied:

- closeness: ``closeness.latest`` (0 best .. 11 worst; a bare number is accepted too). Missing or
  negative (the 2024-08-08 file has one -1) -> ``LinkDefaults.closeness`` (11, "no information");
  above 11 -> 11; non-integral -> rounded. A pair with src == dst is kept and given closeness 0
  (same-site LAN) whatever the file says (29 real self-pairs say 11, "not configured").
- latency and the bandwidth floor interpolate geometrically between the platform's
  ``LinkDefaults``: closeness 0 gives the local values (1 ms, 10 Gb/s), 11 the remote defaults
  (100 ms, 1 Gb/s), so a listed pair without measurement equals an unlisted one of the same class:
  ``latency = 1 ms x 100 ** (c / 11)``, ``floor = 10 Gb/s x 10 ** (-c / 11)``.
  Closeness is a quality rank (CERN-PROD -> BNL-ATLAS is 1), so latency is a coarse proxy.
- throughput: ``mbps.dashb.1d``, else ``1w`` (MB/s, the achieved average, not a capacity). The link
  bandwidth is ``max(HEADROOM x MB/s x 1e6, floor(closeness))`` bytes/s with HEADROOM = 2 (a daily
  average runs at about half the sustained peak); the measured value is kept in ``Link.mbps``.
  Near-idle pairs (median 2 MB/s) thus keep the closeness floor; busy ones (CERN-PROD -> BNL-ATLAS
  3,737 MB/s) get twice their average.
- pairs whose endpoint is not the ``atlas_site`` of any queue are loaded (harmless) and counted.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gridtwin.errors import InputError
from gridtwin.platform.cric import NoteTally, number, platform_from_cric, read_json
from gridtwin.platform.model import Link, LinkDefaults, Platform

HEADROOM = 2.0
MAX_CLOSENESS = 11
MB = 1e6


def closeness_latency_s(closeness: float, defaults: LinkDefaults | None = None) -> float:
    """Latency for a closeness: geometric from the local latency (0) to the remote default (11)."""
    d = defaults or LinkDefaults()
    return d.local_latency_s * (d.latency_s / d.local_latency_s) ** (closeness / MAX_CLOSENESS)


def closeness_bandwidth_bps(closeness: float, defaults: LinkDefaults | None = None) -> float:
    """Bandwidth floor for a closeness: geometric from the LAN value (0) to the remote default (11)."""
    d = defaults or LinkDefaults()
    return d.local_bandwidth_bps * (d.bandwidth_bps / d.local_bandwidth_bps) ** (closeness / MAX_CLOSENESS)


def latency_closeness(latency_s: float, defaults: LinkDefaults | None = None) -> int:
    """Inverse of ``closeness_latency_s``, rounded and clamped to 0..11 (used by generated grids)."""
    d = defaults or LinkDefaults()
    c = MAX_CLOSENESS * math.log(latency_s / d.local_latency_s) / math.log(d.latency_s / d.local_latency_s)
    return min(MAX_CLOSENESS, max(0, math.floor(c + 0.5)))


def network_site_names(data: Any, source: str = "<dict>") -> set[str]:
    """The ATLAS site names (sources and destinations) of a parsed network matrix."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object keyed by 'SRC:DST', got {type(data).__name__}")
    names: set[str] = set()
    for key, entry in data.items():
        src, dst = _endpoints(str(key), entry, source)
        names.update((src, dst))
    return names


def _endpoints(key: str, entry: Any, source: str) -> tuple[str, str]:
    where = f"{source}: pair {key!r}"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected an object of pair fields, got {type(entry).__name__}")
    ksrc, sep, kdst = key.partition(":")
    out = []
    for fld, from_key in (("src", ksrc), ("dst", kdst if sep else "")):
        value = entry.get(fld, from_key)
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}: field {fld!r}: expected a site name (key 'SRC:DST'), got {value!r}")
        out.append(value.strip())
    return out[0], out[1]


def _sub(entry: dict[str, Any], fld: str, where: str) -> dict[str, Any] | None:
    value = entry.get(fld)
    if value is not None and not isinstance(value, dict):
        raise InputError(f"{where}: field {fld!r}: expected an object, got {type(value).__name__}")
    return value


def links_from_matrix(
    data: Any,
    source: str = "<dict>",
    defaults: LinkDefaults | None = None,
    known_sites: set[str] | None = None,
) -> tuple[dict[tuple[str, str], Link], list[str]]:
    """Links and notes from a parsed network matrix; ``known_sites``: queue atlas_sites, for a count."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object keyed by 'SRC:DST', got {type(data).__name__}")
    d = defaults or LinkDefaults()
    tally = NoteTally()
    links: dict[tuple[str, str], Link] = {}
    n_1d = n_1w = n_raised = n_unknown = 0
    for raw_key, entry in data.items():
        key = str(raw_key)
        src, dst = _endpoints(key, entry, source)
        where = f"{source}: pair {key!r}"
        if key != f"{src}:{dst}":
            tally.add("key differs from its src/dst fields (the fields are used)", key)
        if (src, dst) in links:
            tally.add("repeats an earlier src/dst pair (the last one is kept)", key)

        raw = entry.get("closeness")
        if isinstance(raw, dict):
            raw = raw.get("latest")
        value = number(raw, where, "closeness.latest", signed=True)
        if src == dst:
            if value != 0:
                tally.add("same-site pair with closeness other than 0: closeness 0 used", key)
            closeness = 0
        elif value is None:
            tally.add(f"closeness missing: default {d.closeness} used", key)
            closeness = d.closeness
        elif value < 0:
            tally.add(f"negative closeness (treated as missing): default {d.closeness} used", key)
            closeness = d.closeness
        else:
            if value > MAX_CLOSENESS:
                tally.add(f"closeness above {MAX_CLOSENESS}: clamped", key)
            elif value != int(value):
                tally.add("non-integral closeness: rounded", key)
            closeness = min(MAX_CLOSENESS, math.floor(value + 0.5))

        mbps: float | None = None
        mbps_entry = _sub(entry, "mbps", where)
        dashb = _sub(mbps_entry, "dashb", f"{where}: field 'mbps'") if mbps_entry else None
        if dashb:
            for period in ("1d", "1w"):
                measured = number(dashb.get(period), where, f"mbps.dashb.{period}", signed=True)
                if measured is not None and measured < 0:
                    tally.add(f"negative mbps.dashb.{period} ignored", key)
                elif measured is not None:
                    mbps = measured
                    n_1d, n_1w = (n_1d + 1, n_1w) if period == "1d" else (n_1d, n_1w + 1)
                    break

        floor = closeness_bandwidth_bps(closeness, d)
        bandwidth = floor
        if mbps is not None and HEADROOM * mbps * MB > floor:
            bandwidth = HEADROOM * mbps * MB
            n_raised += 1
        links[(src, dst)] = Link(src, dst, bandwidth, closeness_latency_s(closeness, d), closeness, mbps)
        if known_sites is not None and not (src in known_sites and dst in known_sites):
            n_unknown += 1

    tag = Path(source).name
    notes = [f"{tag}: {line}" for line in tally.lines(len(data), "pairs")]
    notes.append(
        f"{tag}: {len(links)} links; measured throughput on {n_1d + n_1w} (1d {n_1d}, 1w only {n_1w}); "
        f"bandwidth = max({HEADROOM:g} x measured, closeness floor) raised above the floor on {n_raised}"
    )
    if known_sites is not None:
        notes.append(f"{tag}: {n_unknown} links have an endpoint that is no queue's atlas_site (kept)")
    return links, notes


def load_network_matrix(path: str | Path, platform: Platform) -> None:
    """Fill ``platform.links`` (and notes) from a network matrix JSON file such as site_conn_info.json."""
    p = Path(path)
    apply_network_matrix(read_json(p), platform, str(p))


def apply_network_matrix(data: Any, platform: Platform, source: str = "<dict>") -> None:
    """``load_network_matrix`` on already-parsed JSON."""
    known = {s.atlas_site for s in platform.sites.values()}
    links, notes = links_from_matrix(data, source, platform.link_defaults, known)
    platform.links.update(links)
    platform.notes.extend(notes)


def load_atlas_snapshot(
    site_info_path: str | Path, conn_info_path: str | Path, name: str = "atlas-2024-08"
) -> Platform:
    """Queues (site_info.json or CRIC JSON) mapped onto the sites of a network matrix, with its links.

    Defaults to the real August-2024 ATLAS snapshot's name; any pair of files of these shapes works.
    """
    conn_path, info_path = Path(conn_info_path), Path(site_info_path)
    matrix = read_json(conn_path)
    names = network_site_names(matrix, str(conn_path))
    platform = platform_from_cric(read_json(info_path), str(info_path), names, name)
    apply_network_matrix(matrix, platform, str(conn_path))
    return platform

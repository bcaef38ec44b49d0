"""Recorded transfers replayed on the twin's network model, to calibrate per-link bandwidth scales.

Each recorded transfer (a ``transfer-done`` or ``transfer-failed`` row of a ``TRANSFERS`` table: a run
folder's, an import folder's, or raw Rucio events) becomes one flow of its ``bytes`` from the ATLAS site of
its ``src_rse`` to that of its ``dst_rse``, started at its recorded ``started_at``: FTS queueing is in the
record already, so what is compared is the network part, ``transferred_at - started_at``. A failed attempt
took its share of the link until it failed, so it is replayed as a flow cut at its recorded end; only
done transfers are compared. The route, the latency phase and the sharing are those of the scenario's flow
model (:mod:`gridtwin.network`), on the platform's links times their scales.

The site of an RSE is the platform's (``RSE.atlas_site``), else the RSE name up to its last ``_``
(``BNL-ATLAS_DATADISK`` -> ``BNL-ATLAS``). Rows that cannot be replayed are set aside and counted by
reason: no ``started_at`` or ``transferred_at``, no ``bytes``, an RSE of a site the platform lacks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gridtwin.analytics.kpi import numbers
from gridtwin.errors import InputError
from gridtwin.platform.model import Platform

MIN_TRANSFERS = 20
"""Done transfers a link needs for its bandwidth scale to be calibrated."""


@dataclass
class TransferTrace:
    """Recorded transfers that can be replayed, in start order."""

    source: str
    src: list[str]
    """ATLAS site of the source RSE."""
    dst: list[str]
    nbytes: np.ndarray
    start_s: np.ndarray
    """Recorded ``started_at``, seconds from the first start."""
    end_s: np.ndarray
    """Recorded ``transferred_at``, seconds from the first start."""
    done: np.ndarray
    """``transfer-done`` (True) or ``transfer-failed``."""
    set_aside: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.nbytes)

    def link_keys(self) -> list[str]:
        """``"SRC:DST"`` of every transfer."""
        return [f"{s}:{d}" for s, d in zip(self.src, self.dst, strict=True)]

    def split(self, holdout: float, part: str) -> TransferTrace:
        """The earlier (``train``) or later (``test``) part by start time."""
        cut = round(self.n * (1.0 - holdout))
        sl = slice(0, cut) if part == "train" else slice(cut, None)
        return TransferTrace(self.source, self.src[sl], self.dst[sl], self.nbytes[sl], self.start_s[sl],
                             self.end_s[sl], self.done[sl], dict(self.set_aside), list(self.notes))

    def durations(self) -> np.ndarray:
        """Recorded network durations (s, whole milliseconds)."""
        return np.rint((self.end_s - self.start_s) * 1000.0) / 1000.0


def _read_table(path: Path) -> tuple[pa.Table, str, list[str]]:
    from gridtwin.replay.trace import table_in

    path = table_in(Path(path), "transfers", "a run folder or an import folder from `gridtwin import`")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.name.lower().endswith(".parquet"):
        try:
            table = pq.read_table(path)
        except Exception as exc:  # any reader failure is bad input
            raise InputError(f"{path.name}: not a readable Parquet file ({exc})") from None
        return table, path.name, []
    from gridtwin.analytics.import_rucio import import_rucio_events

    res = import_rucio_events(path)
    notes = list(res.notes)
    if res.rejected.num_rows:
        notes.append(f"{res.rejected.num_rows} event line(s) set aside by the importer")
    return res.table, path.name, notes


def load_transfers(path: Path, platform: Platform) -> TransferTrace:
    """Read recorded transfers (a folder with ``transfers.parquet``, a TRANSFERS Parquet, or Rucio events as
    JSON lines) and keep those that can be replayed on ``platform``."""
    table, source, notes = _read_table(path)
    need = ("event_type", "bytes", "src_rse", "dst_rse", "started_at", "transferred_at")
    missing = [c for c in need if c not in table.column_names]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)} (a TRANSFERS table was expected: "
                         "transfer events with bytes, src_rse, dst_rse, started_at and transferred_at)")
    kind = table.column("event_type").to_pylist()
    keep = np.array([k in ("transfer-done", "transfer-failed") for k in kind], dtype=bool)
    aside: dict[str, int] = {}
    if (~keep).any():
        aside["not a transfer-done or transfer-failed event"] = int((~keep).sum())
    times = {c: numbers(table, c) for c in ("started_at", "transferred_at")}
    nbytes = numbers(table, "bytes")
    no_time = keep & ~(np.isfinite(times["started_at"]) & np.isfinite(times["transferred_at"]))
    if no_time.any():
        aside["no started_at or transferred_at"] = int(no_time.sum())
    no_bytes = keep & ~no_time & ~(np.isfinite(nbytes) & (nbytes >= 0))
    if no_bytes.any():
        aside["no bytes"] = int(no_bytes.sum())
    keep &= ~no_time & ~no_bytes
    backwards = keep & (times["transferred_at"] < times["started_at"])
    if backwards.any():
        aside["transferred_at before started_at"] = int(backwards.sum())
        keep &= ~backwards
    atlas = {s.atlas_site for s in platform.sites.values()}

    def site_of(rse: str | None) -> str | None:
        if rse is None:
            return None
        known = platform.rses.get(rse)
        site = known.atlas_site if known is not None else rse.rsplit("_", 1)[0]
        return site if site in atlas else None

    src = [site_of(r) for r in table.column("src_rse").to_pylist()]
    dst = [site_of(r) for r in table.column("dst_rse").to_pylist()]
    unknown = keep & np.array([s is None or d is None for s, d in zip(src, dst, strict=True)], dtype=bool)
    if unknown.any():
        aside["an RSE of a site the platform lacks"] = int(unknown.sum())
        keep &= ~unknown
    idx = np.flatnonzero(keep)
    if not len(idx):
        raise InputError(f"{source}: no replayable transfer (rows: {table.num_rows}; set aside: "
                         + ", ".join(f"{k} {v}" for k, v in aside.items()) + ")")
    start, end = times["started_at"][idx], times["transferred_at"][idx]
    order = idx[np.lexsort((end, start))]
    t0 = float(times["started_at"][order[0]])
    return TransferTrace(
        source=source, src=[src[i] for i in order], dst=[dst[i] for i in order], nbytes=nbytes[order],
        start_s=(times["started_at"][order] - t0) / 1000.0, end_s=(times["transferred_at"][order] - t0) / 1000.0,
        done=np.array([kind[i] == "transfer-done" for i in order], dtype=bool), set_aside=aside, notes=notes)


def replay_transfers(trace: TransferTrace, platform: Platform, scales: dict[str, float] | None = None,
                     flow_model: str = "linksharing", flow_factors: dict | None = None) -> np.ndarray:
    """Simulated network durations (s) of the trace's transfers on ``platform`` with the link ``scales``
    applied; NaN for failed attempts (cut at their recorded end)."""
    from gridtwin.ddm.rucio import FLOW_MODELS
    from gridtwin.kernel import Engine
    from gridtwin.network.flow import PlatformRoutes
    from gridtwin.scenario import apply_link_scales

    plat = copy.copy(platform)
    plat.links = dict(platform.links)
    apply_link_scales(plat, scales or {})
    engine = Engine()
    end = np.full(trace.n, np.nan)

    def completed(fid: int, now: float) -> None:
        end[fid] = now

    model = FLOW_MODELS[flow_model](engine, completed, **(flow_factors or {}))
    routes = PlatformRoutes(plat)
    src, dst, nbytes, done = trace.src, trace.dst, trace.nbytes.tolist(), trace.done.tolist()

    def start(i: int) -> None:
        model.start(i, routes.route(src[i], dst[i]), nbytes[i])

    def cut(i: int) -> None:
        if np.isnan(end[i]):
            model.cancel(i)
            end[i] = np.inf  # cut, not completed

    for i, (t0, t1) in enumerate(zip(trace.start_s.tolist(), trace.end_s.tolist(), strict=True)):
        engine.schedule_at(t0, start, i)
        if not done[i]:
            engine.schedule_at(t1, cut, i)
    engine.run()
    out = np.rint((end - trace.start_s) * 1000.0) / 1000.0  # the record's resolution: whole milliseconds
    out[~trace.done] = np.nan
    return out


def link_loss(sim: np.ndarray, trace: TransferTrace, links: list[str]) -> tuple[float, dict[str, dict]]:
    """Sum over ``links`` of (share of done transfers) x the mean |log(simulated / recorded duration)|, transfer
    by transfer (each recorded transfer is replayed on its own, so they pair up), and the numbers per link:
    that mean, the median ratio, and the distribution comparison (medians, KS, Wasserstein)."""
    from gridtwin.replay.compare import metric_stats

    keys = np.array(trace.link_keys(), dtype=object)
    rec = trace.durations()
    total = max(int(trace.done.sum()), 1)
    loss, per = 0.0, {}
    for key in links:
        m = (keys == key) & trace.done
        st = metric_stats(sim[m], rec[m])
        ok = m & np.isfinite(sim) & (sim > 0) & (rec > 0)
        log_ratio = np.log(sim[ok] / rec[ok])
        st["mean_abs_log_ratio"] = float(np.mean(np.abs(log_ratio))) if ok.any() else float("nan")
        st["median_ratio"] = float(np.exp(np.median(log_ratio))) if ok.any() else float("nan")
        if ok.any():
            loss += m.sum() / total * st["mean_abs_log_ratio"]
        per[key] = st
    return loss, per


def busy_links(trace: TransferTrace, min_transfers: int = MIN_TRANSFERS) -> list[str]:
    """Links with at least ``min_transfers`` done transfers, busiest first (ties by name)."""
    keys, counts = np.unique(np.array(trace.link_keys(), dtype=object)[trace.done], return_counts=True)
    return [str(k) for c, k in sorted(zip((-counts).tolist(), keys.tolist(), strict=True)) if -c >= min_transfers]

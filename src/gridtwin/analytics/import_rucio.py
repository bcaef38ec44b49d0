"""Import real Rucio transfer events (hermes messages or MONIT-enriched documents) into the ``TRANSFERS`` table.

One JSON object per line (``.json`` / ``.jsonl``, gzip-compressed or not: detected from the bytes). Each
line is recognised on its own, so one file may mix the forms:

* a hermes envelope ``{"event_type": ..., "payload": {...}, "created_at": ...}`` (the payload may also be
  a JSON string, as in Rucio's ``messages`` table); the request's ``created_at`` is the payload's;
* a bare hermes payload with hyphenated keys (``request-id``, ``src-rse``, ...) and an ``event_type``;
* a MONIT-enriched document, nested ``{"data": {...}, "metadata": {...}}`` or flattened with dotted keys
  (``"data.src_rse"``), possibly inside an OpenSearch hit's ``_source``.

Only ``transfer-done`` and ``transfer-failed`` are kept; other event types are counted in the notes.
Keys have hyphens turned into underscores; times may be ``str(datetime)`` (naive = UTC), ISO 8601 with
``T`` / ``Z`` / an offset, or epoch numbers (milliseconds, as MONIT writes them; numbers below 1e11 are
taken as seconds). ``bytes`` falls back to ``file-size``; a missing ``duration`` is recomputed from
started_at / transferred_at (whole seconds, -1 when unknown). Columns the source lacks are null.

A line that cannot become a row is set aside in ``rejected`` with one of these reasons: ``not JSON``,
``not an object``, ``missing field`` (event_type, request_id, name, src_rse, dst_rse), ``wrong type``,
``out of range``, ``negative size``, ``unparseable date``, ``end before start``, ``duplicate request_id``
(the same request id and event type met earlier in the file; the first one is kept).
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from gridtwin.analytics.importing import ImportResult, InputFileError, Rejected
from gridtwin.record.schema import TRANSFERS

KEPT = ("transfer-done", "transfer-failed")
REQUIRED = ("request_id", "name", "src_rse", "dst_rse")
STRINGS = ("previous_request_id", "scope", "dataset", "src_type", "dst_type", "activity", "reason",
           "transfer_link")
TIMES = ("created_at", "submitted_at", "started_at", "transferred_at", "staging_started_at",
         "staging_finished_at")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
_INT64 = 2**63 - 1
_INT32 = 2**31 - 1


class _Bad(Exception):
    """A row-level problem: the column at fault (or None) and the short reason."""

    def __init__(self, column: str | None, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def _ms(value: Any, column: str) -> int | None:
    """Epoch milliseconds of a time value, None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _Bad(column, "unparseable date")
    if isinstance(value, str):
        s = value.strip()
        if s.isdigit():
            return _ms(int(s), column)
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            raise _Bad(column, "unparseable date") from None
        td = dt - _EPOCH_NAIVE if dt.tzinfo is None else dt - _EPOCH
        return td.days * 86_400_000 + td.seconds * 1000 + td.microseconds // 1000
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise _Bad(column, "unparseable date")
        ms = round(value * 1000) if abs(value) < 1e11 else round(value)
        if abs(ms) > _MAX_MS:
            raise _Bad(column, "unparseable date")
        return int(ms)
    raise _Bad(column, "unparseable date")


def _int(value: Any, column: str, limit: int = _INT64) -> int | None:
    """An integer from an int, an integral float or a numeric string; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _Bad(column, "wrong type")
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            raise _Bad(column, "wrong type") from None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise _Bad(column, "wrong type")
        value = int(value)
    if not isinstance(value, int):
        raise _Bad(column, "wrong type")
    if abs(value) > limit:
        raise _Bad(column, "out of range")
    return value


def _str(value: Any, column: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _Bad(column, "wrong type")


def _fields(obj: dict) -> tuple[str, dict[str, Any]]:
    """The form of a document and its fields with underscore keys (event_type included when known)."""
    if isinstance(obj.get("_source"), dict):
        obj = obj["_source"]
    if isinstance(obj.get("data"), dict):
        form, src = "MONIT nested", obj["data"]
    elif any(k.startswith("data.") for k in obj):
        form, src = "MONIT dotted", {k[5:]: v for k, v in obj.items() if k.startswith("data.")}
    elif "payload" in obj:
        payload = obj["payload"]
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except (ValueError, RecursionError):
                raise _Bad("payload", "not JSON") from None
        if not isinstance(payload, dict):
            raise _Bad("payload", "not an object")
        form, src = "hermes envelope", dict(payload)
        if obj.get("event_type") is not None:
            src["event_type"] = obj["event_type"]
    else:
        form, src = "hermes payload", obj
    return form, {k.replace("-", "_"): v for k, v in src.items()}


def _event_type(value: Any) -> str:
    if value is None or value == "":
        raise _Bad("event_type", "missing field")
    if not isinstance(value, str):
        raise _Bad("event_type", "wrong type")
    return value.strip().lower().replace("_", "-")


def _row(f: dict[str, Any], notes: Counter) -> dict[str, Any]:
    """The TRANSFERS row of one kept event's fields (its event_type already canonical)."""
    row: dict[str, Any] = {"event_type": f["event_type"]}
    for col in REQUIRED:
        v = f.get(col)
        if v is None or v == "":
            raise _Bad(col, "missing field")
        row[col] = _str(v, col).strip()
    for col in STRINGS:
        row[col] = _str(f.get(col), col)
    if row["previous_request_id"] is not None:
        row["previous_request_id"] = row["previous_request_id"].strip() or None
    size_col = "bytes" if f.get("bytes") not in (None, "") else "file_size"
    size = _int(f.get(size_col), size_col)
    if size is not None and size < 0:
        raise _Bad(size_col, "negative size")
    row["bytes"] = size
    for col in TIMES:
        row[col] = _ms(f.get(col), col)
    start, end = row["started_at"], row["transferred_at"]
    if start is not None and end is not None and end < start:
        raise _Bad("transferred_at", "end before start")
    duration = f.get("duration")
    if isinstance(duration, float) and math.isfinite(duration):
        duration = int(duration)  # MONIT may store whole seconds as a float; keep the whole part
    duration = _int(duration, "duration")
    if duration is None:
        duration = (end - start) // 1000 if start is not None and end is not None else -1
    row["duration"] = duration
    row["retry_count"] = _int(f.get("retry_count"), "retry_count", _INT32)
    try:
        row["rule_id"] = _int(f.get("rule_id"), "rule_id")
    except _Bad:  # Rucio's rule ids are UUID hex strings; the record table has integer ids
        row["rule_id"] = None
        notes["rule_id not an integer, set to null"] += 1
    return row


def _lines(path: Path):
    """(line number, bytes) of the file, gunzipped when it is gzip; read errors become InputFileError."""
    with path.open("rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as fh:
            yield from enumerate(fh, 1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise InputFileError(f"{path}: gzip corruption ({e})") from None
    except OSError as e:
        raise InputFileError(f"{path}: cannot read: {e}") from None


def import_rucio_events(path: Path) -> ImportResult:
    """Read one file of Rucio transfer events into a ``TRANSFERS`` table; see the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    rejected = Rejected(str(path))
    cols: dict[str, list] = {name: [] for name in TRANSFERS.names}
    seen: set[tuple[str, str]] = set()
    forms: Counter = Counter()
    skipped: Counter = Counter()
    notes: Counter = Counter()
    blank = events = 0
    for lineno, raw in _lines(path):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputFileError(f"{path}: line {lineno}: undecodable bytes at position {e.start} "
                                 f"(not UTF-8)") from None
        if lineno == 1:
            text = text.lstrip("\ufeff")
        text = text.rstrip("\r\n")
        if not text.strip():
            blank += 1
            continue
        events += 1
        try:
            try:
                obj = json.loads(text)
            except (ValueError, RecursionError):
                raise _Bad(None, "not JSON") from None
            if not isinstance(obj, dict):
                raise _Bad(None, "not an object")
            form, f = _fields(obj)
            etype = _event_type(f.get("event_type"))
            if etype not in KEPT:
                skipped[etype] += 1
                continue
            f["event_type"] = etype
            row = _row(f, notes)
            key = (row["request_id"], etype)
            if key in seen:
                raise _Bad("request_id", "duplicate request_id")
        except _Bad as bad:
            rejected.add(lineno, bad.column, bad.reason, text)
            continue
        seen.add(key)
        forms[form] += 1
        for name, values in cols.items():
            values.append(row[name])
    if events == 0:
        raise InputFileError(f"{path}: empty file (no events)")
    table = pa.table({name: pa.array(values, TRANSFERS.field(name).type) for name, values in cols.items()},
                     schema=TRANSFERS)
    out = [f"{n} {form} events imported" for form, n in sorted(forms.items())]
    if skipped:
        out.append(f"{sum(skipped.values())} events skipped by type: "
                   + ", ".join(f"{t}={n}" for t, n in sorted(skipped.items())))
    if blank:
        out.append(f"{blank} blank lines skipped")
    out += [f"{n} rows: {what}" for what, n in sorted(notes.items())]
    return ImportResult(source=path, table=table, rejected=rejected.table(), notes=out)

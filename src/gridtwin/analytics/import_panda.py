"""Import real PanDA job records (CSV, CSV.gz or Parquet) into the ``jobs`` table.

:func:`import_panda_jobs` reads the dumps people bring (reference ``panda_rucio.md`` sections 1 and 4):

- column names in either case (Oracle exports are UPPERCASE, the analytics pipeline lower-case);
  a UTF-8 byte-order mark; quoted fields;
- dates in ISO form (``2025-01-20 18:10:40``, with ``T``, fractional seconds, ``Z`` or ``+01:00``)
  or US form (``1/27/2024 12:27``, ``1/27/2024 12:27:05``), in UTC unless an offset is given, or as Unix
  epoch seconds or milliseconds (a numeric column, or text that is a plain number such as ``1737396640``,
  ``1737396640.5`` or ``1737396640500``; numbers of at least 1e11 are milliseconds; outside 1973-03-03 to
  2199 is an unparseable date); any time on
  1970-01-01 (PanDA's "unset" sentinel) and empty fields (also ``NULL``, ``None``, ``NaN``, ``\\N``) are null;
- numbers written as floats (``10.0``) in integer columns when they are integral;
- PanDA units kept as they are: memory in kB, durations in seconds, sizes in bytes;
- ``pilottiming`` (``getJob|stageIn|exe|stageOut|setup``) split into ``timegetjob``, ``timestagein``,
  ``timeexe``, ``timestageout``, ``timesetup``; some dumps carry a sixth part, which is dropped (the
  summary notes how many rows had one); dumps that already have the split columns are used as they are.

The output has the :data:`~gridtwin.record.schema.JOBS` columns in order (null when the source lacks
them), then :data:`EXTRA_COLUMNS`: the five timing columns and the PanDA columns ``jobname``,
``computingelement``, ``assignedpriority`` and ``jobdispatchererrorcode``. ``wall_time`` =
endtime - starttime and ``queue_time`` = starttime - creationtime (seconds) are derived from the times;
when those are missing a source ``wall_time``/``job_walltime`` or ``queue_time``/``job_queuetime`` column
is used. ``cpu_eff`` = cpuconsumptiontime / wall_time (not divided by cores). Other source columns are
ignored and listed in the notes.

A row that cannot become a record goes to ``rejected`` with a short reason (see :data:`REASONS`) and
is left out; the first problem found in a row is the one reported. ``line`` is the 1-based line of the
CSV file (header = line 1; the first line of a record spanning several lines) or, for Parquet, the
1-based row number. A file that cannot be read at all raises :class:`InputFileError`.
"""

from __future__ import annotations

import csv
import gc
import gzip
import io
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gridtwin.analytics.importing import ImportResult, InputFileError, Rejected
from gridtwin.record.schema import JOBS

TIMING_COLUMNS = ("timegetjob", "timestagein", "timeexe", "timestageout", "timesetup")
"""The parts of ``pilottiming`` in PanDA's order (seconds)."""

EXTRA_COLUMNS = pa.schema(
    [(name, pa.int64()) for name in TIMING_COLUMNS]
    + [
        ("jobname", pa.string()),
        ("computingelement", pa.string()),
        ("assignedpriority", pa.int32()),
        ("jobdispatchererrorcode", pa.int32()),
    ]
)
IMPORTED_JOBS = pa.schema(list(JOBS) + list(EXTRA_COLUMNS))
"""Schema of an imported jobs table: ``JOBS`` then :data:`EXTRA_COLUMNS`."""

REQUIRED = ("pandaid", "creationtime", "computingsite", "jobstatus")

REASONS = (
    "wrong number of fields",
    "malformed csv",
    "missing value",
    "not a number",
    "not an integer",
    "out of range",
    "negative size",
    "negative value",
    "unparseable date",
    "bad pilottiming",
    "end before start",
    "duplicate pandaid",
)
"""Every reason a row can be rejected for."""

_ALIASES = {"job_walltime": "wall_time", "job_queuetime": "queue_time"}
_SIZE_COLUMNS = {"inputfilebytes", "outputfilebytes"}
_NON_NEGATIVE = {
    "pandaid", "jeditaskid", "parentid", "attemptnr", "corecount", "actualcorecount", "cpuconsumptiontime",
    "hs06sec", "maxrss", "nevents", "ninputdatafiles", "noutputdatafiles", *TIMING_COLUMNS,
}
_NULL_WORDS = ("null", "none", "nan", "\\n")
_SENTINEL_MS = 86_400_000  # anything on 1970-01-01 is PanDA's "unset"
_ISO = (r"^(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})(?:[T ](?P<h>\d{1,2}):(?P<mi>\d{2})"
        r"(?::(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?)?\s*(?P<tz>[Zz]|UTC|[+-]\d{2}(?::?\d{2})?)?$")
_US = (r"^(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})(?:[T ](?P<h>\d{1,2}):(?P<mi>\d{2})"
       r"(?::(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?)?$")
_TZ = r"^(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})?$"
_FLOAT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_PLAIN_INT = r"^[+-]?\d{1,18}$"
_EPOCH_SECONDS = r"^\d+(\.\d+)?$"
_MIN_EPOCH_S = 100_000_000  # 1973-03-03: smaller plain numbers (e.g. 20250120) are not taken for epoch seconds
_MAX_EPOCH_S = 7_258_118_400  # 2200-01-01: later "seconds" are taken for milliseconds, or refused
_MIN_EPOCH_MS = 100_000_000_000  # 1973-03-03 in milliseconds (year 5138 in seconds: not a job's date)


class _Checks:
    """Marks rows bad, keeping the first problem found for each."""

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, dtype=bool)
        self.found: list[tuple[int, str | None, str]] = []

    def flag(self, mask: np.ndarray, column: str | None, reason: str) -> None:
        new = np.asarray(mask, dtype=bool) & ~self.bad
        if new.any():
            self.bad |= new
            self.found.extend((int(i), column, reason) for i in np.flatnonzero(new))


# ---------------------------------------------------------------------------------------------- reading


def _read_csv(path: Path, data: bytes, rejected: Rejected) -> tuple[dict[str, pa.Array], np.ndarray,
                                                                     Callable[[int], str]]:
    """Decode and split a CSV file: columns as strings, the first line of each record, a raw-text getter."""
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = e.start + bom
        line = data.count(b"\n", 0, offset) + 1
        raise InputFileError(f"{path.name}: line {line}: undecodable byte {data[offset:offset + 1]!r} "
                             f"at byte offset {offset} (expected UTF-8)") from None
    if not text.strip():
        raise InputFileError(f"{path.name}: empty file")

    if '"' not in text:
        return _read_plain_csv(path, text, rejected)
    physical: list[str] = []

    def feed():
        for ln in io.StringIO(text, newline=""):
            physical.append(ln)
            yield ln

    def raw(first: int, last: int) -> str:
        return "".join(physical[first - 1:last]).rstrip("\r\n")

    reader = csv.reader(feed())
    header: list[str] | None = None
    rows: list[list[str]] = []
    starts: list[int] = []
    ends: list[int] = []
    prev = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            first, prev = prev + 1, reader.line_num
            if header is None:
                raise InputFileError(f"{path.name}: line {first}: cannot read the header ({e})") from None
            rejected.add(first, None, "malformed csv", raw(first, prev))
            continue
        first, prev = prev + 1, reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if header is None:
            header = row
            continue
        if len(row) != len(header):
            rejected.add(first, None, "wrong number of fields", raw(first, prev))
            continue
        rows.append(row)
        starts.append(first)
        ends.append(prev)
    assert header is not None  # text has a non-blank line
    names = _column_names(path, header)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    cols = {name: pa.array(col, pa.string()) for name, col in zip(names, columns, strict=True)}
    return cols, np.asarray(starts, dtype=np.int64), lambda i: raw(starts[i], ends[i])


def _read_plain_csv(path: Path, text: str, rejected: Rejected) -> tuple[dict[str, pa.Array], np.ndarray,
                                                                       Callable[[int], str]]:
    """Fast path of :func:`_read_csv` for a file without quotes: every record is one line."""
    physical = re.split(r"\r\n|\r|\n", text)
    if physical and physical[-1] == "":
        physical.pop()
    rows = [ln.split(",") for ln in physical]
    blank = [not ln.strip() for ln in physical]
    first = blank.index(False)
    header = rows[first]
    widths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    ok = widths == len(header)
    ok[: first + 1] = False
    ok &= ~np.asarray(blank, dtype=bool)
    for i in np.flatnonzero(~ok):
        if i > first and not blank[i]:
            rejected.add(int(i) + 1, None, "wrong number of fields", physical[i])
    keep = np.flatnonzero(ok)
    names = _column_names(path, header)
    good = [rows[i] for i in keep]
    columns = list(zip(*good, strict=True)) if good else [() for _ in names]
    cols = {name: pa.array(col, pa.string()) for name, col in zip(names, columns, strict=True)}
    return cols, keep + 1, lambda i: physical[int(keep[i])]


def _column_names(path: Path, header: list[str]) -> list[str]:
    names = [h.strip().lstrip("\ufeff").strip().lower() for h in header]
    seen: set[str] = set()
    dups = sorted({n for n in names if n in seen or seen.add(n)})
    if dups:
        raise InputFileError(f"{path.name}: line 1: duplicate column(s) {', '.join(dups)}")
    return names


def _read_parquet(path: Path) -> tuple[dict[str, pa.Array], np.ndarray, Callable[[int], str]]:
    try:
        table = pq.read_table(path)
    except Exception as e:  # any reader failure is a file-level problem
        raise InputFileError(f"{path.name}: cannot read Parquet file ({type(e).__name__}: {e})") from None
    names = _column_names(path, table.column_names)
    cols = {}
    for name, col in zip(names, table.columns, strict=True):
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        cols[name] = arr
    table = table.rename_columns(names)
    lines = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return cols, lines, lambda i: str(table.slice(i, 1).to_pylist()[0])


# ---------------------------------------------------------------------------------------------- converting


def _clean_strings(arr: pa.Array) -> pa.Array:
    """Strings trimmed, with the empty and null-words turned into null."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    arr = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    empty = pc.or_(pc.equal(arr, ""), pc.is_in(pc.utf8_lower(arr), pa.array(_NULL_WORDS)))
    return pc.if_else(empty, pa.scalar(None, pa.string()), arr)


def _np_bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _to_int(arr: pa.Array, column: str, checks: _Checks) -> tuple[np.ndarray, np.ndarray]:
    """Integer values and a null mask; text that is not an integral number is flagged."""
    n = len(arr)
    if pa.types.is_integer(arr.type) or pa.types.is_boolean(arr.type):
        null = _np_bool(pc.is_null(arr))
        return np.asarray(pc.fill_null(arr.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)), null
    if pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type):
        f = pc.fill_null(arr.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
        null = np.isnan(f)
        return _from_float(f, null, column, checks)
    s = _clean_strings(arr)
    null = _np_bool(pc.is_null(s))
    plain = _np_bool(pc.match_substring_regex(s, _PLAIN_INT))
    number = _np_bool(pc.match_substring_regex(s, _FLOAT))
    checks.flag(~null & ~number, column, "not a number")
    values = np.zeros(n, dtype=np.int64)
    if plain.any():
        values[plain] = pc.cast(pc.filter(s, pa.array(plain)), pa.int64()).to_numpy(zero_copy_only=False)
    other = number & ~plain
    if other.any():
        f = np.full(n, np.nan)
        f[other] = pc.cast(pc.filter(s, pa.array(other)), pa.float64()).to_numpy(zero_copy_only=False)
        fv, _ = _from_float(f, ~other, column, checks)
        values[other] = fv[other]
    return values, null | (~number)


def _from_float(f: np.ndarray, null: np.ndarray, column: str, checks: _Checks) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        big = ~null & ~(np.abs(f) < 9.2e18)
        frac = ~null & ~big & (np.floor(f) != f)
    checks.flag(big, column, "out of range")
    checks.flag(frac, column, "not an integer")
    values = np.where(null | big | frac, 0, f).astype(np.int64)
    return values, null | big | frac


def _to_float(arr: pa.Array, column: str, checks: _Checks) -> tuple[np.ndarray, np.ndarray]:
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type):
        f = pc.fill_null(arr.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
        return f, np.isnan(f)
    s = _clean_strings(arr)
    null = _np_bool(pc.is_null(s))
    number = _np_bool(pc.match_substring_regex(s, _FLOAT))
    checks.flag(~null & ~number, column, "not a number")
    f = np.full(len(arr), np.nan)
    if number.any():
        f[number] = pc.cast(pc.filter(s, pa.array(number)), pa.float64()).to_numpy(zero_copy_only=False)
    return f, ~number


def _field_ints(struct: pa.Array, name: str) -> np.ndarray:
    field = pc.fill_null(pc.struct_field(struct, name), "")
    field = pc.if_else(pc.equal(field, ""), "0", field)
    return np.asarray(field.cast(pa.int64()).to_numpy(zero_copy_only=False))


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _to_ms(arr: pa.Array, column: str, checks: _Checks) -> tuple[np.ndarray, np.ndarray]:
    """Epoch milliseconds (UTC) and a null mask; the 1970-01-01 sentinel is null. Numbers (a numeric
    column, or text that is a plain unsigned number) are Unix epoch seconds."""
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type):
        f = np.asarray(pc.fill_null(arr.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False))
        return _epoch_seconds_ms(f, np.isnan(f), column, checks)
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        ts = arr.cast(pa.timestamp(arr.type.unit if pa.types.is_timestamp(arr.type) else "ms",
                                   tz=getattr(arr.type, "tz", None) or "UTC"))
        ms = pc.cast(ts, pa.timestamp("ms", tz="UTC"), safe=False).cast(pa.int64())
        null = _np_bool(pc.is_null(ms))
        values = np.asarray(pc.fill_null(ms, 0).to_numpy(zero_copy_only=False))
    else:
        s = _clean_strings(arr)
        null = _np_bool(pc.is_null(s))
        epoch = _np_bool(pc.match_substring_regex(s, _EPOCH_SECONDS))
        if epoch.any():
            f = np.full(len(s), np.nan)
            f[epoch] = pc.cast(pc.filter(s, pa.array(epoch)), pa.float64()).to_numpy(zero_copy_only=False)
            ev, enull = _epoch_seconds_ms(f, ~epoch, column, checks)
            if epoch.all():
                return ev, enull
        iso = pc.extract_regex(s, _ISO)
        us = pc.extract_regex(s, _US)
        is_iso = _np_bool(pc.is_valid(iso))
        is_us = _np_bool(pc.is_valid(us)) & ~is_iso
        parts = {k: np.where(is_iso, _field_ints(iso, k), _field_ints(us, k)) for k in ("y", "mo", "d", "h", "mi", "s")}
        frac = pc.fill_null(pc.struct_field(iso, "f"), "")
        frac_us = pc.fill_null(pc.struct_field(us, "f"), "")
        frac = pc.if_else(pa.array(is_iso), frac, frac_us)
        frac_ms = np.asarray(pc.utf8_rpad(pc.utf8_slice_codeunits(frac, 0, 3), 3, "0").cast(pa.int64())
                             .to_numpy(zero_copy_only=False))
        tz = pc.extract_regex(pc.fill_null(pc.struct_field(iso, "tz"), ""), _TZ)
        has_tz = _np_bool(pc.is_valid(tz)) & is_iso
        sign = np.where(_np_bool(pc.equal(pc.struct_field(tz, "sign"), "-")), -1, 1)
        offset = np.where(has_tz, sign * (_field_ints(tz, "hh") * 3600 + _field_ints(tz, "mm") * 60), 0)
        y, mo, d, h, mi, sec = (parts[k] for k in ("y", "mo", "d", "h", "mi", "s"))
        leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
        dim = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(mo - 1, 0, 11)] + (leap & (mo == 2))
        ok = (is_iso | is_us) & (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= dim) & (h < 24) & (mi < 60) & (sec < 60)
        checks.flag(~null & ~ok & ~epoch, column, "unparseable date")
        secs = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset
        values = np.where(ok, secs * 1000 + frac_ms, 0)
        null = null | ~ok
        sentinel = ok & (y == 1970) & (mo == 1) & (d == 1)
        null = null | sentinel
        values = np.where(null, 0, values)
        if epoch.any():
            values = np.where(epoch, ev, values)
            null = np.where(epoch, enull, null)
        return values, null
    sentinel = ~null & (values >= 0) & (values < _SENTINEL_MS)
    null = null | sentinel
    return np.where(null, 0, values), null


def _epoch_seconds_ms(f: np.ndarray, null: np.ndarray, column: str,
                      checks: _Checks) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds or milliseconds (floats, NaN = null) as epoch milliseconds and a null mask. A value
    of at least 1e11 is taken for milliseconds. A value on 1970-01-01 is the "unset" sentinel (null); one
    from 1970-01-02 to 1973-03-02, negative or from year 2200 on is an unparseable date."""
    with np.errstate(invalid="ignore"):
        millis = ~null & (f >= _MIN_EPOCH_MS) & (f < _MAX_EPOCH_S * 1000.0)  # Spark and Elasticsearch dumps
        f = np.where(millis, f / 1000.0, f)
        sentinel = ~null & (f >= 0) & (f < _SENTINEL_MS / 1000)
        bad = ~null & ~sentinel & ~((f >= _MIN_EPOCH_S) & (f < _MAX_EPOCH_S))
    checks.flag(bad, column, "unparseable date")
    null = null | bad
    ms = np.where(null, 0, np.round(np.where(null, 0.0, f) * 1000.0)).astype(np.int64)
    null = null | (ms < _SENTINEL_MS)
    return np.where(null, 0, ms), null


def _split_timing(arr: pa.Array, checks: _Checks) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int]:
    """The five pilottiming parts, and how many rows had more than five."""
    s = _clean_strings(arr)
    n = len(s)
    lists = pc.split_pattern(pc.fill_null(s, ""), "|")
    lengths = np.asarray(pc.list_value_length(lists).to_numpy(zero_copy_only=False))
    null = _np_bool(pc.is_null(s))
    checks.flag(~null & (lengths < 5), "pilottiming", "bad pilottiming")
    usable = ~null & (lengths >= 5)
    offsets = np.asarray(lists.offsets.to_numpy(zero_copy_only=False))[:-1]
    out = {}
    for i, name in enumerate(TIMING_COLUMNS):
        idx = pa.array(np.where(usable, offsets + i, 0), mask=~usable)
        part = pc.take(lists.values, idx)
        probe = _Checks(n)
        values, pnull = _to_int(part, "pilottiming", probe)
        bad = np.zeros(n, dtype=bool)
        for row, _col, _reason in probe.found:
            bad[row] = True
        checks.flag(bad, "pilottiming", "bad pilottiming")
        out[name] = (values, pnull | ~usable)
    return out, int((usable & (lengths > 5)).sum())


# ---------------------------------------------------------------------------------------------- the importer


def load_table_file(path: Path, rejected: Rejected, required: tuple[str, ...] = ()):
    """The source columns of a ``.csv``, ``.csv.gz`` or ``.parquet`` file (lower-case names), the line of
    each row, a raw-text getter, and the file kind ("csv" or "parquet"); malformed CSV rows go to
    ``rejected``. InputFileError for a missing, empty, unreadable or unsupported file, or one without
    the ``required`` columns."""
    cols, lines, raw, kind = _load_table_file(path, rejected)
    missing = [c for c in required if c not in cols]
    if missing:
        where = "line 1: " if kind == "csv" else ""
        raise InputFileError(f"{path.name}: {where}missing required column(s) {', '.join(missing)}")
    return cols, lines, raw, kind


def _load_table_file(path: Path, rejected: Rejected):
    if not path.is_file():
        raise InputFileError(f"{path.name}: no such file ({path})")
    lower = path.name.lower()
    if lower.endswith(".parquet"):
        return (*_read_parquet(path), "parquet")
    if not lower.endswith((".csv", ".csv.gz")):
        raise InputFileError(f"{path.name}: unsupported file type (expected .csv, .csv.gz or .parquet)")
    try:
        data = path.read_bytes()
        if lower.endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise InputFileError(f"{path.name}: cannot read ({e})") from None
    if not data.strip() or data.strip() == b"\xef\xbb\xbf":
        raise InputFileError(f"{path.name}: empty file")
    gc_was_on = gc.isenabled()
    gc.disable()  # millions of small lists of strings: the cyclic collector would only slow this down
    try:
        return (*_read_csv(path, data, rejected), "csv")
    finally:
        if gc_was_on:
            gc.enable()


def import_panda_jobs(path: Path) -> ImportResult:
    """Read PanDA job records from ``path`` (``.csv``, ``.csv.gz`` or ``.parquet``) into the jobs table.

    Raises :class:`InputFileError` when the file as a whole cannot be read (missing, empty, undecodable,
    unreadable Parquet, a required column absent); row problems go to ``rejected``.
    """
    path = Path(path)
    rejected = Rejected(str(path))
    cols, lines, raw, kind = load_table_file(path, rejected, REQUIRED)
    for alias, target in _ALIASES.items():
        if alias in cols and target not in cols:
            cols[target] = cols[alias]
    known = set(IMPORTED_JOBS.names) | set(_ALIASES)
    ignored = sorted(c for c in cols if c not in known)
    n = len(lines)
    checks = _Checks(n)
    out: dict[str, pa.Array] = {}
    ints: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    times: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    floats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    notes: list[str] = []

    for field in IMPORTED_JOBS:
        name, typ = field.name, field.type
        if name in TIMING_COLUMNS or name not in cols:
            continue
        arr = cols[name]
        if pa.types.is_string(typ):
            out[name] = _clean_strings(arr)
            if name in REQUIRED:
                checks.flag(_np_bool(pc.is_null(out[name])), name, "missing value")
        elif pa.types.is_integer(typ):
            values, null = _to_int(arr, name, checks)
            if name in REQUIRED:
                checks.flag(null, name, "missing value")
            if pa.types.is_int32(typ):
                checks.flag(~null & ((values < -(2**31)) | (values >= 2**31)), name, "out of range")
            if name in _SIZE_COLUMNS:
                checks.flag(~null & (values < 0), name, "negative size")
            elif name in _NON_NEGATIVE:
                checks.flag(~null & (values < 0), name, "negative value")
            ints[name] = (values, null)
        elif pa.types.is_timestamp(typ):
            values, null = _to_ms(arr, name, checks)
            if name in REQUIRED:
                checks.flag(null, name, "missing value")
            times[name] = (values, null)
        elif pa.types.is_floating(typ):
            floats[name] = _to_float(arr, name, checks)

    if all(t in cols for t in TIMING_COLUMNS):
        timing = {}
        for name in TIMING_COLUMNS:
            timing[name] = _to_int(cols[name], name, checks)
            checks.flag(~timing[name][1] & (timing[name][0] < 0), name, "negative value")
    elif "pilottiming" in cols:
        timing, extra_parts = _split_timing(cols["pilottiming"], checks)
        if extra_parts:
            notes.append(f"{extra_parts} rows had more than 5 pilottiming parts: kept the first five "
                         "(getJob|stageIn|exe|stageOut|setup)")
    else:
        timing = {}
    ints.update(timing)

    # derived durations
    def derived(a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        (va, na), (vb, nb) = times.get(a, (None, None)), times.get(b, (None, None))
        if va is None or vb is None:
            return np.zeros(n), np.ones(n, dtype=bool)
        return (vb - va) / 1000.0, na | nb

    wall, wall_null = derived("starttime", "endtime")
    checks.flag(~wall_null & (wall < 0), "endtime", "end before start")
    queue, queue_null = derived("creationtime", "starttime")
    for name, (v, null) in (("wall_time", (wall, wall_null)), ("queue_time", (queue, queue_null))):
        if name in floats:
            sv, snull = floats[name]
            v, null = np.where(null, sv, v), null & snull
        floats[name] = (v, null)
    wall, wall_null = floats["wall_time"]
    if "cpuconsumptiontime" in ints:
        cpu, cpu_null = ints["cpuconsumptiontime"]
        eff_null = wall_null | cpu_null | ~(wall > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            eff = np.where(eff_null, 0.0, cpu / np.where(eff_null, 1.0, wall))
        if "cpu_eff" in floats:
            sv, snull = floats["cpu_eff"]
            eff, eff_null = np.where(eff_null, sv, eff), eff_null & snull
        floats["cpu_eff"] = (eff, eff_null)

    # duplicates among otherwise good rows: the first one is kept
    pid, _ = ints["pandaid"]
    good = np.flatnonzero(~checks.bad)
    _, first = np.unique(pid[good], return_index=True)
    dup = np.zeros(n, dtype=bool)
    dup[good] = True
    dup[good[first]] = False
    checks.flag(dup, "pandaid", "duplicate pandaid")

    # rejects, in line order
    rejected.add_found(checks.found, lines, raw)

    keep = pa.array(~checks.bad)
    arrays = []
    for field in IMPORTED_JOBS:
        name, typ = field.name, field.type
        if name in out:
            arr = out[name]
        elif name in ints:
            v, null = ints[name]
            arr = pa.array(v, pa.int64(), mask=null).cast(typ)
        elif name in times:
            v, null = times[name]
            arr = pa.array(v, pa.int64(), mask=null).cast(typ)
        elif name in floats:
            v, null = floats[name]
            arr = pa.array(v, pa.float64(), mask=null)
        else:
            arr = pa.nulls(n, typ)
        arrays.append(pc.filter(arr, keep))
    table = pa.Table.from_arrays(arrays, schema=IMPORTED_JOBS)
    if ignored:
        notes.append(f"ignored columns: {', '.join(ignored)}")
    if kind == "parquet":
        notes.append("rejected line numbers are 1-based Parquet row numbers")
    return ImportResult(source=path, table=table, rejected=rejected.table(), notes=notes)

"""Import PanDA job files (a FILESTABLE4-like dump: CSV, CSV.gz or Parquet) into the ``job_files`` table.

:func:`import_panda_files` reads the file rows of PanDA jobs (one row per input, output or log file of a
job) with the conventions of :mod:`gridtwin.analytics.import_panda`, whose readers it uses:

- column names in either case; a UTF-8 byte-order mark; quoted fields;
- empty fields (also ``NULL``, ``None``, ``NaN``, ``\\N``) are null;
- ``type`` is ``input``, ``output`` or ``log`` in any case (stored lower-case); anything else is
  rejected (PanDA's ``pseudo_input`` too);
- ``fsize`` in bytes, as PanDA writes it.

The columns ``pandaid``, ``lfn`` and ``type`` are required; ``jeditaskid``, ``scope``, ``fsize``,
``dataset``, ``dispatchdblock`` and ``destinationse`` are null when the source lacks them. The output has
exactly the :data:`~gridtwin.record.schema.JOB_FILES` columns; other source columns are ignored and listed
in the notes.

A row that cannot become a record goes to ``rejected`` with a short reason (see :data:`REASONS`); the first
problem found in a row is the one reported. A row repeating the (pandaid, lfn, type) of an earlier good
row is a ``duplicate file``. ``line`` is the 1-based line of the CSV file (header = line 1) or, for
Parquet, the 1-based row number. A file that cannot be read at all raises :class:`InputFileError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridtwin.analytics.import_panda import _Checks, _clean_strings, _np_bool, _to_int, load_table_file
from gridtwin.analytics.importing import ImportResult, Rejected
from gridtwin.record.schema import JOB_FILES

REQUIRED = ("pandaid", "lfn", "type")
FILE_TYPES = ("input", "output", "log")
"""The accepted values of ``type`` (compared case-insensitively)."""

REASONS = (
    "wrong number of fields",
    "malformed csv",
    "missing value",
    "not a number",
    "not an integer",
    "out of range",
    "negative value",
    "negative size",
    "unknown type",
    "duplicate file",
)
"""Every reason a row can be rejected for."""


def import_panda_files(path: Path) -> ImportResult:
    """Read PanDA job-file rows from ``path`` (``.csv``, ``.csv.gz`` or ``.parquet``) into ``job_files``.

    Raises :class:`InputFileError` when the file as a whole cannot be read (missing, empty, undecodable,
    unreadable Parquet, a required column absent); row problems go to ``rejected``.
    """
    path = Path(path)
    rejected = Rejected(str(path))
    cols, lines, raw, kind = load_table_file(path, rejected, REQUIRED)
    ignored = sorted(c for c in cols if c not in JOB_FILES.names)
    n = len(lines)
    checks = _Checks(n)
    arrays: dict[str, pa.Array] = {}

    for field in JOB_FILES:
        name = field.name
        if name not in cols:
            continue
        if pa.types.is_string(field.type):
            arr = _clean_strings(cols[name])
            if name in REQUIRED:
                checks.flag(_np_bool(pc.is_null(arr)), name, "missing value")
            if name == "type":
                arr = pc.utf8_lower(arr)
                checks.flag(~_np_bool(pc.is_null(arr)) & ~_np_bool(pc.is_in(arr, pa.array(FILE_TYPES))),
                            name, "unknown type")
        else:
            values, null = _to_int(cols[name], name, checks)
            if name in REQUIRED:
                checks.flag(null, name, "missing value")
            checks.flag(~null & (values < 0), name, "negative size" if name == "fsize" else "negative value")
            arr = pa.array(values, pa.int64(), mask=null)
        arrays[name] = arr

    # duplicates among otherwise good rows: the first one is kept
    good = np.flatnonzero(~checks.bad)
    if len(good):
        sel = pa.array(good)
        keys = [np.asarray(pc.fill_null(pc.take(arrays["pandaid"], sel), 0).to_numpy(zero_copy_only=False))]
        for name in ("lfn", "type"):
            codes = pc.take(arrays[name], sel).dictionary_encode().indices
            keys.append(np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int64))
        _, first = np.unique(np.stack(keys, axis=1), axis=0, return_index=True)
        dup = np.zeros(n, dtype=bool)
        dup[good] = True
        dup[good[first]] = False
        checks.flag(dup, "lfn", "duplicate file")

    # rejects, in line order
    rejected.add_found(checks.found, lines, raw)

    keep = pa.array(~checks.bad)
    out = [pc.filter(arrays[f.name], keep) if f.name in arrays else pa.nulls(int((~checks.bad).sum()), f.type)
           for f in JOB_FILES]
    table = pa.Table.from_arrays(out, schema=JOB_FILES)
    notes: list[str] = []
    if ignored:
        notes.append(f"ignored columns: {', '.join(ignored)}")
    if kind == "parquet":
        notes.append("rejected line numbers are 1-based Parquet row numbers")
    return ImportResult(source=path, table=table, rejected=rejected.table(), notes=notes)

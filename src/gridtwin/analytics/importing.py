"""What every importer shares: rows set aside with their reason, the import summary, and the error
an importer raises when a whole file cannot be read.

An importer never drops a row silently: a row it cannot turn into a record goes to the ``rejected``
table (file, line, column, reason, the raw text) and is counted in the summary. A file it cannot read
at all (missing, empty, undecodable, a required column absent) is an :class:`InputFileError` naming the
file, and the line and column when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from gridtwin.errors import GridtwinError

REJECTED = pa.schema(
    [
        ("source_file", pa.string()),
        ("line", pa.int64()),
        ("column", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),
    ]
)
"""Rows an importer set aside: ``line`` is 1-based in the source file (the header is line 1 of a CSV);
``column`` is the offending column, or null when the whole row is at fault."""


class InputFileError(GridtwinError):
    """A whole input file cannot be imported; the message names the file (and line and column)."""


@dataclass
class Rejected:
    """Collects set-aside rows while an importer runs."""

    source_file: str
    lines: list[int] = field(default_factory=list)
    columns: list[str | None] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    raws: list[str | None] = field(default_factory=list)

    def add(self, line: int, column: str | None, reason: str, raw: str | None = None) -> None:
        self.lines.append(int(line))
        self.columns.append(column)
        self.reasons.append(reason)
        self.raws.append(None if raw is None else raw[:2000])

    def add_found(self, found, lines, raw) -> None:
        """Add ``(row index, column, reason)`` problems, then keep every entry in line order (stable)."""
        for i, column, reason in found:
            self.add(int(lines[i]), column, reason, raw(i))
        order = sorted(range(len(self.lines)), key=self.lines.__getitem__)
        for attr in ("lines", "columns", "reasons", "raws"):
            values = getattr(self, attr)
            setattr(self, attr, [values[k] for k in order])

    def __len__(self) -> int:
        return len(self.lines)

    def table(self) -> pa.Table:
        n = len(self.lines)
        return pa.table({
            "source_file": pa.array([self.source_file] * n, pa.string()),
            "line": pa.array(self.lines, pa.int64()),
            "column": pa.array(self.columns, pa.string()),
            "reason": pa.array(self.reasons, pa.string()),
            "raw": pa.array(self.raws, pa.string()),
        }, schema=REJECTED)


@dataclass
class ImportResult:
    """One imported file: its records, the rows set aside, and a summary for people."""

    source: Path
    table: pa.Table
    rejected: pa.Table
    notes: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return self.table.num_rows

    @property
    def n_rejected(self) -> int:
        return self.rejected.num_rows

    def summary(self) -> dict:
        """Counts and notes, JSON-serialisable."""
        reasons: dict[str, int] = {}
        for r in self.rejected.column("reason").to_pylist():
            reasons[r] = reasons.get(r, 0) + 1
        return {"source": str(self.source), "rows": self.n_rows, "rejected": self.n_rejected,
                "rejected_by_reason": dict(sorted(reasons.items())), "notes": list(self.notes)}

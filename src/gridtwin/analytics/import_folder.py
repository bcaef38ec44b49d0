"""``gridtwin import``: real records into an import folder with the tables a simulated run writes.

PanDA job records become ``jobs.parquet``, PanDA job files ``job_files.parquet``, Rucio event files
``transfers.parquet``, a CRIC queue file ``sites.parquet``; every row set aside goes to ``rejected.parquet``
(with its file, line, column and reason) and ``import.json`` sums it all up. The folder is written atomically,
as a run folder is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from gridtwin.analytics.import_files import import_panda_files
from gridtwin.analytics.import_panda import import_panda_jobs
from gridtwin.analytics.import_rucio import import_rucio_events
from gridtwin.analytics.importing import REJECTED, ImportResult, Rejected
from gridtwin.errors import ConfigError
from gridtwin.record import schema as SC
from gridtwin.record.recorder import write_tables


def _dedupe(results: list[ImportResult], key: str | tuple[str, ...], what: str) -> tuple[pa.Table, pa.Table]:
    """Concatenate the files' tables; a ``key`` (one column, or a tuple of columns) seen in an earlier file
    is set aside."""
    tables = [r.table for r in results]
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    if isinstance(key, str):
        keys = table.column(key).to_numpy(zero_copy_only=False)
        raws = keys
        column, reason = key, f"duplicate {key} (in an earlier file)"
    else:
        parts = [table.column(k).to_pylist() for k in key]
        keys = np.array(["\x1f".join(map(str, t)) for t in zip(*parts, strict=True)], dtype=object)
        raws = [",".join(map(str, t)) for t in zip(*parts, strict=True)]
        column, reason = "lfn" if what == "file" else None, f"duplicate {what} (in an earlier file)"
    _, first = np.unique(keys, return_index=True)
    keep = np.zeros(len(keys), dtype=bool)
    keep[first] = True
    extra = Rejected("(several files)")
    if not keep.all():
        offsets = np.cumsum([0] + [t.num_rows for t in tables])
        for i in np.flatnonzero(~keep):
            f = int(np.searchsorted(offsets, i, side="right") - 1)
            extra.source_file = str(results[f].source)
            extra.add(int(i - offsets[f]) + 1, column, reason, str(raws[i]))
        table = table.filter(pa.array(keep))
    return table, extra.table()


def sites_from_cric(path: Path) -> pa.Table:
    """The queues of a CRIC file as the ``sites`` table."""
    from gridtwin.platform.cric import load_cric_queues

    plat = load_cric_queues(path)
    sites = [plat.sites[n] for n in sorted(plat.sites)]
    return pa.table({
        "site": [s.name for s in sites],
        "atlas_site": [s.atlas_site for s in sites],
        "cloud": [s.cloud for s in sites],
        "country": [s.country for s in sites],
        "tier": pa.array([s.tier for s in sites], pa.int32()),
        "corecount": pa.array([s.corecount for s in sites], pa.int32()),
        "corepower": pa.array([float(s.corepower) for s in sites], pa.float64()),
        "total_cores": pa.array([s.total_cores for s in sites], pa.int32()),
        "is_nucleus": pa.array([s.is_nucleus for s in sites], pa.bool_()),
        "status": [s.status for s in sites],
    }, schema=SC.SITES)


def import_records(out: Path, *, jobs: Sequence[Path] = (), transfers: Sequence[Path] = (),
                   cric: Path | None = None, files: Sequence[Path] = (), force: bool = False) -> dict:
    """Import the given files into the folder ``out``; return the summary written to ``import.json``."""
    from gridtwin.scenario import atomic_folder, check_output_folder

    if not jobs and not transfers and not files and cric is None:
        raise ConfigError("import: give at least one of --jobs, --files, --transfers or --cric")
    out = check_output_folder(out, force)
    job_results = [import_panda_jobs(Path(p)) for p in jobs]  # every input error surfaces before writing
    file_results = [import_panda_files(Path(p)) for p in files]
    transfer_results = [import_rucio_events(Path(p)) for p in transfers]
    sites = sites_from_cric(Path(cric)) if cric is not None else None
    builders = []
    rejected = [r.rejected for r in job_results + file_results + transfer_results]
    if job_results:
        table, dup = _dedupe(job_results, "pandaid", "job")
        rejected.append(dup)
        builders.append(("jobs", lambda t=table: t))
    if file_results:
        table, dup = _dedupe(file_results, ("pandaid", "lfn", "type"), "file")
        rejected.append(dup)
        builders.append(("job_files", lambda t=table: t))
    if transfer_results:
        table, dup = _dedupe(transfer_results, "request_id", "transfer")
        rejected.append(dup)
        builders.append(("transfers", lambda t=table: t))
    if sites is not None:
        builders.append(("sites", lambda: sites))
    rej = pa.concat_tables(rejected) if rejected else REJECTED.empty_table()
    builders.append(("rejected", lambda: rej))
    with atomic_folder(out) as partial:
        counts = write_tables(partial, builders)
        summary = {
            "kind": "import",
            "rows": counts,
            "files": [r.summary() for r in job_results + file_results + transfer_results]
            + ([{"source": str(cric), "rows": sites.num_rows, "rejected": 0}] if sites is not None else []),
            "rejected_total": rej.num_rows,
        }
        (partial / "import.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary

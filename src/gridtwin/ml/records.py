"""Read the job records the learners train on: a run folder, an import folder or a jobs Parquet file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gridtwin.errors import InputError


def load_jobs(path: Path) -> tuple[pa.Table, pa.Table | None, Path]:
    """The ``jobs`` table at ``path`` (a folder holding jobs.parquet, or a Parquet file), the folder's
    ``sites`` table when there is one (for tier and corepower), and the jobs file read."""
    path = Path(path)
    jobs_file = path / "jobs.parquet" if path.is_dir() else path
    if not jobs_file.exists():
        where = f"{path}: no jobs.parquet in this folder" if path.is_dir() else f"{path}: no such file"
        raise InputError(f"{where} (a run folder, an import folder or a jobs Parquet file was expected)")
    try:
        jobs = pq.read_table(jobs_file)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{jobs_file}: not a readable Parquet file ({e})") from None
    sites_file = jobs_file.parent / "sites.parquet"
    sites = pq.read_table(sites_file) if sites_file.exists() else None
    return jobs, sites, jobs_file

"""``gridtwin ml train-resources``: train the resource predictors on job records and report them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, ml_app: typer.Typer) -> None:
    """Add ``ml train-resources``."""
    ml_app.command("train-resources")(train_resources_cmd)


def train_resources_cmd(
    records: Annotated[Path, typer.Argument(help="A run or import folder (its jobs.parquet), or a jobs Parquet file.")],
    out: Annotated[Path, typer.Option(help="Folder to write: model.json, metrics.json, report.html.")] = Path(
        "resource-model"),
    target: Annotated[list[str] | None, typer.Option(
        "--target", help="Target to train (repeatable): walltime, cputime_per_event, maxrss, outputfilebytes. "
        "Default: every target the records have values for.")] = None,
    quantile: Annotated[float, typer.Option(help="Level of the safe upper quantile (the request).")] = 0.95,
    folds: Annotated[int, typer.Option(help="Cross-validation folds, grouped by task.")] = 5,
    scouts: Annotated[int, typer.Option(help="Scout jobs per task of the baseline.")] = 10,
    waste_factor: Annotated[float, typer.Option(
        help="A request above this many times the actual counts as waste.")] = 2.0,
    max_rows: Annotated[int, typer.Option(help="Jobs each booster learns from at most (a random subset).")] = 250_000,
    seed: Annotated[int, typer.Option(help="Random seed (folds, subsets, bootstrap).")] = 0,
    force: Annotated[bool, typer.Option(help="Replace OUT even if it holds something else.")] = False,
) -> None:
    """Train predictors of wall time, CPU time per event, maximum RSS and output size (median and a safe
    upper quantile) with task-grouped cross-validation; compare with the scout baseline."""
    from rich.console import Console

    from gridtwin.cli import _fail, console
    from gridtwin.errors import GridtwinError
    from gridtwin.ml.records import load_jobs
    from gridtwin.ml.resources import train_resources
    from gridtwin.ml.resources_report import metrics_table, write_training_outputs

    err = Console(stderr=True)
    try:
        jobs, sites, jobs_file = load_jobs(records)
        with err.status("training") as status:
            result = train_resources(
                jobs, sites, targets=target, quantile=quantile, folds=folds, seed=seed, scouts=scouts,
                waste_factor=waste_factor, max_rows=max_rows, source=str(jobs_file),
                progress=lambda msg: status.update(f"training {msg}"))
        write_training_outputs(out, result, jobs_file, force=force)
    except GridtwinError as exc:
        _fail(exc)
        return
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    console.print(metrics_table(result.metrics, quantile))
    console.print(f"model: {out / 'model.json'}; report: {out / 'report.html'}", highlight=False, soft_wrap=True)

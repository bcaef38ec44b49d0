"""``gridtwin calibrate``: the command line of replay/calibrate.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to the ``gridtwin`` app."""
    app.command("calibrate")(calibrate_cmd)


def calibrate_cmd(
    platform: Annotated[str, typer.Option(
        "--platform", help="A scenario YAML, a CRIC JSON (site_info.json shape) or wlcg-like.")],
    jobs: Annotated[Path | None, typer.Argument(
        help="Recorded PanDA jobs: an import folder, a jobs Parquet, or a raw PanDA CSV/Parquet.")] = None,
    out: Annotated[Path, typer.Option(help="Folder of the study (resumed if it holds one) and its results.")] = Path(
        "gridtwin-calibration"),
    trials: Annotated[int, typer.Option(help="Completed trials to reach (a resumed study counts its own).")] = 100,
    sampler: Annotated[str, typer.Option(help="tpe or cmaes.")] = "tpe",
    transfers: Annotated[Path | None, typer.Option(
        help="Recorded transfers (a run or import folder, a transfers Parquet, or Rucio events as JSON lines): "
        "calibrates per-link bandwidth scales.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="Parameter or family to calibrate (repeatable): pilot.latency_median_s, "
        "pilot.latency_sigma, pilot.setup_s, network.lan_rate_mbps, site.corepower, site.efficiency (one per "
        "queue the trace identifies), link.bandwidth_scale (one per busy link); default: all that the "
        "records allow.")] = None,
    reference: Annotated[list[str] | None, typer.Option(
        "--reference", help="Queue whose corepower and efficiency are taken as right (repeatable); the "
        "fitted queue speeds are relative to it. Default: the busiest queue of each group of queues that "
        "share tasks.")
    ] = None,
    holdout: Annotated[float, typer.Option(help="Later share of the trace kept for validation.")] = 0.3,
    seeds: Annotated[int, typer.Option(help="Seeds of the held-out validation (mean and spread).")] = 3,
    workers: Annotated[int, typer.Option(help="Trials run at once on a local Dask cluster of this many processes.")
                       ] = 2,
    scheduler: Annotated[str | None, typer.Option(help="Address of an existing Dask scheduler.")] = None,
    missing_sites: Annotated[str, typer.Option(
        "--missing-sites", help="A recorded site the platform lacks: error, or derive it from the trace.")
    ] = "error",
    ddm: Annotated[bool, typer.Option("--ddm/--no-ddm", help="Stage-in and stage-out through data management.")
                   ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the sampler and of the trial replays.")] = 0,
) -> None:
    """Fit the pilot latency, setup time, LAN rate, per-queue corepower and efficiency (recorded jobs) and
    per-link bandwidth scales (recorded transfers) with Optuna on Dask, validated on the records' later
    part; writes calibrated.yaml for simulate and replay --platform."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gridtwin.cli import _fail, console, err_console
    from gridtwin.errors import GridtwinError
    from gridtwin.replay.calibrate import CalibrationTask, calibrate

    task = CalibrationTask(jobs=str(jobs) if jobs is not None else None, platform=str(platform),
                           missing_sites=missing_sites, holdout=holdout, ddm=ddm,
                           transfers=str(transfers) if transfers is not None else None,
                           reference=tuple(reference or ()))
    try:
        with Progress(TextColumn("[bold]calibrating"), BarColumn(), TextColumn("{task.fields[info]}"),
                      TimeElapsedColumn(), console=err_console) as prog:
            bar = prog.add_task("trials", total=trials, info="")

            def progress(done: int, total: int, best: float) -> None:
                prog.update(bar, completed=done, info=f"{done}/{total} trials, best loss {best:.4f}")

            summary = calibrate(task, out, trials=trials, sampler=sampler, params=param, seed=seed, seeds=seeds,
                                workers=workers, scheduler=scheduler, progress=progress)
    except GridtwinError as exc:
        _fail(exc)
        return
    for note in summary["notes"]:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    for name in summary["calibrated"]:
        console.print(f"{name}: {summary['defaults'][name]:.4g} -> {summary['best'][name]:.4g}", highlight=False)
    before, after = summary["held_out"]["before"], summary["held_out"]["after"]
    console.print(f"held-out ({after['jobs']:,} jobs, {after['transfers']:,} transfers, {summary['seeds']} seeds): "
                  f"loss {before['loss_mean']:.3f} -> {after['loss_mean']:.3f} (sd {after['loss_sd']:.3f})",
                  highlight=False)
    for m in ("wall_time", "queue_time", "stagein", "setup", "cpu_eff"):
        if m in after:
            b, a = before[m], after[m]
            console.print(f"  {m}: KS {b['ks']:.3f} -> {a['ks']:.3f}; median {b['median_sim']:.4g} -> "
                          f"{a['median_sim']:.4g} (recorded {a['median_rec']:.4g})", highlight=False)
    for q, row in after["sites"].items():
        b = before["sites"][q]
        console.print(f"  queue {q}: simulated/recorded CPU time (median, job by job) "
                      f"{b['cpu_time']['median_ratio']:.3f} -> {row['cpu_time']['median_ratio']:.3f}, walltime "
                      f"{b['wall_time']['median_ratio']:.3f} -> {row['wall_time']['median_ratio']:.3f}",
                      highlight=False)
    for k, row in after["links"].items():
        b = before["links"][k]
        console.print(f"  link {k}: simulated/recorded duration (median, transfer by transfer) "
                      f"{b['median_ratio']:.3f} -> {row['median_ratio']:.3f}, KS {b['ks']:.3f} -> {row['ks']:.3f}",
                      highlight=False)
    console.print(f"calibrated: {Path(out) / 'calibrated.yaml'}", highlight=False)

"""Commands of the generative workload model: ``gridtwin ml fit-workload``, ``gridtwin generate`` and
``gridtwin ml fidelity`` (docs/ml_workload.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

RECORDS_HELP = "A run folder, an import folder or a jobs Parquet file."


def _parse_start(text: str | None, default: datetime) -> datetime:
    """``--start`` as a UTC datetime (ISO 8601 date or date-time; naive means UTC)."""
    from gridtwin.errors import ConfigError

    if text is None:
        return default
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--start {text!r}: an ISO 8601 date or date-time was expected "
                          "(e.g. 2025-01-01 or 2025-01-01T06:00Z)") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _start_hour(epoch: datetime) -> float:
    return epoch.hour + epoch.minute / 60.0 + epoch.second / 3600.0


def register(app: typer.Typer, ml_app: typer.Typer) -> None:
    """Add this learner's commands."""

    @ml_app.command("fit-workload")
    def fit_workload_cmd(
        records: Annotated[Path, typer.Argument(help=RECORDS_HELP)],
        out: Annotated[Path, typer.Option(help="Model file to write (JSON).")],
        seed: Annotated[int, typer.Option(help="Seed of the residual-pool subsampling.")] = 0,
    ) -> None:
        """Fit the generative workload model (arrivals by family and hour, a copula of task features,
        job residuals) on job records and save it as JSON."""
        from gridtwin.cli import _fail, console
        from gridtwin.errors import GridtwinError
        from gridtwin.ml.job_records import records_window
        from gridtwin.ml.records import load_jobs
        from gridtwin.ml.workload_model import fit_workload, save_model

        try:
            jobs, sites, jobs_file = load_jobs(records)
            model = fit_workload(jobs, sites, seed=seed, source=str(jobs_file), window=records_window(records))
            model.training["source"] = jobs_file.name  # no machine path in the saved model
            save_model(model, out)
        except GridtwinError as exc:
            _fail(exc)
            return
        tr = model.training
        console.print(f"{tr['rows']:,} job rows ({tr['finished_rows']:,} finished) of {tr['tasks']:,} tasks over "
                      f"{tr['hours']} h ({tr['days']:g} days, {tr['window_from']}) from {tr['window_start']}",
                      highlight=False, soft_wrap=True)
        for c in model.categories:
            console.print(f"  {c.name}: {c.n_tasks:,} tasks, {c.n_jobs:,} jobs, "
                          f"{c.rate_per_hour.sum():.1f} tasks/day", highlight=False)
        for note in tr["notes"]:
            console.print(f"  note: {note}", highlight=False, soft_wrap=True)
        console.print(f"model: {out}", highlight=False, soft_wrap=True)

    @app.command("generate")
    def generate_cmd(
        model: Annotated[Path, typer.Argument(help="Workload model JSON (from gridtwin ml fit-workload).")],
        out: Annotated[Path, typer.Option(help="Workload file to write (Parquet, for simulate --workload).")],
        days: Annotated[float, typer.Option(help="Days of workload to sample.")] = 1.0,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
        start: Annotated[str | None, typer.Option(
            help="Epoch of the workload, UTC (ISO 8601); default: midnight of the model's first day.")] = None,
        poisson: Annotated[bool, typer.Option(
            "--poisson", help="Poisson task counts per hour (default: each family's expected job volume).")] = False,
    ) -> None:
        """Sample DAYS of tasks and jobs from a workload model into a workload file."""
        from gridtwin.cli import _fail, console
        from gridtwin.errors import ConfigError, GridtwinError
        from gridtwin.ml.workload_model import load_model
        from gridtwin.ml.workload_sampler import sample_workload
        from gridtwin.workload.file import write_workload

        try:
            if not days > 0:
                raise ConfigError(f"--days must be > 0, got {days}")
            m = load_model(model)
            first = datetime.fromisoformat(str(m.training.get("window_start", "2025-01-01T00:00:00Z"))
                                           .replace("Z", "+00:00"))
            epoch = _parse_start(start, first.replace(hour=0, minute=0, second=0, microsecond=0))
            import numpy as np

            wl = sample_workload(m, days, np.random.default_rng(seed), start_hour=_start_hour(epoch),
                                 match_volume=not poisson)
            if wl.n_tasks == 0:
                per_day = sum(float(c.rate_per_hour.sum()) for c in m.categories)
                raise ConfigError(f"--days {days:g}: the sample holds no task (the model expects {per_day:.3g} "
                                  "tasks a day); sample more days")
            write_workload(wl, out, epoch)
        except GridtwinError as exc:
            _fail(exc)
            return
        core_h = float((wl.work_hs06s / 10.0).sum()) / 3600.0
        console.print(f"{wl.n_tasks:,} tasks, {wl.n_jobs:,} jobs, {len(wl.categories)} families, "
                      f"{core_h:,.0f} core-hours of CPU work at 10 HS06 over {days:g} days from "
                      f"{epoch.isoformat().replace('+00:00', 'Z')}", highlight=False)
        console.print(f"workload: {out}", highlight=False, soft_wrap=True)

    @ml_app.command("fidelity")
    def fidelity_cmd(
        model: Annotated[Path, typer.Argument(help="Workload model JSON.")],
        records: Annotated[Path, typer.Argument(help=RECORDS_HELP + " The records to compare with.")],
        out: Annotated[Path, typer.Option(help="Folder to write fidelity.html and fidelity.json into.")],
        seed: Annotated[int, typer.Option(help="Random seed of the synthetic sample and the split.")] = 0,
        workload: Annotated[Path | None, typer.Option(
            help="Compare this workload file instead of a fresh sample of the model.")] = None,
        poisson: Annotated[bool, typer.Option("--poisson", help="Sample Poisson task counts per hour.")] = False,
        tstr: Annotated[bool, typer.Option(help="Train on synthetic, test on real (the slow part).")] = True,
    ) -> None:
        """Measure a workload model against job records: per-feature KS and Wasserstein distances,
        correlation matrices, arrival autocorrelation, train-on-synthetic-test-on-real; HTML and JSON."""
        from gridtwin.cli import _fail, console, err_console
        from gridtwin.errors import GridtwinError
        from gridtwin.ml.fidelity import fidelity, write_fidelity_report
        from gridtwin.ml.job_records import records_window
        from gridtwin.ml.records import load_jobs
        from gridtwin.ml.workload_model import load_model

        try:
            m = load_model(model)
            jobs, sites, jobs_file = load_jobs(records)
            given = None
            if workload is not None:
                from gridtwin.workload.file import read_workload

                given = read_workload(workload)
            with err_console.status("measuring") as status:
                result = fidelity(m, jobs, sites, seed=seed, match_volume=not poisson, with_tstr=tstr,
                                  source=jobs_file.name, workload=given, window=records_window(records),
                                  progress=lambda stage: status.update(stage))
            path = write_fidelity_report(result, out)
        except GridtwinError as exc:
            _fail(exc)
            return
        console.print(f"{'feature':<16} {'KS':>7} {'Wasserstein':>12}", highlight=False)
        for name, d in result["features"].items():
            if d["status"] == "ok":
                mark = " *" if d["main"] else ""
                console.print(f"{name:<16} {d['ks']:>7.4f} {d['wasserstein']:>12.4f}  ({d['wasserstein_scale']})"
                              f"{mark}", highlight=False)
            else:
                console.print(f"{name:<16} n/a ({d['reason']})", highlight=False)
        worst = result["main_ks_max"]
        if worst is not None:
            verdict = "met" if result["main_ks_pass"] else "not met"
            console.print(f"* main features: largest KS {worst:.4f}, target <= {result['ks_target']}: {verdict}",
                          highlight=False)
        corr = result["correlation"]
        if corr["status"] == "ok":
            console.print(f"Spearman correlation difference: max {corr['max_abs_diff']:.4f}, "
                          f"Frobenius {corr['frobenius']:.4f}", highlight=False)
        t = result["tstr"]
        if t["status"] == "ok":
            for name, e in t["targets"].items():
                if e.get("mae_ratio") is not None:
                    console.print(f"TSTR {name}: MAE trained on synthetic / on real = {e['mae_ratio']:.3f}",
                                  highlight=False)
        else:
            console.print(f"TSTR: n/a ({t['reason']})", highlight=False, soft_wrap=True)
        console.print(f"report: {path}", highlight=False, soft_wrap=True)

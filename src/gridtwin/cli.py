"""The ``gridtwin`` command line: parses options, builds a scenario, calls the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from gridtwin import __version__
from gridtwin.dashboard.cli import register as _register_dashboard
from gridtwin.errors import GridtwinError
from gridtwin.ml.cli import register as _register_ml
from gridtwin.replay.calibrate_cli import register as _register_calibrate

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="gridtwin: a fast digital twin of ATLAS-style grid computing (PanDA, Rucio, WLCG).")
scenario_app = typer.Typer(no_args_is_help=True, help="Scenario files: a commented template, validation.")
app.add_typer(scenario_app, name="scenario")
console = Console()
err_console = Console(stderr=True)


def _fail(exc: GridtwinError) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code=2)


def _version(value: bool) -> None:
    if value:
        console.print(f"gridtwin {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    pass


@app.command()
def simulate(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario YAML (default: a day on wlcg-like).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (overrides the scenario's).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder for the records.")] = Path("gridtwin-run"),
    scale: Annotated[float | None, typer.Option(help="Workload size; 1.0 is about 1M jobs a day.")] = None,
    policy: Annotated[str | None, typer.Option(help="Brokerage policy name or module:Class.")] = None,
    workload: Annotated[Path | None, typer.Option(
        "--workload", help="Workload file (Parquet) to run instead of a generated workload.")] = None,
    predictor: Annotated[Path | None, typer.Option(
        help="Resource model (ml train-resources): requested memory and walltime from its upper quantiles.")] = None,
    report: Annotated[bool, typer.Option(help="Write report.html beside the Parquet files.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no KPI table.")] = False,
    force: Annotated[bool, typer.Option(help="Replace --out even if it holds something other than a run.")] = False,
    dashboard: Annotated[bool, typer.Option(help="Watch the run live in the browser (gridtwin dashboard).")] = False,
    dashboard_every: Annotated[float, typer.Option(help="Minutes of simulated time between dashboard frames.")
                               ] = 10.0,
    dashboard_host: Annotated[str, typer.Option(help="Dashboard address: 127.0.0.1 unless --allow-remote.")
                              ] = "127.0.0.1",
    dashboard_port: Annotated[int, typer.Option(help="Dashboard port (0: any free port).")] = 8765,
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote", help="Allow a non-loopback --dashboard-host; clients must present the printed token.")
    ] = False,
    dashboard_keep: Annotated[bool, typer.Option(
        help="Keep serving the finished run until Ctrl-C (--no-dashboard-keep: stop when the run is written).")
    ] = True,
) -> None:
    """Simulate a scenario and write its records (Parquet), run.json and an HTML report."""
    from gridtwin.analytics.kpi import kpi_table
    from gridtwin.config import Scenario, load_scenario, scenario_from_dict
    from gridtwin.errors import ConfigError
    from gridtwin.scenario import run_scenario

    observer, server = None, None
    try:
        sc: Scenario = load_scenario(scenario) if scenario is not None else scenario_from_dict({}, "defaults")
        if any(v is not None for v in (seed, scale, policy, workload, predictor)):
            data = sc.model_dump()
            if seed is not None:
                data["seed"] = seed
            if scale is not None:
                data["workload"]["scale"] = scale
            if policy is not None:
                data["brokerage"]["policy"] = policy
            if workload is not None:
                data["workload"]["file"] = workload
            if predictor is not None:
                data["resources"]["predictor"] = predictor
            sc = scenario_from_dict(data, "command line")  # validate what the options changed
        if scale is not None and sc.workload.file is not None:
            raise ConfigError("--scale sizes the generated workload; it does not apply to a workload file")
        if dashboard:
            from gridtwin.dashboard.process import DashboardProcess

            if not dashboard_every > 0:
                raise ConfigError(f"--dashboard-every {dashboard_every}: minutes > 0 were expected")
            server = DashboardProcess(dashboard_every * 60.0, dashboard_host, dashboard_port,
                                      allow_remote=allow_remote)
            err_console.print(f"dashboard (live): {server.start()}", highlight=False, soft_wrap=True)
            observer = server.sampler.attach
        if quiet:
            result = run_scenario(sc, out, report=report, force=force, observer=observer)
        else:
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                          TimeElapsedColumn(), console=err_console, transient=False) as prog:
                bar = prog.add_task("building", total=1.0, info="")

                def progress(stage: str, done: float, total: float) -> None:
                    if stage == "simulate":
                        prog.update(bar, description="simulating", completed=min(1.0, done / total),
                                    info=f"t={done / 3600:.0f} h")
                    else:
                        prog.update(bar, description=f"writing {stage}", completed=1.0, info="")

                result = run_scenario(sc, out, report=report, progress=progress, force=force, observer=observer)
        if server is not None:
            server.finish(result.out)
    except GridtwinError as exc:
        if server is not None:
            server.stop()
        _fail(exc)
        return
    if not quiet:
        console.print(kpi_table(result.kpis))
        rate = result.n_jobs / result.wall_time_s if result.wall_time_s > 0 else float("nan")
        console.print(f"{result.n_jobs:,} jobs, {result.events:,} events in {result.wall_time_s:.1f} s "
                      f"({rate:,.0f} jobs/s); records in {result.out}")
        if result.unfinished:
            console.print(f"[yellow]{result.unfinished:,} jobs had not reached a final state at the horizon "
                          "(raise drain_h to let them finish)[/]")
        if result.specs_never_created:
            console.print(f"[yellow]{result.specs_never_created:,} jobs of the workload were never placed by brokerage "
                          "(broken tasks, or still pending at the horizon)[/]")
        if result.tasks_broken:
            console.print(f"[yellow]{result.tasks_broken} tasks had no queue able to run their jobs (broken)[/]")
    if server is not None:
        if dashboard_keep:
            from gridtwin.dashboard.cli import serve_until_interrupted

            serve_until_interrupted(server, str(result.out))
        else:
            server.stop()


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """Recompute the KPIs of a run folder, print them and rewrite its report.html."""
    from gridtwin.analytics.kpi import compute_kpis, kpi_table
    from gridtwin.analytics.report import write_report

    try:
        kpis = compute_kpis(run_dir)
        path = write_report(run_dir, kpis)
    except GridtwinError as exc:
        _fail(exc)
        return
    console.print(kpi_table(kpis))
    console.print(f"report: {path}")


@app.command("import")
def import_cmd(
    out: Annotated[Path, typer.Argument(
        help="Folder to write (jobs, job_files, transfers, sites, rejected, import.json).")],
    jobs: Annotated[list[Path] | None, typer.Option("--jobs", help="PanDA job records (CSV, CSV.gz, Parquet).")] = None,
    files: Annotated[list[Path] | None, typer.Option(
        "--files", help="PanDA job files (FILESTABLE4-like CSV, CSV.gz, Parquet).")] = None,
    transfers: Annotated[list[Path] | None, typer.Option(
        "--transfers", help="Rucio transfer events (JSON lines: hermes or MONIT-enriched; .gz ok).")] = None,
    cric: Annotated[Path | None, typer.Option(help="CRIC PanDA-queue JSON (or the site_info.json shape).")] = None,
    force: Annotated[bool, typer.Option(help="Replace OUT even if it holds something other than an import.")] = False,
) -> None:
    """Import real PanDA and Rucio records into the tables a simulated run writes; rows set aside are
    counted and kept in rejected.parquet with their file, line, column and reason."""
    from gridtwin.analytics.import_folder import import_records

    try:
        summary = import_records(out, jobs=jobs or [], transfers=transfers or [], cric=cric,
                                 files=files or [], force=force)
    except GridtwinError as exc:
        _fail(exc)
        return
    for f in summary["files"]:
        line = f"{f['source']}: {f['rows']:,} rows imported, {f['rejected']:,} set aside"
        if f.get("rejected_by_reason"):
            line += " (" + ", ".join(f"{k}: {v}" for k, v in f["rejected_by_reason"].items()) + ")"
        console.print(line, highlight=False, soft_wrap=True)
        for note in f.get("notes", []):
            console.print(f"  note: {note}", highlight=False, soft_wrap=True)
    console.print(f"import: {out} ({summary['rejected_total']:,} rows set aside in rejected.parquet)",
                  highlight=False, soft_wrap=True)


@app.command()
def analyze(
    run_dir: Annotated[Path, typer.Argument(help="A run folder or an import folder (jobs + transfers).")],
    out: Annotated[Path | None, typer.Option(help="Where to write (default: RUN_DIR/analysis).")] = None,
    network: Annotated[Path | None, typer.Option(
        help="Network matrix JSON (site_conn_info.json shape): closeness for the distant-source check.")] = None,
    tolerance_s: Annotated[float, typer.Option(help="Time tolerance of the job-transfer matching, s.")] = 60.0,
) -> None:
    """Link jobs to transfers at file level, find late, redundant, misdirected, unused and distant-source
    transfers and locality violations, measure the imbalance; Parquet tables plus analysis.html."""
    from gridtwin.analytics.analyze import analyze_folder

    try:
        summary = analyze_folder(run_dir, out, tolerance_s=tolerance_s, network=network)
    except GridtwinError as exc:
        _fail(exc)
        return
    console.print(f"links: {summary['links']:,}; jobs without their transfers: {summary['unmatched_jobs']:,}; "
                  f"transfers that fed no job: {summary['unmatched_transfers']:,}", highlight=False, soft_wrap=True)
    if summary.get("linker_score"):
        sc = summary["linker_score"]
        console.print(f"linker against truth: precision {sc['precision']:.4f}, recall {sc['recall']:.4f}",
                      highlight=False, soft_wrap=True)
    console.print("anomalies: " + ", ".join(f"{k} {v:,}" for k, v in summary["anomalies"].items()),
                  highlight=False, soft_wrap=True)
    console.print(f"analysis: {out or Path(run_dir) / 'analysis'}", highlight=False, soft_wrap=True)


@app.command()
def replay(
    jobs: Annotated[Path, typer.Argument(
        help="Recorded PanDA jobs: an import folder, a jobs Parquet, or a raw PanDA CSV/Parquet.")],
    platform: Annotated[str, typer.Option(
        "--platform", help="A scenario YAML (its platform), a CRIC JSON (site_info.json shape) or wlcg-like.")],
    out: Annotated[Path, typer.Option(help="Output folder (a run folder plus comparison/).")] = Path("gridtwin-replay"),
    policy: Annotated[str, typer.Option(
        help="historical: each job runs at its recorded computingsite; any other brokerage policy re-brokers.")
    ] = "historical",
    missing_sites: Annotated[str, typer.Option(
        "--missing-sites", help="A recorded site the platform lacks: error, or derive it from the trace.")
    ] = "error",
    work: Annotated[str, typer.Option(
        help="recorded: each job's CPU time x its queue's corepower; task: its task's work per event fitted "
        "across queues, so queue speeds are the platform's (for re-brokering).")] = "recorded",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    ddm: Annotated[bool, typer.Option("--ddm/--no-ddm", help="Stage-in and stage-out through data management.")
                   ] = True,
    report: Annotated[bool, typer.Option(help="Write report.html beside the Parquet files.")] = True,
    force: Annotated[bool, typer.Option(help="Replace --out even if it holds something other than a run.")] = False,
) -> None:
    """Replay recorded PanDA jobs in the twin (each submitted at its creation time) and compare simulated
    with recorded walltime, queue time, stage-in and CPU efficiency, per site and overall."""
    from gridtwin.replay import replay as run_replay

    try:
        result = run_replay(jobs, platform, out, policy=policy, missing_sites=missing_sites, seed=seed, ddm=ddm,
                            force=force, report=report, work=work)
    except GridtwinError as exc:
        _fail(exc)
        return
    for w in result.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    aside = sum(result.set_aside.values())
    console.print(f"{result.n_jobs:,} jobs replayed; {result.rejected:,} rows set aside by the importer, "
                  f"{aside:,} without CPU time" + (f", {result.pin_refused:,} refused by their recorded queue"
                                                    if result.pin_refused else ""), highlight=False, soft_wrap=True)
    ov = result.comparison.get("overall", {})
    for m in ("wall_time", "queue_time", "stagein", "cpu_eff"):
        r = ov.get(m) or {}
        if r.get("n"):
            console.print(f"  {m}: median simulated {r['median_sim']:.4g} vs recorded {r['median_rec']:.4g}, "
                          f"KS {r['ks']:.3f}, Wasserstein {r['wasserstein']:.4g} (n={r['n']})",
                          highlight=False, soft_wrap=True)
    console.print(f"replay: {result.out} (comparison in {result.out / 'comparison'})", highlight=False,
                  soft_wrap=True)


@app.command()
def policies() -> None:
    """List the brokerage policies available by name."""
    from gridtwin.policies.registry import available_policies

    for name in available_policies():
        console.print(name)


@scenario_app.command("template")
def scenario_template() -> None:
    """Print a commented example scenario with every key and its default."""
    from gridtwin.config import TEMPLATE

    sys.stdout.write(TEMPLATE)


@scenario_app.command("validate")
def scenario_validate(path: Annotated[Path, typer.Argument(help="Scenario YAML.")]) -> None:
    """Validate a scenario (schema, platform files, downtimes, policies, rules) without running it: it is
    built as a run would be (workload and replica placement included), then discarded."""
    from gridtwin.config import load_scenario
    from gridtwin.scenario import Simulation

    try:
        sc = load_scenario(path)
        sim = Simulation(sc)
    except GridtwinError as exc:
        _fail(exc)
        return
    platform = sim.platform
    console.print(f"{path}: valid ({len(platform.sites)} queues, {platform.total_cores():,} cores, "
                  f"{sim.workload.n_jobs:,} job specs, {len(sim.rules)} rule(s) from the scenario)")


_register_ml(app)
_register_calibrate(app)
_register_dashboard(app)


def main() -> None:
    """Entry point of the ``gridtwin`` script."""
    app()


if __name__ == "__main__":
    main()

"""The ``gridtwin ml`` commands and ``gridtwin generate``; each learner registers its own commands."""

from __future__ import annotations

import typer

ml_app = typer.Typer(no_args_is_help=True, help="Learn from job records: resource predictors, workload models.")


def register(app: typer.Typer) -> None:
    """Add ``ml`` (and the learners' top-level commands) to the ``gridtwin`` app."""
    from gridtwin.ml import resources_cli, workload_cli

    resources_cli.register(app, ml_app)
    workload_cli.register(app, ml_app)
    app.add_typer(ml_app, name="ml")

"""``gridtwin dashboard`` and the ``simulate --dashboard`` helpers: serve a run folder or a running simulation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

HOST_HELP = "Address to bind: 127.0.0.1 (this machine only) unless --allow-remote."
REMOTE_HELP = "Allow a non-loopback --host; every client must then present the token printed with the URL."


def register(app: typer.Typer) -> None:
    """Add ``dashboard`` to the ``gridtwin`` app."""
    app.command("dashboard")(dashboard_cmd)


def serve_until_interrupted(server: Any, what: str) -> None:
    """Tell the user where the dashboard is, then serve until Ctrl-C."""
    from gridtwin.cli import err_console

    err_console.print(f"dashboard of {what}: {server.url}  (Ctrl-C to stop)", highlight=False, soft_wrap=True)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def dashboard_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (simulate, replay or import).")] = Path("gridtwin-run"),
    host: Annotated[str, typer.Option(help=HOST_HELP)] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8765,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help=REMOTE_HELP)] = False,
    token: Annotated[str | None, typer.Option(help="Token clients must present (default: a random one when "
                                              "--allow-remote, none on 127.0.0.1).")] = None,
) -> None:
    """Serve a run folder in the browser: replay it with play, pause, speed and seek."""
    from gridtwin.cli import _fail
    from gridtwin.dashboard.frames import RunFrames
    from gridtwin.dashboard.server import DashboardServer
    from gridtwin.errors import GridtwinError

    try:
        frames = RunFrames(run_dir)
        server = DashboardServer(frames, host, port, allow_remote=allow_remote, token=token)
        server.start()
    except GridtwinError as exc:
        _fail(exc)
        return
    serve_until_interrupted(server, str(run_dir))

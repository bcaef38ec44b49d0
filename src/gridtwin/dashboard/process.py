"""``simulate --dashboard``: the live dashboard's web server in a process of its own.

The simulation keeps its process (and its core) to itself: per frame it builds the JSON text and puts it
on a ``multiprocessing`` queue, whose feeder thread writes it to a pipe; the queue is unbounded, so the
simulation never waits. The server process reads the queue into a :class:`~gridtwin.dashboard.live.LiveFeed`
and serves it (uvicorn in a thread). A drill-down's request for job counts goes back through a shared
flag the sampler reads at its next frame.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from pathlib import Path
from typing import Any

from gridtwin.dashboard.live import LiveSampler
from gridtwin.errors import ConfigError


def _serve(messages: Any, wanted: Any, host: str, port: int, allow_remote: bool, token: str | None,
           reply: Any) -> None:
    """The server process: serve a LiveFeed fed from ``messages`` until a ``("stop",)`` message."""
    import signal

    from gridtwin.dashboard.live import LiveFeed
    from gridtwin.dashboard.server import DashboardServer

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the simulation's to handle; it then stops us

    def ask() -> None:
        wanted.value = 1

    feed = LiveFeed(request_stats=ask)
    try:
        server = DashboardServer(feed, host, port, allow_remote=allow_remote, token=token)
        server.start()
    except Exception as exc:  # report any failure to start to the simulation's process
        reply.send(("error", str(exc)))
        return
    reply.send(("url", server.url, server.port))
    try:
        while True:
            msg = messages.get()
            if msg[0] == "stop":
                break
            feed.receive(*msg)
        _drain_clients(feed)
    finally:
        server.stop()


def _drain_clients(feed: Any, timeout_s: float = 10.0) -> None:
    """Give connected clients the time to take the frames still waiting for them."""
    import time

    t0 = time.monotonic()
    while any(not q.empty() for q in list(feed.clients)) and time.monotonic() - t0 < timeout_s:
        time.sleep(0.05)


class DashboardProcess:
    """Start the dashboard's server process; :attr:`sampler` is what the simulation attaches."""

    def __init__(self, interval_s: float = 600.0, host: str = "127.0.0.1", port: int = 8765, *,
                 allow_remote: bool = False, token: str | None = None) -> None:
        self._ctx = mp.get_context("spawn")
        self._messages = self._ctx.Queue()
        self._wanted = self._ctx.Value("b", 0, lock=False)
        self.sampler = LiveSampler(interval_s, sink=self._put, wanted=self._wanted)
        self._args = (host, port, allow_remote, token)
        self._proc: Any = None
        self._dead = False
        self.url = ""
        self.port = port

    def _put(self, *msg: Any) -> None:
        if self._proc is not None and not self._proc.is_alive():
            if not self._dead:  # the server died (killed, out of memory): the run goes on without it
                self._dead = True
                sys.stderr.write("warning: the dashboard's server process has ended; the run goes on without it\n")
            return
        self._messages.put(msg)

    def start(self, timeout_s: float = 60.0) -> str:
        """Start the server process; return the page's URL (with the token when there is one)."""
        from gridtwin.dashboard.server import DashboardServer

        host, _, allow_remote, _ = self._args
        DashboardServer.check_bind(host, allow_remote)  # the same refusal as in one process, before spawning
        receive, send = self._ctx.Pipe(duplex=False)
        self._proc = self._ctx.Process(target=_serve, args=(self._messages, self._wanted, *self._args, send),
                                       name="gridtwin-dashboard", daemon=True)
        self._proc.start()
        send.close()
        if not receive.poll(timeout_s):
            self.stop()
            raise ConfigError(f"the dashboard did not start within {timeout_s:g} s")
        try:
            kind, *rest = receive.recv()
        except EOFError:
            raise ConfigError("the dashboard's server process ended before it started serving") from None
        if kind == "error":
            self._proc.join(5)
            raise ConfigError(f"dashboard: {rest[0]}")
        self.url, self.port = rest
        return self.url

    def finish(self, run_dir: Path | None) -> None:
        """The run is over: the server switches to the written run folder and tells its clients."""
        self.sampler.finish(run_dir)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server process (after the frames already queued are served)."""
        if self._proc is None:
            return
        if self._proc.is_alive():
            self._messages.put(("stop",))
            self._proc.join(timeout_s)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        self._messages.close()
        if self._proc.exitcode != 0:  # nobody reads the pipe any more: do not wait to flush into it
            self._messages.cancel_join_thread()
        self._messages.join_thread()
        self._proc = None

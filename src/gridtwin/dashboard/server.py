"""The dashboard's web server: FastAPI over uvicorn, the page, a JSON API and one websocket.

Routes (all relative, so the app also works behind a path prefix):

- ``/`` the page; ``/static/NAME`` its four files (an allow-list: nothing else of the package is served);
- ``/api/meta``, ``/api/series``, ``/api/frame/{i}``, ``/api/site/{queue}`` (JSON);
- ``/run/{path}``: a file of the served run folder (report.html, Parquet, ...), only inside that folder;
- ``/ws``: frames. A finished run is replayed per client (``play``, ``pause``, ``seek``, ``speed`` in frames
  per second); a live run pushes every frame as the simulation makes it.

Safe by default: the server binds 127.0.0.1 and then only answers requests whose ``Host`` is a loopback
name (so a web page elsewhere cannot reach it through DNS rebinding) and websockets whose ``Origin``, if
any, is the server itself (the same host and port). Any other bind needs ``allow_remote``, and then every
request but the page and its static files (an allow-list) must carry the token (``?token=``, or an
``Authorization: Bearer`` header). Files of the run folder are served sandboxed (no script).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import secrets
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import WebSocket  # at module level: FastAPI reads the route's annotations by name

from gridtwin.errors import ConfigError

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "charts.js": "text/javascript", "style.css": "text/css",
                "index.html": "text/html"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
RUN_FILE_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
"""Files of the run folder (report.html, ...) are shown sandboxed: their inline styles, no script."""
PUBLIC_PATHS = {"/", *(f"/static/{name}" for name in STATIC_FILES)}
SPEEDS = (1, 2, 5, 10, 25)
BATCH = 64
"""At most this many waiting live frames go to a client in one ``{"type": "frames"}`` message."""
SEND_TIMEOUT_S = 10.0
"""A live client whose socket takes no frame for this long is dropped."""
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) stays on this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def create_app(source: Any, *, token: str | None = None, remote: bool = False) -> Any:
    """The ASGI app serving ``source`` (a :class:`~gridtwin.dashboard.frames.RunFrames` or a
    :class:`~gridtwin.dashboard.live.LiveFeed`). ``token``: required on API, run-file and websocket requests;
    ``remote``: accept any ``Host`` (a non-loopback bind, where the token protects instead)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse, Response
    from starlette.websockets import WebSocketDisconnect

    if remote and not token:
        raise ConfigError("a dashboard reachable from other machines needs a token")

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> Any:
        if getattr(source, "live", False):
            source.loop = asyncio.get_running_loop()  # where the simulation thread posts its frames
        yield

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    def authorised(params: Any, headers: Any) -> bool:
        if token is None:
            return True
        given = params.get("token") or ""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = given or auth[7:]
        return secrets.compare_digest(given.encode(), token.encode())

    def host_ok(headers: Any) -> bool:
        if remote:
            return True
        host = headers.get("host", "")
        name = urlsplit(f"//{host}").hostname or ""
        return is_loopback(name)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if not host_ok(request.headers):
            response: Any = JSONResponse({"detail": "unknown Host: this dashboard answers on this machine only"},
                                         status_code=400)
        elif request.url.path in PUBLIC_PATHS or authorised(request.query_params, request.headers):
            response = await call_next(request)
        else:  # an allow-list: only the page and its static files are served without the token
            response = JSONResponse({"detail": "missing or wrong token"}, status_code=401)
        for k, v in SECURITY_HEADERS.items():
            response.headers[k] = v
        if request.url.path.startswith("/run/"):  # a run's own files must not run script as the dashboard
            response.headers["Content-Security-Policy"] = RUN_FILE_CSP
        return response

    @app.get("/")
    async def index() -> Any:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/{name}")
    async def static(name: str) -> Any:
        if name not in STATIC_FILES:
            return JSONResponse({"detail": "no such file"}, status_code=404)
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name])

    @app.get("/api/meta")
    async def meta() -> Any:
        found = source.meta()
        if found is None:  # a live run not built yet: the page retries
            return JSONResponse({"detail": "the simulation is being built; try again in a moment"}, status_code=503,
                                headers={"Retry-After": "1"})
        return {**found, "token_required": token is not None}

    @app.get("/api/series")
    async def series() -> Any:
        return source.series()

    @app.get("/api/frame/{i}")
    async def frame(i: int) -> Any:
        n = source.n_frames()
        if not 0 <= i < n:
            return JSONResponse({"detail": f"frame {i}: the run has frames 0 to {n - 1}"}, status_code=404)
        return Response(source.frame_text(i), media_type="application/json")

    @app.get("/api/site/{site}")
    async def site(site: str) -> Any:
        found = (await source.site_fresh(site) if hasattr(source, "site_fresh")
                 else await asyncio.to_thread(source.site, site))  # reads Parquet: off the event loop
        if found is None:
            return JSONResponse({"detail": f"no queue named {site!r} in this run"}, status_code=404)
        return found

    @app.get("/run/{path:path}")
    async def run_file(path: str) -> Any:
        found = run_file_path(_run_dir(source), path)
        if found is None:
            return JSONResponse({"detail": "no such file in the run folder"}, status_code=404)
        return FileResponse(found)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        origin = websocket.headers.get("origin")
        same_origin = origin is None or urlsplit(origin).netloc == websocket.headers.get("host", "")
        if not host_ok(websocket.headers) or not authorised(websocket.query_params, websocket.headers) \
                or not same_origin:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        try:
            if getattr(source, "live", False):
                await _live(websocket, source)
            else:
                await _replay(websocket, source)
        except WebSocketDisconnect:
            pass

    return app


def _run_dir(source: Any) -> Path | None:
    frames = source if not getattr(source, "live", False) else source.run_frames
    return getattr(frames, "run_dir", None)


def run_file_path(run_dir: Path | None, path: str) -> Path | None:
    """``path`` inside ``run_dir`` as a regular file that really lies there (no ``..``, no absolute path, no
    symbolic link leading out), else None."""
    if run_dir is None or not path or "\x00" in path:
        return None
    parts = Path(path).parts
    if Path(path).is_absolute() or any(p in ("..", "") for p in parts) or "\\" in path:
        return None
    root = run_dir.resolve()
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


async def _replay(ws: Any, source: Any) -> None:
    """Per-client playback of a finished run."""
    n = source.n_frames()
    state = {"playing": False, "speed": 5, "seq": 0}
    lock = asyncio.Lock()
    wake = asyncio.Event()

    async def send(text: str) -> None:
        async with lock:
            await ws.send_text(text)

    async def send_state() -> None:
        await send(json.dumps({"type": "state", **state, "n_frames": n}))

    async def player() -> None:
        while True:
            if not state["playing"] or n == 0:
                wake.clear()
                await wake.wait()
                continue
            await send(source.frame_text(state["seq"]))
            if state["seq"] >= n - 1:
                state["playing"] = False
                await send_state()
            else:
                state["seq"] += 1
                await asyncio.sleep(1.0 / state["speed"])

    if n:
        await send(source.frame_text(0))
    await send_state()
    task = asyncio.create_task(player())
    try:
        while True:
            try:
                msg = json.loads(await ws.receive_text())
            except (ValueError, TypeError):
                continue
            if not isinstance(msg, dict):
                continue
            action = msg.get("action")
            if action == "play":
                if state["seq"] >= n - 1:
                    state["seq"] = 0
                state["playing"] = True
                wake.set()
            elif action == "pause":
                state["playing"] = False
            elif action == "seek" and isinstance(msg.get("seq"), int) and n:
                state["seq"] = min(max(msg["seq"], 0), n - 1)
                await send(source.frame_text(state["seq"]))
            elif action == "speed" and msg.get("value") in SPEEDS:
                state["speed"] = msg["value"]
            else:
                continue
            await send_state()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _live(ws: Any, feed: Any) -> None:
    """Every frame of a running simulation, in order, from the latest one on."""
    from gridtwin.dashboard.live import DROPPED, END

    q = feed.subscribe()
    receiver = asyncio.create_task(_drain(ws))
    sent = -1  # the last frame sent: one appended just before subscribing may also be in the queue
    try:
        n = feed.n_frames()
        if n:
            await ws.send_text(feed.frame_text(n - 1))
            sent = n - 1
        if feed.ended:
            await ws.send_text(json.dumps({"type": "end"}))
        while True:
            getter = asyncio.create_task(q.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:  # the client went away
                getter.cancel()
                return
            items = [getter.result()]
            while len(items) < BATCH and items[-1] >= 0 and not q.empty():  # a burst goes in one message
                items.append(q.get_nowait())
            frames = [i for i in items if i > sent]
            if frames:
                texts = [feed.frame_text(i) for i in frames]
                text = texts[0] if len(texts) == 1 else '{"type":"frames","frames":[' + ",".join(texts) + "]}"
                if not await _send(ws, feed, text):
                    return
                sent = frames[-1]
            if items[-1] == DROPPED:
                await _close_slow(ws)
                return
            if items[-1] == END and not await _send(ws, feed, json.dumps({"type": "end"})):
                return
    finally:
        feed.unsubscribe(q)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


async def _send(ws: Any, feed: Any, text: str) -> bool:
    """Send, or drop a client that stops reading (its socket full for ``SEND_TIMEOUT_S``) rather than wait."""
    try:
        await asyncio.wait_for(ws.send_text(text), SEND_TIMEOUT_S)
        return True
    except TimeoutError:
        feed.dropped_clients += 1
        await _close_slow(ws)
        return False


async def _close_slow(ws: Any) -> None:
    """Close a client dropped as too slow (code 1013), without waiting on its full socket for long."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code=1013, reason="too slow: frames were waiting"), 1.0)


async def _drain(ws: Any) -> None:
    """Read (and ignore) what a live client sends, until it disconnects."""
    from starlette.websockets import WebSocketDisconnect

    with contextlib.suppress(WebSocketDisconnect):
        while True:
            msg = await ws.receive()
            if msg.get("type") == "websocket.disconnect":
                return


class DashboardServer:
    """uvicorn serving the app in a background thread (for ``simulate --dashboard`` and tests)."""

    def __init__(self, source: Any, host: str = "127.0.0.1", port: int = 8765, *, allow_remote: bool = False,
                 token: str | None = None) -> None:
        remote = self.check_bind(host, allow_remote)
        if remote and not token:
            token = secrets.token_urlsafe(24)
        self.source, self.host, self.port, self.token, self.remote = source, host, port, token, remote
        self.app = create_app(source, token=token, remote=remote)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def check_bind(host: str, allow_remote: bool) -> bool:
        """Whether ``host`` is reachable from other machines; refused unless ``allow_remote``."""
        remote = not is_loopback(host)
        if remote and not allow_remote:
            raise ConfigError(f"--host {host}: serving beyond this machine needs --allow-remote (clients must "
                              "then present the token it prints)")
        return remote

    def start(self, timeout_s: float = 20.0) -> str:
        """Start serving; return the page's URL (with the token when there is one)."""
        import time

        import uvicorn
        from uvicorn.config import WS_PROTOCOLS

        ws = "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"
        # no per-message deflate: compressing each frame once per client would cost the simulation's process
        # far more CPU than the loopback or LAN bytes it saves
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning", ws=ws, lifespan="on",
                                ws_per_message_deflate=False, timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="gridtwin-dashboard", daemon=True)
        self._thread.start()
        t0 = time.monotonic()
        while not self._server.started:
            if not self._thread.is_alive():
                raise ConfigError(f"the dashboard could not listen on {self.host}:{self.port} (is the port in use?)")
            if time.monotonic() - t0 > timeout_s:
                raise ConfigError(f"the dashboard did not start on {self.host}:{self.port} within {timeout_s:g} s")
            time.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self.url

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

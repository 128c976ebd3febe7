"""The classroom's web server: one playground process per browser tab, over textual-serve.

textual-serve gives the terminal in the page (xterm.js), the websocket protocol and the
process handling (``PlaygroundSession``); this server adds what a room needs:

- a page template of its own, with relative URLs only (a proxy may put it under any path)
  and the font textual-serve ships (its own template loads one from the internet, and the
  page does not render where that is blocked);
- the token and loopback rules of ``policy``, on every request;
- the session cap: the tab over it gets a page saying so, and no process;
- an end to every process when its tab closes, and to all of them when the server stops.

Nothing here imports torch or textual: ``playground serve`` starts in well under a second,
and each tab's process imports what the TUI needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.server import Server, to_int

from playground.serve.policy import (
    ServeOptions,
    host_of,
    is_loopback,
    same_origin,
    token_matches,
)
from playground.serve.session import PlaygroundSession

TEMPLATES = Path(__file__).resolve().parent / "templates"


def full_text(n: int) -> str:
    """The page (or terminal line) for the tab over the cap."""
    are_open = "1 session is open" if n == 1 else f"{n} sessions are open"
    return f"the classroom is full: {are_open}; close a tab or ask the instructor"


class ClassroomServer(Server):
    """textual-serve's server with the classroom's rules; ``sessions`` are the open tabs."""

    def __init__(self, options: ServeOptions, say: Callable[[str], None] | None = None) -> None:
        super().__init__(
            "playground",
            host=options.host,
            port=options.port,
            title=options.title,
            templates_path=TEMPLATES,
        )
        self.options = options
        self.sessions: dict[str, PlaygroundSession] = {}
        self.say = say or (lambda text: print(text, flush=True))

    # --- the web application -----------------------------------------------------------

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        aiohttp_jinja2.setup(
            app, loader=jinja2.FileSystemLoader(self.templates_path), autoescape=True
        )
        app.add_routes(
            [
                web.get("/", self.handle_index, name="index"),
                web.get("/ws", self.handle_websocket, name="websocket"),
                web.get("/ws/{token}", self.handle_websocket, name="websocket-token"),
                web.get("/download/{key}", self.handle_download, name="download"),
                web.static("/static", self.statics_path, name="static"),
            ]
        )
        app.on_shutdown.append(self._stop_sessions)
        return app

    def _notice(
        self, request: web.Request, status: int, reason: str, heading: str, message: str
    ) -> web.Response:
        response = aiohttp_jinja2.render_template(
            "notice.html",
            request,
            {"heading": heading, "message": message, "reason": reason, "retry": status == 503},
            status=status,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        """The token, or else the loopback rules (``policy``), before any handler runs."""
        token = self.options.token
        if token is not None:
            given = request.query.get("token") or request.match_info.get("token")
            if not token_matches(given, token):
                return self._notice(
                    request,
                    403,
                    "token",
                    "403: this classroom needs its token",
                    "Open the address printed by playground serve, with its ?token=... part.",
                )
        elif not is_loopback(host_of(request.host)):
            return self._notice(
                request,
                403,
                "host",
                "403: this server answers on localhost only",
                f"It was reached as {request.host!r}. To serve on another address or "
                "behind a proxy, start it with --token.",
            )
        elif not same_origin(request.headers.get("Origin"), request.host):
            return self._notice(
                request,
                403,
                "origin",
                "403: opened from another page",
                "Sessions start only from this server's own page. Behind a proxy, "
                "start the server with --token.",
            )
        return await handler(request)

    async def handle_index(self, request: web.Request) -> web.Response:  # type: ignore[override]
        if self.full:
            return self._notice(
                request,
                503,
                "full",
                "The classroom is full",
                full_text(len(self.sessions)),
            )
        token = self.options.token
        context = {
            "title": self.title,
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "static": "static/",
            # every URL the page loads carries the token: no cookie to leak to the other
            # paths of a shared host
            "query": f"?token={quote(token, safe='')}" if token is not None else "",
        }
        response = aiohttp_jinja2.render_template("index.html", request, context)
        response.headers["Cache-Control"] = "no-store"
        return response

    @property
    def full(self) -> bool:
        return len(self.sessions) >= self.options.max_sessions

    # --- sessions ----------------------------------------------------------------------

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        await websocket.prepare(request)
        if self.full:  # the page was served before the last seat was taken
            text = full_text(len(self.sessions))
            await websocket.send_bytes(f"\r\n  {text}\r\n".encode())
            await websocket.close(code=1013, message=b"full")
            return websocket
        session = PlaygroundSession(
            self.options.app_args,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
        )
        # counted from now on: no await between the check above and here
        self.sessions[session.app_service_id] = session
        try:
            await session.start(width, height)
            self.say(f"session opened: pid {session.pid} ({self._count()})")
            await self._process_messages(websocket, session)
        except Exception as exc:  # a bad frame from a page ends its session, not the server
            self.say(f"session {session.pid}: ended on a bad message from its page: {exc!r:.200}")
        finally:
            # shielded: a tab closing while the server stops still ends its process
            await asyncio.shield(self._end(session))
            with contextlib.suppress(Exception):
                await websocket.close()
        return websocket

    async def _end(self, session: PlaygroundSession) -> None:
        try:
            await session.stop()
        finally:
            if self.sessions.pop(session.app_service_id, None) is not None:
                self.say(f"session closed: pid {session.pid} ({self._count()})")

    def _count(self) -> str:
        return f"{len(self.sessions)}/{self.options.max_sessions} open"

    async def _stop_sessions(self, app: web.Application) -> None:
        await asyncio.gather(
            *(self._end(s) for s in list(self.sessions.values())), return_exceptions=True
        )


async def run_server(
    options: ServeOptions,
    on_listening: Callable[[str, int], None],
    stop: asyncio.Event | None = None,
) -> int:
    """Serve until SIGINT / SIGTERM (or ``stop`` is set); ``on_listening(host, port)`` is
    called with the port actually bound (``--port 0`` picks a free one)."""
    server = ClassroomServer(options)
    app = await server._make_app()
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        print(
            f"playground serve: cannot listen on {options.host}:{options.port}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    host, port = runner.addresses[0][:2]
    on_listening(str(host), int(port))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # on_shutdown ends every session's process first
    return 0

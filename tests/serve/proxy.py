"""A path-prefix reverse proxy, as jupyter-server-proxy puts a server under
``/proxy/PORT/``: requests and websockets under the prefix go to the server with the
prefix taken off, from another host and port than the browser sees."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from aiohttp import web

PREFIX = "/proxy/{port}/"


Socket = aiohttp.ClientWebSocketResponse | web.WebSocketResponse


async def _pump(source: Socket, sink: Socket) -> None:
    async for message in source:
        if message.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(message.data)
        else:
            break
    await sink.close()


def _app(target_port: int) -> web.Application:
    async def forward(request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        url = f"http://127.0.0.1:{target_port}/{tail}"
        async with aiohttp.ClientSession() as client:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                browser = web.WebSocketResponse()
                await browser.prepare(request)
                async with client.ws_connect(url, params=request.query) as server:
                    await asyncio.gather(_pump(browser, server), _pump(server, browser))
                return browser
            async with client.get(url, params=request.query) as response:
                body = await response.read()
                return web.Response(
                    body=body,
                    status=response.status,
                    content_type=response.content_type,
                    charset=response.charset,
                )

    app = web.Application()
    app.router.add_get("/proxy/{port}/{tail:.*}", forward)
    return app


@contextmanager
def prefix_proxy(target_port: int) -> Iterator[str]:
    """Run the proxy on a free port; yields its base URL, ``http://127.0.0.1:P/proxy/T/``."""
    loop = asyncio.new_event_loop()
    holder: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(_app(target_port))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    try:
        yield f"http://127.0.0.1:{holder['port']}" + PREFIX.format(port=target_port)
    finally:
        runner = holder["runner"]
        assert isinstance(runner, web.AppRunner)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

"""``playground serve PRESET --presenter``: every tab opens in presenter mode, as the room
sees it - read from the terminal stream the tab's websocket carries (decoded with pyte)."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pyte
import pytest

from tests.serve.helpers import serving


@pytest.mark.slow
async def test_a_tab_of_a_presenter_classroom_opens_in_presenter_mode(tmp_path: Path) -> None:
    with serving(["five-points", "--device", "cpu", "--presenter"], tmp_path) as served:
        screen = pyte.Screen(100, 30)
        stream = pyte.ByteStream(screen)
        async with aiohttp.ClientSession() as client:
            ws = await client.ws_connect(
                served.url + "ws?width=100&height=30", headers={"Origin": served.origin}
            )
            deadline = time.monotonic() + 120  # the tab's process imports torch
            shown = ""
            while "slow motion paused" not in shown or "loaded Five points" not in shown:
                assert time.monotonic() < deadline, f"no presenter screen; it shows:\n{shown}"
                try:
                    message = await ws.receive(timeout=5)
                except TimeoutError:
                    continue
                if message.type == aiohttp.WSMsgType.BINARY:
                    stream.feed(message.data)
                    shown = "\n".join(screen.display)
                elif message.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"the session ended: {message!r}\n{shown}")
            assert "▶ B A C K W A R D ◀" not in shown  # nothing has happened yet
            assert "Z E R O _ G R A D" in shown  # the banner, letters spaced
            await ws.close()

"""Presenter mode from the command line: ``playground PRESET --presenter`` starts in it,
``playground serve ... --presenter`` starts every tab in it, and ``?fontsize=N`` in the
page's address scales the browser's terminal for the back of the room."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from playground.cli.main import build_parser
from playground.cli.serve import app_args
from playground.serve.policy import ServeOptions
from playground.serve.server import ClassroomServer


def test_the_tui_takes_presenter_and_leaves_it_off_by_default() -> None:
    parser = build_parser()
    assert parser.parse_args(["tui", "five-points", "--presenter"]).presenter is True
    assert parser.parse_args(["tui", "five-points"]).presenter is False


def test_serve_hands_presenter_on_to_every_tab() -> None:
    args = build_parser().parse_args(["serve", "five-points", "--presenter", "--seed", "3"])
    assert app_args(args) == ("five-points", "--seed", "3", "--presenter")
    assert "--presenter" not in app_args(build_parser().parse_args(["serve", "five-points"]))


async def test_fontsize_in_the_address_sizes_the_pages_terminal() -> None:
    server = ClassroomServer(ServeOptions(max_sessions=2), say=lambda text: None)
    async with TestClient(TestServer(await server._make_app())) as client:
        page = await (await client.get("/?fontsize=28")).text()
        assert 'data-font-size="28"' in page
        page = await (await client.get("/")).text()
        assert 'data-font-size="16"' in page  # the default
        page = await (await client.get("/?fontsize=big")).text()
        assert 'data-font-size="16"' in page  # not a number: the default

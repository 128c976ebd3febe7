"""``playground serve`` in a real browser: Debian's chromium driven by Playwright.

The page draws the terminal on a canvas, so what the app shows is read from the terminal
stream in the websocket's frames, decoded with pyte (``helpers.Terminal``). Every request
the page makes is recorded, and any to another host is refused and reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Terminal,
    in_group,
    keep_artifact,
    need_chromium,
    open_tab,
    serving,
    wait_until,
)
from tests.serve.proxy import prefix_proxy
from tests.ui.helpers import five_point_grads

pytestmark = pytest.mark.slow
VIEWPORT = {"width": 1400, "height": 900}  # about 155 x 42 cells: the grid layout


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A persistent context on a fresh user-data dir: chromium as CI installs it."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        try:
            yield context
        finally:
            context.close()


class Requests:
    """Every request the pages make; those to another origin are refused and kept."""

    def __init__(self, context: Any, origin: str) -> None:
        self.origin = origin
        self.seen: list[str] = []
        self.elsewhere: list[str] = []
        context.on("request", lambda r: self.seen.append(r.url))
        context.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.origin + "/") or url.startswith("data:"):
            route.continue_()
        else:
            self.elsewhere.append(url)
            route.abort()


def app_drawn(t: Terminal) -> bool:
    return t.row("w")[:3] == ["w", "1", "None"]


def test_b_b_in_the_page_doubles_w_grad_and_nothing_leaves_the_machine(
    browser: Any, tmp_path: Path
) -> None:
    gw, _ = five_point_grads(1.0, 1.0)
    doubled = f"{2 * gw:.1f}"  # -8340.8, by hand: 2 * mean(2 (w x + b - y) x)
    with serving(["five-points", "--device", "cpu"], tmp_path) as served:
        requests = Requests(browser, served.origin)
        page, terminal = open_tab(browser, served.url)
        terminal.wait_for(page, app_drawn, "five-points at w = b = 1, no grads yet")
        # keys go to the terminal (xterm's textarea), as when a student clicks into it
        page.locator("textarea.xterm-helper-textarea").focus()
        page.keyboard.press("b")
        page.keyboard.press("b")
        terminal.wait_for(page, lambda t: t.typed.count("b") == 2, "the page to send b b")
        terminal.wait_for(page, lambda t: t.row("w")[2:4] == [doubled, "x2"], "w.grad doubled")
        assert terminal.row("w")[:4] == ["w", "1", doubled, "x2"]
        assert doubled == "-8340.8"

        shot = tmp_path / "serve-five-points-b-b.png"
        page.screenshot(path=str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        keep_artifact(shot)

        assert requests.elsewhere == []
        assert requests.seen and all(u.startswith(served.origin + "/") for u in requests.seen)
        assert any("/static/fonts/RobotoMono" in u for u in requests.seen)  # its own font
        page.close()


def test_one_tab_over_the_cap_gets_the_full_page_and_a_closed_tab_ends_its_process(
    browser: Any, tmp_path: Path
) -> None:
    """With a token too: the page, its files and its websocket all carry it."""
    args = ["five-points", "--device", "cpu", "--host", "0.0.0.0", "--token"]
    with serving([*args, "--max-sessions", "2"], tmp_path) as served:
        requests = Requests(browser, served.origin)
        tabs = []
        started: set[int] = set()
        for n in (1, 2):
            before = served.sessions()
            page, terminal = open_tab(browser, served.url)
            terminal.wait_for(page, app_drawn, f"tab {n}'s app")
            (pid,) = served.sessions() - before
            tabs.append((page, terminal, pid))
            started.add(pid)
        assert len(served.sessions()) == 2

        full = browser.new_page()
        full.goto(served.url)
        text = full.inner_text("#notice")
        assert "the classroom is full: 2 sessions are open" in text
        assert "close a tab or ask the instructor" in text
        assert len(served.sessions()) == 2  # the third tab started nothing

        page, terminal, pid = tabs.pop(0)
        page.close()
        wait_until(lambda: not in_group(pid), 5.0, f"tab 1's process {pid} and its helpers")
        wait_until(lambda: len(served.sessions()) == 1, 5.0, "one session left")

        # the seat is free again
        full.close()
        page, terminal = open_tab(browser, served.url)
        terminal.wait_for(page, app_drawn, "a new tab's app, in the freed seat")
        assert len(served.sessions()) == 2
        started |= served.sessions()
        assert requests.elsewhere == []
    # stopping the server (SIGTERM, as Ctrl+C) ends every session it had
    assert len(started) == 3
    for pid in started:
        wait_until(lambda pid=pid: not in_group(pid), 5.0, f"process {pid} after the server")


def test_behind_a_path_prefix_proxy_the_page_and_its_keys_work(
    browser: Any, tmp_path: Path
) -> None:
    """As under jupyter-server-proxy: /proxy/PORT/ on another host:port, with a token."""
    with serving(["five-points", "--device", "cpu", "--token"], tmp_path) as served:
        with prefix_proxy(served.port) as base:
            url = base + "?" + served.url.split("?", 1)[1]
            origin = base.split("/proxy/")[0]
            requests = Requests(browser, origin)
            page, terminal = open_tab(browser, url)
            terminal.wait_for(page, app_drawn, "five-points through the proxy")
            page.locator("textarea.xterm-helper-textarea").focus()
            page.keyboard.press("b")
            terminal.wait_for(page, lambda t: t.row("w")[3:4] == ["x1"], "one backward")
            assert requests.elsewhere == []
            assert all(u.startswith(base) for u in requests.seen), requests.seen
            page.close()

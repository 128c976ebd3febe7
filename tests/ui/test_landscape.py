"""The loss landscape screen (key ``v``), driven with Pilot as a user would.

The view comes from the runner thread; the screen draws the contours, the path, the
current point and the optimum, follows the session's keys live, puts the parameters at
the cursor with enter (undoable), races the optimizers, and fits 80x24.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.text import Text
from textual.widgets import Static

from playground.tui import make_app
from playground.ui.training.landscape_panel import LandscapePanel
from playground.ui.training.landscape_screen import LandscapeScreen
from playground.ui.training.main_screen import MainScreen
from tests.ui.helpers import X, Y, value, wait_for, wait_seq


async def _view(pilot: Any, ready: Any, timeout: float = 30.0) -> Any:
    """Wait until the landscape screen shows a view for which ``ready(view)`` holds."""
    for _ in range(int(timeout / 0.05)):
        screen = pilot.app.screen
        if isinstance(screen, LandscapeScreen) and screen.view is not None and ready(screen.view):
            return screen.view
        await pilot.pause(0.05)
    raise AssertionError("timed out waiting for the landscape")


def _screen_text(app: Any) -> str:
    return app.screen.query_one(LandscapePanel).text()


def _static(app: Any, wid: str) -> str:
    """What a Static shows, as plain text (its markup gone)."""
    return Text.from_markup(str(app.screen.query_one(f"#{wid}", Static).content)).plain


async def test_v_shows_the_loss_over_w_and_b_and_the_path_grows_with_n() -> None:
    """Five points at 120x40: v opens the landscape of w and b, with the least-squares
    point beside it; three presses of n inside it add three points to the path, each
    drawn at the parameters the session has."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("v")
        view = await _view(pilot, lambda v: True)
        assert (view.x_label, view.y_label) == ("w", "b") and view.whole
        side = _static(app, "land-side")
        assert "least squares (12.21, 11.51)" in side and "w across, b up" in side
        slope, intercept = np.polyfit(X, Y, 1)
        assert abs(view.optimum[0] - slope) < 1e-3 and abs(view.optimum[1] - intercept) < 1e-3
        text = _screen_text(app)
        assert "●" in text and "★" in text and "○" not in text  # the start is under ●
        for _ in range(3):
            await pilot.press("n")
        view = await _view(pilot, lambda v: v.step == 3)
        s = await wait_for(pilot, lambda s: s.step == 3)
        assert view.path_points == 4
        assert view.current == (value(s, "w"), value(s, "b"))
        assert app.screen.query_one("#land-side").display
        assert not app.screen.query_one("#land-info").display


async def test_enter_puts_the_parameters_at_the_cursor_and_u_takes_it_back() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        s = await wait_seq(pilot, 1)
        depth = s.undo_depth
        await pilot.press("v")
        await _view(pilot, lambda v: True)
        for key in ("right",) * 6 + ("up",) * 4:
            await pilot.press(key)
        panel = app.screen.query_one(LandscapePanel)
        x, y = panel.cursor_at()
        loss_here = panel.cursor_loss()
        assert f"loss {loss_here:.4g}" in _static(app, "land-side")
        by_hand = float(np.mean((x * X + y - Y) ** 2))  # the grid's own point: no interpolation
        assert abs(loss_here - by_hand) <= 1e-5 * by_hand
        await pilot.press("enter")
        s = await wait_for(pilot, lambda s: s.undo_depth == depth + 1)
        assert (value(s, "w"), value(s, "b")) == (np.float32(x), np.float32(y))
        assert s.undo_label.startswith("set the parameters")
        view = await _view(pilot, lambda v: v.path_points == 2)
        assert view.current == (float(np.float32(x)), float(np.float32(y)))
        await pilot.press("u")
        s = await wait_for(pilot, lambda s: s.undo_depth == depth)
        assert (value(s, "w"), value(s, "b")) == (1.0, 1.0)
        await _view(pilot, lambda v: v.path_points == 1)


async def test_at_80x24_the_numbers_go_below_and_escape_goes_back() -> None:
    """The picture keeps the width of the screen, the numbers take three lines below
    it; c races the three optimizers; escape returns to the main screen and the runner
    stops keeping the landscape."""
    app = make_app("noisy-line", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("v")
        await _view(pilot, lambda v: True)
        assert not app.screen.query_one("#land-side").display
        info = _static(app, "land-info")
        assert "★ (3.149, 1.997)" in info and "enter: start here" in info
        panel = app.screen.query_one(LandscapePanel)
        assert panel.size.width == 80 and panel.size.height >= 17
        await pilot.press("c")
        view = await _view(pilot, lambda v: len(v.race) == 3)
        assert [r.name for r in view.race] == ["gd", "momentum", "adam"]
        assert "race: GD" in _static(app, "land-info")
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert isinstance(app.screen, MainScreen)
        for _ in range(100):
            if app.runner.landscape is None:
                break
            await pilot.pause(0.05)
        assert app.runner.landscape is None


async def test_the_path_follows_a_run_live_and_the_plane_can_change() -> None:
    """r inside the landscape: views arrive while the run goes on, the path longer in
    each; m turns to random directions, m again to the path's principal ones."""
    app = make_app("five-points", device="cpu", overrides={"max_steps": 10**7})
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("v")
        await _view(pilot, lambda v: True)
        await pilot.press("r")
        seen: set[int] = set()
        for _ in range(600):
            screen = app.screen
            if app.running and isinstance(screen, LandscapeScreen) and screen.view is not None:
                seen.add(screen.view.path_points)
            if len(seen) >= 3:
                break
            await pilot.pause(0.05)
        assert len(seen) >= 3  # the path grew on screen while the run went on
        await pilot.press("r")
        s = await wait_for(pilot, lambda s: not app.running and s.step > 0)
        view = await _view(pilot, lambda v: v.step == s.step)
        assert view.path_points == s.step + 1
        await pilot.press("m")
        view = await _view(pilot, lambda v: v.mode == "random")
        assert (view.x_label, view.y_label) == ("d1", "d2") and view.current == (0.0, 0.0)
        await pilot.press("m")
        view = await _view(pilot, lambda v: v.mode == "pca")
        assert view.x_label.startswith("pc1")

"""Presenter mode, pinned as SVG snapshots at the two sizes a projector meets: 80x24 (a
terminal at a large font) and 160x45 (a wide screen).

As in ``test_snapshots``: five-points by hand on the CPU, every number of the scene
checked against the float64 oracle nudged either way (``assert_exact_digits``), slow
motion paused (its line says so, with no countdown), and each test waits for the state it
shows, the loss curve drawn. Update with ``pytest tests/ui/test_snapshots_presenter.py
--snapshot-update`` after a deliberate change, and look at the SVGs.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from playground.tui import make_app
from playground.ui.presenter.phase_banner import PhaseBanner
from playground.ui.presenter.screen import PresenterScreen
from tests.ui.test_snapshots import assert_exact_digits, settle


async def presenting(pilot: Pilot, lit: str) -> None:
    """Wait for the presenter screen with ``lit`` on its banner and its loss curve in."""
    for _ in range(600):
        screen = pilot.app.screen
        if (
            isinstance(screen, PresenterScreen)
            and screen.loss is not None
            and screen.loss.is_mounted
            and screen.query_one(PhaseBanner).text == lit
        ):
            break
        await pilot.pause(0.05)
    else:
        raise AssertionError(f"no presenter screen with {lit} lit")
    await pilot.pause(0.1)
    await pilot.wait_for_scheduled_animations()


def test_presenter_after_two_backwards_80x24(snap_compare: Any) -> None:
    """``--presenter`` and b b: BACKWARD lit, w.grad -8340.8 and b.grad -580 in large
    digits with "x2 +=", the step Δ still "—"; below, the loss and what just happened;
    the keys in two rows."""

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, 1)
        await pilot.press("b", "b")
        await settle(pilot, 3)
        assert_exact_digits(pilot.app, "bb")  # type: ignore[arg-type]
        await presenting(pilot, "BACKWARD")

    app = make_app("five-points", device="cpu", seed=0, presenter=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_presenter_opened_after_a_step_on_two_gradients_160x45(snap_compare: Any) -> None:
    """b b s on the main screen, then P: STEP lit, the rule of each phase under it, the
    parameters moved by -lr x the two passes' gradient (still "x2 +="), the coach's
    warning that zero_grad was forgotten, the loss on the right and the keys as
    three-line caps. The warning's toast is cleared: the narration says it."""

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, 1)
        await pilot.press("b", "b", "s")
        await settle(pilot, 4)
        assert_exact_digits(pilot.app, "bbs")  # type: ignore[arg-type]
        await pilot.press("P")
        await presenting(pilot, "STEP")
        pilot.app.clear_notifications()
        await pilot.pause(0.1)

    app = make_app("five-points", device="cpu", seed=0)
    assert snap_compare(app, terminal_size=(160, 45), run_before=run_before)

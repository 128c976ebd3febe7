"""What the main screen looks like, pinned as SVG snapshots (pytest-textual-snapshot).

Fixed preset, seed and device (CPU), and nothing time-dependent on screen: each test
waits in ``run_before`` until the runner has published the snapshot it wants to show.
Update with ``pytest tests/ui/test_snapshots.py --snapshot-update`` after a deliberate change.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from playground.tui import make_app
from playground.ui.app import PlaygroundApp


async def settle(pilot: Pilot, seq: int) -> None:
    """Wait until ``seq`` commands have been applied and drawn."""
    app = pilot.app
    assert isinstance(app, PlaygroundApp)
    for _ in range(600):
        if app.seq >= seq:
            break
        await pilot.pause(0.05)
    assert app.seq >= seq, f"runner did not reach seq {seq}"
    await pilot.pause(0.1)
    await pilot.wait_for_scheduled_animations()


def test_five_points_after_two_backwards_80x24(snap_compare: Any) -> None:
    """Compact layout: tab bar, the parameter table with x2 += grads, the status bar."""

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, 1)
        await pilot.press("b", "b")
        await settle(pilot, 3)

    app = make_app("five-points", device="cpu", seed=0)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_five_points_loss_tab_80x24(snap_compare: Any) -> None:
    """Compact layout, loss tab, after a few train steps."""

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, 1)
        await pilot.press("n", "n", "n", "b", "2")
        await settle(pilot, 5)

    app = make_app("five-points", device="cpu", seed=0)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_noisy_line_grid_120x40(snap_compare: Any) -> None:
    """Wide layout: every panel at once, after ten train steps and one backward."""

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, 1)
        await pilot.press(*"nnnnnnnnnn", "b")
        await settle(pilot, 12)

    app = make_app("noisy-line", device="cpu", seed=0)
    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)

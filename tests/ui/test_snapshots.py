"""What the main screen looks like, pinned as SVG snapshots (pytest-textual-snapshot).

Fixed preset, seed and device (CPU), and nothing time-dependent on screen: each test
waits in ``run_before`` until the runner has published the snapshot it wants to show.
Update with ``pytest tests/ui/test_snapshots.py --snapshot-update`` after a deliberate
change.

An SVG pins every digit, so a scene must only show digits that are exact: the same on
any machine, whatever order its float32 kernels add in. Each scene is five-points by
hand (w = b = 1, lr 0.001, five integer points), and each test checks every number the
table and the titles show against a float64 oracle worked out here: the oracle, nudged
by a relative 1e-6 (several float32 roundings) either way, must print the same digits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from textual.pilot import Pilot

from playground.training.report import fmt_array
from playground.tui import make_app
from playground.ui.app import PlaygroundApp
from tests.ui.helpers import LR, X, Y


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


def by_hand(keys: str) -> dict[str, Any]:
    """five-points driven by ``keys`` (b, s, z, n) in float64: what the screen shows."""
    w, b = 1.0, 1.0
    gw = gb = None
    delta = None
    batch = None
    for key in keys:
        if key in "bn":
            if key == "n" or gw is None:
                gw = gb = 0.0
            r = w * X + b - Y
            batch = float(np.mean(r**2))
            gw, gb = gw + float(np.mean(2 * r * X)), gb + float(np.mean(2 * r))
        if key == "z":
            gw = gb = 0.0
        if key in "sn":
            delta = (-LR * gw, -LR * gb)
            w, b = w + delta[0], b + delta[1]
    train = float(np.mean((w * X + b - Y) ** 2))
    return {
        "w": (w, gw, delta and delta[0]),
        "b": (b, gb, delta and delta[1]),
        "losses": (batch, train),
    }


def assert_exact_digits(app: PlaygroundApp, keys: str) -> None:
    """Every number of the scene prints the same from the float64 oracle nudged up and
    down; and that is what the app (float32) prints."""
    snap = app.snapshot
    oracle = by_hand(keys)

    def robust(value: float | None, fmt: Any) -> str:
        if value is None:
            return fmt(None)
        shown = {fmt(value * (1 + e)) for e in (-1e-6, 0.0, 1e-6)}
        assert len(shown) == 1, f"{value!r} prints as {shown}: not a scene for a snapshot"
        return shown.pop()

    def as_array(v: float | None) -> np.ndarray | None:
        return None if v is None else np.array([v])

    for p in snap.params:
        value, grad, delta = oracle[p.name]
        for got, want in ((p.value, value), (p.grad, grad), (p.last_delta, delta)):
            assert fmt_array(got) == robust(want, lambda v: fmt_array(as_array(v))), p.name
    batch, train = oracle["losses"]
    for got, want in ((snap.batch_loss, batch), (snap.train_loss, train)):
        assert (got is None) == (want is None)
        if want is not None:
            assert format(got, ".4g") == robust(want, lambda v: format(v, ".4g"))


def test_five_points_after_two_backwards_80x24(snap_compare: Any) -> None:
    """Compact layout: tab bar, the parameter table with x2 += grads, the status bar."""

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, 1)
        await pilot.press("b", "b")
        await settle(pilot, 3)
        assert_exact_digits(pilot.app, "bb")  # type: ignore[arg-type]

    app = make_app("five-points", device="cpu", seed=0)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_five_points_loss_tab_80x24(snap_compare: Any) -> None:
    """Compact layout, loss tab, after a few train steps."""

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, 1)
        await pilot.press("n", "n", "n", "n", "n", "b", "2")
        await settle(pilot, 7)
        assert_exact_digits(pilot.app, "nnnnnb")  # type: ignore[arg-type]

    app = make_app("five-points", device="cpu", seed=0)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_five_points_grid_120x40(snap_compare: Any) -> None:
    """Wide layout: every panel at once - the table after two train steps and a backward,
    the settings, the loss curve with its batch loss, the code, the fit with its train
    loss - and the status bar naming each number."""

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, 1)
        await pilot.press("n", "n", "b")
        await settle(pilot, 4)
        assert_exact_digits(pilot.app, "nnb")  # type: ignore[arg-type]

    app = make_app("five-points", device="cpu", seed=0)
    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_a_setting_that_restarts_training_asks_first_80x24(snap_compare: Any) -> None:
    """The question before a restart, over the compact layout."""

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot, 1)
        await pilot.press("b", "s")
        await settle(pilot, 3)
        assert_exact_digits(pilot.app, "bs")  # type: ignore[arg-type]
        await pilot.press("3")  # the settings tab, focus on the first field (model)
        await pilot.pause(0.1)
        await pilot.press("tab", "tab", "enter", "down", "enter")  # optimizer: gd -> sgd
        await pilot.pause(0.2)
        assert type(pilot.app.screen).__name__ == "ConfirmScreen"

    app = make_app("five-points", device="cpu", seed=0)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)

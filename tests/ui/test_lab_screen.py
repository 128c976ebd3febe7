"""The accumulation lab screen (key ``a``), driven with Pilot as a user would.

The numbers come from the runner thread - the all-reduce column from four real gloo
ranks - and the screen shows them labelled, side by side, at 80x24; the mistakes toggle
with 1-4; Escape returns to a session that the lab did not change; the ranks end with
the app.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual.widgets import Static

from playground.tui import make_app
from playground.ui.training.lab_screen import LabScreen
from playground.ui.training.main_screen import MainScreen
from tests.ui.helpers import wait_seq

RANKS_START_S = 120.0  # four processes importing torch on a busy two-core machine


async def _lab_view(pilot: Any, ready: Any, timeout: float = RANKS_START_S) -> Any:
    """Wait until the lab screen shows a view for which ``ready(view)`` holds."""
    for _ in range(int(timeout / 0.05)):
        screen = pilot.app.screen
        if isinstance(screen, LabScreen) and screen.view is not None and ready(screen.view):
            return screen.view
        await pilot.pause(0.05)
    raise AssertionError("timed out waiting for the lab")


def _text(app: Any, wid: str) -> str:
    return str(app.screen.query_one(f"#{wid}", Static).content)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_the_lab_at_80x24_three_gradients_mistakes_and_back(tmp_path: Path) -> None:
    """a opens the lab: full batch, accumulated with 1/K and all-reduced over 4 gloo
    ranks side by side, their max differences and the fp32 note, all on an 80x24
    screen; 2 (forgot 1/K) makes the accumulated column 4x; b shows the backward passes
    one at a time; Escape returns with the session unchanged; quitting ends the ranks."""
    app = make_app("noisy-line", device="cpu", export_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        s = await wait_seq(pilot, 1)
        undo, step = s.undo_depth, s.step
        await pilot.press("a")
        view = await _lab_view(pilot, lambda v: not v.rank_note)
        assert view.k == 4 and view.ranks == 4 and view.backend == "gloo"
        grads = _text(app, "lab-grads")
        for label in ("full batch", "accum. 1/K", "all-reduced (4 ranks)", "weight", "bias"):
            assert label in grads
        for label in ("max |full batch - accumulated|", "max |full batch - all-reduced|"):
            assert label in grads
        assert "fp32 sums agree to ~1e-7, not bit for bit" in grads
        assert all(len(line) <= 78 for line in grads.splitlines())
        table = app.screen.query_one("#lab-grads")
        assert table.region.bottom <= 23, "the three gradients are on screen at 80x24"
        assert "[ ] 2 forgot 1/K" in _text(app, "lab-mistakes")

        await pilot.press("2")
        view = await _lab_view(pilot, lambda v: v.toggles.forgot_scale and not v.rank_note)
        grads = _text(app, "lab-grads")
        assert "accum. no 1/K" in grads and "|accumulated| / |full batch|     4.000" in grads
        assert "[x] 2 forgot 1/K" in _text(app, "lab-mistakes")
        assert "Adam (lr 0.5, fresh) step" in _text(app, "lab-mistakes")  # its details

        await pilot.press("b")
        backward = _text(app, "lab-backward").splitlines()
        assert backward[-1].split()[0] == "1", "one backward has arrived"
        assert "(1 of 4)" in _text(app, "lab-grads")
        await pilot.press("b", "b", "b")
        assert _text(app, "lab-backward").splitlines()[-1].split()[0] == "4"

        await pilot.press("e")
        written = tmp_path / "playground_noisy_line_ddp.py"
        for _ in range(200):
            if written.exists():
                break
            await pilot.pause(0.05)
        assert "DistributedDataParallel" in written.read_text()

        pids = app.runner.rank_pool.pids
        assert len(pids) == 4
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        s = app.snapshot
        assert (s.undo_depth, s.step) == (undo, step), "the lab changed nothing"
    for _ in range(200):  # the runner stops the ranks in its teardown
        if all(_gone(pid) for pid in pids):
            break
        await pilot.pause(0.05)
    assert all(_gone(pid) for pid in pids)


async def test_the_lab_at_160x50_shows_the_code_beside_the_numbers() -> None:
    """Wide, the accumulation loop and its DDP twin stand beside the numbers; toggling
    a mistake writes it into the code (the forgotten zero_grad commented out)."""
    app = make_app("noisy-line", device="cpu")
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("a", "1")
        await _lab_view(pilot, lambda v: v.toggles.forgot_zero_grad and not v.rank_note)
        side = app.screen.query_one("#lab-side")
        assert side.display and side.region.width > 40
        code = _text(app, "lab-side")
        assert "# opt.zero_grad()  # FORGOTTEN" in code
        assert "loss = loss_fn(model(xb), yb) / K" in code and "model = DDP(model)" in code
        assert "accum. 1/K + leftover" in _text(app, "lab-grads")

"""The Textual app driven with Pilot: the lesson flows (keys in, the runner thread works,
the screen shows it). Every test waits for the runner with ``wait_for`` (a predicate on the
app's newest snapshot, polled with ``pilot.pause``), never with a fixed sleep.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from textual import events
from textual.widgets import Input, Label

from playground.protocol import Configure
from playground.tui import make_app
from playground.ui.messages import SnapshotReady
from playground.ui.training.params_table import ParamsTable
from tests.ui.helpers import LR, cell, five_point_grads, grad, value, wait_for, wait_seq


async def test_backward_accumulates_zero_grad_clears_step_moves() -> None:
    """b twice doubles .grad (x2), z zeroes it, s moves w and b by -lr * grad."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        s = await wait_seq(pilot, 1)
        assert s.params and cell(app, "w", "count") == "None"
        gw, gb = five_point_grads(1.0, 1.0)

        await pilot.press("b")
        s = await wait_seq(pilot, 2)
        assert grad(s, "w") == pytest.approx(gw, rel=1e-5)
        assert grad(s, "b") == pytest.approx(gb, rel=1e-5)
        assert cell(app, "w", "count") == "x1"

        await pilot.press("b")
        s = await wait_seq(pilot, 3)
        assert grad(s, "w") == pytest.approx(2 * gw, rel=1e-5)
        assert grad(s, "b") == pytest.approx(2 * gb, rel=1e-5)
        assert s.param("w").backwards_since_zero == 2
        assert cell(app, "w", "count") == "x2 +="
        assert float(cell(app, "w", "grad")) == pytest.approx(2 * gw, rel=1e-4)
        # the closed-form gradient sits next to autograd's
        assert float(cell(app, "w", "analytic")) == pytest.approx(2 * gw, rel=1e-4)

        await pilot.press("z")
        s = await wait_seq(pilot, 4)
        assert grad(s, "w") == 0.0 and grad(s, "b") == 0.0
        assert cell(app, "w", "count") == "zeroed"

        await pilot.press("b", "s")
        s = await wait_seq(pilot, 6)
        assert value(s, "w") == pytest.approx(1.0 - LR * gw, rel=1e-6)
        assert value(s, "b") == pytest.approx(1.0 - LR * gb, rel=1e-6)
        # step leaves .grad alone
        assert grad(s, "w") == pytest.approx(gw, rel=1e-5)
        assert s.step == 1
        assert float(cell(app, "w", "delta")) == pytest.approx(-LR * gw, rel=1e-4)


async def test_300_rapid_train_steps_arrive_in_order() -> None:
    """300 quick n presses are 300 steps, each applied once, snapshots in order."""
    seen: list[tuple[int, int]] = []

    def hook(message: Any) -> None:
        if isinstance(message, SnapshotReady):
            seen.append((message.event.seq, message.event.snapshot.step))

    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        await wait_seq(pilot, 1)
        # as a terminal delivers them: 300 key events queued at once, no waiting between
        for _ in range(300):
            app.post_message(events.Key("n", "n"))
        s = await wait_seq(pilot, 301, timeout=60)
        assert s.step == 300
        assert app.runner.applied == 301
        seqs = [q for q, _ in seen]
        steps = [st for _, st in seen]
        assert seqs == sorted(set(seqs)), "snapshots arrive once each, in order"
        assert steps == sorted(steps)
        assert seqs[-1] == 301 and steps[-1] == 300
        assert "# 300 train steps" in s.log[-1]


async def test_run_then_pause_and_the_loss_plot_gets_points() -> None:
    app = make_app("noisy-line", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        app.submit(Configure({"max_steps": 10_000_000}))  # a run that will not end by itself
        await wait_seq(pilot, 2)
        await pilot.press("r")
        await wait_for(pilot, lambda s: app.running and s.step > 5, what="running")
        assert str(app.screen.query_one("#btn-run").label) == "r pause"
        await pilot.press("r")
        s = await wait_for(pilot, lambda s: not app.running, what="paused")
        assert app.status == "paused" and app.message.startswith("paused at step")
        step = s.step
        await pilot.pause(0.3)
        assert app.snapshot.step == step, "a paused run stays paused"
        assert len(s.history) >= step
        loss_plot = app.screen.query_one("#loss")
        assert loss_plot.points_drawn > 0
        assert str(app.screen.query_one("#btn-run").label) == "r run"


async def test_run_to_convergence_shows_converged() -> None:
    app = make_app("noisy-line", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        app.submit(Configure({"until_loss": 2.0}))
        await wait_seq(pilot, 2)
        await pilot.press("r")
        s = await wait_for(pilot, lambda s: app.status == "converged", what="converged")
        assert s.train_loss is not None and s.step < 100
        assert "converged" in str(app.screen.query_one("#status").render())


@pytest.mark.parametrize("bad", ["abc", "-1"])
async def test_bad_lr_shows_an_error_and_keeps_the_old_lr(bad: str) -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        field = app.screen.query_one("#set-lr", Input)
        field.focus()
        field.value = ""
        await pilot.press(*bad, "enter")
        await pilot.pause(0.2)
        error = str(app.screen.query_one("#err-lr", Label).render())
        assert error, "the error is shown next to the field"
        assert app.snapshot.config.lr == LR and app.seq == 1, "nothing was sent, the old lr stays"
        # letters typed into the input went to the input, not to the b/s/... keys
        assert field.value == bad and app.snapshot.backward_total == 0
        # escape goes back to the main view
        await pilot.press("escape")
        assert app.screen.query_one(ParamsTable).has_focus


async def test_a_good_lr_keeps_the_training_state() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("n", "n")
        before = await wait_seq(pilot, 3)
        field = app.screen.query_one("#set-lr", Input)
        field.focus()
        field.value = ""
        await pilot.press(*"0.0005", "enter")
        s = await wait_for(pilot, lambda s: s.config.lr == 0.0005, what="lr changed")
        assert s.step == before.step == 2
        assert value(s, "w") == value(before, "w")
        assert str(app.screen.query_one("#err-lr", Label).render()) == ""


async def test_runner_failure_lands_on_the_field_and_the_app_goes_on() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        field = app.screen.query_one("#set-batch_size", Input)
        field.focus()
        field.value = ""
        await pilot.press(*"50", "enter")  # valid number, but the data has 5 samples
        await wait_for(pilot, lambda s: app.last_failure is not None, what="Failed")
        assert app.last_failure.command == "Configure"
        assert "batch_size" in app.last_failure.message
        assert str(app.screen.query_one("#err-batch_size", Label).render())
        assert app.snapshot.config.batch_size == 0
        await pilot.press("escape", "t")
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "ErrorScreen"
        await pilot.press("escape", "b")
        await wait_for(pilot, lambda s: s.backward_total == 1, what="still working")


async def test_loading_another_preset_changes_table_and_plots() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("n")
        await wait_seq(pilot, 2)
        table = app.screen.query_one(ParamsTable)
        assert [str(k.value) for k in table.rows] == ["w", "b"]
        await pilot.press("p")
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "PresetPicker"
        await pilot.press(*"noisy", "enter")
        s = await wait_for(pilot, lambda s: s.preset == "noisy-line", what="noisy-line")
        await pilot.pause(0.1)
        assert [str(k.value) for k in table.rows] == [p.name for p in s.params]
        assert [p.name for p in s.params] != ["w", "b"]
        assert s.step == 0 and len(s.history) == 0, "loading starts afresh"
        assert s.undo_label == "load noisy-line", "and can be taken back"
        assert app.screen.query_one("#loss")._snapshot.preset == "noisy-line"
        assert app.screen.query_one("#fit")._snapshot.preset == "noisy-line"


async def test_divergence_pauses_shows_it_and_undo_returns() -> None:
    app = make_app("noisy-line", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        app.submit(Configure({"lr": 5.0, "max_steps": 100_000}))
        await wait_seq(pilot, 2)
        await pilot.press("r")
        s = await wait_for(pilot, lambda s: app.status == "diverged", what="diverged")
        assert not app.running
        assert app.message.startswith(f"diverged at step {s.step} (lr too large?)")
        bar = str(app.screen.query_one("#status").render())
        assert "diverged at step" in bar
        assert app.screen.query_one("#status").has_class("-diverged")
        assert any("diverged" in n.message for n in app._notifications)
        await pilot.press("u")
        s = await wait_for(pilot, lambda s: app.status == "idle", what="undone")
        assert all(np.isfinite(p.value).all() for p in s.params)


async def test_export_writes_the_code(tmp_path: Any) -> None:
    """e asks what to export: p the script, n the notebook, Escape nothing."""
    import nbformat

    app = make_app("five-points", device="cpu", export_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("b", "e", "p")
        await wait_for(pilot, lambda s: app.notices, what="notice")
        path = tmp_path / "playground_five_points.py"
        assert app.notices[-1] == f"wrote {path}"
        assert "loss.backward()" in path.read_text()
        await pilot.press("e", "n")
        await wait_for(pilot, lambda s: len(app.notices) == 2, what="the notebook")
        notebook = tmp_path / "playground_five_points.ipynb"
        assert app.notices[-1] == f"wrote {notebook}"
        nb = nbformat.read(notebook, as_version=4)
        assert any("loss.backward()" in c.source for c in nb.cells if c.cell_type == "code")
        await pilot.press("e", "escape")
        await pilot.pause(0.2)
        assert len(app.notices) == 2 and type(app.screen).__name__ == "MainScreen"

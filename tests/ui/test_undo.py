"""Undo and redo in the TUI, the runner's status, and one meaning per number on screen,
driven with Pilot as a student would: keys in, the screen's own text read back."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Input, Select

from playground.training.report import fmt_array
from playground.tui import make_app
from playground.ui.app import PlaygroundApp
from playground.ui.training.params_table import ParamsTable
from tests.ui.helpers import cell, wait_for, wait_seq


def values(snapshot) -> dict[str, bytes]:
    return {p.name: np.asarray(p.value).tobytes() for p in snapshot.params}


def screen_text(app: PlaygroundApp) -> str:
    """The status bar and the two plots, as the user reads them."""
    main = app.main
    parts = [str(main.query_one("#status").render())]
    parts += [main.query_one(f"#{pid}").render().plain for pid in ("loss", "fit")]
    return "\n".join(parts)


async def test_undo_after_a_3000_step_run_is_step_0_and_redo_is_step_3000() -> None:
    """r for 3000 steps, then one u: step 0 with the initial parameters, bit for bit;
    ctrl+y: step 3000 again, bit for bit - however many slices the run took."""
    app = make_app("noisy-line", device="cpu", overrides={"max_steps": 3000})
    async with app.run_test(size=(120, 40)) as pilot:
        start = await wait_seq(pilot, 1)
        await pilot.press("r")
        end = await wait_for(
            pilot, lambda s: app.status == "max_steps", timeout=120, what="3000 steps"
        )
        assert end.step == 3000 and end.undo_label == "run (3000 train steps)"
        await pilot.press("u")
        back = await wait_for(pilot, lambda s: s.step == 0, what="undone")
        assert values(back) == values(start)
        assert back.log == () and len(back.history) == 0
        assert app.message == "undid run (3000 train steps): back at step 0"
        assert back.undo_depth == 0 and back.redo_label == "run (3000 train steps)"
        await pilot.press("ctrl+y")
        again = await wait_for(pilot, lambda s: s.step == 3000, what="redone")
        assert values(again) == values(end)
        assert again.log == end.log
        np.testing.assert_array_equal(again.history.loss, end.history.loss)


async def test_b_b_z_then_undo_brings_the_accumulated_grads_back() -> None:
    """five-points: b b z, then u shows x2 += again, u once more x1, then None."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("b", "b", "z")
        await wait_seq(pilot, 4)
        assert cell(app, "w", "count") == "zeroed"
        expected = [("x2 +=", "-8340.8"), ("x1", "-4170.4"), ("None", "None")]
        for n, (count, grad) in enumerate(expected, 1):
            await pilot.press("u")
            await wait_seq(pilot, 4 + n)
            await pilot.pause(0.05)
            assert (cell(app, "w", "count"), cell(app, "w", "grad")) == (count, grad)
        await pilot.press("u")
        await wait_for(pilot, lambda s: "nothing to undo" in app.notices, what="the end")


async def test_after_a_divergence_u_lands_on_the_last_finite_step_then_before_the_run() -> None:
    """lr 5 on noisy-line: r diverges; u lands on the last step with a finite loss, and
    every column of the table belongs to that step (the step delta is -lr x .grad, the
    analytic gradient equals autograd's, the losses are finite); u again: before the run."""
    app = make_app("noisy-line", device="cpu", overrides={"lr": 5.0, "max_steps": 100_000})
    async with app.run_test(size=(120, 40)) as pilot:
        start = await wait_seq(pilot, 1)
        await pilot.press("r")
        bad = await wait_for(pilot, lambda s: app.status == "diverged", what="diverged")
        match = re.search(r"step (\d+) had the last finite loss", app.message)
        assert match, app.message
        finite = int(match.group(1))
        await pilot.press("u")
        s = await wait_for(pilot, lambda s: s.step == finite, what="the last finite step")
        assert app.message == f"undid the last 2 steps: back at step {finite}, the last finite loss"
        assert app.status == "idle"
        assert s.step < bad.step
        await pilot.pause(0.1)
        for p in s.params:
            for column, array in (
                ("value", p.value),
                ("grad", p.grad),
                ("delta", p.last_delta),
                ("analytic", p.analytic_grad),
            ):
                assert cell(app, p.name, column) == fmt_array(array, shape=False), column
            assert np.isfinite(p.value).all() and np.isfinite(p.grad).all()
            np.testing.assert_allclose(p.last_delta, -5.0 * p.grad, rtol=1e-4)
            np.testing.assert_allclose(p.analytic_grad, p.grad, rtol=1e-4)
        assert np.isfinite([s.train_loss, s.val_loss, s.batch_loss]).all()
        text = screen_text(app)
        for name, number in (("train", s.train_loss), ("val", s.val_loss)):
            assert set(re.findall(rf"{name} loss (\S+)", text)) == {f"{number:.4g}"}, text
        await pilot.press("u")
        s = await wait_for(pilot, lambda s: s.step == 0, what="before the run")
        assert values(s) == values(start)


async def test_after_b_s_every_panel_that_shows_a_train_loss_shows_the_same_number() -> None:
    """One step, one train loss: the status bar and the fit panel say "train loss" with
    the same number; the loss curve's title says "batch loss" (the batch the backward
    used, before the step), never a bare "loss"."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("b", "s")
        s = await wait_seq(pilot, 3)
        await pilot.pause(0.2)
        text = screen_text(app)
        shown = re.findall(r"train loss (\S+)", text)
        assert len(shown) >= 2, text
        assert set(shown) == {f"{s.train_loss:.4g}"}
        assert f"batch loss {s.batch_loss:.4g}" in text
        assert s.batch_loss != s.train_loss  # two numbers, two names
        assert not re.search(r"(?<!batch )(?<!train )(?<!val )\bloss \d", text), text
        assert "epoch 1" in text, "one update over the full batch: one epoch"


async def test_two_backwards_without_a_step_are_no_epoch_and_a_backward_names_its_batch() -> None:
    app = make_app("softmax", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        s = await wait_seq(pilot, 1)
        await pilot.press("b", "b", "b")
        s = await wait_seq(pilot, 4)
        await pilot.pause(0.2)
        status = str(app.main.query_one("#status").render())
        assert s.batch is not None
        assert f"batch {s.batch[0]}/{s.batch[1]}" in status and s.batch[0] == 3
        assert "epoch 0 " in status + " ", status


async def test_changing_the_optimizer_asks_n_keeps_training_and_u_after_y_restores() -> None:
    app = make_app("noisy-line", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("n", "n", "n")
        trained = await wait_seq(pilot, 4)
        select = app.main.query_one("#set-optimizer", Select)

        async def choose_adam() -> None:
            select.focus()
            await pilot.press("enter", "down", "enter")  # gd, sgd, [adam]
            await pilot.pause(0.1)
            assert type(app.screen).__name__ == "ConfirmScreen"
            question = str(app.screen.query_one("#confirm-question").render())
            assert "restarts training" in question and "adam" in question

        await choose_adam()
        await pilot.press("n")
        await pilot.pause(0.3)
        assert app.seq == 4, "nothing was sent"
        assert select.value == "sgd", "the form shows the optimizer in force again"
        assert values(app.snapshot) == values(trained) and app.snapshot.step == 3

        await choose_adam()
        await pilot.press("y")
        adam = await wait_for(pilot, lambda s: "Adam" in s.optimizer.name, what="adam")
        assert adam.step == 0 and adam.log == ()
        assert "training restarted" in app.message
        await pilot.press("escape", "u")
        back = await wait_for(pilot, lambda s: "SGD" in s.optimizer.name, what="undone")
        assert back.step == 3 and values(back) == values(trained)
        assert back.log == trained.log


@pytest.mark.parametrize("how", ["ctrl+s", "quit"])
async def test_a_session_saved_while_running_resumes_idle(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saved mid-run (ctrl+s, or the autosave of q): the file resumes paused in time,
    idle, and says where it resumed - never "running" with nothing running."""
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "mid-run.npz"
    app = make_app(
        "noisy-line",
        device="cpu",
        overrides={"max_steps": 10_000_000},
        autosave=target if how == "quit" else False,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("r")
        await wait_for(pilot, lambda s: app.running and s.step > 20, what="running")
        if how == "quit":
            await pilot.press("q")
        else:
            await pilot.press("ctrl+s")
            await pilot.pause(0.1)
            app.screen.query_one(Input).value = str(target)
            await pilot.press("enter")
            await wait_for(pilot, lambda s: any("saved" in n for n in app.notices), what="saved")
            assert app.running, "saving does not stop the run"
    assert target.is_file()

    resumed = make_app(device="cpu", resume=str(target))
    async with resumed.run_test(size=(120, 40)) as pilot:
        s = await wait_for(pilot, lambda s: s.step > 20, what="resumed")
        await pilot.pause(0.3)
        assert resumed.status == "idle" and not resumed.running
        assert resumed.message.startswith(f"resumed {target}")
        assert str(resumed.main.query_one("#btn-run").label) == "r run"
        assert s.undo_label is not None and s.undo_label.startswith("run (")
        await pilot.press("n")
        await wait_for(pilot, lambda t: t.step == s.step + 1, what="a step after resuming")
        assert resumed.main.query_one(ParamsTable) is not None


async def test_the_empty_entry_of_a_dropdown_changes_nothing() -> None:
    """Choosing the blank first entry of the optimizer list is no choice: nothing is
    sent, nothing is asked, and the list shows the optimizer in force again."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        select = app.main.query_one("#set-optimizer", Select)
        select.focus()
        await pilot.press("enter", "up", "enter")  # from gd up to the blank entry
        await pilot.pause(0.3)
        assert type(app.screen).__name__ == "MainScreen"
        assert select.value == "gd" and app.seq == 1 and app.last_failure is None

"""The Textual app driven with Pilot: keys in, the runner thread works, the screen shows it.

Every test waits for the runner with ``wait_for`` (a predicate on the app's newest
snapshot, polled with ``pilot.pause``), never with a fixed sleep.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input, Label

from playground.runner import Configure, Failed
from playground.ui import make_app
from playground.ui.app import PlaygroundApp
from playground.ui.messages import RunnerEvent, SnapshotReady
from playground.ui.params_table import ParamsTable

X = np.array([5.0, 7.0, 12.0, 16.0, 20.0])
Y = np.array([40.0, 120.0, 180.0, 210.0, 240.0])
LR = 0.001


def five_point_grads(w: float, b: float) -> tuple[float, float]:
    """dL/dw and dL/db of L = mean((w x + b - y)^2), by hand."""
    r = w * X + b - Y
    return float(np.mean(2 * r * X)), float(np.mean(2 * r))


async def wait_for(
    pilot: Pilot, predicate: Callable[[Any], bool], timeout: float = 30.0, what: str = ""
) -> Any:
    """Poll until ``predicate(snapshot)`` holds for the app's newest snapshot."""
    app = pilot.app
    assert isinstance(app, PlaygroundApp)
    loops = int(timeout / 0.05)
    for _ in range(loops):
        s = app.snapshot
        if s is not None and predicate(s):
            return s
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}; last: {app.snapshot!r:.300}")


async def wait_seq(pilot: Pilot, seq: int, timeout: float = 30.0) -> Any:
    """Wait until the runner has applied ``seq`` commands (one snapshot each)."""
    app = pilot.app
    assert isinstance(app, PlaygroundApp)
    return await wait_for(pilot, lambda s: app.seq >= seq, timeout, f"seq {seq}")


def cell(app: PlaygroundApp, row: str, column: str) -> str:
    return str(app.screen.query_one(ParamsTable).get_cell(row, column))


def grad(s: Any, name: str) -> float:
    g = s.param(name).grad
    return math.nan if g is None else float(g.reshape(-1)[0])


def value(s: Any, name: str) -> float:
    return float(s.param(name).value.reshape(-1)[0])


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
        assert s.param("w").backward_count == 2
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
        assert s.status == "paused" and s.message.startswith("paused at step")
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
        s = await wait_for(pilot, lambda s: s.status == "converged", what="converged")
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
        assert app.snapshot.lr == LR and app.seq == 1, "nothing was sent, the old lr stays"
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
        s = await wait_for(pilot, lambda s: s.lr == 0.0005, what="lr changed")
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
        assert app.snapshot.batch_size == 0
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
        assert app.screen.query_one("#loss")._snapshot.preset == "noisy-line"
        assert app.screen.query_one("#fit")._snapshot.preset == "noisy-line"


async def test_divergence_pauses_shows_it_and_undo_returns() -> None:
    app = make_app("noisy-line", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        app.submit(Configure({"lr": 5.0, "max_steps": 100_000}))
        await wait_seq(pilot, 2)
        await pilot.press("r")
        s = await wait_for(pilot, lambda s: s.status == "diverged", what="diverged")
        assert not app.running
        assert s.message == f"diverged at step {s.diverged_at} (lr too large?)"
        bar = str(app.screen.query_one("#status").render())
        assert "diverged at step" in bar
        assert app.screen.query_one("#status").has_class("-diverged")
        assert any("diverged" in n.message for n in app._notifications)
        await pilot.press("u")
        s = await wait_for(pilot, lambda s: s.status == "idle", what="undone")
        assert all(np.isfinite(p.value).all() for p in s.params)


async def test_export_writes_the_code(tmp_path: Any) -> None:
    app = make_app("five-points", device="cpu", export_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("b", "e")
        await wait_for(pilot, lambda s: app.notices, what="notice")
        path = tmp_path / "playground_five_points.py"
        assert app.notices[-1] == f"wrote {path}"
        assert "loss.backward()" in path.read_text()


async def test_help_optimizer_grad_screen_and_resizing() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        assert app.screen.has_class("-compact")
        await pilot.press("question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.press("o")
        assert app.screen.query_one("#optimizer").display
        await pilot.press("l")
        assert app.screen.query_one("#loss").log_scale
        await pilot.press("4")
        assert app.screen.query_one("#panel-code").has_class("-active")
        for size in ((120, 40), (60, 15), (200, 60), (80, 24), (20, 8)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.05)
        assert app.screen.has_class("-compact")
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.05)
        assert not app.screen.has_class("-compact")
        await pilot.press("g")
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "GradScreen"
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "MainScreen"
        await pilot.press("b")  # the session keys work again
        await wait_for(pilot, lambda s: s.backward_total == 1, what="backward")


def test_the_ui_modules_do_not_import_torch() -> None:
    """torch is imported on the runner thread only; importing the app must not load it."""
    code = (
        "import sys, playground.ui.app, playground.ui.main_screen; sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


async def test_device_failure_offers_to_continue_on_the_cpu() -> None:
    """A Failed event that blames the accelerator offers `c`, which sends Recover('cpu')."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("b")
        await wait_seq(pilot, 2)
        failure = Failed("Run", "RuntimeError: CUDA error: device lost", "trace", True)
        app.post_message(RunnerEvent(failure))
        await pilot.pause(0.1)
        assert app.can_recover
        assert any("c: continue on the CPU" in n.message for n in app._notifications)
        await pilot.press("c")
        await wait_for(pilot, lambda s: "moved the session to cpu" in app.notices, what="moved")
        s = await wait_seq(pilot, 3)
        assert s.backward_total == 1, "the session carried on where it was"
        assert not app.can_recover


async def test_large_tensors_fold_to_shape_and_norm_and_expand_with_enter() -> None:
    app = make_app("spiral", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        s = await wait_seq(pilot, 1)
        table = app.screen.query_one(ParamsTable)
        first = s.params[0]
        assert first.value.size > 4
        assert cell(app, first.name, "value").startswith(f"{tuple(first.shape)} ‖")
        assert "analytic" not in [str(k.value) for k in table.columns], "no closed form for an MLP"
        detail = app.screen.query_one("#tensors")
        assert not detail.display
        table.focus()
        await pilot.press("enter")
        assert detail.display
        assert f"{first.name}  shape" in str(detail.query_one("Static").render())
        await pilot.press("enter")
        assert not detail.display


async def test_a_preset_that_does_not_load_leaves_the_app_usable() -> None:
    app = make_app("no-such-preset", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(600):
            if app.last_failure is not None:
                break
            await pilot.pause(0.05)
        assert app.last_failure is not None and app.last_failure.command == "Load"
        loading = str(app.screen.query_one("#params-loading").render())
        assert "no-such-preset" in loading and "press p" in loading
        # a message with [brackets] is shown as text, not parsed as markup
        app.post_message(RunnerEvent(Failed("Configure", "ValueError: hidden: [8, x] bad", "")))
        await pilot.pause(0.1)
        await pilot.press("p")
        await pilot.press(*"five", "enter")
        s = await wait_for(pilot, lambda s: s.preset == "five-points", what="five-points")
        assert not app.screen.query_one("#params-loading").display
        assert s.step == 0


async def test_resume_a_saved_session(tmp_path: Any) -> None:
    from playground.engine.persist import save_session
    from playground.engine.presets import find_preset
    from playground.engine.session import Session

    session = Session(find_preset("five-points"), device="cpu")
    session.backward()
    session.step()
    path = save_session(session, tmp_path / "saved.npz")
    app = make_app(device="cpu", resume=str(path))
    async with app.run_test(size=(80, 24)) as pilot:
        s = await wait_for(
            pilot, lambda s: s.preset == "five-points" and s.step == 1, what="resumed"
        )
        assert value(s, "w") == pytest.approx(float(session.model.params["w"].item()))
        assert app.last_failure is None


async def test_settings_follow_snapshots_without_sending_them_back() -> None:
    """Showing a snapshot's settings is not a user's change: no Configure goes out, even
    when two snapshots with different settings are drawn back to back."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        s = await wait_seq(pilot, 1)
        app.main.apply_snapshot(dataclasses.replace(s, loss_name="sse", model="linear"), False)
        app.main.apply_snapshot(s, False)
        await pilot.pause(0.3)
        assert app.seq == 1 and app.runner.applied == 1
        assert app.snapshot.loss_name == "mse"


async def test_choosing_an_optimizer_with_the_keyboard_rebuilds_with_it() -> None:
    app = make_app("noisy-line", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        app.screen.query_one("#set-optimizer").focus()
        await pilot.press("enter", "down", "enter")  # gd, sgd, [adam]
        s = await wait_for(pilot, lambda s: "Adam" in s.optimizer.name, what="adam")
        assert s.lr == 0.5, "the other settings stay"


async def test_the_code_panel_follows_the_newest_entry() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("4")  # the Code tab
        for i, key in enumerate("bzbzbzbzbs", start=2):
            await pilot.press(key)
            await wait_seq(pilot, i)
        await pilot.pause(0.2)
        code = app.screen.query_one("#code")
        assert code.max_scroll_y > 0 and code.scroll_y == code.max_scroll_y
        assert "# step" in str(code.query_one("#code-text").render())

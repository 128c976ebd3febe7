"""The Textual app driven with Pilot: panels, layout, screens and failure paths."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from playground.protocol import Failed, Published, Status
from playground.tui import make_app
from playground.ui.messages import RunnerEvent
from playground.ui.training.params_table import ParamsTable
from tests.ui.helpers import cell, value, wait_for, wait_seq


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
        assert "no-such-preset" in loading and "p: choose a preset" in loading
        # a message with [brackets] is shown as text, not parsed as markup
        app.post_message(RunnerEvent(Failed("Configure", "ValueError: hidden: [8, x] bad", "")))
        await pilot.pause(0.1)
        await pilot.press("p")
        await pilot.press(*"five", "enter")
        s = await wait_for(pilot, lambda s: s.preset == "five-points", what="five-points")
        assert not app.screen.query_one("#params-loading").display
        assert s.step == 0


async def test_resume_a_saved_session(tmp_path: Any) -> None:
    from playground.training.persist import save_session
    from playground.training.presets import find_preset
    from playground.training.session import Session

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
        # the resumed session can be on screen before start-up has settled; leaving then
        # trips Textual's shutdown over a pending footer refresh ("No screens on stack")
        await pilot.pause(0.2)


async def test_settings_follow_snapshots_without_sending_them_back() -> None:
    """Showing a snapshot's settings is not a user's change: no Configure goes out, even
    when two snapshots with different settings are drawn back to back."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        s = await wait_seq(pilot, 1)
        other = dataclasses.replace(s.config, loss="sse", model="linear")
        app.main.apply(Published(dataclasses.replace(s, config=other), 1, Status.IDLE))
        app.main.apply(Published(s, 1, Status.IDLE))
        await pilot.pause(0.3)
        assert app.seq == 1 and app.runner.applied == 1
        assert app.snapshot.loss_name == "mse"


async def test_choosing_an_optimizer_with_the_keyboard_rebuilds_with_it() -> None:
    app = make_app("noisy-line", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        app.screen.query_one("#set-optimizer").focus()
        await pilot.press("enter", "down", "enter")  # gd, sgd, [adam]
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "ConfirmScreen", "a restart is asked first"
        await pilot.press("y")
        s = await wait_for(pilot, lambda s: "Adam" in s.optimizer.name, what="adam")
        assert s.config.lr == 0.5, "the other settings stay"


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

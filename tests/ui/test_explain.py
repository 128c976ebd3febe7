"""What just happened, on screen: the explanation panel, the warnings as toasts, a
prediction typed with y, the preset's lessons followed with the keys they ask for, and
the whole preset text with d."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from playground.training.presets import find_preset
from playground.tui import make_app
from playground.ui.app import PlaygroundApp
from playground.ui.dialogs.reading import DescriptionScreen, LessonPicker
from playground.ui.training.explain_panel import KEYS, ExplainPanel
from tests.ui.helpers import until, wait_for, wait_seq
from tests.ui.test_first_hour import go_to_field, type_into


def panel(app: PlaygroundApp) -> ExplainPanel:
    return app.main.query_one(ExplainPanel)


def toasts(app: PlaygroundApp, title: str) -> list[str]:
    return [n.message for n in app._notifications if n.title == title]


async def keys(pilot: Pilot, *pressed: str) -> None:
    """Each key, waiting for the runner to apply it (one snapshot each)."""
    app = pilot.app
    assert isinstance(app, PlaygroundApp)
    for key in pressed:
        seq = app.seq
        await pilot.press(key)
        await wait_seq(pilot, seq + 1)
    await pilot.pause(0.05)


async def test_b_b_s_on_five_points_is_explained_with_its_numbers() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda s: s.preset == "five-points")
        await keys(pilot, "b", "b")
        said = panel(app).text
        assert "dL/dw = -4170.4" in said and "w.grad -4170.4 -> -8340.8" in said
        assert "2 backward passes since the last zero_grad" in said
        await keys(pilot, "s")
        assert "w = 1 - 0.001 * (-8340.8) = 9.3408" in panel(app).text


async def test_stepping_without_zero_grad_warns_once_and_n_never() -> None:
    app = make_app("two-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda s: s.preset == "two-points")
        await keys(pilot, "n", "n", "n")
        assert toasts(app, "did you forget zero_grad?") == []
        await keys(pilot, "ctrl+r", "b", "s", "b", "s", "b", "s")
        (warning,) = toasts(app, "did you forget zero_grad?")
        assert "2 backward passes, not 1" in warning
        assert "⚠ did you forget zero_grad?" in panel(app).text


async def test_a_predicted_w_grad_is_judged_after_the_backward() -> None:
    app = make_app("two-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda s: s.preset == "two-points")
        await pilot.press("y")
        await pilot.press(*"w.grad = -174", "enter")
        await until(pilot, lambda: app.message.startswith("prediction noted"), "the note")
        await keys(pilot, "b")
        await until(pilot, lambda: toasts(app, "your prediction"), "the verdict")
        assert toasts(app, "your prediction") == ["you predicted w.grad = -174; it is -174: exact"]
        # at 80x24 the panel is a tab: its newest line sits above the status bar
        line = str(app.main.query_one("#explain-line").render())
        assert line.startswith("loss.backward() on the whole training set")


async def test_d_shows_the_whole_description() -> None:
    app = make_app("noisy-line", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda s: s.preset == "noisy-line")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DescriptionScreen), "the text")
        text = str(app.screen.query_one("#description-text").render())
        assert "overflows to inf by step 37." in " ".join(text.split())  # its last words
        await pilot.press("escape")
        assert app.screen is app.main


# --- lessons ----------------------------------------------------------------------------

LESSONS = [
    ("shallow-linear", "repeated-backward"),
    ("two-points", "by-hand"),
    ("noisy-line", "lr-too-large"),
    ("noisy-line", "accumulate"),
    ("logistic-val", "best-state"),
]


async def start_lesson(pilot: Pilot, app: PlaygroundApp, preset: str, name: str) -> None:
    lessons = [x.name for x in find_preset(preset).lessons]
    await pilot.press("L")
    if len(lessons) > 1:
        await until(pilot, lambda: isinstance(app.screen, LessonPicker), "the lesson picker")
        await pilot.press(*["down"] * lessons.index(name), "enter")
    await until(
        pilot,
        lambda: panel(app).lesson is not None and panel(app).lesson.name == name,
        f"lesson {name}",
    )


async def follow(pilot: Pilot, app: PlaygroundApp, step: Any) -> None:
    """Do what one lesson step asks, with the keys a student presses."""
    if step.predict is not None:
        await pilot.press("y")
        await pilot.press("0", "enter")  # the field offers "QUANTITY = ": a number finishes it
        await until(pilot, lambda: app.message.startswith("prediction noted"), "the note")
    for action in step.do:
        if action == "configure":
            for name, value in step.settings.items():
                seq = app.seq
                await go_to_field(pilot, name)
                await type_into(pilot, str(value))
                await pilot.press("enter")
                await wait_seq(pilot, seq + 1)
                await pilot.press("escape")  # the keys drive the session again
        elif action == "run":
            told = panel(app).received
            await pilot.press(KEYS["run"])
            await until(  # the run is told once, when it ends
                pilot,
                lambda told=told: (
                    panel(app).received > told and panel(app).history[-1].action == "run"
                ),
                "the end of the run",
                timeout=120,
            )
        else:
            await keys(pilot, KEYS[action])


@pytest.mark.parametrize(("preset", "name"), LESSONS)
async def test_each_shipped_lesson_is_completed_by_following_its_prompts(
    preset: str, name: str
) -> None:
    lesson = find_preset(preset).lesson(name)
    app = make_app(preset, device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda s: s.preset == preset)
        await start_lesson(pilot, app, preset, name)
        for i, step in enumerate(lesson.steps):
            assert panel(app).lesson.index == i
            assert step.prompt in panel(app).text  # the panel shows what to do
            await follow(pilot, app, step)
            await until(
                pilot,
                lambda i=i: panel(app).lesson.index == i + 1 or panel(app).lesson.off_track,
                f"step {i + 1} checked",
            )
            assert not panel(app).lesson.off_track, panel(app).lesson.feedback
        assert panel(app).lesson.finished
        assert "Lesson complete." in panel(app).text


async def test_a_wrong_key_in_a_lesson_is_explained_and_u_takes_it_back() -> None:
    app = make_app("shallow-linear", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda s: s.preset == "shallow-linear")
        await start_lesson(pilot, app, "shallow-linear", "repeated-backward")
        await keys(pilot, "b")  # the first step asks for f
        view = panel(app).lesson
        assert view.off_track
        assert (
            view.feedback
            == "this step asks for forward; you did backward. Press u to take it back."
        )
        assert toasts(app, "lesson step 1/6")  # said where the panel is not in sight
        await keys(pilot, "u")
        assert not panel(app).lesson.off_track
        await keys(pilot, "f")
        assert panel(app).lesson.index == 1

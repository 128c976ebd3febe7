"""Presenter mode, as an instructor uses it in front of a room: P opens it (or
``--presenter``), the numbers are the session's in large digits, the banner lights the
phase that just happened, and slow motion walks a train step phase by phase - the real
actions, so the main screen's code and undo follow - until space pauses it.

Nothing here waits for a time to pass: each step waits (a bounded loop) for what the
screen shows next. Slow motion's pace is set long where a test drives it by keys (space
sends the next phase at once), and short where it must go on by itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.style import Style
from textual.constants import DEFAULT_THEME
from textual.pilot import Pilot
from textual.renderables.digits import Digits

from playground.training.report import fmt_array
from playground.tui import make_app
from playground.ui.app import PlaygroundApp
from playground.ui.presenter.big_params import BigParams
from playground.ui.presenter.key_bar import KeyBar
from playground.ui.presenter.narration import Narration
from playground.ui.presenter.phase_banner import PhaseBanner
from playground.ui.presenter.phases import cycle, lit_by, next_position
from playground.ui.presenter.screen import PresenterScreen
from playground.ui.presenter.slow_motion import SlowMotion
from playground.ui.presenter.theme import OKABE_ITO, PRESENTER_THEME
from playground.ui.training.main_screen import MainScreen
from tests.ui.helpers import grad, until, wait_seq

NEVER = 3600.0  # a pace no test waits for: space alone moves slow motion on


def screen_lines(app: PlaygroundApp) -> list[str]:
    """The screen as the room reads it, one string per terminal row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def big(text: str) -> list[str]:
    """``text`` in the bold three-line digits the presenter draws its numbers in."""
    drawn = "".join(s.text for s in Digits(text).render(Style(bold=True)))
    return drawn.split("\n")[:3]


def shows_big(app: PlaygroundApp, text: str) -> bool:
    """Whether ``text`` is on screen in large digits: its three rows one above the other."""
    rows, lines = big(text), screen_lines(app)
    for y in range(len(lines) - 2):
        x = lines[y + 1].find(rows[1])
        while x >= 0:
            if all(lines[y + i][x : x + len(rows[i])] == rows[i] for i in (0, 2)):
                return True
            x = lines[y + 1].find(rows[1], x + 1)
    return False


def on_screen(app: PlaygroundApp, text: str) -> bool:
    return any(text in line for line in screen_lines(app))


def presenter(app: PlaygroundApp) -> PresenterScreen:
    screen = app.screen
    assert isinstance(screen, PresenterScreen), screen
    return screen


def banner(app: PlaygroundApp) -> PhaseBanner:
    return presenter(app).query_one(PhaseBanner)


async def lit(pilot: Pilot, phase: str) -> None:
    """Wait until the banner lights ``phase`` (and that alone) on screen."""
    app = pilot.app
    assert isinstance(app, PlaygroundApp)
    await until(pilot, lambda: banner(app).text == phase, f"{phase} lit")
    marked = f"▶{phase}◀"  # the letters are spaced out where the cells are wide

    def shown() -> bool:
        return any(marked in line.replace(" ", "") for line in screen_lines(app))

    await until(pilot, shown, f"{phase} lit on screen")


# --- the phases, by hand ------------------------------------------------------------------


def test_a_train_step_is_zero_grad_then_k_forward_backward_pairs_then_step() -> None:
    assert cycle(1) == ("zero_grad", "forward", "backward", "step")
    assert cycle(2) == ("zero_grad", "forward", "backward", "forward", "backward", "step")
    assert lit_by("train_step") == ("zero_grad", "forward", "backward", "step")
    assert lit_by("zero_grad_none") == ("zero_grad",)
    assert lit_by("undo") == () and lit_by(None) == ()


def test_slow_motion_goes_on_from_what_happened_not_from_what_it_sent() -> None:
    """After b b by hand (K = 1) the next phase is the step; after a step, zero_grad."""
    k = 2
    assert next_position(0, "zero_grad", 0, k) == 1  # forward 1 of 2
    assert next_position(1, "forward", 0, k) == 2  # its backward
    assert next_position(2, "backward", 1, k) == 3  # forward 2 of 2
    assert next_position(3, "backward", 2, k) == 5  # the step
    assert next_position(5, "step", 2, k) == 0
    assert next_position(3, "undo", 1, k) == 3  # undo, configure ...: where it was
    slow = SlowMotion()
    slow.follow("backward", 2, 1)
    assert slow.next_phase == "step"
    slow.follow("step", 2, 1)
    assert slow.next_phase == "zero_grad"


def test_the_pace_goes_up_and_down_a_ladder_and_stays_at_its_ends() -> None:
    slow = SlowMotion()
    assert slow.seconds == 2.0
    slow.faster()
    assert slow.seconds == 1.5
    slow.slower()
    slow.slower()
    assert slow.seconds == 3.0
    slow.seconds = 0.05  # a test's pace: faster stays, slower joins the ladder
    slow.faster()
    assert slow.seconds == 0.05
    slow.slower()
    assert slow.seconds == 0.5


def test_the_theme_is_the_okabe_ito_palette_on_black() -> None:
    app = make_app("five-points", device="cpu")
    theme = app.available_themes[PRESENTER_THEME]
    assert theme.background == OKABE_ITO["black"]
    assert {theme.primary, theme.accent, theme.warning, theme.success, theme.error} <= set(
        OKABE_ITO.values()
    )


# --- the screen ---------------------------------------------------------------------------


async def test_p_opens_presenter_mode_and_p_takes_the_main_screen_back() -> None:
    """P on the main screen: the presenter's screen and theme; P again: as it was."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, PresenterScreen), "presenter mode")
        assert app.theme == PRESENTER_THEME
        assert "loaded Five points" in presenter(app).query_one(Narration).text
        assert banner(app).text == ""  # loading a preset is no phase
        keys = presenter(app).query_one(KeyBar).text
        assert "f forward" in keys and "space slow motion" in keys and "P leave" in keys
        assert on_screen(app, "slow motion paused")
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        assert app.theme == DEFAULT_THEME


async def test_presenter_starts_in_it_and_b_b_shows_the_session_numbers_large() -> None:
    """``--presenter``; b b: w.grad -8340.8 and b.grad -580 in large digits, "x2 +="
    beside them, BACKWARD lit, and the coach's words on the two passes."""
    app = make_app("five-points", device="cpu", presenter=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await until(pilot, lambda: isinstance(app.screen, PresenterScreen), "presenter mode")
        await pilot.press("b", "b")
        s = await wait_seq(pilot, 3)
        await lit(pilot, "BACKWARD")
        assert grad(s, "w") == pytest.approx(-8340.8, rel=1e-6)
        shown = presenter(app).query_one(BigParams)
        for p in s.params:  # the main table's numbers, digit for digit
            assert shown.rows[p.name][:3] == (fmt_array(p.value), fmt_array(p.grad), "x2 +=")
        await until(pilot, lambda: shows_big(app, "-8340.8"), "w.grad in large digits")
        assert shows_big(app, "-580") and shows_big(app, "1")
        assert sum(line.count("x2 +=") for line in screen_lines(app)) == 2
        assert on_screen(app, "batch loss 2.536e+04 · train loss 2.536e+04")
        said = presenter(app).query_one(Narration).text
        assert "w.grad -4170.4 -> -8340.8" in said


async def test_slow_motion_shows_each_phase_in_turn_and_the_main_screen_follows() -> None:
    """space plays: zero_grad at once, then (space pausing, space playing on) forward,
    backward, step - each lit on screen with the coach's words on it, each a real action
    the code panel and undo know."""
    app = make_app("five-points", device="cpu", presenter=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_seq(pilot, 1)
        await until(pilot, lambda: isinstance(app.screen, PresenterScreen), "presenter mode")
        presenter(app).slow.seconds = NEVER
        said = {
            "ZERO_GRAD": "every .grad is 0",
            "FORWARD": "forward",
            "BACKWARD": "ADDED it to .grad",
            "STEP": "w = 1 - 0.001 * (-4170.4) = 5.1704",
        }
        for n, phase in enumerate(said):
            await pilot.press("space")  # play: the next phase at once
            await wait_seq(pilot, n + 2)
            await lit(pilot, phase)
            assert said[phase] in presenter(app).query_one(Narration).text
            assert on_screen(app, "▶ SLOW MOTION")
            await pilot.press("space")  # pause
            await until(pilot, lambda: on_screen(app, "slow motion paused"), "paused")
        assert banner(app).lit_history == ["zero_grad", "forward", "backward", "step"]
        actions = [e.action for e in app.snapshot.transcript]
        assert actions[-4:] == ["zero_grad", "forward", "backward", "step"]
        assert on_screen(app, "next: ZERO_GRAD")
        await pilot.press("u")  # undo takes the step back, as on the main screen
        s = await wait_seq(pilot, 6)
        assert s.step == 0 and s.param("w").backwards_since_zero == 1


async def test_slow_motion_goes_on_by_itself_until_space_pauses_it() -> None:
    """At a short pace it walks two whole train steps on its own; space stops it, and
    nothing more is sent."""
    app = make_app("five-points", device="cpu", presenter=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_seq(pilot, 1)
        await until(pilot, lambda: isinstance(app.screen, PresenterScreen), "presenter mode")
        screen = presenter(app)
        screen.slow.seconds = 0.05
        await pilot.press("space")
        await until(pilot, lambda: app.snapshot.step >= 2, "two steps in slow motion")
        await pilot.press("space")
        await until(pilot, lambda: on_screen(app, "slow motion paused"), "paused")
        await until(pilot, lambda: screen._waiting is None, "the last phase in")
        assert banner(app).lit_history[:8] == list(cycle(1)) * 2
        seq = app.seq
        for _ in range(10):  # ten paces: a paused slow motion sends nothing
            await pilot.pause(0.05)
        assert app.seq == seq


async def test_with_k_2_slow_motion_takes_two_micro_batches_before_the_step() -> None:
    """Accumulation, K = 2: zero_grad, then forward and backward twice - the banner says
    which micro-batch - then the one step, after which .grad holds the two passes."""
    app = make_app("five-points", device="cpu", presenter=True, overrides={"accumulate": 2})
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_seq(pilot, 1)
        await until(pilot, lambda: isinstance(app.screen, PresenterScreen), "presenter mode")
        screen = presenter(app)
        assert app.snapshot.config.accumulate == 2
        screen.slow.seconds = NEVER
        details = []
        for n in range(6):
            await pilot.press("space")
            await wait_seq(pilot, n + 2)
            await until(pilot, lambda n=n: len(banner(app).lit_history) == n + 1, f"phase {n}")
            details.append(banner(app).detail)
            if details[-1]:  # under the lit phase's name
                await until(pilot, lambda: on_screen(app, details[-1]), details[-1])
            await pilot.press("space")
            await until(pilot, lambda: on_screen(app, "slow motion paused"), "paused")
        assert banner(app).lit_history == list(cycle(2))
        assert details[1:5] == [f"micro-batch {i} of K=2" for i in (1, 1, 2, 2)]
        assert not on_screen(app, "micro-batch 2 of K=2")  # the step is lit now
        assert app.snapshot.step == 1
        assert {p.backwards_since_zero for p in app.snapshot.params} == {2}


async def test_plus_and_minus_change_the_pace_on_screen_and_a_run_pauses_it() -> None:
    app = make_app("five-points", device="cpu", presenter=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_seq(pilot, 1)
        await until(pilot, lambda: isinstance(app.screen, PresenterScreen), "presenter mode")
        assert on_screen(app, "one phase every 2 s")
        await pilot.press("plus")
        await until(pilot, lambda: on_screen(app, "one phase every 1.5 s"), "faster")
        await pilot.press("minus", "minus")
        await until(pilot, lambda: on_screen(app, "one phase every 3 s"), "slower")
        presenter(app).slow.seconds = NEVER
        await pilot.press("space")
        await lit(pilot, "ZERO_GRAD")
        await pilot.press("r")  # a run: slow motion gives way
        await until(
            pilot, lambda: on_screen(app, "paused (a run is going on)"), "paused by the run"
        )
        await until(pilot, lambda: not app.running, "the run's end")
        await until(pilot, lambda: banner(app).text == "ZERO_GRAD FORWARD BACKWARD STEP", "run")


async def test_the_presenter_theme_is_not_remembered_as_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setenv("PLAYGROUND_NO_AUTOSAVE", "1")
    app = make_app("five-points", device="cpu", autosave=True, presenter=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_seq(pilot, 1)
        await until(pilot, lambda: app.theme == PRESENTER_THEME, "the presenter's theme")
        await pilot.pause()
    assert not (tmp_path / "playground" / "theme.json").exists()

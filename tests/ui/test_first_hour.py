"""A new user's first hour, as keys: no dead end, nothing lost, every field honest.

Each test is a user's steps (keys pressed, what they read afterwards) and checks what is
on screen: the device they asked for is missing, a value they typed is not one, they
leave a field, they press q in the wrong place or with unsaved work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Label, Select, Tabs

from playground.tui import make_app
from playground.ui.app import PlaygroundApp
from playground.ui.dialogs.confirm import ConfirmScreen
from playground.ui.dialogs.path_prompt import PathPrompt
from playground.ui.dialogs.preset_picker import PresetPicker
from playground.ui.training.hyperparams import FIELDS
from tests.ui.helpers import until, wait_for, wait_seq

MISSING = "cuda:97"  # a device no machine has: the same path as cuda on a CPU-only one


def loading_text(app: PlaygroundApp) -> str:
    return str(app.main.query_one("#params-loading").render())


def error_of(app: PlaygroundApp, name: str) -> str:
    return str(app.main.query_one(f"#err-{name}", Label).render())


def field(app: PlaygroundApp, name: str) -> Any:
    return app.main.query_one(f"#set-{name}")


async def go_to_field(pilot: Pilot, name: str) -> None:
    """3 (the settings, focus on the first field), then Tab down to ``name``."""
    await pilot.press("3")
    await pilot.pause(0.1)
    for _ in range([f.name for f in FIELDS].index(name)):
        await pilot.press("tab")
    await pilot.pause(0.05)
    assert pilot.app.focused is field(pilot.app, name)  # type: ignore[arg-type]


async def type_into(pilot: Pilot, text: str) -> None:
    """Replace what the focused input holds with ``text``, as a user does."""
    widget = pilot.app.focused
    assert isinstance(widget, Input)
    await pilot.press("end", *["backspace"] * len(widget.value), *text)


# --- hangs and dead ends -----------------------------------------------------------------


async def test_a_device_that_is_not_here_offers_the_cpu_and_c_loads_there() -> None:
    """`playground five-points --device cuda` without a GPU: the screen says so and
    offers the CPU; c loads the preset there, and the next preset loads there too."""
    app = make_app("five-points", device=MISSING)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.last_failure is not None, "the failed load")
        assert "not available" in loading_text(app)
        assert "c: load it on the CPU" in loading_text(app)
        toast = app._notifications
        assert any(n.title == "loading the preset failed" for n in toast)
        assert any("c: continue on the CPU" in n.message for n in toast)
        await pilot.press("c")
        s = await wait_for(pilot, lambda s: s.preset == "five-points", what="five-points")
        assert s.device == "cpu"
        assert not app.main.query_one("#params-loading").display
        await pilot.press("p")
        await pilot.press(*"softmax", "enter")
        s = await wait_for(pilot, lambda s: s.preset == "softmax", what="softmax")
        assert s.device == "cpu", "the next preset loads on the CPU too"


async def test_after_a_missing_device_the_device_field_loads_on_the_cpu() -> None:
    app = make_app("five-points", device=MISSING)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.last_failure is not None, "the failed load")
        await until(pilot, lambda: app.ready is not None, "the device list")
        await go_to_field(pilot, "device")
        select = field(app, "device")
        assert isinstance(select, Select)
        await pilot.press("enter")  # open the list
        options = [o for o, _ in select._options]
        await pilot.press(*["down"] * options.index("cpu"), "enter")
        s = await wait_for(pilot, lambda s: s.preset == "five-points", what="five-points")
        assert s.device == "cpu"


# --- every field's validation, next to the field, the old value kept -------------------


@pytest.mark.parametrize(
    ("name", "typed", "said"),
    [
        ("seed", "12345678901234567890", "too large"),
        ("accumulate", "99999999999999999999", "too large"),
        ("lr", "1e999", "'1e999' is not a finite number"),
        ("lr", "abc", "'abc' is not a number"),
        ("momentum", "1.5", "must be in [0, 1)"),
    ],
)
async def test_a_bad_value_is_refused_next_to_its_field_and_nothing_is_sent(
    name: str, typed: str, said: str
) -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        s = await wait_seq(pilot, 1)
        before = getattr(s.config, name)
        await go_to_field(pilot, name)
        await type_into(pilot, typed)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert said in error_of(app, name)
        assert field(app, name).value == typed, "Enter keeps the text to correct it"
        assert app.seq == 1 and app.last_failure is None, "nothing went to the runner"
        assert getattr(app.snapshot.config, name) == before


async def test_leaving_a_field_with_a_bad_value_shows_the_value_in_force_again() -> None:
    """`abc` in lr, then Tab: the field says 0.001 again, and why `abc` was refused."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await go_to_field(pilot, "lr")
        await type_into(pilot, "abc")
        await pilot.press("tab")
        await pilot.pause(0.2)
        assert field(app, "lr").value == "0.001"
        assert error_of(app, "lr") == "'abc' is not a number - lr stays 0.001"
        assert app.snapshot.config.lr == 0.001


async def test_the_blank_entry_of_a_list_keeps_the_choice_in_force() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await go_to_field(pilot, "optimizer")
        await pilot.press("enter", "home", "enter")  # the list's first, blank entry
        await pilot.pause(0.2)
        assert field(app, "optimizer").value == "gd"
        assert app.last_failure is None and error_of(app, "optimizer") == ""


# --- focus you can see, and a way out of a field ----------------------------------------


async def test_the_field_being_edited_says_so_and_escape_gives_the_keys_back() -> None:
    """In a field, b types a letter; the field and its label say "editing" and the
    panel's border tells Esc. Esc puts the value in force back; then b is backward."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        panel = app.main.query_one("#panel-settings")
        assert "Tab: edit a setting" in str(panel.border_subtitle)
        await go_to_field(pilot, "lr")
        assert app.main.query_one("#label-lr").has_class("-editing")
        assert "editing lr" in str(panel.border_subtitle)
        assert "Esc leaves the field" in str(panel.border_subtitle)
        assert panel.has_class("-editing")
        await pilot.press("b")
        assert field(app, "lr").value == "b", "a letter in a field is typed (over the value)"
        assert app.snapshot.backward_total == 0
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert field(app, "lr").value == "0.001" and error_of(app, "lr") == ""
        assert not isinstance(app.focused, Input)
        assert isinstance(app.focused, Tabs), "the settings stay in sight"
        assert "Tab: edit a setting" in str(panel.border_subtitle)
        assert not app.main.query_one("#label-lr").has_class("-editing")
        await pilot.press("b")
        await wait_for(pilot, lambda s: s.backward_total == 1, what="backward")


# --- nothing lost ---------------------------------------------------------------------


async def test_q_in_the_autograd_explorer_closes_it_not_the_app() -> None:
    """q on the explorer's graph goes back to the session; letters typed there after
    the focus left the input (sqrt() go into the expression, none of them quits."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("b")
        await wait_seq(pilot, 2)
        await pilot.press("g")
        await until(pilot, lambda: type(app.screen).__name__ == "GradScreen", "explorer")
        screen = app.screen
        await until(pilot, lambda: screen.view is not None, "the first graph")  # type: ignore[attr-defined]
        await until(pilot, lambda: not isinstance(app.focused, Input), "focus on the graph")
        await pilot.press(*"sqrt(")
        expr = screen.query_one("#grad-expr", Input)
        assert expr.has_focus and expr.value.endswith("sqrt("), expr.value
        assert app.screen is screen, "typing did not leave the explorer"
        screen.query_one("#grad-tree").focus()
        await pilot.press("q")
        await until(pilot, lambda: app.screen is app.main, "back on the main screen")
        assert app.is_running and not app._exit
        assert app.snapshot.backward_total == 1, "the session is as it was"


async def test_escape_on_the_first_picker_loads_nothing_and_p_picks_later() -> None:
    app = make_app(device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, PresetPicker), "the picker")
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert app.screen is app.main
        assert app.snapshot is None and app.preset is None, "nothing loaded behind the back"
        assert "no preset loaded" in loading_text(app)
        await pilot.press("p")
        await pilot.press(*"five", "enter")
        s = await wait_for(pilot, lambda s: s.preset == "five-points", what="five-points")
        assert s.step == 0


async def test_quit_with_unsaved_work_and_no_autosave_asks_first(tmp_path: Path) -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("n")
        await wait_seq(pilot, 2)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        question = str(app.screen.query_one("#confirm-question").render())
        assert "lose this session" in question
        await pilot.press("n")  # keep working
        await pilot.pause(0.1)
        assert app.screen is app.main and app.is_running
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, PathPrompt), "the save prompt")
        prompt = app.screen.query_one(Input)
        prompt.value = str(tmp_path / "work.npz")
        await pilot.press("enter")
        await until(pilot, lambda: any("saved" in n for n in app.notices), "saved")
        await pilot.press("q")  # saved: no question
        await until(pilot, lambda: app._exit, "the app quits")


async def test_quit_without_changes_quits_and_y_quits_after_asking() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("q")  # a fresh preset holds no work
        await until(pilot, lambda: app._exit, "the app quits")
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("b")
        await wait_seq(pilot, 2)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await until(pilot, lambda: app._exit, "the app quits")


async def test_a_file_just_opened_holds_no_unsaved_work(tmp_path: Path) -> None:
    """ctrl+o a saved session: it is on disk already, so q quits without asking; one
    action later it asks."""
    from playground.training.persist import save_session
    from playground.training.presets import find_preset
    from playground.training.session import Session

    session = Session(find_preset("five-points"), device="cpu")
    session.backward()
    path = save_session(session, tmp_path / "saved.npz")
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("n")
        await wait_seq(pilot, 2)
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, PathPrompt), "the open prompt")
        app.screen.query_one(Input).value = str(path)
        await pilot.press("enter")
        await wait_for(pilot, lambda s: s.backward_total == 1 and s.step == 0, what="opened")
        await pilot.pause(0.1)
        assert not app.work.unsaved(app.snapshot)
        await pilot.press("b")
        await wait_for(pilot, lambda s: s.backward_total == 2, what="backward")
        assert app.work.unsaved(app.snapshot)

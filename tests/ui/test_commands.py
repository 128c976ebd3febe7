"""The command palette (ctrl+p) offers the playground's own commands - every key, every
preset, every theme - and they do what their keys do; the theme chosen there is
remembered in the state directory and applied at the next start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.constants import DEFAULT_THEME
from textual.pilot import Pilot

from playground.training.catalog import preset_infos
from playground.tui import make_app
from playground.ui.app import PlaygroundApp
from playground.ui.commands import palette_commands
from playground.ui.training.main_screen import MainScreen
from tests.ui.helpers import cell, five_point_grads, grad, wait_for, wait_seq


async def choose(pilot: Pilot, title: str, timeout: float = 10.0) -> None:
    """Open the palette, type ``title`` and press enter once it is the highlighted hit."""
    app = pilot.app
    await pilot.press("ctrl+p")
    for _ in range(int(timeout / 0.05)):
        if isinstance(app.screen, CommandPalette):
            break
        await pilot.pause(0.05)
    await pilot.press(*title)
    palette = app.screen
    assert isinstance(palette, CommandPalette)
    hits = palette.query_one(CommandList)
    for _ in range(int(timeout / 0.05)):
        index = hits.highlighted
        if index is not None and hits.get_option_at_index(index).hit.text == title:
            await pilot.press("enter")
            break
        await pilot.pause(0.05)
    else:
        shown = [hits.get_option_at_index(i).hit.text for i in range(hits.option_count)]
        raise AssertionError(f"{title!r} is not the palette's first hit: {shown[:5]}")
    for _ in range(int(timeout / 0.05)):
        if app.screen is not palette:
            break
        await pilot.pause(0.05)
    await settle(pilot)


async def settle(pilot: Pilot) -> None:
    """Let the footer's pending redraw happen: an app that quits with one still queued
    fails in Textual's run_test (No screens on stack)."""
    await pilot.pause()
    await pilot.pause()


def test_the_palette_offers_every_key_every_preset_and_every_theme() -> None:
    app = make_app("five-points", device="cpu")
    screen = MainScreen()
    titles = {c.title for c in palette_commands(app, screen)}
    for binding in [*MainScreen.BINDINGS, *PlaygroundApp.BINDINGS]:
        if binding.action not in ("quit", "app.quit"):  # Textual's own "Quit" is there
            assert binding.description in titles, binding
    assert len(titles) == len(palette_commands(app, screen)), "each command once"
    for wanted in ("forward", "backward", "zero_grad", "step", "train step", "run/pause"):
        assert wanted in titles
    for wanted in ("undo", "redo", "reset", "export", "autograd", "help", "presets"):
        assert wanted in titles
    infos, _ = preset_infos()
    assert {f"load preset: {i.name}" for i in infos} <= titles
    assert {f"theme: {name}" for name in app.available_themes} <= titles


async def test_backward_from_the_palette_twice_doubles_the_gradient() -> None:
    """The palette's "backward" is the b key: two of them and w.grad holds 2 x dL/dw."""
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        gw, _ = five_point_grads(1.0, 1.0)  # -4170.4 by hand
        await choose(pilot, "backward")
        s = await wait_seq(pilot, 2)
        assert grad(s, "w") == pytest.approx(gw, rel=1e-5)
        await choose(pilot, "backward")
        s = await wait_seq(pilot, 3)
        assert grad(s, "w") == pytest.approx(2 * gw, rel=1e-5)
        assert cell(app, "w", "count") == "x2 +="
        await choose(pilot, "zero_grad")
        s = await wait_seq(pilot, 4)
        assert grad(s, "w") == 0.0
        await settle(pilot)


async def test_a_preset_loads_from_the_palette() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await choose(pilot, "load preset: two-points")
        s = await wait_for(pilot, lambda s: s.preset == "two-points", what="two-points loaded")
        assert [p.name for p in s.params] == ["w", "b"]
        await settle(pilot)


async def test_the_chosen_theme_is_remembered_and_applied_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setenv("PLAYGROUND_NO_AUTOSAVE", "1")
    theme_file = tmp_path / "playground" / "theme.json"

    first = make_app("five-points", device="cpu", autosave=True)
    assert first.theme == DEFAULT_THEME  # nothing remembered yet
    async with first.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await choose(pilot, "theme: nord")
        await pilot.pause()
        assert first.theme == "nord"
    assert json.loads(theme_file.read_text(encoding="utf-8")) == {"theme": "nord"}

    second = make_app("five-points", device="cpu", autosave=True)
    async with second.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        assert second.current_theme.name == "nord"
        await settle(pilot)


@pytest.mark.parametrize("text", ["{not json", '{"theme": "no-such-theme"}', '["nord"]'])
def test_a_broken_or_unknown_theme_file_starts_with_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    (tmp_path / "playground").mkdir()
    (tmp_path / "playground" / "theme.json").write_text(text, encoding="utf-8")
    assert make_app("five-points", device="cpu", autosave=True).theme == DEFAULT_THEME


def test_tests_and_embedding_neither_read_nor_write_the_theme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    (tmp_path / "playground").mkdir()
    (tmp_path / "playground" / "theme.json").write_text('{"theme": "nord"}', encoding="utf-8")
    app = make_app("five-points", device="cpu")  # autosave=False, as in every other test
    assert app.theme == DEFAULT_THEME and app.theme_file is None

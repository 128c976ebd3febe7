"""Every screen legible, at 80x24, 100x30 and 120x40: what a new user reads afterwards.

Matrices as matrices with the count column in sight, buttons and titles that fit, words
instead of enum values, legends beside the data rather than over it, a middle layout
from 100x30, tabs whose underline follows the panel shown, a screenshot saved where the
user is, a preset filter that says when nothing matches.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Button, Tabs
from textual.widgets._tabs import Underline

from playground.protocol import Failed, Notice
from playground.tui import make_app
from playground.ui.app import PlaygroundApp
from playground.ui.dialogs.preset_picker import PresetPicker
from playground.ui.messages import RunnerEvent
from tests.ui.helpers import cell, until, wait_for, wait_seq


def screen_lines(app: PlaygroundApp) -> list[str]:
    """The screen as the user reads it, one string per terminal row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def canvas_rows(text: str) -> list[str]:
    """A plot's rows between its frame's top and bottom lines."""
    rows = text.splitlines()
    top = next(i for i, r in enumerate(rows) if "┌" in r)
    bottom = next(i for i, r in enumerate(rows) if "└" in r)
    return rows[top + 1 : bottom]


# --- matrices, and the count column in sight ------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40)])
async def test_w_is_a_2x2_matrix_and_its_count_is_on_screen(size: tuple[int, int]) -> None:
    app = make_app("softmax", device="cpu")
    async with app.run_test(size=size) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("b", "b")
        s = await wait_seq(pilot, 3)
        await pilot.pause(0.2)
        w = s.param("W")
        first, second = cell(app, "W", "value").splitlines()
        assert first.startswith("⎡") and second.startswith("⎣")
        assert f"{float(w.value[1, 0]):.4g}" in second, "row 2 of W on line 2"
        lines = screen_lines(app)
        w_line = next(line for line in lines if " W " in line and "⎡" in line)
        assert "x2 +=" in w_line, "the count column is on screen, not scrolled off"


async def test_the_header_and_the_count_fit_shallow_linear_at_80x24() -> None:
    app = make_app("shallow-linear", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("b")
        await wait_seq(pilot, 2)
        await pilot.pause(0.2)
        lines = screen_lines(app)
        header = next(line for line in lines if "param" in line and "value" in line)
        assert "backward" in header
        assert any(" w " in line and "x1" in line for line in lines)
        title = lines[0].strip()
        assert "…" not in title and title in app.snapshot.title, "a whole clause, not cut"


# --- buttons, status words, failures in words, toasts ------------------------------------


async def test_the_run_button_says_pause_on_one_line_while_running() -> None:
    app = make_app("noisy-line", device="cpu", overrides={"max_steps": 10_000_000})
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("r")
        await until(pilot, lambda: app.running, "the run")
        await pilot.pause(0.2)
        button = app.main.query_one("#btn-run", Button)
        assert str(button.label) == "r pause"
        assert button.size.height == 1 and button.size.width >= len("r pause")
        assert any("r pause" in line for line in screen_lines(app))
        await pilot.press("r")
        await until(pilot, lambda: not app.running, "the pause")


async def test_the_status_bar_speaks_words_and_keeps_the_device_at_120() -> None:
    app = make_app("five-points", device="cpu", overrides={"max_steps": 3})
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("r")
        await wait_for(pilot, lambda s: s.step == 3 and not app.running, what="3 steps")
        await pilot.pause(0.2)
        status = str(app.main.query_one("#status").render())
        assert "reached max steps" in status and "max_steps" not in status
        assert status.rstrip().endswith("cpu")


async def test_a_failed_action_is_named_as_the_user_did_it() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("b")
        await wait_seq(pilot, 2)
        app.post_message(RunnerEvent(Failed("Act", "RuntimeError: boom", "trace")))
        await pilot.pause(0.1)
        titles = [n.title for n in app._notifications]
        assert "backward failed" in titles and "Act failed" not in titles


async def test_a_toast_never_covers_the_status_bar() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_seq(pilot, 1)
        app.post_message(RunnerEvent(Notice("wrote /somewhere/with/a/long/path/file.py")))
        await until(pilot, lambda: bool(app.screen.query("Toast")), "the toast")
        await pilot.pause(0.1)
        status_y = app.main.query_one("#status").region.y
        for toast in app.screen.query("Toast"):
            assert toast.region.bottom <= status_y, (toast.region, status_y)


# --- legends beside the data, short labels after a divergence, the errors in red ------


async def test_the_legends_are_not_drawn_over_the_data() -> None:
    app = make_app("noisy-line", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("b", "n")
        await wait_seq(pilot, 3)
        await pilot.pause(0.3)
        loss = app.main.query_one("#loss").render().plain
        fit = app.main.query_one("#fit").render().plain
        assert "backward only" in loss and "least squares" in fit
        for text, labels in ((loss, ("train step", "backward only")), (fit, ("data", "model"))):
            for row in canvas_rows(text):
                assert not any(label in row for label in labels), row


async def test_after_a_divergence_the_fit_keeps_short_labels_and_says_the_model_left() -> None:
    app = make_app("noisy-line", device="cpu", overrides={"lr": 1.5, "max_steps": 40})
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("r")
        await wait_for(pilot, lambda s: s.step > 0 and not app.running, what="the run")
        await pilot.pause(0.3)
        assert abs(float(app.snapshot.param("weight").value.reshape(-1)[0])) > 1e4
        plot = app.main.query_one("#fit")
        labels = plot.plt.monitor.ylabels[0]
        assert labels and all(len(label) <= 6 for label in labels), labels
        assert "model off the chart" in plot.render().plain


async def test_misclassified_points_are_marked_apart_from_the_regions() -> None:
    """softmax at its initial parameters: the points the model gets wrong (counted here
    from W and b with numpy) are one red series of their own."""
    app = make_app("softmax", device="cpu", seed=14)
    async with app.run_test(size=(120, 40)) as pilot:
        s = await wait_seq(pilot, 1)
        await pilot.pause(0.3)
        w = s.param("W").value.astype(np.float64)
        b = s.param("b").value.astype(np.float64)
        x, y = np.asarray(s.fit.x, dtype=np.float64), np.asarray(s.fit.y).astype(int)
        wrong = int(np.sum((x @ w + b).argmax(axis=1) != y))
        assert wrong > 0
        mon = app.main.query_one("#fit").plt.monitor
        labels = [label for label in mon.label if label]
        assert f"misclassified ({wrong})" in labels
        i = mon.label.index(f"misclassified ({wrong})")
        assert len(mon.x[i]) == wrong and mon.marker[i][0] == "✗"
        region = mon.label.index("model says 0")
        assert mon.color[i][0] != mon.color[region][0]


# --- layouts and tabs -----------------------------------------------------------------


async def test_from_100x30_parameters_and_loss_share_the_screen() -> None:
    app = make_app("softmax", device="cpu")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_seq(pilot, 1)
        main = app.main
        assert main.has_class("-middle") and not main.has_class("-compact")

        def on_screen(pid: str) -> bool:
            region = main.query_one(f"#panel-{pid}").region
            return region.height > 0 and region.width > 0

        assert on_screen("params") and on_screen("loss")
        tabs = main.query_one(Tabs)
        shown_tabs = [t.id for t in tabs.query("Tab") if t.display]
        assert shown_tabs == ["tab-settings", "tab-code", "tab-fit", "tab-explain"]
        await pilot.press("3")
        await pilot.pause(0.2)
        assert on_screen("settings") and not on_screen("fit")
        assert on_screen("params") and on_screen("loss")
        assert tabs.active == "tab-settings"


async def test_the_tab_underline_follows_the_panel_shown() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("4")  # the code, with every panel on screen
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.5)
        main = app.main
        tabs = main.query_one(Tabs)
        assert tabs.active == "tab-code"
        assert main.query_one("#panel-code").region.height > 0
        assert main.query_one("#panel-params").region.height == 0
        await pilot.press("2")
        await pilot.pause(0.5)
        underline = tabs.query_one(Underline)
        tab = tabs.query_one("#tab-loss")
        start, end = tab.virtual_region.shrink(tab.styles.gutter).column_span
        assert (underline.highlight_start, underline.highlight_end) == (start, end)


# --- screenshot, the preset filter ------------------------------------------------------


async def test_a_screenshot_lands_in_the_working_directory_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home-without-downloads"))
    monkeypatch.chdir(tmp_path)
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        app.deliver_screenshot()  # what the palette's Screenshot does
        await until(pilot, lambda: any(tmp_path.glob("*.svg")), "the screenshot")
        (svg,) = tmp_path.glob("*.svg")
        await until(
            pilot, lambda: any(svg.name in n.message for n in app._notifications), "the toast"
        )
        assert os.path.getsize(svg) > 0


async def test_a_filter_that_matches_nothing_says_so_and_the_keys_are_shown() -> None:
    app = make_app("five-points", device="cpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_seq(pilot, 1)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PresetPicker), "the picker")
        picker = app.screen
        keys = str(picker.query_one("#picker-keys").render())
        assert "Enter" in keys and "Esc" in keys
        assert not picker.query_one("#picker-none").display
        await pilot.press(*"zzzz")
        await pilot.pause(0.1)
        none = picker.query_one("#picker-none")
        assert none.display and "no preset matches 'zzzz'" in str(none.render())
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.screen is app.main and app.snapshot.preset == "five-points"

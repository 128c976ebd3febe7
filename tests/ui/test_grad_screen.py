"""Pilot tests for the autograd explorer screen, in a tiny app that only pushes it.

The screen's tensors live on a real ``ExplorerWorker`` thread, so every check of an answer
waits for it (``until``): the first answer also waits for torch's import on that thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from textual.app import App
from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static, Tree

from playground.explorer.graph import GradExplorer
from playground.explorer.worker import ExplorerWorker
from playground.ui.explorer.grad_screen import GradScreen, PresetPicker

AUTOGRAD_COL = 2
TIMEOUT_S = 60.0  # torch's first import on a slow machine; a correct answer takes ms


class GradApp(App[None]):
    def __init__(self, screen: GradScreen) -> None:
        super().__init__()
        self._grad_screen = screen

    def on_mount(self) -> None:
        self.push_screen(self._grad_screen)


def cell(screen: GradScreen, row: int, col: int) -> str:
    table = screen.query_one("#grad-checks", DataTable)
    return str(table.get_cell_at(Coordinate(row, col)))


def message(screen: GradScreen) -> str:
    return str(screen.query_one("#grad-message", Static).render())


def status(screen: GradScreen) -> str:
    return str(screen.query_one("#grad-status", Static).render())


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str = "") -> None:
    """Let the app run until ``condition()`` holds (the worker has answered)."""
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        await pilot.pause(0.05)


def passes(screen: GradScreen, n: int) -> Callable[[], bool]:
    return lambda: screen.view is not None and screen.view.backward_passes == n


async def test_type_an_expression_press_enter_and_see_the_gradient() -> None:
    screen = GradScreen(ExplorerWorker, preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert screen.query_one("#grad-expr", Input).has_focus
        await pilot.press(*"1/(1+exp(-x))")
        await pilot.press("enter")  # no values yet: focus moves to the values input
        assert screen.query_one("#grad-values", Input).has_focus
        await pilot.press(*"x=2", "enter")
        await until(pilot, lambda: screen.query_one("#grad-tree", Tree).has_focus, "the graph")
        assert cell(screen, 0, 0) == "x"
        assert cell(screen, 0, AUTOGRAD_COL) == "0.10499359"  # autograd .grad
        assert cell(screen, 0, 3) == "0.10499359"  # .grad / passes (one pass)
        assert cell(screen, 0, 4) == "0.10499359"  # sympy
        assert cell(screen, 0, 6) == "0.10499359"  # finite difference
        tree = screen.query_one("#grad-tree", Tree)
        assert str(tree.root.label).startswith("d = 1 / c")


async def test_bad_expression_is_shown_inline_and_the_app_keeps_going() -> None:
    screen = GradScreen(ExplorerWorker, "x + (", "x=1", preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "expression: syntax error" in message(screen))
        assert "x + (\n    ^" in message(screen)  # the caret under the column
        assert screen.view is None
        screen.query_one("#grad-expr", Input).value = "__import__('os').getcwd()"
        screen.query_one("#grad-expr", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: "attribute access" in message(screen))
        screen.query_one("#grad-values", Input).value = "x=oops"
        await pilot.press("enter")  # the values are checked on the spot: no worker needed
        assert "values: expected a number for 'x'" in message(screen)
        await pilot.press("escape")  # nothing crashed: escape still goes back
        await pilot.pause()
        assert not isinstance(app.screen, GradScreen)


async def test_backward_again_retain_graph_and_zero_grad_keys() -> None:
    screen = GradScreen(ExplorerWorker, "s = 1/(1 + exp(-x))", "x=2", preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, passes(screen, 1), "the first backward")
        screen.query_one("#grad-tree", Tree).focus()
        await pilot.press("b")
        await until(pilot, lambda: "Trying to backward through the graph" in message(screen))
        assert "Trying to backward through the graph a second time" in message(screen)
        assert screen.view.backward_passes == 1
        await pilot.press("r", "f", "b", "b")  # retain on, new graph, two more backwards
        await until(pilot, passes(screen, 3), "three passes")
        assert screen.view.retain_graph and screen.view.backward_passes == 3
        assert cell(screen, 0, AUTOGRAD_COL) == "0.31498076"  # 3 x 0.10499359
        await pilot.press("z")
        await until(pilot, passes(screen, 0), "zero_grad")
        assert cell(screen, 0, AUTOGRAD_COL) == "0"
        assert "passes 0" in status(screen)


async def test_step_backward_walks_the_chain_rule() -> None:
    screen = GradScreen(ExplorerWorker, "s = 1/(1 + exp(-x))", "x=2", preset=None)
    app = GradApp(screen)

    def steps_done(n: int) -> Callable[[], bool]:
        return lambda: screen.view is not None and len(screen.view.steps_done) == n

    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, passes(screen, 1), "the graph")
        screen.query_one("#grad-tree", Tree).focus()
        await pilot.press("n", "n", "n")
        await until(pilot, steps_done(3))
        steps = str(screen.query_one("#grad-steps", Static).render())
        assert "ds/db = ds/dc * 1" in steps
        await pilot.press("n", "n")
        await until(pilot, steps_done(5))
        steps = str(screen.query_one("#grad-steps", Static).render())
        assert "ds/dx = ds/da * (-1) = (-0.1049935854) * (-1) = 0.10499359" in steps
        assert len(screen.view.steps_done) == 5
        await pilot.press("n")  # past the end: start again
        await until(pilot, steps_done(1))
        assert len(screen.view.steps_done) == 1


async def test_pick_a_preset_from_the_list() -> None:
    screen = GradScreen(ExplorerWorker, preset="sigmoid")
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: screen.view is not None, "the sigmoid preset")
        assert screen.view is not None and screen.view.output == "s"
        assert screen.query_one("#grad-tree", Tree).has_focus  # a preset is ready to drive
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PresetPicker), "the picker")
        assert isinstance(app.screen, PresetPicker)
        names = [p.name for p in app.screen._presets]
        await pilot.press(*["down"] * names.index("polynomial"), "enter")
        await until(pilot, lambda: screen.view is not None and screen.view.output == "y")
        assert app.screen is screen
        assert screen.query_one("#grad-expr", Input).value.startswith("y = 8*x**4")
        assert cell(screen, 0, AUTOGRAD_COL) == "326"


async def test_fits_80x24() -> None:
    screen = GradScreen(ExplorerWorker, preset="tanh_log_sin")
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: screen.view is not None, "the tanh_log_sin preset")
        await pilot.pause()
        for selector in ("#grad-expr", "#grad-tree", "#grad-checks", "#grad-status"):
            region = screen.query_one(selector).region
            assert region.height > 0 and region.bottom <= 24 and region.right <= 80, selector
        assert screen.query_one("#grad-tree").region.height >= 4


async def test_the_tensors_are_touched_on_the_worker_thread_not_the_ui_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[threading.Thread] = []
    real_backward = GradExplorer.backward

    def backward(self: GradExplorer):  # noqa: ANN202 - the real one's GraphView
        threads.append(threading.current_thread())
        return real_backward(self)

    monkeypatch.setattr(GradExplorer, "backward", backward)
    screen = GradScreen(ExplorerWorker, "s = 1/(1 + exp(-x))", "x=2", preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        ui_thread = threading.current_thread()
        await until(pilot, passes(screen, 1), "the first backward")
        assert threads and all(t is not ui_thread for t in threads)
        assert {t.name for t in threads} == {ExplorerWorker.name}


async def test_a_failing_engine_call_is_shown_and_the_screen_keeps_working(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: GradExplorer):  # noqa: ANN202
        raise ValueError("the engine broke")

    screen = GradScreen(ExplorerWorker, "s = 1/(1 + exp(-x))", "x=2", preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, passes(screen, 1), "the first backward")
        screen.query_one("#grad-tree", Tree).focus()
        monkeypatch.setattr(GradExplorer, "zero_grad", broken)
        await pilot.press("z")
        await until(pilot, lambda: "the engine broke" in message(screen))
        assert message(screen) == "error: ValueError: the engine broke"
        assert screen.view.backward_passes == 1  # the last good view stays on screen
        await pilot.press("r", "f", "b")  # the worker thread is alive and keeps answering
        await until(pilot, passes(screen, 2), "a second backward")
        assert cell(screen, 0, AUTOGRAD_COL) == "0.20998717"


async def test_keys_before_any_graph_say_what_to_do_first() -> None:
    screen = GradScreen(ExplorerWorker, preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen.query_one("#grad-tree", Tree).focus()
        await pilot.press("b")
        await until(pilot, lambda: "first" in message(screen))
        assert message(screen) == "enter an expression and values first (Enter)"


async def test_the_screen_stays_responsive_and_says_computing_while_the_worker_is_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    real_forward = GradExplorer.forward

    def slow_forward(self: GradExplorer):  # noqa: ANN202
        release.wait(TIMEOUT_S)  # the worker is stuck in torch until the test lets it go
        return real_forward(self)

    def forward_done() -> bool:
        return screen.view is not None and "forward: a new graph" in screen.view.last_code

    screen = GradScreen(ExplorerWorker, "s = 1/(1 + exp(-x))", "x=2", preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, passes(screen, 1), "the first backward")
        screen.query_one("#grad-tree", Tree).focus()
        monkeypatch.setattr(GradExplorer, "forward", slow_forward)
        try:
            await pilot.press("f")
            await until(pilot, lambda: status(screen).startswith("computing..."))
            await pilot.press("e")  # keys still work while the worker computes
            assert screen.query_one("#grad-expr", Input).has_focus
            assert not forward_done()
        finally:
            release.set()
        await until(pilot, forward_done, "the slow forward")
        assert not status(screen).startswith("computing...")


async def test_leaving_the_screen_stops_its_worker() -> None:
    workers: list[ExplorerWorker] = []

    def factory(publish: Callable[..., None]) -> ExplorerWorker:
        workers.append(ExplorerWorker(publish))
        return workers[-1]

    screen = GradScreen(factory, "x**2", "x=3", preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, passes(screen, 1), "the graph")
        await pilot.press("escape")
        await until(pilot, lambda: not workers[0].alive, "the worker to end")
    assert len(workers) == 1


async def test_the_check_table_says_grad_holds_three_passes_and_compares_per_pass() -> None:
    """r, then b b: .grad holds three backward passes (3 x 0.10499359); the table says so
    and compares the references with .grad / 3 (differences ~0, not -2 x the gradient).
    A failed backward (no retain_graph) leaves the output's grad at 1."""
    screen = GradScreen(ExplorerWorker, "s = 1/(1 + exp(-x))", "x=2", preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, passes(screen, 1), "the first backward")
        screen.query_one("#grad-tree", Tree).focus()
        note = screen.query_one("#grad-checks-note", Static)
        assert "one backward pass" in str(note.render())
        await pilot.press("b")  # fails: the graph is freed
        await until(pilot, lambda: "second time" in message(screen), "the error")
        assert screen.view.node("s").grad == 1.0, "a failed backward adds nothing"
        await pilot.press("r", "f", "b", "b")
        await until(pilot, passes(screen, 3), "three passes")
        assert "3 backward passes" in str(note.render())
        assert "Δ = reference - .grad / 3" in str(note.render())
        assert cell(screen, 0, AUTOGRAD_COL) == "0.31498076"
        assert cell(screen, 0, 3) == "0.10499359"  # .grad / passes
        assert abs(float(cell(screen, 0, 5))) < 1e-12  # Δ sympy


async def test_q_on_the_explorer_goes_back() -> None:
    screen = GradScreen(ExplorerWorker, "s = x * x", "x=3", preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, passes(screen, 1), "the first backward")
        screen.query_one("#grad-tree", Tree).focus()
        await pilot.press("q")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, GradScreen)

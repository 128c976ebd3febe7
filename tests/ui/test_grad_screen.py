"""Pilot tests for the autograd explorer screen, in a tiny app that only pushes it."""

from __future__ import annotations

from textual.app import App
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, Static, Tree

from playground.ui.explorer.grad_screen import GradScreen, PresetPicker

AUTOGRAD_COL = 2


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


async def test_type_an_expression_press_enter_and_see_the_gradient() -> None:
    screen = GradScreen(preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert screen.query_one("#grad-expr", Input).has_focus
        await pilot.press(*"1/(1+exp(-x))")
        await pilot.press("enter")  # no values yet: focus moves to the values input
        assert screen.query_one("#grad-values", Input).has_focus
        await pilot.press(*"x=2", "enter")
        await pilot.pause()
        assert screen.query_one("#grad-tree", Tree).has_focus
        assert cell(screen, 0, 0) == "x"
        assert cell(screen, 0, AUTOGRAD_COL) == "0.10499359"  # autograd .grad
        assert cell(screen, 0, 3) == "0.10499359"  # sympy
        assert cell(screen, 0, 5) == "0.10499359"  # finite difference
        tree = screen.query_one("#grad-tree", Tree)
        assert str(tree.root.label).startswith("d = 1 / c")


async def test_bad_expression_is_shown_inline_and_the_app_keeps_going() -> None:
    screen = GradScreen("x + (", "x=1", preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "expression: syntax error" in message(screen)
        assert screen.view is None
        screen.query_one("#grad-expr", Input).value = "__import__('os').getcwd()"
        screen.query_one("#grad-expr", Input).focus()
        await pilot.press("enter")
        assert "attribute access" in message(screen)
        screen.query_one("#grad-values", Input).value = "x=oops"
        await pilot.press("enter")
        assert "values: expected a number for 'x'" in message(screen)
        await pilot.press("escape")  # nothing crashed: escape still goes back
        await pilot.pause()
        assert not isinstance(app.screen, GradScreen)


async def test_backward_again_retain_graph_and_zero_grad_keys() -> None:
    screen = GradScreen("s = 1/(1 + exp(-x))", "x=2", preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen.query_one("#grad-tree", Tree).focus()
        await pilot.press("b")
        assert "Trying to backward through the graph a second time" in message(screen)
        assert screen.view.backward_passes == 1
        await pilot.press("r", "f", "b", "b")  # retain on, new graph, two more backwards
        assert screen.view.retain_graph and screen.view.backward_passes == 3
        assert cell(screen, 0, AUTOGRAD_COL) == "0.31498076"  # 3 x 0.10499359
        await pilot.press("z")
        assert cell(screen, 0, AUTOGRAD_COL) == "0"
        assert "passes 0" in str(screen.query_one("#grad-status", Static).render())


async def test_step_backward_walks_the_chain_rule() -> None:
    screen = GradScreen("s = 1/(1 + exp(-x))", "x=2", preset=None)
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen.query_one("#grad-tree", Tree).focus()
        await pilot.press("n", "n", "n")
        steps = str(screen.query_one("#grad-steps", Static).render())
        assert "ds/db = ds/dc * 1" in steps
        await pilot.press("n", "n")
        steps = str(screen.query_one("#grad-steps", Static).render())
        assert "ds/dx = ds/da * (-1) = (-0.1049935854) * (-1) = 0.10499359" in steps
        assert len(screen.view.steps_done) == 5
        await pilot.press("n")  # past the end: start again
        assert len(screen.view.steps_done) == 1


async def test_pick_a_preset_from_the_list() -> None:
    screen = GradScreen(preset="sigmoid")
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert screen.view is not None and screen.view.output == "s"
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, PresetPicker)
        names = [p.name for p in app.screen._presets]
        await pilot.press(*["down"] * names.index("polynomial"), "enter")
        await pilot.pause()
        assert app.screen is screen
        assert screen.query_one("#grad-expr", Input).value.startswith("y = 8*x**4")
        assert cell(screen, 0, AUTOGRAD_COL) == "326"


async def test_fits_80x24() -> None:
    screen = GradScreen(preset="tanh_log_sin")
    app = GradApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.pause()
        for selector in ("#grad-expr", "#grad-tree", "#grad-checks", "#grad-status"):
            region = screen.query_one(selector).region
            assert region.height > 0 and region.bottom <= 24 and region.right <= 80, selector
        assert screen.query_one("#grad-tree").region.height >= 4

"""The parameters and their gradients in large digits, for the back of the room.

One row per parameter: its value and ``.grad`` in Textual's three-line digits (a scalar;
a tensor is written out in bold, a small matrix as a matrix), how many backward passes
``.grad`` holds since the last zero (``x2 +=`` in words and colour, as the main table
has it) and the change the last step made. The numbers are the main table's
(``fmt_array``: the same digits), so what the room reads is what the student's screen
says. Where the digits do not fit the width, every row is written in bold text instead; where the rows do not fit the room the screen gives (``max_lines``),
the last line says how many are left out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.renderables.digits import Digits
from textual.widget import Widget

from playground.training.report import count_label
from playground.ui.training.params_table import GRAD_COLOURS, grad_state, tensor_text

if TYPE_CHECKING:
    from playground.training.snapshot import ParamView, Snapshot

# the main table's words: "backward" counts the backward passes .grad holds
HEADERS = ("param", "value", ".grad", "backward", "step Δ")
GAPS = 2 * len(HEADERS)  # a cell of padding either side of each column


def is_big(text: str) -> bool:
    """A finite number (not a tensor, None, nan or inf, which are words)."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def cell_width(text: str, big: bool) -> int:
    if big and is_big(text):
        return Digits.get_width(text.upper())
    return max(len(line) for line in text.split("\n"))


def row_cells(p: ParamView) -> tuple[str, str, str, str]:
    """value, .grad, count, step Δ: the main table's texts."""
    delta = "—" if p.last_delta is None else tensor_text(p.last_delta, shape=False)
    return tensor_text(p.value), tensor_text(p.grad, shape=False), count_label(p), delta


class BigParams(Widget):
    """The parameter rows; ``update_snapshot`` redraws when a number changed."""

    DEFAULT_CSS = """
    BigParams {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: dict[str, tuple[str, str, str, str]] = {}  # name -> what row_cells says
        self._states: dict[str, str] = {}  # name -> grad_state (the count's colour)
        self.big = False  # the last render drew digits
        self.max_lines: int | None = None  # the room it has (the screen sets it)
        self.left_out = 0  # parameters the last render had no room for

    def update_snapshot(self, snapshot: Snapshot) -> None:
        rows = {p.name: row_cells(p) for p in snapshot.params}
        states = {p.name: grad_state(p) for p in snapshot.params}
        if (rows, states) != (self.rows, self._states):
            self.rows, self._states = rows, states
            self.refresh(layout=True)

    def width_needed(self, big: bool = True) -> int:
        """Cells the rows take, each column as wide as its widest cell (the padding of the
        panel not included); ``big``: with the numbers in digits."""
        widths = [len(h) for h in HEADERS]
        for name, cells in self.rows.items():
            texts = (name, *cells)
            for i, text in enumerate(texts):
                widths[i] = max(widths[i], cell_width(text, big and i in (1, 2)) + 2 * (i == 3))
        return sum(widths) + GAPS

    def render(self) -> RenderableType:
        if not self.rows:
            return Text("no parameters yet", style="dim")
        width = self.content_region.width or self.size.width
        self.big = self.width_needed() <= width
        table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
        for header in HEADERS:
            # never wrapped: a row is as high at any width (the grid measures this
            # widget at one column's width when it spans two)
            table.add_column(header, vertical="middle", no_wrap=True, overflow="ellipsis")
        colours = self.app.theme_variables
        budget = None if self.max_lines is None else self.max_lines - 1  # the header
        self.left_out = 0
        for name, (value, grad, count, delta) in self.rows.items():
            height = max(3 if self.big and is_big(t) else t.count("\n") + 1 for t in (value, grad))
            if budget is not None and height > budget - (name != self._last):
                self.left_out = len(self.rows) - table.row_count
                break
            if budget is not None:
                budget -= height
            colour = colours.get(GRAD_COLOURS[self._states[name]], "")
            accumulating = count.endswith("+=")
            table.add_row(
                Text(name, style="bold"),
                self._number(value, ""),
                self._number(grad, colour),
                Text(
                    f" {count} ",
                    style=f"bold reverse {colour}" if accumulating else f"bold {colour}",
                ),
                Text(delta),
            )
        if not self.left_out:
            return Group(table)
        more = f"... {self.left_out} more: the main screen's table (P) has every parameter"
        return Group(table, Text(more, style="italic"))

    @property
    def _last(self) -> str:
        return next(reversed(self.rows))

    def _number(self, text: str, colour: str) -> RenderableType:
        style = f"bold {colour}".strip()
        if self.big and is_big(text):
            return Digits(text.upper(), style)  # the digits have E, not e
        return Text(text, style=style)

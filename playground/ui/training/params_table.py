"""Parameters & gradients: every parameter with its value, ``.grad`` and history.

One row per parameter: value, ``.grad`` (``None`` or the numbers), how many backward passes
the gradient holds since the last zero (``x1``, ``x3 +=``), the closed-form gradient next
to autograd's when the engine has one, and the change made by the last optimizer step.
Small tensors are shown in full - a matrix as a matrix, one line per row, so a 2 x 2 W
reads as one and the row stays narrow enough for the count column to stay in sight;
larger ones as shape and norm (Enter on the row prints them in full in ``TensorDetail``).
The state of ``.grad`` is spelled out in words as well as coloured, so it reads without
colour (``None`` / ``zeroed`` / ``x1`` / ``x3 +=``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import DataTable

from playground.training.report import count_label, fmt_array

if TYPE_CHECKING:
    import numpy as np

    from playground.training.snapshot import ParamView, Snapshot

MATRIX_MAX = (4, 8)  # a matrix with up to 4 rows and 8 numbers is shown in full

COLUMNS = (
    ("param", "param"),
    ("value", "value"),
    ("grad", ".grad"),
    ("count", "backward"),
    ("analytic", "analytic"),
    ("delta", "step Δ"),
)
LINEAR_MODELS = ("scalar", "linear", "logistic", "softmax")  # those with analytic gradients

# grad state -> theme variable for its colour
GRAD_COLOURS = {
    "none": "text-muted",
    "zeroed": "secondary",
    "fresh": "success",
    "growing": "warning",
}


def is_matrix(shape: tuple[int, ...]) -> bool:
    """A small 2-D tensor with several rows: shown as a matrix, one line per row."""
    return (
        len(shape) == 2 and 2 <= shape[0] <= MATRIX_MAX[0] and shape[0] * shape[1] <= MATRIX_MAX[1]
    )


def tensor_text(a: np.ndarray | None, shape: bool = True) -> str:
    """A tensor for a table cell: a small matrix as a matrix (rows on lines, columns
    aligned, ⎡ ⎤ brackets), anything else as ``fmt_array`` has it. The numbers are
    ``fmt_array``'s (4 significant digits)."""
    if a is None or not is_matrix(tuple(a.shape)):
        return fmt_array(a, shape=shape)
    cells = [[f"{float(v):.4g}" for v in row] for row in a.tolist()]
    widths = [max(len(row[j]) for row in cells) for j in range(len(cells[0]))]
    last = len(cells) - 1
    lines = []
    for i, row in enumerate(cells):
        left, right = ("⎡", "⎤") if i == 0 else ("⎣", "⎦") if i == last else ("⎢", "⎥")
        lines.append(left + " ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + right)
    return "\n".join(lines)


def row_height(shape: tuple[int, ...]) -> int:
    """Lines a parameter's row takes: its matrix's rows, else one."""
    return shape[0] if is_matrix(shape) else 1


def grad_state(p: ParamView) -> str:
    """'none', 'zeroed', 'fresh' (one backward) or 'growing' (accumulating)."""
    if p.grad is None:
        return "none"
    if p.backwards_since_zero == 0:
        return "zeroed"
    return "fresh" if p.backwards_since_zero == 1 else "growing"


class ParamsTable(DataTable):
    """The parameter table. Enter on a row shows (or hides) its tensors in full."""

    class Toggled(Message):
        """The set of expanded parameters changed (``ParamsTable.expanded``)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.expanded: set[str] = set()
        self._layout: tuple = ()  # names, shapes and expansion the rows were built for
        self._cells: dict[str, tuple[str, ...]] = {}
        self._snapshot: Snapshot | None = None
        self._keys: list[str] = []

    def update_snapshot(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        analytic = snapshot.model in LINEAR_MODELS
        layout = (analytic, *((p.name, p.shape) for p in snapshot.params))
        if layout != self._layout:
            self._rebuild(snapshot, layout)
            return
        for p in snapshot.params:
            cells = self._row(p)
            old = self._cells.get(p.name)
            if cells == old:
                continue  # unchanged rows cost nothing on the wire
            self._cells[p.name] = cells
            colour = self._colour(p)
            for key, text, before in zip(self._keys, cells, old or (), strict=False):
                if text != before or key in ("grad", "count"):
                    self.update_cell(
                        p.name, key, self._styled(key, text, colour), update_width=True
                    )

    def _rebuild(self, snapshot: Snapshot, layout: tuple) -> None:
        row = self.cursor_row
        self.clear(columns=True)
        self._layout = layout
        self._cells = {}
        # the analytic column only where the engine has closed-form gradients
        self._keys = [key for key, _ in COLUMNS if layout[0] or key != "analytic"]
        for key, label in COLUMNS:
            if key in self._keys:
                self.add_column(label, key=key)
        for p in snapshot.params:
            cells = self._row(p)
            self._cells[p.name] = cells
            colour = self._colour(p)
            self.add_row(
                *(
                    self._styled(key, text, colour)
                    for key, text in zip(self._keys, cells, strict=True)
                ),
                key=p.name,
                height=row_height(p.shape),
            )
        if self.row_count:
            self.move_cursor(row=min(row, self.row_count - 1))

    def _row(self, p: ParamView) -> tuple[str, ...]:
        """The cells of one parameter, for the columns in ``_keys``."""
        mark = "▸ " if p.name in self.expanded else ""
        cells = {
            "param": mark + p.name,
            "value": tensor_text(p.value),
            "grad": tensor_text(p.grad, shape=False),
            "count": count_label(p),
            "analytic": "—" if p.analytic_grad is None else tensor_text(p.analytic_grad, False),
            "delta": "—" if p.last_delta is None else tensor_text(p.last_delta, shape=False),
        }
        return tuple(cells[k] for k in self._keys)

    def _colour(self, p: ParamView) -> str:
        return self.app.theme_variables.get(GRAD_COLOURS[grad_state(p)], "")

    @staticmethod
    def _styled(key: str, text: str, colour: str) -> Text:
        if key in ("grad", "count") and colour:
            return Text(text, style=f"bold {colour}" if text.endswith("+=") else colour)
        return Text(text)

    @on(DataTable.RowSelected)
    def _toggle_expand(self, event: DataTable.RowSelected) -> None:
        """Enter on a row shows a large tensor in full (or folds it back)."""
        event.stop()
        self.expanded ^= {str(event.row_key.value)}
        if self._snapshot is not None:
            self.update_snapshot(self._snapshot)
        self.post_message(self.Toggled())

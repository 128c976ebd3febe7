"""Large tensors in full: the parameters expanded with Enter in the parameter table.

The table shows a big tensor as shape and norm; this panel prints the value, ``.grad``,
the analytic gradient and the last step's change of each expanded parameter as arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

if TYPE_CHECKING:
    import numpy as np

    from playground.training.snapshot import ParamView, Snapshot

MAX_LINES = 10  # per array; numpy's summarisation (...) keeps the corners


def array_text(a: np.ndarray, width: int) -> str:
    import numpy as np  # not at import time: the first frame does not wait for numpy

    text = np.array2string(
        np.asarray(a),
        precision=4,
        suppress_small=True,
        max_line_width=max(20, width),
        threshold=100,
        edgeitems=3,
    )
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], "..."]
    return "\n".join(lines)


def describe(p: ParamView, width: int) -> Content:
    parts = [Content.styled(f"{p.name}  shape {tuple(p.shape)}", "bold $text-accent")]
    rows: list[tuple[str, np.ndarray | None]] = [("value", p.value), (".grad", p.grad)]
    if p.analytic_grad is not None:
        rows.append(("analytic grad", p.analytic_grad))
    if p.last_delta is not None:
        rows.append(("last step Δ", p.last_delta))
    for label, a in rows:
        parts.append(Content.styled(label, "$text-muted"))
        parts.append(Content("None" if a is None else array_text(a, width)))
    return Content("\n").join(parts)


class TensorDetail(VerticalScroll):
    """The expanded parameters, scrollable (focus it with Tab, scroll with the arrows)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: Content | None = None

    def compose(self) -> ComposeResult:
        yield Static("", markup=False)

    def update_snapshot(self, snapshot: Snapshot | None, names: set[str]) -> None:
        params = [p for p in snapshot.params if p.name in names] if snapshot else []
        self.display = bool(params)
        if not params:
            return
        width = (self.size.width or self.app.size.width) - 4
        content = Content("\n\n").join(describe(p, width) for p in params)
        if content != self._shown:
            self._shown = content
            self.query_one(Static).update(content)

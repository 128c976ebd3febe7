"""Optimizer state on demand (``o``): hyper-parameters, momentum buffers, Adam moments."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from playground.training.report import fmt_array

if TYPE_CHECKING:
    from playground.training.snapshot import OptimizerView


def _is_array(value: object) -> bool:
    # numpy is not imported here at import time (the first frame must not wait for it);
    # a value can only be an array once something else has imported it
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.ndarray)


def describe(opt: OptimizerView) -> Content:
    """The optimizer as a few lines of text."""
    hyper = ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in opt.hyper.items()
    )
    lines = [Content.assemble((opt.name, "bold"), f"  {hyper}")]
    if not opt.state:
        lines.append(
            Content.styled(
                "no state: plain GD and SGD keep none; momentum buffers and Adam "
                "moments appear after the first step",
                "$text-muted",
            )
        )
    for pname, entry in opt.state.items():
        for key, value in entry.items():
            shown = fmt_array(value) if _is_array(value) else f"{value:g}"
            lines.append(Content(f"  {pname}.{key} = {shown}"))
    return Content("\n").join(lines)


class OptimizerPanel(VerticalScroll):
    """Shows the optimizer's state; hidden until toggled, and only redrawn when shown.
    Scrollable (Tab to it, then the arrow keys): Adam on an MLP has a lot of state."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._view: OptimizerView | None = None
        self._shown: Content | None = None

    def update_view(self, view: OptimizerView) -> None:
        self._view = view
        if self.display:
            self._render_view()

    def toggle(self) -> bool:
        """Show or hide the panel; returns whether it is now shown."""
        self.display = not self.display
        if self.display:
            self._render_view()
        return self.display

    def _render_view(self) -> None:
        if self._view is None:
            return
        content = describe(self._view)
        if content != self._shown:
            self._shown = content
            self.query_one(Static).update(content)

    def compose(self) -> ComposeResult:
        yield Static("", markup=False)

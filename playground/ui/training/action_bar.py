"""The row of buttons under the header: one per session key (f, b, z, s, n, r, u, ^r).

Every button has a key, so none takes the focus (Tab goes to the panels). Their widths
are set in code, never auto: all eight fit in 80 columns only without their side
padding (Textual's CSS rejects ``line-pad: 0``, and Button adds 2 to its auto width),
and the run button is as wide as its longer label, so "r pause" never wraps to "r" and
the row never shifts while a run goes on.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button

from playground.ui.training.layout import BUTTONS, RUN_LABELS, TIGHT_BELOW


class ActionBar(Horizontal):
    """The session's buttons; ``fit(width)`` sizes them, ``running`` relabels run."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._tight = False

    def compose(self) -> ComposeResult:
        for bid, label, action in BUTTONS:
            button = Button(label, action=f"screen.{action}", compact=True, id=f"btn-{bid}")
            button.can_focus = False
            yield button

    def fit(self, width: int) -> None:
        """Side padding only from ``TIGHT_BELOW`` columns up."""
        self._tight = width < TIGHT_BELOW
        for button in self.query(Button).results(Button):
            button.styles.line_pad = 0 if self._tight else 1
            if button.id == "btn-run":
                text = max(len(label) for label in RUN_LABELS)
            else:
                text = len(str(button.label))
            button.styles.width = text if self._tight else text + 2

    def show_running(self, running: bool) -> None:
        self.query_one("#btn-run", Button).label = RUN_LABELS[running]

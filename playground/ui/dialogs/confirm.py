"""A yes/no question before something that throws work away (a setting that restarts training).

Dismisses with True (y) or False (n, Escape). It only asks: what happens next is the
caller's business.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label


class ConfirmScreen(ModalScreen[bool]):
    """Asks ``question``; ``details`` says what each answer does."""

    BINDINGS = [
        Binding("y", "answer(True)", "yes"),
        Binding("n", "answer(False)", "no"),
        Binding("escape", "answer(False)", "no", show=False),
    ]

    def __init__(self, question: str, details: str = "", yes: str = "yes", no: str = "no") -> None:
        super().__init__()
        self.question = question
        self.details = details
        self.yes, self.no = yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(self.question, id="confirm-question", markup=False)
            if self.details:
                yield Label(self.details, id="confirm-details", markup=False)
            yield Label(f"y: {self.yes}    n: {self.no}", id="confirm-keys", markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

"""Details of the last runner error (``t``): the command, its message and traceback."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from playground.protocol import Failed


class ErrorScreen(ModalScreen[None]):
    """A read-only view of ``Failed.details``; the session itself was left as it was."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("t", "close", "Close", show=False)]

    def __init__(self, failure: Failed) -> None:
        super().__init__()
        self.failure = failure

    def compose(self) -> ComposeResult:
        f = self.failure
        with VerticalScroll(id="error"):
            yield Static(f"{f.command} failed: {f.message}", id="error-title", markup=False)
            yield Static("The session is as it was before the command.\n", markup=False)
            yield Static(f.details, markup=False)

    def action_close(self) -> None:
        self.dismiss(None)

"""A one-line prompt for a file path (``ctrl+s`` save, ``ctrl+o`` open).

Dismisses with the path as typed (stripped), or None on Escape or an empty line. It only
asks: what happens to the file is the app's business, on the runner thread.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class PathPrompt(ModalScreen[str | None]):
    """Ask for a file path: Enter accepts, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, default: str = "", verb: str = "save") -> None:
        super().__init__()
        self.title_text = title
        self.default = default
        self.verb = verb

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt"):
            yield Label(self.title_text, id="prompt-title", markup=False)
            yield Input(self.default, placeholder="file path", id="prompt-path", compact=True)
            yield Label(f"Enter: {self.verb}   Escape: cancel", id="prompt-hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#prompt-path", Input).focus()

    @on(Input.Submitted, "#prompt-path")
    def _submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)

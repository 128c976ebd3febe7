"""At start-up without a preset: offer to resume the session autosaved when the app last quit.

Dismisses with True (y) to resume it, False (n, Escape) to choose a preset instead.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from playground.training.sidecar import AutosaveInfo


class ResumeOffer(ModalScreen[bool]):
    """Asks "Resume your last session (preset, step N)? y/n"."""

    BINDINGS = [
        Binding("y", "answer(True)", "resume"),
        Binding("n", "answer(False)", "new session"),
        Binding("escape", "answer(False)", "new session", show=False),
    ]

    def __init__(self, info: AutosaveInfo) -> None:
        super().__init__()
        self.info = info

    def compose(self) -> ComposeResult:
        i = self.info
        when = f", saved {i.saved_at}" if i.saved_at else ""
        with Vertical(id="offer"):
            yield Label(
                f"Resume your last session ({i.preset}, step {i.step})? y/n",
                id="offer-question",
                markup=False,
            )
            yield Label(f"{i.title}{when}\n{i.path}", id="offer-details", markup=False)

    def action_answer(self, resume: bool) -> None:
        self.dismiss(resume)

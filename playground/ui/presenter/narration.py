"""What just happened, for the room: the newest explanation only, in bold.

The coach's words (``Published.explanation``, as the main screen's panel shows them, with
their warnings and the lesson in hand), drawn by the main panel's own renderers; the
older explanations stay on the main screen, where a student can read back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from playground.ui.training.explain_panel import EMPTY, render_explanation, render_lesson

if TYPE_CHECKING:
    from playground.training.coach import Explanation


class Narration(VerticalScroll):
    """The newest explanation (and the lesson's step, when one is followed)."""

    DEFAULT_CSS = """
    Narration > Static {
        padding: 0 1;
        text-style: bold;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: Content | None = None

    def compose(self) -> ComposeResult:
        yield Static(Content.styled(EMPTY, "$text-muted"), markup=False)

    def show(self, ex: Explanation) -> None:
        parts = []
        if ex.lesson is not None:
            parts.append(render_lesson(ex.lesson))
        parts.append(render_explanation(ex))
        content = Content("\n\n").join(parts)
        if content != self._shown:
            self._shown = content
            self.query_one(Static).update(content)
            self.scroll_home(animate=False)

    @property
    def text(self) -> str:
        """What it says, as plain text."""
        return self._shown.plain if self._shown is not None else EMPTY

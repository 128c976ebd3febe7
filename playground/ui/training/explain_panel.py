"""What just happened: the coach's words on the last action, its warnings, the last
prediction's verdict and the lesson in hand.

The newest explanation is drawn in full; where there is room (a panel of the wide
layout) the ones before it follow, dimmed, so a student can read back what ``b b s``
did. A lesson, when one is followed, comes first: its step, the prompt, the keys it
expects next and what the last action did for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from playground.protocol import ACTION_KEYS, RUN_KEY

if TYPE_CHECKING:
    from playground.training.coach import Explanation
    from playground.training.lessons import LessonView

KEPT = 6  # explanations kept to read back
EMPTY = (
    "Press a key: f forward, b backward, z zero_grad, s step, n train step. Each action is "
    "explained here with its numbers. y predicts a value first; L follows the preset's "
    "lesson."
)
# the key of each action a lesson can ask for
KEYS = {name: key for key, (name, _) in ACTION_KEYS.items()} | {
    "run": RUN_KEY,
    "configure": "the settings form",
    "reset": "ctrl+r",
}


def key_of(action: str) -> str:
    """ "backward (b)" """
    key = KEYS.get(action)
    return f"{action} ({key})" if key else action


def render_lesson(view: LessonView) -> Content:
    """The lesson's step, prompt, expected keys and feedback."""
    head = Content.styled(
        f"Lesson {min(view.index + 1, view.total)}/{view.total}: {view.title}", "bold $accent"
    )
    parts = [head, Content(view.prompt)]
    if view.predict:
        parts.append(Content.styled(f"first predict {view.predict}: press y", "$warning"))
    if view.expected and not view.finished:
        parts.append(Content.styled("next: " + ", ".join(key_of(a) for a in view.expected), "bold"))
    if view.feedback:
        style = "$error" if view.off_track else "$success"
        parts.append(Content.styled(view.feedback, style))
    return Content("\n").join(parts)


def render_explanation(ex: Explanation, dim: bool = False) -> Content:
    """One explanation: its sentences, the prediction's verdict, its warnings."""
    if dim:  # read back: the words, and which warnings came with them
        said = " ".join(ex.lines) + "".join(f"\n⚠ {c.title}" for c in ex.cautions)
        return Content.styled(said, "$text-muted")
    parts = [Content(" ".join(ex.lines))]
    if ex.prediction:
        parts.append(Content.styled(ex.prediction, "bold $accent"))
    for c in ex.cautions:
        parts.append(
            Content.assemble(("⚠ " + c.title + ": ", "bold $warning"), (c.text, "$warning"))
        )
    return Content("\n").join(parts)


class ExplainPanel(VerticalScroll):
    """The coach's words. See the module docstring."""

    DEFAULT_CSS = """
    ExplainPanel #explain-text {
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history: list[Explanation] = []  # newest last
        self.received = 0  # explanations received so far
        self.lesson: LessonView | None = None
        self._shown: Content | None = None

    def compose(self) -> ComposeResult:
        yield Static(Content.styled(EMPTY, "$text-muted"), id="explain-text", markup=False)

    def add(self, ex: Explanation) -> None:
        """A new explanation (the lesson view travels with it)."""
        if ex.action in ("load", "open"):
            self.history.clear()
        self.history.append(ex)
        self.received += 1
        del self.history[:-KEPT]
        self.lesson = ex.lesson
        self.refresh_text()

    @property
    def text(self) -> str:
        """What the panel shows, as plain text (for tests and screen readers)."""
        return self._shown.plain if self._shown is not None else EMPTY

    def refresh_text(self) -> None:
        parts: list[Content] = []
        if self.lesson is not None:
            parts.append(render_lesson(self.lesson))
        if self.history:
            newest, older = self.history[-1], self.history[:-1]
            parts.append(render_explanation(newest))
            parts.extend(render_explanation(ex, dim=True) for ex in reversed(older))
        if not parts:
            return
        content = Content("\n\n").join(parts)
        if content != self._shown:
            self._shown = content
            self.query_one("#explain-text", Static).update(content)
            self.scroll_home(animate=False)

"""The main screen's side of the coach: where its words go, and the keys that talk to it.

Each explanation goes to the "What just happened" panel (a panel of the wide layout, a
tab otherwise) and, in one line, above the status bar where the panel is not in sight;
a warning also comes as a toast, once, as the coach says it once. ``y`` types a
prediction for the next action, ``L`` follows the preset's lesson (or ends it), ``d``
shows the preset's whole text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.widgets import Static

from playground.protocol import Expect, StartLesson
from playground.ui.dialogs.path_prompt import PathPrompt
from playground.ui.dialogs.reading import STOP, DescriptionScreen, LessonPicker
from playground.ui.training.explain_panel import ExplainPanel, key_of

if TYPE_CHECKING:
    from playground.training.coach import Explanation


def one_line(ex: Explanation) -> str:
    """The explanation's line above the status bar: the lesson's next move first."""
    lesson = ex.lesson
    if lesson is not None and not lesson.finished:
        if lesson.off_track:
            return f"lesson: {lesson.feedback}"
        nxt = ", ".join(key_of(a) for a in lesson.expected) or "-"
        return f"lesson {lesson.index + 1}/{lesson.total}: {lesson.prompt.splitlines()[0]}  next: {nxt}"
    if ex.cautions:
        return f"⚠ {ex.cautions[0].title}  (6: what just happened)"
    return ex.lines[0] if ex.lines else ""


class Coaching:
    """Routes explanations and the coach's keys for one main screen."""

    def __init__(self, screen: Any) -> None:
        self.screen = screen  # the MainScreen (its module imports this one)
        self.lesson: str | None = None  # the lesson followed, by title

    @property
    def panel(self) -> ExplainPanel:
        return self.screen.query_one(ExplainPanel)

    def show(self, ex: Explanation) -> None:
        self.panel.add(ex)
        # one line, its height fixed: no layout for it
        self.screen.query_one("#explain-line", Static).update(one_line(ex), layout=False)
        self.lesson = ex.lesson.title if ex.lesson is not None else None
        app = self.screen.app
        for c in ex.cautions:
            app.notify(c.text, title=c.title, severity="warning", timeout=10, markup=False)
        if ex.prediction:
            app.notify(ex.prediction, title="your prediction", timeout=8, markup=False)
        if ex.lesson_feedback and ex.lesson is not None:
            done = ex.lesson.finished and not ex.lesson.off_track
            app.notify(
                ex.lesson_feedback + ("\nThe lesson is complete." if done else ""),
                title=f"lesson step {min(ex.lesson.index + 1, ex.lesson.total)}/{ex.lesson.total}",
                severity="error" if ex.lesson.off_track else "information",
                timeout=8,
                markup=False,
            )

    # --- keys ---------------------------------------------------------------------------

    def predict(self) -> None:
        """y: the value a quantity will have after the next action."""
        s = self.screen.snapshot
        if s is None:
            return
        view = self.panel.lesson
        asked = view.predict if view is not None and view.predict else None
        first = s.params[0]
        example = f"{first.name}.grad" + ("" if len(first.value.reshape(-1)) == 1 else "[0]")
        default = f"{asked} = " if asked else ""

        def said(text: str | None) -> None:
            if text:
                self.screen.app.submit(Expect(text))  # type: ignore[attr-defined]

        title = f"Predict, then act: QUANTITY = VALUE (e.g. {example} = -174, train_loss = 2.5)"
        self.screen.app.push_screen(PathPrompt(title, default, "predict"), said)

    def choose_lesson(self) -> None:
        """L: follow the preset's lesson (a choice when it has several), or end one."""
        s = self.screen.snapshot
        if s is None:
            return
        if not s.lessons:
            self.screen.app.notify(f"{s.preset} has no lesson (p: the presets with one say so)")
            return
        if len(s.lessons) == 1 and self.lesson is None:
            self._start(s.lessons[0][0])
            return

        def chosen(name: str | None) -> None:
            if name == STOP:
                self.screen.app.submit(StartLesson(stop=True))  # type: ignore[attr-defined]
            elif name is not None:
                self._start(name)

        self.screen.app.push_screen(LessonPicker(s.lessons, self.lesson), chosen)

    def _start(self, name: str) -> None:
        self.screen.app.submit(StartLesson(name))  # type: ignore[attr-defined]
        self.screen.show_panel("explain")

    def description(self) -> None:
        """d: the preset's whole text."""
        s = self.screen.snapshot
        if s is None:
            return
        self.screen.app.push_screen(DescriptionScreen(s.title, s.description, s.source))

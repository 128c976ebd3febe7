"""Screens for reading and choosing: a preset's whole text (``d``), and a lesson (``L``).

The main screen's panels show a preset's description cut to their size; ``d`` shows it
all, scrollable, at any terminal size, with where it comes from. ``L`` on a preset with
several lessons offers them; with one it starts that one directly (the main screen
decides), and while a lesson is followed it offers to end it.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

STOP = "-stop-"  # the lesson picker's "end the lesson" choice


class DescriptionScreen(ModalScreen[None]):
    """The preset's title, source and whole description, scrollable."""

    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("d", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, title: str, description: str, source: str = "") -> None:
        super().__init__()
        self.title_text, self.description, self.source = title, description, source

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="description"):
            yield Static(Content.styled(self.title_text, "bold"), id="description-title")
            if self.source:
                yield Static(Content.styled(self.source, "$text-muted"))
            yield Static(Content(self.description.strip()), id="description-text")
            yield Static(Content.styled("\nEscape, d or q closes.", "$text-muted"))


class LessonPicker(ModalScreen[str | None]):
    """Choose one of the preset's lessons (or end the one followed): dismisses with its
    name, ``STOP``, or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, lessons: tuple[tuple[str, str], ...], following: str | None) -> None:
        super().__init__()
        self.lessons, self.following = lessons, following

    def compose(self) -> ComposeResult:
        options = [
            Option(Content.assemble((title, "bold"), (f"  [{name}]", "$text-muted")), id=name)
            for name, title in self.lessons
        ]
        if self.following:
            options.append(Option(f"end the lesson {self.following}", id=STOP))
        with Vertical(id="lesson-picker"):
            yield Label("Follow a lesson: its steps guide you key by key")
            yield OptionList(*options, id="lesson-options")
            yield Label(Content.styled("↑ ↓ choose · Enter starts · Esc cancels", "$text-muted"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

"""The code transcript: every action as the PyTorch code it stands for, newest at the bottom.

Two parts: the older entries (``#code-head``) and the newest one (``#code-text``). A run
rewrites only its own entry ("# 4096 train steps") a few times a second, so only that
small part is re-rendered, and the layout is redone only when its shape (the lengths of
its lines) changes; the older entries are re-rendered only when an entry is added.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

SHOWN_ENTRIES = 16  # older entries stay in the export; the panel keeps the tail (each
# action re-renders the older entries it shows. At 120x40 on a 2-CPU machine, keys to
# the terminal at p95, two runs each: z 52 / 46 ms with 40 entries, 38 / 39 ms with 16;
# b 49 / 64 ms with 40, 47 / 47 ms with 16)
EMPTY = "# nothing yet: press f, b, z, s or n"


def _entry(entry: str) -> Content:
    head, _, body = entry.partition("\n")
    block = Content.styled(head, "$accent bold")
    if body:
        block = Content("\n").join([block, Content(body)])
    return block


def render_log(log: tuple[str, ...]) -> Content:
    """Entries as text: the '# action' line of each in the accent colour."""
    hidden = max(0, len(log) - SHOWN_ENTRIES)
    parts: list[Content] = []
    if hidden:
        parts.append(
            Content.styled(f"# ... {hidden} earlier entries (e exports them all)", "$text-muted")
        )
    parts.extend(_entry(entry) for entry in log[hidden:])
    if not parts:
        return Content.styled(EMPTY, "$text-muted")
    return Content("\n\n").join(parts)


def _shape(text: str) -> tuple[int, ...]:
    """What the height of a wrapped text depends on: the length of each line."""
    return tuple(len(line) for line in text.split("\n"))


class CodePanel(VerticalScroll):
    """Scrollable transcript; follows the newest entry."""

    DEFAULT_CSS = """
    CodePanel #code-text.-below {
        margin-top: 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._log: tuple[str, ...] | None = None
        self._head: tuple[str, ...] | None = None  # the entries shown in #code-head
        self._tail: str | None = None
        self._tail_shape: tuple[int, ...] = ()

    def compose(self) -> ComposeResult:
        head = Static("", id="code-head", markup=False)
        head.display = False
        yield head
        yield Static(Content.styled(EMPTY, "$text-muted"), id="code-text", markup=False)

    def update_log(self, log: tuple[str, ...]) -> None:
        if log == self._log:
            return
        self._log = log
        # follow the newest entry, unless the reader has scrolled up to look at older ones
        follow = self.scroll_y >= self.max_scroll_y - 1
        grew = False
        head_entries, tail = log[:-1], (log[-1] if log else None)
        if head_entries != self._head:
            self._head = head_entries
            head = self.query_one("#code-head", Static)
            if head_entries:
                head.update(render_log(head_entries))
            head.display = bool(head_entries)
            self.query_one("#code-text").set_class(bool(head_entries), "-below")
            grew = True
        if tail != self._tail:
            self._tail = tail
            text = EMPTY if tail is None else tail
            shape = _shape(text)
            content = Content.styled(EMPTY, "$text-muted") if tail is None else _entry(tail)
            # same line lengths: same height, so no layout (a run's entry changes only
            # its step count, a few times a second)
            layout = shape != self._tail_shape
            self.query_one("#code-text", Static).update(content, layout=layout)
            self._tail_shape = shape
            grew = grew or layout
        if follow and grew:
            self.call_after_refresh(self._follow)

    def _follow(self) -> None:
        self.scroll_end(animate=False)

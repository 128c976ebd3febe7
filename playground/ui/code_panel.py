"""The code transcript: every action as the PyTorch code it stands for, newest at the bottom."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

SHOWN_ENTRIES = 200  # older entries stay in the export; the panel keeps the tail


def render_log(log: tuple[str, ...]) -> Content:
    """Entries as text: the '# action' line of each in the accent colour."""
    hidden = max(0, len(log) - SHOWN_ENTRIES)
    parts: list[Content] = []
    if hidden:
        parts.append(
            Content.styled(f"# ... {hidden} earlier entries (e exports them all)", "$text-muted")
        )
    for entry in log[hidden:]:
        head, _, body = entry.partition("\n")
        block = Content.styled(head, "$accent bold")
        if body:
            block = Content("\n").join([block, Content(body)])
        parts.append(block)
    if not parts:
        return Content.styled("# nothing yet: press f, b, z, s or n", "$text-muted")
    return Content("\n\n").join(parts)


class CodePanel(VerticalScroll):
    """Scrollable transcript; follows the newest entry."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._log: tuple[str, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static(render_log(()), id="code-text", markup=False)

    def update_log(self, log: tuple[str, ...]) -> None:
        if log == self._log:
            return
        self._log = log
        # follow the newest entry, unless the reader has scrolled up to look at older ones
        follow = self.scroll_y >= self.max_scroll_y - 1
        self.query_one("#code-text", Static).update(render_log(log))
        if follow:
            self.call_after_refresh(self.scroll_end, animate=False)

"""The keys, in large type: each one a keycap with what it does beside it.

A terminal has one size of letter, so "large" is room: where the screen is tall
(``-tall``) each key is a keycap three lines high; otherwise a one-line cap. The keys
share one row where they fit; else each group (the session's, then the presenter's own)
starts a row, and a group wraps onto more rows rather than be cut. The keys come from the screen's bindings (those with ``show``),
so the bar never lists a key the screen does not have.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

Keys = list[tuple[str, str]]  # (the key as the screen names it, what it does)


def cap_width(key: str, label: str) -> int:
    """Cells one key takes: the cap " K ", a space, its label, two spaces."""
    return len(key) + 2 + 1 + len(label) + 2


def rows_of(groups: list[Keys], width: int) -> list[Keys]:
    """The keys in rows of at most ``width`` cells: all on one row where they fit, else
    each group on rows of its own."""
    every = [k for group in groups for k in group]
    if sum(cap_width(*k) for k in every) <= width:
        return [every]
    rows: list[Keys] = []
    for group in groups:
        rows.append([])
        used = 0
        for key, label in group:
            size = cap_width(key, label)
            if rows[-1] and used + size > width:
                rows.append([])
                used = 0
            rows[-1].append((key, label))
            used += size
    return [row for row in rows if row]


class KeyBar(Widget):
    """``groups`` of keys, in order; see the module docstring."""

    DEFAULT_CSS = """
    KeyBar {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, groups: list[Keys], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.groups = groups

    @property
    def text(self) -> str:
        """The keys as plain text: "f forward  b backward ..." (tests, screen readers)."""
        return "  ".join(f"{key} {label}" for group in self.groups for key, label in group)

    def render(self) -> RenderableType:
        colours = self.app.theme_variables
        cap = f"bold {colours.get('background', 'black')} on {colours.get('primary', 'blue')}"
        height = 3 if self.has_class("-tall") else 1
        out = Text(no_wrap=True, overflow="crop")
        for r, row in enumerate(rows_of(self.groups, max(self.content_region.width, 20))):
            lines = [Text(no_wrap=True, overflow="crop") for _ in range(height)]
            for key, label in row:
                face = f" {key} "
                for i, line in enumerate(lines):
                    middle = i == height // 2
                    line.append(face if middle else " " * len(face), cap)
                    line.append(f" {label}  " if middle else " " * (len(label) + 3))
            if r:
                out.append("\n")
            out.append(Text("\n").join(lines))
        return out

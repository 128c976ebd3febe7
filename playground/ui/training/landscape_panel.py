"""The loss landscape drawn: contour lines of the training loss (log-spaced levels), the
path of every update, the current point, the least-squares optimum, the optimizer race
and a cursor on the grid.

The picture comes from ``landscape_canvas.draw`` (braille dots for the lines, glyphs for
the points, the axes' numbers around) - the same one ``playground landscape`` prints -
and this widget gives each layer its colour. It holds the cursor as a grid point, so the
loss under it is the grid's own value, not an interpolation. Plain data only: the view
comes from the runner thread (``LandscapeComputed``).
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from playground.training.landscape_canvas import (
    AXIS,
    CURRENT,
    CURSOR,
    OPTIMUM,
    PATH,
    RACE,
    RACE_END,
    START,
    draw,
    plot_size,
)
from playground.training.landscape_view import LandscapeView

# low loss warm and bright, high loss cool: the eye finds the valley first
LOW, MID, HIGH = (253, 231, 37), (33, 160, 140), (70, 90, 170)
RACE_COLOURS = ("#5fd7ff", "#ff875f", "#d787ff")  # GD, SGD with momentum, Adam
MARK_STYLES = {
    START: Style(bold=True),
    CURRENT: Style(color="#ff5f5f", bold=True),
    OPTIMUM: Style(color="#5fff87", bold=True),
    CURSOR: Style(reverse=True, bold=True),
    PATH: Style(bold=True),
    AXIS: Style(dim=True),
}


def level_colour(k: int, n: int) -> str:
    """Contour level ``k`` of ``n``: yellow near the minimum through teal to blue."""
    t = k / max(n - 1, 1)
    a, b, u = (LOW, MID, 2 * t) if t < 0.5 else (MID, HIGH, 2 * t - 1)
    r, g, bl = (round(x + (y - x) * u) for x, y in zip(a, b, strict=True))
    return f"#{r:02x}{g:02x}{bl:02x}"


class LandscapePanel(Widget):
    """The landscape picture and its cursor."""

    DEFAULT_CSS = """
    LandscapePanel {
        width: 1fr;
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: LandscapeView | None = None
        self.cursor: tuple[int, int] | None = None  # (column, row) of the grid
        self.follow = True  # the cursor goes with the current point until it is moved
        self._styles: dict[int, Style] = {}
        self._styles_for = 0  # the number of levels the styles were made for
        self._drawn: list[Strip] = []
        self._drawn_for: object = None  # (view, width, height, cursor) drawn

    # --- what it shows ----------------------------------------------------------------

    def show(self, view: LandscapeView) -> None:
        """A new view: the cursor stays where it was on the plane (at the grid point
        nearest to it), or starts at the current point."""
        old = self.view
        if self.follow or self.cursor is None or old is None or old.mode != view.mode:
            self.cursor = view.node(*view.current)
        else:
            self.cursor = view.node(*self.cursor_at(old))
        self.view = view
        self.refresh()

    def dots(self) -> tuple[int, int]:
        """The drawing's resolution in dots at this size (to decimate the path for)."""
        cols, rows = plot_size(max(self.size.width, 20), max(self.size.height, 6))
        return 2 * cols, 4 * rows

    def cursor_at(self, view: LandscapeView | None = None) -> tuple[float, float]:
        """The cursor's point on the plane."""
        v = view or self.view
        assert v is not None and self.cursor is not None
        i, j = self.cursor
        i, j = min(i, len(v.xs) - 1), min(j, len(v.ys) - 1)
        return float(v.xs[i]), float(v.ys[j])

    def cursor_loss(self) -> float | None:
        v = self.view
        if v is None or self.cursor is None:
            return None
        i, j = self.cursor
        return float(v.loss[min(j, len(v.ys) - 1), min(i, len(v.xs) - 1)])

    def move_cursor(self, dx: int, dy: int) -> None:
        """One cell's worth of grid points right / up (dx, dy in cells)."""
        v = self.view
        if v is None or self.cursor is None:
            return
        cols, rows = plot_size(self.size.width, self.size.height)
        step_x = max(1, round((len(v.xs) - 1) / max(cols - 1, 1)))
        step_y = max(1, round((len(v.ys) - 1) / max(rows - 1, 1)))
        self.follow = False
        i, j = self.cursor
        i = max(0, min(len(v.xs) - 1, i + dx * step_x))
        j = max(0, min(len(v.ys) - 1, j + dy * step_y))
        self.cursor = (i, j)
        self.refresh()

    # --- drawing ----------------------------------------------------------------------

    def _style(self, layer: int, n_levels: int) -> Style:
        style = self._styles.get(layer)
        if style is None:
            if layer in MARK_STYLES:
                style = MARK_STYLES[layer]
            elif RACE_END <= layer < RACE_END + 10:
                style = Style(color=RACE_COLOURS[(layer - RACE_END) % 3], bold=True)
            elif RACE <= layer < RACE + 10:
                style = Style(color=RACE_COLOURS[(layer - RACE) % 3])
            else:
                style = Style(color=level_colour(layer, n_levels))
            self._styles[layer] = style
        return style

    def _strips(self) -> list[Strip]:
        """The picture as one strip per row, drawn again only when the view, the size or
        the cursor changed (the Line API: no text layout on the way to the screen)."""
        v = self.view
        width, height = self.size.width, self.size.height
        key = (id(v), width, height, self.cursor, self.follow)
        if key == self._drawn_for:
            return self._drawn
        if v is None or width < 20 or height < 6:
            say = "computing the loss landscape..." if v is None else "too small to draw"
            strips = [Strip([Segment(say, Style(dim=True))])]
        else:
            if self._styles_for != len(v.levels):
                self._styles, self._styles_for = {}, len(v.levels)
            # a cursor that follows the current point would only hide it
            cursor = self.cursor_at() if self.cursor is not None and not self.follow else None
            strips = [
                Strip([Segment(text, self._style(layer, len(v.levels))) for text, layer in row])
                for row in draw(v, width, height, cursor)
            ]
        self._drawn, self._drawn_for = strips, key
        return strips

    def text(self) -> str:
        """The picture as plain text (what a screen reader or a test sees)."""
        return "\n".join(strip.text for strip in self._strips())

    def render_line(self, y: int) -> Strip:
        strips = self._strips()
        return strips[y].crop(0, self.size.width) if y < len(strips) else Strip.blank(0)

"""The loss landscape in terminal cells: contour lines, the path and the race in braille
dots (2 x 4 per cell), the points as glyphs, the axes' numbers around.

``draw`` turns a ``LandscapeView`` into rows of (text, layer) runs: the landscape screen
gives each layer its colour, ``playground landscape`` prints the text as it is. Numpy
only (no torch, no textual).
"""

from __future__ import annotations

import math

import numpy as np

from playground.training.landscape_view import LandscapeView, fmt

AXIS = -1  # the numbers around the plot, and blank cells
RACE = 100  # RACE + r: the r-th racer's path
PATH = 200  # the path of the updates
START, OPTIMUM, CURRENT, CURSOR = 300, 301, 302, 303  # the points drawn as glyphs
RACE_END = 310  # RACE_END + r: where the r-th racer ends
GLYPHS = {START: "○", OPTIMUM: "★", CURRENT: "●", CURSOR: "┼"}
RACE_GLYPH = "◆"
MARGIN = 9  # columns for the y axis's numbers
# the dot (column, row) of a cell -> its bit in the braille character U+2800 + bits
_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int64)

Row = list[tuple[str, int]]


def plot_size(width: int, height: int) -> tuple[int, int]:
    """The plot's columns and rows inside a drawing of ``width`` x ``height`` cells."""
    return max(width - MARGIN, 4), max(height - 1, 2)


class _Dots:
    """A braille canvas over a view's window: each dot remembers the top layer on it
    (the layers are drawn from the bottom up)."""

    def __init__(self, view: LandscapeView, cols: int, rows: int) -> None:
        self.w, self.h = 2 * cols, 4 * rows
        self.cols, self.rows = cols, rows
        win = view.window
        self.x0, self.y1 = win.x0, win.y1
        self.sx = (self.w - 1) / win.width
        self.sy = (self.h - 1) / win.height
        self.owner = np.full((self.h, self.w), -1, dtype=np.int64)

    def to_dots(self, points: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [(points[:, 0] - self.x0) * self.sx, (self.y1 - points[:, 1]) * self.sy]
        )

    def line(self, points: np.ndarray, layer: int) -> None:
        """A polyline (k, 2) in plane coordinates, sampled at least twice per dot."""
        if len(points) == 0:
            return
        d = self.to_dots(points)
        ok = np.isfinite(d).all(axis=1)
        if len(d) == 1 or not ok.all():
            self._plot(d[ok], layer)
        if len(d) < 2:
            return
        a, b = d[:-1], d[1:]
        good = ok[:-1] & ok[1:]
        a, b = a[good], b[good]
        if not len(a):
            return
        a, b = self._clip(a, b)
        if not len(a):
            return
        lengths = np.hypot(*(b - a).T)
        n = np.clip(np.ceil(lengths * 2), 1, 4 * (self.w + self.h)).astype(np.int64)
        seg = np.repeat(np.arange(len(a)), n)
        t = (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(n, n)
        pts = a[seg] + (b[seg] - a[seg]) * t[:, None]
        self._plot(np.vstack([pts, b[-1:]]), layer)

    def _clip(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The parts of the segments a -> b inside the canvas (Liang-Barsky): a path
        that shoots far out (a diverging run) is still drawn as a line where it crosses."""
        d = b - a
        lo, hi = np.zeros(len(a)), np.ones(len(a))
        for axis, top in ((0, self.w - 0.5), (1, self.h - 0.5)):
            for p, q in ((-d[:, axis], a[:, axis] + 0.5), (d[:, axis], top - a[:, axis])):
                with np.errstate(divide="ignore", invalid="ignore"):
                    t = q / p
                lo = np.where(p < 0, np.maximum(lo, t), lo)
                hi = np.where(p > 0, np.minimum(hi, t), hi)
                hi = np.where((p == 0) & (q < 0), -1.0, hi)
        keep = lo <= hi
        a, d, lo, hi = a[keep], d[keep], lo[keep], hi[keep]
        return a + d * lo[:, None], a + d * hi[:, None]

    def _plot(self, d: np.ndarray, layer: int) -> None:
        ij = np.rint(d).astype(np.int64) if len(d) else np.zeros((0, 2), dtype=np.int64)
        inside = (ij[:, 0] >= 0) & (ij[:, 0] < self.w) & (ij[:, 1] >= 0) & (ij[:, 1] < self.h)
        ij = ij[inside]
        self.owner[ij[:, 1], ij[:, 0]] = layer  # drawn in rising layers: the top one stays

    def cell_of(self, x: float, y: float) -> tuple[int, int] | None:
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        d = self.to_dots(np.array([[x, y]]))[0]
        c, r = int(np.rint(d[0])) // 2, int(np.rint(d[1])) // 4
        return (c, r) if 0 <= c < self.cols and 0 <= r < self.rows else None

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(characters, layers), each (rows, cols)."""
        o = self.owner.reshape(self.rows, 4, self.cols, 2)
        bits = ((o >= 0) * _BITS[None, :, None, :]).sum(axis=(1, 3))
        layer = o.max(axis=(1, 3))
        chars = np.where(bits > 0, bits + 0x2800, 0x20)
        return chars, np.where(bits > 0, layer, AXIS)


def draw(
    view: LandscapeView, width: int, height: int, cursor: tuple[float, float] | None = None
) -> list[Row]:
    """The view in ``width`` x ``height`` cells: rows of (text, layer) runs."""
    cols, rows = plot_size(width, height)
    dots = _Dots(view, cols, rows)
    for k, line in view.lines:
        dots.line(line, k)
    for r, racer in enumerate(view.race):
        dots.line(racer.points, RACE + r)
    dots.line(view.path, PATH)
    chars, layers = dots.cells()
    glyph = np.full((rows, cols), "", dtype=object)
    marks = []
    for r, racer in enumerate(view.race):
        if len(racer.points):
            marks.append((racer.points[-1], RACE_END + r, RACE_GLYPH))
    if len(view.path):
        marks.append((view.path[0], START, GLYPHS[START]))
    if view.optimum is not None:
        marks.append((np.array(view.optimum), OPTIMUM, GLYPHS[OPTIMUM]))
    marks.append((np.array(view.current), CURRENT, GLYPHS[CURRENT]))
    for point, layer, text in marks:  # later marks win a shared cell
        cell = dots.cell_of(float(point[0]), float(point[1]))
        if cell is not None:
            glyph[cell[1], cell[0]] = text
            layers[cell[1], cell[0]] = layer
    cell = None if cursor is None else dots.cell_of(*cursor)
    if cell is not None:  # the cursor shows what is under it (in reverse, on screen)
        c, r = cell
        if not glyph[r, c] and chars[r, c] == 0x20:
            glyph[r, c] = GLYPHS[CURSOR]
        layers[r, c] = CURSOR
    win = view.window
    labels = {0: fmt(win.y1), rows // 2: fmt((win.y0 + win.y1) / 2), rows - 1: fmt(win.y0)}
    out: list[Row] = []
    for r in range(rows):
        tick = "┤" if r in labels else "│"
        row: Row = [(labels.get(r, "").rjust(MARGIN - 1)[: MARGIN - 1] + tick, AXIS)]
        for c in range(cols):
            text = glyph[r, c] or chr(int(chars[r, c]))
            _add(row, text, int(layers[r, c]))
        out.append(row)
    out.append([(_x_axis(view, cols), AXIS)])
    return out


def _add(row: Row, text: str, layer: int) -> None:
    if row and row[-1][1] == layer:
        row[-1] = (row[-1][0] + text, layer)
    else:
        row.append((text, layer))


def _x_axis(view: LandscapeView, cols: int) -> str:
    win = view.window
    left, mid, right = fmt(win.x0), fmt((win.x0 + win.x1) / 2), fmt(win.x1)
    line = [" "] * cols
    for text, at in ((left, 0), (mid, cols // 2 - len(mid) // 2), (right, cols - len(right))):
        for i, ch in enumerate(text):
            if 0 <= at + i < cols:
                line[at + i] = ch
    return " " * MARGIN + "".join(line)


def as_text(rows: list[Row]) -> str:
    return "\n".join("".join(text for text, _ in row).rstrip() for row in rows)

"""What both plots share: a PlotextPlot drawn straight from plotext's cell matrix, with
its legend on a line of its own, round tick labels, titles that fit, theme colours.

The legend: plotext draws it inside the canvas, over the first points of the loss curve
and over rows of the fit. Here each labelled series' marker and label go on a line (or
two) of their own under the title, in the series' colour, and plotext draws no legend.
"""

from __future__ import annotations

import math
from typing import Any, Self

from plotext._dict import hd_symbols
from plotext._utility import colors_to_ansi
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.color import Color
from textual.strip import Strip
from textual_plotext import PlotextPlot

__all__ = [
    "RGB",
    "FastPlotextPlot",
    "fit_title",
    "linear_ticks",
    "log_ticks",
    "theme_colour",
    "tick_label",
]

RGB = tuple[int, int, int]


def theme_colour(app: Any, variable: str) -> RGB | None:
    """The app theme's colour ``variable`` ("primary", "error" ...) as an RGB tuple.

    None lets plotext pick from its own sequence: an ANSI-only theme, or a name the theme
    does not define, must not break the plot.
    """
    try:
        value = app.theme_variables.get(variable)
        return Color.parse(value).rgb if value else None
    except Exception:  # an unparsable theme value falls back to plotext's colours
        return None


def tick_label(value: float) -> str:
    """Short tick label: 0.25, 1.5e+03, 120k; never plotext's 40-digit floats."""
    if value == int(value) and 1e4 <= abs(value) < 1e9:
        for div, suffix in ((1e6, "M"), (1e3, "k")):
            if abs(value) >= div:
                return f"{value / div:.3g}{suffix}"
    return f"{value:.3g}"


def linear_ticks(lo: float, hi: float, max_ticks: int = 6) -> tuple[list[float], list[str]]:
    """At most ``max_ticks`` round ticks (1, 2, 2.5 or 5 times a power of ten) in ``lo..hi``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [], []
    lo, hi = min(lo, hi), max(lo, hi)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        return [lo], [tick_label(lo)]
    raw = (hi - lo) / max(1, max_ticks - 1)
    ticks: list[float] = []
    # a step that leaves fewer than two ticks in the range tells nothing of the scale:
    # halve it (0 .. 5.4e10 with two ticks: 0 and 5e10, not 0 alone)
    while len(ticks) < min(2, max_ticks):
        power = 10.0 ** math.floor(math.log10(raw))
        step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
        first = math.ceil(lo / step - 1e-9)
        ticks = [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]
        ticks = [0.0 if abs(t) < step * 1e-9 else t for t in ticks]  # no "-0" or "1e-17"
        raw /= 2
    return ticks, [tick_label(t) for t in ticks]


def log_ticks(lo: float, hi: float, max_ticks: int = 8) -> tuple[list[float], list[str]]:
    """Tick positions (in log10 units) and labels for a log axis spanning ``lo..hi``.

    ``lo`` and ``hi`` are log10 values. 1, 2 and 5 per decade when they fit, else decades
    only (thinned to ``max_ticks``); the ends themselves when the range is shorter than a
    decade and fewer than two round values fall inside it.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [], []
    lo, hi = min(lo, hi), max(lo, hi)
    decades = range(math.floor(lo), math.ceil(hi) + 1)
    ticks = [
        d + math.log10(m)
        for d in decades
        for m in (1, 2, 5)
        if lo - 1e-9 <= d + math.log10(m) <= hi + 1e-9
    ]
    if len(ticks) > max_ticks:
        ticks = [float(d) for d in decades if lo - 1e-9 <= d <= hi + 1e-9]
        ticks = ticks[:: max(1, math.ceil(len(ticks) / max_ticks))]
    if len(ticks) < 2:
        ticks = sorted({lo, hi, *ticks})
    return ticks, [f"{10.0**t:.3g}" for t in ticks]


def fit_title(parts: list[str], width: int) -> str:
    """Join ``parts`` with " · ", dropping trailing ones until it fits ``width``.

    plotext silently leaves out a title that does not fit, and a missing title would hide
    the one number the user is watching.
    """
    for n in range(len(parts), 0, -1):
        title = " · ".join(parts[:n])
        if len(title) <= width:
            return title
    return parts[0][: max(width - 1, 0)] + "…" if width > 1 else ""


_STYLES: dict[str, Style] = {}


def _cell_style(fullground: Any, style: Any, background: Any) -> Style:
    """The rich Style of one plotext cell colour triple: exactly what Text.from_ansi
    makes of plotext's escape codes for it, worked out once per triple."""
    ansi = colors_to_ansi(fullground, style, background)
    cached = _STYLES.get(ansi)
    if cached is None:
        spans = Text.from_ansi(ansi + "x").spans
        cached = _STYLES[ansi] = spans[0].style if spans else Style.null()  # type: ignore[assignment]
    return cached


LEGEND_LINES = 2  # at most; entries that do not fit are left out
MIN_PLOT_ROWS = 5  # below this the legend gives its room back to the plot


def legend_lines(labels: list[str], width: int) -> list[int]:
    """The legend line (0, 1) each entry ("m label", two spaces after) goes on, packed
    into ``width`` columns; entries past ``LEGEND_LINES`` lines are left out."""
    placed: list[int] = []
    line, used = 0, 1
    for label in labels:
        size = len(label) + 4
        if used + size > width + 2 and used > 1:  # the trailing spaces may be cut
            line, used = line + 1, 1
        if line == LEGEND_LINES:
            break
        placed.append(line)
        used += size
    return placed


def legend_height(labels: list[str], width: int) -> int:
    """How many lines the legend of these entries takes at ``width``."""
    return max(legend_lines(labels, width), default=-1) + 1


class FastPlotextPlot(PlotextPlot):
    """PlotextPlot, drawn for less: every redraw holds the GIL the training thread needs.

    PlotextPlot.render prints the plot as ANSI text, parses that back into a rich Text,
    and Textual then turns the Text into styled lines. Here the lines are made straight
    from plotext's cell matrix (one style per colour triple, worked out once), through
    Textual's line API. ``render`` still returns the same Text, for tests and for
    measuring.
    """

    _lines: list[Strip] | None = None
    legend_rows = 0  # lines the legend took at the last build

    def plot_height(self, labels: list[str]) -> int:
        """The rows plotext gets once a legend of ``labels`` has its lines (the figure
        less the legend), for a plot that sizes its data to the canvas."""
        width, height = self.size
        if height <= MIN_PLOT_ROWS + 1:
            return height
        return max(height - legend_height(labels, width), MIN_PLOT_ROWS)

    def refresh(self, *regions: Any, **kwargs: Any) -> Self:
        self._lines = None  # whatever asks for a repaint may have changed the picture
        return super().refresh(*regions, **kwargs)

    def _runs(self) -> list[list[tuple[str, Style]]]:
        """Build the plot at the widget's size: per row (top first), runs of cells that
        share a style. The legend takes its own lines under the title; plotext, which
        would draw it over the data, is shown the series without their labels."""
        fig = self._plot
        mon = fig.monitor
        width, height = self.size
        fig.theme(self._get_plotext_theme_name(self.app.theme))
        legend = self._legend(width) if height > MIN_PLOT_ROWS + 1 else []
        plot_height = max(height - len(legend), MIN_PLOT_ROWS)
        self.legend_rows = len(legend)
        fig.plotsize(width, plot_height)
        fig._set_size(width, plot_height)  # as PlotextPlot.render does (textual-plotext #5)
        fig._set_sizes()
        labels = mon.label
        mon.label = [None] * len(labels)
        try:
            fig._build_matrix()
        finally:
            mon.label = labels  # the series keep their labels (tests read them)
        rows = self._matrix_runs()
        at = 1 if mon.title else 0  # under the title row
        return rows[:at] + legend + rows[at:]

    def _legend(self, width: int) -> list[list[tuple[str, Style]]]:
        """One entry per labelled series - its marker in its colour, then its label -
        packed into at most ``LEGEND_LINES`` lines of ``width``."""
        mon = self._plot.monitor
        back = mon.axes_color
        text_style = _cell_style(mon.ticks_color, mon.ticks_style, back)
        entries: list[tuple[str, Style, str]] = []
        for label, markers, colours, styles in zip(
            mon.label, mon.marker, mon.color, mon.style, strict=False
        ):
            if label is None or not markers or any(e[2] == label for e in entries):
                continue
            glyph = hd_symbols.get(markers[0], markers[0])
            glyph = glyph if len(glyph) == 1 else "•"
            entries.append((glyph, _cell_style(colours[0], styles[0], back), label))
        lines: list[list[tuple[str, Style]]] = [[(" ", text_style)] for _ in range(LEGEND_LINES)]
        placed = legend_lines([label for _, _, label in entries], width)
        for (glyph, style, label), line in zip(entries, placed, strict=False):
            lines[line] += [(glyph, style), (f" {label}  ", text_style)]
        return lines[: max(placed, default=-1) + 1]

    def _matrix_runs(self) -> list[list[tuple[str, Style]]]:
        m = self._plot.monitor.matrix
        rows = []
        for row in range(m.rows - 1, -1, -1):
            markers = m.marker[row]
            cells = list(zip(m.fullground[row], m.style[row], m.background[row], strict=True))
            runs = []
            start = 0
            for col in range(1, m.cols + 1):
                if col == m.cols or cells[col] != cells[start]:
                    runs.append(("".join(markers[start:col]), _cell_style(*cells[start])))
                    start = col
            rows.append(runs)
        return rows

    def render(self) -> RenderResult:
        text = Text(end="")
        for runs in self._runs():
            for chars, style in runs:
                text.append(chars, style)
            text.append("\n")  # after the last row too, as the parsed ANSI text has it
        return text

    def render_line(self, y: int) -> Strip:
        if self._lines is None:
            base = self.visual_style.rich_style
            width = self.size.width
            self._lines = [
                Strip([Segment(chars, base + style) for chars, style in runs]).adjust_cell_length(
                    width, base
                )
                for runs in self._runs()
            ]
        if 0 <= y < len(self._lines):
            return self._lines[y]
        return Strip.blank(self.size.width, self.visual_style.rich_style)

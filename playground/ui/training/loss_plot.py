"""The loss curve: every batch loss the session computed, plus the validation loss.

Snapshots arrive up to 25 times a second while a run is going and the history can hold
millions of evaluations, so the widget re-plots only when the history, its size, the
scale or the theme changed, and it decimates each series to the plot's width (min/max
per column, ``decimate.py``) before plotext sees it: the cost of a frame does not grow
with the length of the run.

Evaluations that were not full train steps get their own scatter series, marker and
legend entry (``x`` backward only, ``o`` forward only), and inf/NaN losses a ``!`` on the
top edge plus a vertical line, so the plot reads without colour too (NO_COLOR).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from textual.reactive import reactive

from playground.training.snapshot import KIND_BACKWARD, KIND_FORWARD, KIND_TRAIN, Snapshot
from playground.ui.training.decimate import decimate_minmax, nonfinite_x, positive_only
from playground.ui.training.plot_base import (
    RGB,
    FastPlotextPlot,
    fit_title,
    linear_ticks,
    log_ticks,
    theme_colour,
)

__all__ = ["EMPTY_TITLE", "LossPlot"]

EMPTY_TITLE = "no loss yet: press f, b or n"
TALL = 14  # rows from which the x axis is named


# (kind, legend label, plotext marker, joined by lines, theme colour variable)
_SERIES: tuple[tuple[int, str, str, bool, str], ...] = (
    (KIND_TRAIN, "train step", "hd", True, "primary"),
    (KIND_BACKWARD, "backward only", "x", False, "warning"),
    (KIND_FORWARD, "forward only", "o", False, "foreground"),
)
_VAL = ("validation", "·", "success")


class LossPlot(FastPlotextPlot):
    """Training loss per batch evaluation and validation loss per step, decimated."""

    DEFAULT_CSS = """
    LossPlot {
        width: 1fr;
        height: 1fr;
        min-height: 8;
    }
    """

    log_scale: reactive[bool] = reactive(False)
    """Draw the loss on a log10 axis (losses <= 0 cannot be shown there and are left out)."""

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._snapshot: Snapshot | None = None
        self._drawn_key: tuple[Any, ...] | None = None
        self.points_drawn: int = 0
        """Points handed to plotext at the last re-plot, all series together."""

    # --- public ------------------------------------------------------------------------

    def update_snapshot(self, snapshot: Snapshot) -> None:
        """Show ``snapshot``'s history; O(1) when nothing it draws has changed."""
        self._snapshot = snapshot
        self._redraw()

    def toggle_log(self) -> None:
        """Switch between a linear and a log10 loss axis."""
        self.log_scale = not self.log_scale

    # --- events ------------------------------------------------------------------------

    def on_mount(self) -> None:
        super().on_mount()
        # Series colours come from the theme, so a theme change must re-plot, not just
        # re-render (textual-plotext only swaps the canvas and axes colours).
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._redraw())
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def watch_log_scale(self) -> None:
        self._redraw()

    # --- drawing -----------------------------------------------------------------------

    def _key(self) -> tuple[Any, ...]:
        """Everything the picture depends on, compared in O(1).

        Every snapshot brings a new LossHistory object, so identity says nothing; the
        history only grows (or is cut by undo/reset), so lengths plus the last values
        (as bytes: NaN must compare equal to itself) tell whether it changed.
        """
        base = (self.size.width, self.size.height, self.log_scale, self.app.theme)
        snapshot = self._snapshot
        if snapshot is None:
            return base
        h = snapshot.history
        return (
            *base,
            len(h.loss),
            h.loss[-1:].tobytes(),
            len(h.val_loss),
            h.val_loss[-1:].tobytes(),
            snapshot.val_loss,
            snapshot.step,
        )

    def _redraw(self) -> None:
        if not self.is_mounted or self.size.width <= 0:
            return  # not laid out yet: on_resize comes back here
        key = self._key()
        if key == self._drawn_key:
            return
        self._drawn_key = key
        self.plt.clear_data()
        snapshot = self._snapshot
        if snapshot is None or len(snapshot.history) == 0:
            self._draw_empty()
        else:
            self._draw_history(snapshot)
        self.refresh()

    def _draw_empty(self) -> None:
        self.points_drawn = 0
        self.plt.xticks([])
        self.plt.yticks([])
        self.plt.xlabel(None)
        self.plt.title(fit_title([EMPTY_TITLE], self.size.width - 2))

    def _prepare(self, x: np.ndarray | None, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decimate one series to the width and, on a log axis, move it to log10 units.

        log10 values on a linear axis rather than plotext's yscale("log"): plotext takes
        the log of its stored data in place on every build(), so the second render of the
        same data would take it twice.
        """
        if self.log_scale:
            x, y = positive_only(x, y)
        x, y = decimate_minmax(x, y, self.size.width)
        if self.log_scale:
            y = np.log10(y.astype(np.float64))
        return x, y

    def _draw_history(self, snapshot: Snapshot) -> None:
        plt = self.plt
        h = snapshot.history
        # A plain run holds one kind only: skip the masked copies of a million points.
        single_kind = int(h.kind[0]) if h.kind.min() == h.kind.max() else None
        points = 0
        y_lo, y_hi = math.inf, -math.inf
        for kind, label, marker, lines, colour in _SERIES:
            if single_kind is not None:
                if kind != single_kind:
                    continue
                xs, ys = None, h.loss  # x = 0, 1, 2 ...: decimate's fast path
            else:
                mask = h.kind == kind
                xs, ys = np.flatnonzero(mask), h.loss[mask]
            xs, ys = self._prepare(xs, ys)
            if len(xs) == 0:
                continue
            draw = plt.plot if lines else plt.scatter
            draw(xs.tolist(), ys.tolist(), marker=marker, label=label, color=self._colour(colour))
            points += len(xs)
            y_lo, y_hi = min(y_lo, float(ys.min())), max(y_hi, float(ys.max()))

        m = min(len(h.val_loss), len(h.val_index))
        if m:
            label, marker, colour = _VAL
            # val_index counts the batch losses recorded by then: each validation loss
            # sits above the last batch loss before its step.
            xs, ys = self._prepare(h.val_index[:m] - 1, h.val_loss[:m])
            if len(xs):
                plt.plot(
                    xs.tolist(), ys.tolist(), marker=marker, label=label, color=self._colour(colour)
                )
                points += len(xs)
                y_lo, y_hi = min(y_lo, float(ys.min())), max(y_hi, float(ys.max()))

        if not math.isfinite(y_hi):  # nothing drawable (all inf/NaN, or <= 0 on a log axis)
            y_lo = y_hi = 0.0
        points += self._mark_divergence(snapshot, y_hi)
        self.points_drawn = points
        self._axes(snapshot, len(h), y_lo, y_hi)

    def _mark_divergence(self, snapshot: Snapshot, y_top: float) -> int:
        """Mark what the curves cannot show: a vertical line where the loss first stopped
        being finite, and a ``!`` on the top edge at the inf/NaN evaluations. Returns the
        number of points plotted."""
        h = snapshot.history
        bad = nonfinite_x(None, h.loss, self.size.width)
        if not len(bad):
            return 0
        at = float(bad[0])
        colour = self._colour("error")
        self.plt.vline(at, color=colour)
        self.plt.scatter(
            bad.tolist(), [y_top] * len(bad), marker="!", label="inf/NaN", color=colour
        )
        return len(bad)

    def _axes(self, snapshot: Snapshot, n: int, y_lo: float, y_hi: float) -> None:
        """Round ticks, axis label and title. Ticks are always set explicitly: plotext's
        own print huge losses with every digit, and its log ticks are not round."""
        plt = self.plt
        width, height = self.size
        ticks = log_ticks if self.log_scale else linear_ticks
        y_ticks, y_labels = ticks(y_lo, y_hi, max(2, height // 4))
        plt.yticks(y_ticks, y_labels)
        plt.xticks(*linear_ticks(0, max(n - 1, 1), max(2, width // 16)))
        # on a short plot the axis's name gives its row to the curve
        plt.xlabel("batch evaluation" if height >= TALL else None)
        label_width = max((len(s) for s in y_labels), default=0)
        plt.title(fit_title(_title_parts(snapshot, self.log_scale), width - label_width - 3))

    def _colour(self, variable: str) -> RGB | None:
        return theme_colour(self.app, variable)


def _title_parts(snapshot: Snapshot, log_scale: bool) -> list[str]:
    """Title pieces, most important first (the tail is dropped on a narrow plot). The
    curve is the batch loss; the title says so, and names the validation loss, which is
    the whole validation set at the current parameters (the status bar's number)."""
    h = snapshot.history
    loss = h.loss
    parts = [f"batch loss {snapshot.batch_loss:.4g}" if snapshot.batch_loss is not None else ""]
    if snapshot.val_loss is not None:
        parts.append(f"val loss {snapshot.val_loss:.4g}")
    if snapshot.best is not None:
        parts.append(f"best: epoch {snapshot.best.epoch}, val loss {snapshot.best.val_loss:.4g}")
    bad = np.flatnonzero(~np.isfinite(loss))
    if len(bad):
        parts.append(f"not finite from step {int(h.step[bad[0]])}")
    else:
        parts.append(f"step {snapshot.step}")
    hidden = len(bad)
    if log_scale:
        hidden += int(np.count_nonzero(loss <= 0))
    if hidden:
        parts.append(f"{hidden} not drawn")
    if log_scale:
        parts.append("log")
    return [p for p in parts if p]

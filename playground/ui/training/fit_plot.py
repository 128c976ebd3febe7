"""What the model makes of the data, drawn from a snapshot's ``FitView``.

Four pictures, picked from the shape of the data:

- one-feature regression: the points, the model's line and, when known, the true line
  and the least-squares line, so "has it converged?" is visible at a glance;
- two-feature classification: the decision regions (the lattice cells where the model
  says class 1 vs class 0, ``grid_p >= 0.5``) under the points drawn by class;
- any other one-feature data (a logistic curve, say): the points and the model's output
  against x;
- anything else (three features ...): predicted against actual, with the y = x diagonal.

Every series has its own marker and legend entry, so the plot reads without colour. The
widget re-plots only when the model's predictions (or the data, or the theme) change.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from playground.training.snapshot import FitView, Snapshot
from playground.ui.training.loss_plot import (
    RGB,
    FastPlotextPlot,
    fit_title,
    linear_ticks,
    theme_colour,
)

__all__ = ["MAX_POINTS", "FitPlot", "fit_kind"]

MAX_POINTS = 4000
"""Scatter points handed to plotext per series; larger data sets are thinned evenly."""

# Markers for the data points of each class (class 0, 1, ...), readable without colour.
_CLASS_MARKERS = ("o", "x", "+", "*", "#", "%")
_CLASS_COLOURS = ("primary", "warning", "success", "error", "secondary", "accent")


def fit_kind(fit: FitView) -> str:
    """Which picture suits ``fit``: "line", "boundary", "curve" or "parity"."""
    features = 1 if fit.x.ndim == 1 else fit.x.shape[1]
    if fit.line_x is not None and fit.line_y is not None:
        return "line"
    if fit.grid_p is not None and fit.grid_x is not None and fit.grid_y is not None:
        return "boundary"
    if features == 1:
        return "curve"
    return "parity"


def _thin(*arrays: np.ndarray) -> list[list[float]]:
    """The arrays as lists, every k-th element kept when longer than MAX_POINTS.

    plotext is linear in points and a scatter of 100k points is a solid block anyway.
    """
    n = len(arrays[0])
    stride = max(1, -(-n // MAX_POINTS))
    return [np.asarray(a)[::stride].tolist() for a in arrays]


def _regions(fit: FitView, columns: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One point per canvas cell, and whether the model says class 1 there.

    The model's lattice (48 x 24, say) rarely matches the terminal's cells: scattered as
    is it leaves blank rows that look like boundaries. Instead the lattice is resampled
    (nearest point) at the canvas cells themselves; plotext maps
    ``linspace(lo, hi, cells)`` with the same limits one point per cell. Every cell, not
    every other one: alternating colours make the ANSI text (and its parsing) twice as
    long as the points saved.
    """
    grid_x, grid_y = np.asarray(fit.grid_x), np.asarray(fit.grid_y)
    sx = np.linspace(grid_x[0], grid_x[-1], max(columns, 2))
    sy = np.linspace(grid_y[0], grid_y[-1], max(rows, 2))
    ix = np.abs(sx[:, None] - grid_x[None, :]).argmin(axis=1)
    iy = np.abs(sy[:, None] - grid_y[None, :]).argmin(axis=1)
    gx, gy = np.meshgrid(sx, sy)
    return gx, gy, np.asarray(fit.grid_p)[np.ix_(iy, ix)] >= 0.5


def _column(x: np.ndarray, j: int = 0) -> np.ndarray:
    return x if x.ndim == 1 else x[:, j]


class FitPlot(FastPlotextPlot):
    """The data and the model's fit, decision boundary or predicted-vs-actual."""

    DEFAULT_CSS = """
    FitPlot {
        width: 1fr;
        height: 1fr;
        min-height: 8;
    }
    """

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
        self._drawn: tuple[FitView | None, tuple[Any, ...] | None] = (None, None)
        self.kind: str = ""
        """The picture last drawn: "", "line", "boundary", "curve" or "parity"."""

    # --- public ------------------------------------------------------------------------

    def update_snapshot(self, snapshot: Snapshot) -> None:
        """Show ``snapshot.fit``; cheap when the predictions have not changed."""
        self._snapshot = snapshot
        self._redraw()

    # --- events ------------------------------------------------------------------------

    def on_mount(self) -> None:
        super().on_mount()
        # Series colours follow the theme: a theme change must re-plot.
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._redraw())
        self._redraw()

    def on_resize(self) -> None:
        # the decision regions are sampled at the canvas cells
        self._redraw()

    # --- drawing -----------------------------------------------------------------------

    def _view(self) -> tuple[Any, ...]:
        """What the picture depends on besides the data: theme, size and the title (the
        step and loss move on after the predictions have settled)."""
        snapshot = self._snapshot
        title = _title_parts(snapshot) if snapshot is not None else None
        return (self.app.theme, self.size.width, self.size.height, title)

    def _unchanged(self, fit: FitView | None) -> bool:
        """Same data, same predictions, same theme and size as the picture on screen.

        Snapshots carry a fresh FitView each time, but the data arrays are shared until
        the session is rebuilt, and the predictions change exactly when the parameters do.
        """
        old, view = self._drawn
        if view != self._view():
            return False
        if fit is None or old is None:
            return fit is old
        return fit is old or (
            fit.x is old.x
            and fit.y is old.y
            and (fit.closed_y is None) == (old.closed_y is None)
            and np.array_equal(fit.pred, old.pred, equal_nan=True)
        )

    def _redraw(self) -> None:
        if not self.is_mounted or self.size.width <= 0:
            return  # not laid out yet: on_resize comes back here
        snapshot = self._snapshot
        fit = snapshot.fit if snapshot is not None else None
        if self._unchanged(fit):
            return
        self._drawn = (fit, self._view())
        plt = self.plt
        plt.clear_data()
        plt.xlabel(None)
        plt.ylabel(None)
        if snapshot is None or fit is None or len(fit.y) == 0:
            self.kind = ""
            plt.title("no data to draw yet")
        else:
            self.kind = fit_kind(fit)
            getattr(self, f"_draw_{self.kind}")(fit)
            plt.title(fit_title(_title_parts(snapshot), self.size.width - 10))
        self.refresh()

    def _data_points(self, fit: FitView, label: str = "data") -> None:
        x, y = _thin(_column(fit.x), fit.y)
        self.plt.scatter(x, y, marker="•", label=label, color=self._colour("foreground"))
        if fit.val_x is not None and fit.val_y is not None and len(fit.val_y):
            vx, vy = _thin(_column(fit.val_x), fit.val_y)
            self.plt.scatter(
                vx, vy, marker="+", label="validation", color=self._colour("secondary")
            )

    def _draw_line(self, fit: FitView) -> None:
        plt = self.plt
        self._data_points(fit)
        line_x = fit.line_x.tolist()
        # Reference lines first, the model last, so it stays on top where they overlap.
        if fit.true_y is not None:
            plt.plot(
                line_x,
                fit.true_y.tolist(),
                marker="·",
                label="true line",
                color=self._colour("success"),
            )
        if fit.closed_y is not None:
            plt.plot(
                line_x,
                fit.closed_y.tolist(),
                marker="-",
                label="least squares",
                color=self._colour("warning"),
            )
        plt.plot(
            line_x, fit.line_y.tolist(), marker="hd", label="model", color=self._colour("primary")
        )
        plt.xlabel("x")

    def _draw_boundary(self, fit: FitView) -> None:
        plt = self.plt
        x0, x1 = float(fit.grid_x[0]), float(fit.grid_x[-1])
        y0, y1 = float(fit.grid_y[0]), float(fit.grid_y[-1])
        height = self.size.height
        y_ticks, y_labels = linear_ticks(y0, y1, max(2, height // 5))
        plt.yticks(y_ticks, y_labels)
        # Canvas cells: the widget less the y tick labels and the two axis lines across,
        # less the frame, x ticks, title and x label rows down (plotext's layout).
        columns = self.size.width - 2 - max((len(s) for s in y_labels), default=0)
        gx, gy, ones = _regions(fit, columns, height - 5)
        # Two light markers for the two regions: the boundary is where they meet.
        for mask, marker, label, colour in (
            (~ones, "·", "model says 0", _CLASS_COLOURS[0]),
            (ones, ":", "model says 1", _CLASS_COLOURS[1]),
        ):
            if mask.any():
                plt.scatter(
                    gx[mask].tolist(),
                    gy[mask].tolist(),
                    marker=marker,
                    label=label,
                    color=self._colour(colour),
                )
        self._class_points(fit)
        plt.xlim(x0, x1)
        plt.ylim(y0, y1)
        plt.xlabel("x1")
        plt.ylabel("x2")

    def _class_points(self, fit: FitView) -> None:
        """The data points, one series (marker, colour, legend entry) per class."""
        y = np.asarray(fit.y)
        labels = np.rint(y).astype(np.int64) if y.dtype.kind == "f" else y.astype(np.int64)
        for i, c in enumerate(np.unique(labels)[: len(_CLASS_MARKERS)]):
            sel = labels == c
            x1, x2 = _thin(fit.x[sel, 0], fit.x[sel, 1])
            plt_colour = self._colour(_CLASS_COLOURS[i])
            self.plt.scatter(x1, x2, marker=_CLASS_MARKERS[i], label=f"class {c}", color=plt_colour)

    def _draw_curve(self, fit: FitView) -> None:
        self._data_points(fit)
        x = _column(fit.x)
        order = np.argsort(x, kind="stable")
        xs, ps = _thin(x[order], np.asarray(fit.pred).reshape(-1)[order])
        self.plt.plot(xs, ps, marker="hd", label="model", color=self._colour("primary"))
        self.plt.xlabel("x")

    def _draw_parity(self, fit: FitView) -> None:
        plt = self.plt
        y = np.asarray(fit.y, dtype=np.float64).reshape(-1)
        pred = np.asarray(fit.pred, dtype=np.float64).reshape(-1)
        finite = np.isfinite(pred) & np.isfinite(y)
        ys, ps = _thin(y[finite], pred[finite])
        if ys:
            lo, hi = min(min(ys), min(ps)), max(max(ys), max(ps))
            plt.plot(
                [lo, hi],
                [lo, hi],
                marker="·",
                label="y = x (perfect)",
                color=self._colour("success"),
            )
        plt.scatter(ys, ps, marker="•", label="prediction", color=self._colour("primary"))
        plt.xlabel("actual")
        plt.ylabel("predicted")

    def _colour(self, variable: str) -> RGB | None:
        return theme_colour(self.app, variable)


def _title_parts(snapshot: Snapshot) -> list[str]:
    parts: list[str] = []
    if snapshot.task == "classification" and snapshot.train_accuracy is not None:
        parts.append(f"train acc {snapshot.train_accuracy:.1%}")
    if snapshot.train_loss is not None:
        parts.append(f"train loss {snapshot.train_loss:.4g}")
    if snapshot.prediction is not None:  # the input the exercise asks about
        parts.append(snapshot.prediction.said())
    parts.append(f"step {snapshot.step}")
    return parts

"""What the model makes of the data, drawn from a snapshot's ``FitView``.

Four pictures, picked from the shape of the data:

- one-feature regression: the points, the model's line and, when known, the true line
  and the least-squares line, so "has it converged?" is visible at a glance;
- two-feature classification: the decision regions (the lattice cells where the model
  says class 1 vs class 0, ``grid_p >= 0.5``) under the points drawn by class;
- any other one-feature data (a logistic curve, say): the points and the model's output
  against x;
- anything else (three features ...): predicted against actual, with the y = x diagonal.

Every series has its own marker and legend entry, so the plot reads without colour; the
legend has a line of its own (``plot_base``), never over the data. In the decision
regions the points stand out: the regions are dim dots, the points bold class markers,
and a point the model gets wrong is a red ✗. The y axis spans the data (round ticks);
a model that diverged far off it is left off the chart and the title says so.
The widget re-plots only when the model's predictions (or the data, or the theme) change.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from playground.training.snapshot import FitView, Snapshot
from playground.ui.training.plot_base import (
    RGB,
    FastPlotextPlot,
    fit_title,
    linear_ticks,
    theme_colour,
)

MISCLASSIFIED = "✗"
REGION_DIM = 0.45  # how much of its colour a region keeps against the background
TALL = 14  # rows from which the axes are named

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
        self.note = ""
        """What the title adds: the model off the chart, the points misclassified."""

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
            and fit.n_wrong == old.n_wrong
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
        plt.yticks([])  # each picture sets its own ticks; nothing from the last one stays
        self.note = ""
        if snapshot is None or fit is None or len(fit.y) == 0:
            self.kind = ""
            plt.title("no data to draw yet")
        else:
            self.kind = fit_kind(fit)
            getattr(self, f"_draw_{self.kind}")(fit)
            if fit.stride > 1:  # a large set: the engine sent an even sample of it
                drawn = f"1 in {fit.stride:,} drawn"  # short: the title drops what overflows
                self.note = f"{self.note}, {drawn}" if self.note else drawn
            parts = _title_parts(snapshot)
            if self.note:  # after the loss, before the step: it must not be cut first
                parts.insert(len(parts) - 1, self.note)
            plt.title(fit_title(parts, self.size.width - 10))
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
        model = np.asarray(fit.line_y, dtype=np.float64)
        shown = self._y_axis([fit.y, fit.val_y, fit.true_y, fit.closed_y], model)
        plt.plot(
            np.asarray(fit.line_x)[shown].tolist(),
            model[shown].tolist(),
            marker="hd",
            label="model",
            color=self._colour("primary"),
        )
        self._axis_names("x")

    def _y_axis(self, data: list[np.ndarray | None], model: np.ndarray) -> np.ndarray:
        """Round y ticks over the data (and the model while it stays near it). A model far
        off (diverged: 1e20, inf, nan) is left off the chart, and the title says so.
        Returns which of the model's values to draw: those in sight - plotext joins the
        points of a line cell by cell, and a line to 1e20 off a chart of the data would
        take it forever."""
        values = [np.asarray(a, dtype=np.float64).reshape(-1) for a in data if a is not None]
        values = [a[np.isfinite(a)] for a in values]
        ys = np.concatenate(values) if values else np.zeros(0)
        m = model.reshape(-1)
        if not len(ys):
            return np.isfinite(m)
        lo, hi = float(ys.min()), float(ys.max())
        span = max(hi - lo, 1e-9 * max(1.0, abs(hi)))
        finite = m[np.isfinite(m)]
        off = len(finite) < len(m)
        if len(finite):
            if finite.min() >= lo - span and finite.max() <= hi + span:
                lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
            else:
                off = True
        if off:
            self.note = "model off the chart"
        pad = 0.05 * (hi - lo) or 0.5
        self.plt.ylim(lo - pad, hi + pad)
        self.plt.yticks(*linear_ticks(lo, hi, max(2, self.size.height // 4)))
        with np.errstate(invalid="ignore"):
            return np.isfinite(m) & (m >= lo - pad) & (m <= hi + pad)

    def _draw_boundary(self, fit: FitView) -> None:
        plt = self.plt
        x0, x1 = float(fit.grid_x[0]), float(fit.grid_x[-1])
        y0, y1 = float(fit.grid_y[0]), float(fit.grid_y[-1])
        labels, wrong = _classes(fit)
        classes = np.unique(labels)[: len(_CLASS_MARKERS)]
        legend = ["model says 0", "model says 1", *(f"class {c}" for c in classes)]
        if wrong.any():
            legend.append(f"misclassified ({_wrong_count(fit, wrong)})")
        # Canvas cells: the figure less the y tick labels and the two axis lines across,
        # less the title, frame, x ticks and (when named) x axis rows down (plotext's).
        rows = self.plot_height(legend) - (5 if self.size.height >= TALL else 4)
        y_ticks, y_labels = linear_ticks(y0, y1, max(2, rows // 3 + 1))
        plt.yticks(y_ticks, y_labels)
        columns = self.size.width - 2 - max((len(s) for s in y_labels), default=0)
        gx, gy, ones = _regions(fit, columns, rows)
        # Two dim markers for the two regions (the boundary is where they meet), so the
        # points drawn over them in full colour stand out.
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
                    color=self._dim(colour),
                )
        self._class_points(fit, labels, classes, wrong)
        plt.xlim(x0, x1)
        plt.ylim(y0, y1)
        self._axis_names("x1", "x2")

    def _class_points(
        self, fit: FitView, labels: np.ndarray, classes: np.ndarray, wrong: np.ndarray
    ) -> None:
        """The data points, one series (marker, colour, legend entry) per class, and the
        misclassified ones over them as a red ✗ (their class is the other region's)."""
        for i, c in enumerate(classes):
            sel = (labels == c) & ~wrong
            x1, x2 = _thin(fit.x[sel, 0], fit.x[sel, 1])
            self.plt.scatter(
                x1,
                x2,
                marker=_CLASS_MARKERS[i],
                label=f"class {c}",
                color=self._colour(_CLASS_COLOURS[i]),
                style="bold",
            )
        if wrong.any():
            x1, x2 = _thin(fit.x[wrong, 0], fit.x[wrong, 1])
            self.plt.scatter(
                x1,
                x2,
                marker=MISCLASSIFIED,
                label=f"misclassified ({_wrong_count(fit, wrong)})",
                color=self._colour("error"),
                style="bold",
            )

    def _axis_names(self, x: str, y: str | None = None) -> None:
        """plotext writes them on a row of their own: only on a plot tall enough."""
        tall = self.size.height >= TALL
        self.plt.xlabel(x if tall else None)
        self.plt.ylabel(y if tall else None)

    def _dim(self, variable: str) -> RGB | None:
        """The theme colour ``variable`` mixed into the background: for the regions."""
        colour, back = self._colour(variable), self._colour("background")
        if colour is None or back is None:
            return colour
        return tuple(round(b + REGION_DIM * (c - b)) for c, b in zip(colour, back, strict=True))  # type: ignore[return-value]

    def _draw_curve(self, fit: FitView) -> None:
        self._data_points(fit)
        x = _column(fit.x)
        order = np.argsort(x, kind="stable")
        pred = np.asarray(fit.pred, dtype=np.float64).reshape(-1)[order]
        shown = self._y_axis([fit.y, fit.val_y], pred)
        xs, ps = _thin(x[order][shown], pred[shown])
        self.plt.plot(xs, ps, marker="hd", label="model", color=self._colour("primary"))
        self._axis_names("x")

    def _draw_parity(self, fit: FitView) -> None:
        plt = self.plt
        y = np.asarray(fit.y, dtype=np.float64).reshape(-1)
        pred = np.asarray(fit.pred, dtype=np.float64).reshape(-1)
        shown = self._y_axis([y], pred) & np.isfinite(y)
        ys, ps = _thin(y[shown], pred[shown])
        if ys:
            # the diagonal over what is drawn (a line far off the chart never ends)
            lo, hi = min(min(ys), min(ps)), max(max(ys), max(ps))
            plt.plot(
                [lo, hi],
                [lo, hi],
                marker="·",
                label="y = x (perfect)",
                color=self._colour("success"),
            )
        plt.scatter(ys, ps, marker="•", label="prediction", color=self._colour("primary"))
        self._axis_names("actual", "predicted")

    def _colour(self, variable: str) -> RGB | None:
        return theme_colour(self.app, variable)


def _classes(fit: FitView) -> tuple[np.ndarray, np.ndarray]:
    """Each point's class, and whether the model gets it wrong (P(class 1) on the wrong
    side of 0.5)."""
    y = np.asarray(fit.y)
    labels = np.rint(y).astype(np.int64) if y.dtype.kind == "f" else y.astype(np.int64)
    pred = np.asarray(fit.pred, dtype=np.float64).reshape(-1)
    if len(pred) != len(labels) or labels.max(initial=0) > 1:
        return labels, np.zeros(len(labels), dtype=bool)  # not a two-class probability
    return labels, (pred >= 0.5) != (labels == 1)


def _wrong_count(fit: FitView, wrong: np.ndarray) -> int:
    """The points the model gets wrong: of the whole set where the engine counted them
    (a large set, drawn from a sample), else of the points drawn (all of them)."""
    return fit.n_wrong if fit.n_wrong is not None else int(wrong.sum())


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

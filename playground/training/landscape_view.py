"""The loss landscape as plain data: the loss over a plane in parameter space, its
contour lines, the path of the updates, the current point, the least-squares optimum and
the optimizer race.

The runner fills a ``LandscapeView`` for a ``LandscapeRequest`` (``landscape.py``, on
its thread); the landscape screen draws it and ``playground landscape`` prints it, both
through ``landscape_canvas``, so they show the same picture. Frozen and torch-free
(numpy arrays, copied): it crosses threads like a ``Snapshot``.

A plane is two directions through parameter space. ``params``: two entries of the
parameters (``w`` and ``b``; ``0.weight[0,0]`` and ``2.bias[1]`` of an MLP), the others
held at their current values; the axes are those entries' values. ``random``: two random
directions, each filter-normalised (every row of a weight matrix, every vector as a
whole, scaled to the norm of the parameter's own), through the current point; the axes
are the steps along them. ``pca``: the first two principal directions of the path so
far, through the current point. For a model of two parameters the ``params`` plane is
the whole loss surface and the path lies in it; otherwise the path is drawn projected
onto the plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

MODES = ("params", "random", "pca")
MODE_LABELS = {
    "params": "two parameters",
    "random": "random filter-normalised directions",
    "pca": "principal directions of the path",
}
LEVELS = 12  # contour lines
DECADES = 3.0  # the levels span this many powers of ten above the grid's minimum
PAD = 0.2  # room around the path in a fitted window (a fraction of its span)


@dataclass(frozen=True)
class Window:
    """The rectangle of the plane that the grid covers."""

    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def zoomed(self, factor: float, about: tuple[float, float] | None = None) -> Window:
        """Shrunk by ``factor`` (2: twice as close) around ``about`` (default: centre)."""
        cx, cy = about or ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)
        return Window(
            cx - (cx - self.x0) / factor,
            cx + (self.x1 - cx) / factor,
            cy - (cy - self.y0) / factor,
            cy + (self.y1 - cy) / factor,
        )

    def panned(self, fx: float, fy: float) -> Window:
        """Moved by ``fx`` widths and ``fy`` heights."""
        dx, dy = fx * self.width, fy * self.height
        return Window(self.x0 + dx, self.x1 + dx, self.y0 + dy, self.y1 + dy)

    def contains(self, points: np.ndarray) -> bool:
        p = points[np.isfinite(points).all(axis=1)] if len(points) else points
        if not len(p):
            return True
        return bool(
            (p[:, 0] >= self.x0).all()
            and (p[:, 0] <= self.x1).all()
            and (p[:, 1] >= self.y0).all()
            and (p[:, 1] <= self.y1).all()
        )


@dataclass(frozen=True)
class LandscapeRequest:
    """What the user asks to see."""

    mode: str = "params"  # one of MODES
    x: str = ""  # params mode: the x axis's parameter entry ("" = the first)
    y: str = ""  # ... and the y axis's ("" = the second)
    seed: int = 0  # random mode: which random directions
    window: Window | None = None  # None: fitted to the path and the optimum, following it
    size: int = 121  # grid points per axis (fewer for a costly model)
    dots: tuple[int, int] = (160, 128)  # the drawing's resolution, to decimate the path
    race: int = 0  # steps of the optimizer race from the current point (0: no race)
    levels: int = LEVELS

    def problem(self) -> str | None:
        if self.mode not in MODES:
            return f"mode: {self.mode!r} is not one of {', '.join(MODES)}"
        if not 5 <= self.size <= 401:
            return f"size: {self.size} must be from 5 to 401 grid points"
        if not 0 <= self.race <= 10_000:
            return f"race: {self.race} must be from 0 to 10000 steps"
        if not 2 <= self.levels <= 40:
            return f"levels: {self.levels} must be from 2 to 40"
        w = self.window
        if w is not None and not (
            all(math.isfinite(v) for v in (w.x0, w.x1, w.y0, w.y1)) and w.width > 0 < w.height
        ):
            return f"window: {w} must be finite with x0 < x1 and y0 < y1"
        return None


@dataclass(frozen=True)
class RacePath:
    """Where one optimizer would go from the current point."""

    name: str  # "gd", "momentum", "adam"
    label: str  # "GD lr 0.001", "SGD momentum 0.9", "Adam lr 0.001"
    points: np.ndarray  # (steps + 1, 2) on the plane, the current point first
    final_loss: float


@dataclass(frozen=True)
class LandscapeView:
    """The loss over a window of a plane, and everything drawn on it."""

    request: LandscapeRequest
    mode: str  # the mode shown (pca falls back to random while the path is too short)
    x_label: str
    y_label: str
    entries: tuple[str, ...]  # every parameter entry, in order (to choose the axes)
    whole: bool  # the model has just these two parameters: the path lies in the plane
    window: Window
    xs: np.ndarray  # (nx,) grid coordinates along x
    ys: np.ndarray  # (ny,)
    loss: np.ndarray  # (ny, nx) training loss at each grid point (rows follow ys)
    levels: np.ndarray  # the contour levels, increasing (log-spaced above the minimum)
    lines: tuple[tuple[int, np.ndarray], ...]  # (level index, (k, 2) polyline)
    path: np.ndarray  # (m, 2) the path of the updates, decimated for the drawing
    path_index: np.ndarray  # (m,) which point of the path each is (0: the start)
    path_steps: np.ndarray  # (m,) the step count at each
    path_points: int  # points in the whole path
    current: tuple[float, float]
    current_loss: float
    optimum: tuple[float, float] | None  # least squares, when the preset has one
    optimum_loss: float | None
    race: tuple[RacePath, ...]
    step: int
    loss_name: str
    n_samples: int  # the training samples the loss is computed on
    note: str = ""  # what the picture is (a slice, a projection ...)
    seconds: float = 0.0  # what computing the grid took
    plane_id: int = 0  # which plane of the runner's this is (a point picked names it)

    def node(self, x: float, y: float) -> tuple[int, int]:
        """The grid point nearest to (x, y), as (column, row) indices."""
        i = int(np.clip(np.rint((x - self.xs[0]) / _step(self.xs)), 0, len(self.xs) - 1))
        j = int(np.clip(np.rint((y - self.ys[0]) / _step(self.ys)), 0, len(self.ys) - 1))
        return i, j

    def minimum(self) -> tuple[float, float, float]:
        """The grid point with the lowest loss: (x, y, loss)."""
        z = np.where(np.isfinite(self.loss), self.loss, np.inf)
        j, i = np.unravel_index(int(np.argmin(z)), z.shape)
        return float(self.xs[i]), float(self.ys[j]), float(self.loss[j, i])


def _step(a: np.ndarray) -> float:
    return float(a[1] - a[0]) if len(a) > 1 else 1.0


# --- levels, contours, windows, decimation ------------------------------------------------


def log_levels(z: np.ndarray, n: int = LEVELS, decades: float = DECADES) -> np.ndarray:
    """``n`` contour levels spaced evenly in log(loss - min) over ``decades`` powers of
    ten up to the grid's maximum: dense near the minimum, where a valley's shape shows."""
    finite = z[np.isfinite(z)]
    if not len(finite):
        return np.zeros(0)
    lo, hi = float(finite.min()), float(finite.max())
    span = hi - lo
    if not span > 0:
        return np.array([lo])
    return lo + span * np.logspace(-decades, 0, n + 1)[:-1]


def contour_lines(
    xs: np.ndarray, ys: np.ndarray, z: np.ndarray, levels: np.ndarray
) -> tuple[tuple[int, np.ndarray], ...]:
    """The contour lines of ``z`` on the ``xs`` x ``ys`` grid at each level, by
    contourpy (non-finite values are left out)."""
    import contourpy

    zz = np.ma.masked_invalid(np.asarray(z, dtype=np.float64))
    gen = contourpy.contour_generator(
        xs, ys, zz, line_type=contourpy.LineType.Separate, name="serial"
    )
    out = []
    for k, level in enumerate(levels):
        for line in gen.lines(float(level)):
            if len(line) >= 2:
                out.append((k, np.asarray(line, dtype=np.float64)))
    return tuple(out)


def fit_window(points: np.ndarray, pad: float = PAD) -> Window:
    """A window around ``points`` (k, 2) with ``pad`` of room on every side; a point
    alone (or a line) gets a span of its own size, at least 1."""
    p = points[np.isfinite(points).all(axis=1)] if len(points) else points
    if not len(p):
        return Window(-1.0, 1.0, -1.0, 1.0)
    lo, hi = p.min(axis=0), p.max(axis=0)
    span = hi - lo
    floor = np.maximum(np.abs((lo + hi) / 2) * 0.5, 1.0)
    span = np.where(span > 1e-9 * floor, span, floor)
    centre = (lo + hi) / 2
    half = span * (0.5 + pad)
    return Window(
        float(centre[0] - half[0]),
        float(centre[0] + half[0]),
        float(centre[1] - half[1]),
        float(centre[1] + half[1]),
    )


def snapped(window: Window, point: tuple[float, float], n: int) -> Window:
    """``window`` moved by less than a grid step so that ``point`` is one of the points
    of an ``n`` x ``n`` grid over it: the grid then holds the exact minimum when
    ``point`` is the optimum (in a narrow valley the nearest grid points can lie far
    along the floor from it)."""
    dx, dy = window.width / (n - 1), window.height / (n - 1)
    sx = point[0] - (window.x0 + round((point[0] - window.x0) / dx) * dx)
    sy = point[1] - (window.y0 + round((point[1] - window.y0) / dy) * dy)
    return Window(window.x0 + sx, window.x1 + sx, window.y0 + sy, window.y1 + sy)


def decimate(points: np.ndarray, window: Window, dots: tuple[int, int]) -> np.ndarray:
    """The indices of ``points`` (n, 2) to draw at ``dots`` resolution over ``window``:
    first, of consecutive points in the same half-dot, the first and the last; then
    Ramer-Douglas-Peucker at half a dot, which keeps every point where the path turns by
    more than that. The first and last points always stay; non-finite ones go."""
    n = len(points)
    if n <= 2:
        return np.arange(n)
    sx = 2 * dots[0] / max(window.width, 1e-300)  # half-dots per unit
    sy = 2 * dots[1] / max(window.height, 1e-300)
    scaled = np.column_stack([points[:, 0] * sx, points[:, 1] * sy])
    finite = np.isfinite(scaled).all(axis=1)
    cells = np.floor(np.where(finite[:, None], scaled, 0.0)).astype(np.int64)
    change = np.ones(n, dtype=bool)
    change[1:] = (cells[1:] != cells[:-1]).any(axis=1)
    keep = change.copy()
    keep[:-1] |= change[1:]  # the last point of each run of the same cell
    keep[-1] = True
    keep &= finite
    idx = np.flatnonzero(keep)
    if len(idx) <= 2:
        return idx
    return idx[_rdp(scaled[idx], 1.0)]


def _rdp(p: np.ndarray, eps: float) -> np.ndarray:
    """Ramer-Douglas-Peucker on ``p`` (n, 2), iteratively: the indices kept."""
    n = len(p)
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        seg = p[a + 1 : b]
        d = p[b] - p[a]
        norm = math.hypot(d[0], d[1])
        rel = seg - p[a]
        if norm == 0:
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:
            dist = np.abs(rel[:, 0] * d[1] - rel[:, 1] * d[0]) / norm
        k = int(np.argmax(dist))
        if dist[k] > eps:
            m = a + 1 + k
            keep[m] = True
            stack.append((a, m))
            stack.append((m, b))
    return np.flatnonzero(keep)


# --- words and JSON -------------------------------------------------------------------


def fmt(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.4g}"


def summary(view: LandscapeView) -> list[str]:
    """The view in a few lines (the CLI's header, the screen's side panel)."""
    v = view
    sx, sy = v.x_label, v.y_label
    lines = [
        f"{v.loss_name} over {v.n_samples} training samples; {sx} across, {sy} up "
        f"({MODE_LABELS[v.mode]})",
        f"step {v.step}: ({sx}, {sy}) = ({fmt(v.current[0])}, {fmt(v.current[1])}), "
        f"loss {fmt(v.current_loss)}",
    ]
    if v.optimum is not None:
        lines.append(
            f"least squares: ({fmt(v.optimum[0])}, {fmt(v.optimum[1])}), loss {fmt(v.optimum_loss)}"
        )
    mx, my, mz = v.minimum()
    lines.append(f"grid minimum: ({fmt(mx)}, {fmt(my)}), loss {fmt(mz)}")
    if len(v.levels):
        lines.append(
            f"{len(v.levels)} levels, log-spaced: {fmt(v.levels[0])} ... {fmt(v.levels[-1])}"
        )
    lines.append(f"path: {v.path_points} points, {len(v.path)} drawn")
    for r in v.race:
        lines.append(f"race {r.label}: {len(r.points) - 1} steps, loss {fmt(r.final_loss)}")
    if v.note:
        lines.append(v.note)
    return lines


def as_json(view: LandscapeView, grid: bool = True) -> dict[str, Any]:
    """The view as plain JSON values (``playground landscape --json``)."""
    v = view

    def pts(a: np.ndarray) -> list[list[float | None]]:
        return [[_num(x), _num(y)] for x, y in a.tolist()]

    out: dict[str, Any] = {
        "mode": v.mode,
        "x": v.x_label,
        "y": v.y_label,
        "loss_name": v.loss_name,
        "n_samples": v.n_samples,
        "step": v.step,
        "window": {"x0": v.window.x0, "x1": v.window.x1, "y0": v.window.y0, "y1": v.window.y1},
        "levels": [float(x) for x in v.levels],
        "current": {"x": v.current[0], "y": v.current[1], "loss": _num(v.current_loss)},
        "optimum": None
        if v.optimum is None
        else {"x": v.optimum[0], "y": v.optimum[1], "loss": _num(v.optimum_loss)},
        "grid_minimum": dict(zip(("x", "y", "loss"), v.minimum(), strict=True)),
        "path": {
            "points": v.path_points,
            "index": [int(i) for i in v.path_index],
            "step": [int(s) for s in v.path_steps],
            "xy": pts(v.path),
        },
        "race": [
            {
                "name": r.name,
                "label": r.label,
                "final_loss": _num(r.final_loss),
                "xy": pts(r.points),
            }
            for r in v.race
        ],
        "note": v.note,
    }
    if grid:
        out["grid"] = {
            "x": [float(x) for x in v.xs],
            "y": [float(y) for y in v.ys],
            "loss": [[_num(z) for z in row] for row in v.loss.tolist()],
        }
    return out


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def with_window(request: LandscapeRequest, window: Window | None) -> LandscapeRequest:
    return replace(request, window=window)

"""The loss landscape, computed: the session's own model and loss evaluated on a grid over
a plane of parameter space, with the path of its updates (``landscape_view`` says what
the planes are and holds the result).

The grid is one batched evaluation: every grid point's parameters are made at once by
broadcasting (origin + u d1 + v d2), and ``torch.func.vmap`` over
``torch.func.functional_call`` evaluates the model and the loss at all of them - in
chunks that bound the memory, never a Python loop per point. The loss is the session's
(means and sums alike: ``compute_loss``) on the whole training set.

``landscape_of`` computes one view (the CLI, tests); ``Watch`` keeps one up to date for
the runner thread: the grid is computed again only when the window or the plane changes
(a slice through the current point moves to it after each action; during a run it
stays where the run began), new points of the path are projected as they come, and
while a run goes on a grid for a new window waits its turn, so that the landscape takes
a small share of the thread's time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.func import vmap

from playground.training.flat_params import entries_of, flat_values, forward, loss_at, unflatten
from playground.training.landscape_plane import Plane, make_plane
from playground.training.landscape_view import (
    LandscapeRequest,
    LandscapeView,
    RacePath,
    Window,
    contour_lines,
    decimate,
    fit_window,
    log_levels,
    snapped,
)
from playground.training.models import Model, compute_loss
from playground.training.param_path import path_of

if TYPE_CHECKING:
    from playground.training.session import Session

GRID_COST = 4e7  # multiply-adds per grid (points x samples x parameters): its size follows
MIN_SIZE = 21  # grid points per axis, however costly the model
CHUNK_FLOATS = 2**20  # floats per chunk of grid points (~4 MiB: in cache, fastest)
GRID_SHARE = 0.03  # while running, the grid takes at most this share of the thread's time


# --- the grid -------------------------------------------------------------------------


def grid_size(session: Session, requested: int) -> int:
    """Grid points per axis: as asked, fewer for a costly model and data set."""
    cost = session.build.n_train * max(sum(p.numel() for p in session.model.params.values()), 4)
    return int(max(MIN_SIZE, min(requested, math.isqrt(int(GRID_COST / cost)))))


def grid_loss(session: Session, plane: Plane, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The training loss at every (x, y) of the grid, (len(ys), len(xs)): one vmap over
    the grid points (in chunks), the real model and loss at each."""
    model, x, y, name = session.model, session.x, session.y, session.cfg.loss
    dev = session.device
    as_t = {"dtype": torch.float32, "device": dev}
    origin, d1, d2 = (torch.as_tensor(a, **as_t) for a in (plane.origin, plane.d1, plane.d2))
    u, v = torch.meshgrid(torch.as_tensor(xs, **as_t), torch.as_tensor(ys, **as_t), indexing="xy")
    u, v = u.reshape(-1, 1), v.reshape(-1, 1)

    def one(params: dict[str, torch.Tensor]) -> torch.Tensor:
        return compute_loss(name, forward(model, params, x), y)

    batched = vmap(one)
    per_point = x.shape[0] * max(_widest(model), 1) + origin.numel()
    chunk = max(1, CHUNK_FLOATS // per_point)
    out = []
    with torch.no_grad():
        for start in range(0, u.shape[0], chunk):
            flat = origin + u[start : start + chunk] * d1 + v[start : start + chunk] * d2
            out.append(batched(unflatten(model, flat)))
    z = torch.cat(out).double().cpu().numpy()
    return z.reshape(len(ys), len(xs))


def _widest(model: Model) -> int:
    """The widest layer's output (what one sample costs in memory inside the model)."""
    if model.module is None:
        return model.n_outputs
    widths = [p.shape[0] for p in model.params.values() if p.dim() >= 1]
    return max(widths + [model.n_outputs])


@dataclass(frozen=True)
class Grid:
    window: Window
    xs: np.ndarray
    ys: np.ndarray
    loss: np.ndarray
    levels: np.ndarray
    lines: tuple[tuple[int, np.ndarray], ...]
    seconds: float


def make_grid(session: Session, plane: Plane, window: Window, size: int, levels: int) -> Grid:
    t0 = time.perf_counter()
    n = grid_size(session, size)
    xs = np.linspace(window.x0, window.x1, n)
    ys = np.linspace(window.y0, window.y1, n)
    z = grid_loss(session, plane, xs, ys)
    lv = log_levels(z, levels)
    lines = contour_lines(xs, ys, z, lv)
    for a in (xs, ys, z, lv):
        a.flags.writeable = False
    return Grid(window, xs, ys, z, lv, lines, time.perf_counter() - t0)


# --- one view, and a view kept up to date ----------------------------------------------


def optimum_of(session: Session) -> np.ndarray | None:
    """The least-squares optimum as a flat parameter vector, when the preset has one."""
    from playground.training.capture import true_and_closed_form

    _, closed = true_and_closed_form(session.build, session.cfg)
    if closed is None:
        return None
    params = session.model.params
    if set(closed) != set(params):
        return None
    parts = [np.asarray(closed[n], dtype=np.float64).reshape(-1) for n in params]
    flat = np.concatenate(parts)
    return flat if len(flat) == sum(p.numel() for p in params.values()) else None


def landscape_of(session: Session, request: LandscapeRequest | None = None) -> LandscapeView:
    """The landscape of the session now, as ``request`` asks (default: w and b, fitted to
    the path and the optimum)."""
    watch = Watch(request or LandscapeRequest())
    view = watch.update(session, running=False, force=True)
    assert view is not None
    return view


class Watch:
    """A landscape view kept up to date for the runner thread. See the module docstring."""

    def __init__(self, request: LandscapeRequest) -> None:
        problem = request.problem()
        if problem:
            raise ValueError(f"landscape: {problem}")
        self.request = request
        self._plane: Plane | None = None
        self._plane_key: Any = None  # the session state the plane was made at
        self._build: Any = None
        self._grid: Grid | None = None
        self._grid_at = 0.0  # when the grid was last computed (perf_counter)
        self._projected = np.zeros((0, 2))  # the path on the plane, so far
        self._index = np.zeros(0, dtype=np.int64)
        self._steps = np.zeros(0, dtype=np.int64)
        self._version: Any = None
        self._drawn: np.ndarray | None = None  # indices of the decimated path
        self._drawn_for: Any = None
        self._optimum: np.ndarray | None = None
        self._optimum_loss: float | None = None
        self._entries: tuple[str, ...] = ()
        self._kept_window: Window | None = None  # a window to keep over a new plane
        self._plane_id = 0  # counts the planes made
        self._size = request.size  # grid points per axis (fewer for a costly model)
        self._race: tuple[RacePath, ...] = ()
        self._race_key: Any = None
        self._shown: Any = None  # what the last view was made of

    def change(self, request: LandscapeRequest) -> None:
        """A new request: the plane and the grid are made again if it needs them."""
        problem = request.problem()
        if problem:
            raise ValueError(f"landscape: {problem}")
        old, self.request = self.request, request
        if (old.mode, old.x, old.y, old.seed) != (request.mode, request.x, request.y, request.seed):
            self._plane = None
        elif old.window != request.window or old.size != request.size:
            self._grid, self._kept_window = None, None
        if old.race != request.race:
            self._race_key = None
        self._shown = None

    def request_labels(self) -> tuple[str, str]:
        """The names of the plane's two axes."""
        plane = self._plane
        return ("x", "y") if plane is None else (plane.x_label, plane.y_label)

    def values_at(self, u: float, v: float, plane: int = -1) -> dict[str, np.ndarray]:
        """The parameters at the point (u, v) of the plane shown (``plane``: the
        ``plane_id`` of the view the point was picked on; -1: any), by name."""
        if self._plane is None or self._build is None:
            raise ValueError("set parameters: no landscape is shown")
        if plane not in (-1, self._plane_id):
            raise ValueError(
                "set parameters: the landscape's plane moved with the last action - "
                "pick the point again"
            )
        if not (math.isfinite(u) and math.isfinite(v)):
            raise ValueError(f"set parameters: ({u}, {v}) is not a point")
        flat = self._plane.at(u, v)
        out, at = {}, 0
        for name, p in self._build.model.params.items():
            out[name] = flat[at : at + p.numel()].reshape(tuple(p.shape))
            at += p.numel()
        return out

    def update(self, session: Session, running: bool, force: bool = False) -> LandscapeView | None:
        """The view now, or None when nothing it shows has changed."""
        path = path_of(session.build)
        key = (id(session.build), path.version, len(path), session.progress.step)
        now = time.perf_counter()
        may_grid = (
            not running
            or self._grid is None
            or now - self._grid_at >= self._grid.seconds / GRID_SHARE
        )
        if session.build is not self._build:
            self._build, self._plane, self._grid = session.build, None, None
            self._optimum = optimum_of(session)
            self._optimum_loss = None
            if self._optimum is not None:
                self._optimum_loss = loss_at(session, torch.as_tensor(self._optimum))
            self._entries = entries_of(session.model)
        plane = self._plane
        # a slice through a moving point stays where the run found it until the run stops
        if plane is None or (not plane.whole and key != self._plane_key and not running):
            old = plane
            plane = self._plane = make_plane(session, self.request)
            self._plane_id += 1
            same_axes = (
                old is not None
                and plane.mode == "params"
                and (
                    (old.mode, old.x_label, old.y_label) == ("params", plane.x_label, plane.y_label)
                )
            )
            kept = self._grid.window if self._grid is not None else None
            self._kept_window = kept if same_axes else None
            self._plane_key, self._grid, self._version = key, None, None
            self._race_key = None
        self._follow_path(path, plane)
        current = plane.project(flat_values(session.model).double().cpu().numpy()[None])[0]
        if self.request.race and not running and self._race_key != key:
            self._race = self._run_race(session, plane)
            self._race_key = key
        elif running:
            self._race, self._race_key = (), None
        self._size = grid_size(session, self.request.size)
        window = self._window(current, may_grid)
        if self._grid is None or self._grid.window != window:
            self._grid = make_grid(session, plane, window, self._size, self.request.levels)
            self._grid_at = time.perf_counter()
        grid = self._grid
        shown = (key, id(grid), id(self._race), self.request)
        if shown == self._shown and not force:
            return None
        self._shown = shown
        drawn = self._decimated(grid.window)
        optimum = None if self._optimum is None else plane.project(self._optimum[None])[0]
        return LandscapeView(
            request=self.request,
            mode=plane.mode,
            x_label=plane.x_label,
            y_label=plane.y_label,
            entries=self._entries,
            whole=plane.whole,
            window=grid.window,
            xs=grid.xs,
            ys=grid.ys,
            loss=grid.loss,
            levels=grid.levels,
            lines=grid.lines,
            path=_frozen(self._projected[drawn]),
            path_index=_frozen(self._index[drawn]),
            path_steps=_frozen(self._steps[drawn]),
            path_points=len(self._projected),
            current=(float(current[0]), float(current[1])),
            current_loss=loss_at(session, flat_values(session.model)),
            optimum=None if optimum is None else (float(optimum[0]), float(optimum[1])),
            optimum_loss=self._optimum_loss,
            race=self._race,
            step=session.progress.step,
            loss_name=session.cfg.loss,
            n_samples=session.build.n_train,
            note=plane.note,
            seconds=grid.seconds,
            plane_id=self._plane_id,
        )

    def _follow_path(self, path: Any, plane: Plane) -> None:
        """Project the points of the path not projected yet (all of them after a cut, a
        thinning or a new plane)."""
        start = len(self._projected)
        if self._version != (path.version, id(plane)) or path.held < start:
            start = 0
            self._drawn = None
        self._version = (path.version, id(plane))
        if start == path.held and start:
            return
        index, steps, values = path.points(start)
        xy = plane.project(values) if len(values) else np.zeros((0, 2))
        if start == 0:
            self._projected, self._index, self._steps = xy, index, steps
        else:
            self._projected = np.concatenate([self._projected, xy])
            self._index = np.concatenate([self._index, index])
            self._steps = np.concatenate([self._steps, steps])

    def _decimated(self, window: Window) -> np.ndarray:
        """Indices of the path's points to draw: the drawn prefix kept, the new points
        decimated after its last one (all again for a new window)."""
        for_key = (window, self.request.dots)
        n = len(self._projected)
        drawn = self._drawn
        if drawn is None or self._drawn_for != for_key or (len(drawn) and drawn[-1] >= n):
            drawn = decimate(self._projected, window, self.request.dots)
        elif not len(drawn) or drawn[-1] < n - 1:
            first = int(drawn[-1]) if len(drawn) else 0
            tail = decimate(self._projected[first:], window, self.request.dots) + first
            drawn = np.concatenate([drawn[:-1], tail]) if len(drawn) else tail
        self._drawn, self._drawn_for = drawn, for_key
        return drawn

    def _window(self, current: np.ndarray, may_move: bool) -> Window:
        """The request's window, or one fitted to the path, the current point, the
        optimum and the race - kept while they stay inside it."""
        if self.request.window is not None:
            return self.request.window
        pts = [self._projected, current[None]]
        if self._optimum is not None and self._plane is not None:
            pts.append(self._plane.project(self._optimum[None]))
        pts += [r.points for r in self._race]
        every = np.concatenate(pts)
        kept = self._grid.window if self._grid is not None else self._kept_window
        if kept is not None and (kept.contains(every) or not may_move):
            return kept
        window = fit_window(every)
        if len(pts) > 2 and self._optimum is not None and np.isfinite(pts[2]).all():
            window = snapped(window, (pts[2][0, 0], pts[2][0, 1]), self._size)
        return window

    def _run_race(self, session: Session, plane: Plane) -> tuple[RacePath, ...]:
        from playground.training.landscape_race import race

        out = []
        for run in race(session, self.request.race):
            xy = plane.project(run.values)
            xy.flags.writeable = False
            out.append(RacePath(run.name, run.label, xy, run.final_loss))
        return tuple(out)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def request_for(view: LandscapeView | None, **changes: Any) -> LandscapeRequest:
    """The request of ``view`` (or the default one) with ``changes``."""
    base = view.request if view is not None else LandscapeRequest()
    return replace(base, **changes)

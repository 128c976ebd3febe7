"""The path of the parameters: their values after every update, for the loss landscape.

Every optimizer step (single or in a run) and every jump of the parameters (the best
state put back, a point picked on the landscape) appends the flattened parameter vector.
Like the loss history, the vectors stay on the device (no host sync per step) and are
copied to the host 1024 at a time.

Point ``i`` of a build's path is the parameters after the ``i``-th change since the
build began (point 0: its initial parameters), so a training state knows how long its
path is: ``1 + steps + jumps`` (``length_of``). Undo and rollback cut the path back to
that length; the cut-off points stay until a new point overwrites them, so redo finds
them again. A path of more than ``MAX_POINTS`` points, or whose memory would pass
``MAX_BYTES``, thins its older half (every other point; the first is kept): a drawn path
needs no more, and a long run's memory stays flat. A state this path cannot explain (a
resumed session, whose earlier path is not in its file) starts the path again at its
parameters.

Paths are kept by build (a rebuild has a path of its own; undoing it returns to the old
one) in a registry that forgets a build with the last reference to it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from playground.training.state import TrainState

JUMP_KINDS = ("load_values", "set_values")  # transcript entries that move the parameters
MAX_BYTES = 64 * 2**20  # host memory of one path before its older half is thinned ...
MAX_POINTS = 2**16  # ... or its number of points (1e6 steps of a 2-parameter model
# held whole took 24 MB: a third of the app's growth over such a run)
_DEVICE_CHUNK = 1024  # points staged on the device before one transfer to the host ...
_STAGE_BYTES = 16 * 2**20  # ... fewer where 1024 of them would take more than this


def _chunk_rows(size: int) -> int:
    """Rows of the device staging buffer for points of ``size`` parameters: a 16 MiB
    buffer at most (a 1024x1024 MLP stages 4 points, not 1024 = 4 GiB)."""
    return max(1, min(_DEVICE_CHUNK, _STAGE_BYTES // max(1, 4 * size)))


class ParamPath:
    """One build's parameter path. See the module docstring."""

    def __init__(self, values: Iterable[torch.Tensor], step: int = 0) -> None:
        flat = _flat(values)
        self.size = int(flat.numel())  # parameters per point
        self._values = np.empty((256, self.size), dtype=np.float32)
        self._index = np.empty(256, dtype=np.int64)  # the point's number in the path
        self._step = np.empty(256, dtype=np.int64)  # the step count after it
        self._n = 0  # points in the path now
        self._written = 0  # points held (beyond _n: what redo may find again)
        self._buf: torch.Tensor | None = None  # (rows, size) on the device: staged points
        self._rows: list[torch.Tensor] = []  # its rows, as views
        self._fill = 0  # rows of _buf in use
        self._meta: list[tuple[int, int]] = []  # (index, step) of each staged row
        self._next = 0  # the index of the next point
        self.version = 0  # changes whenever points already handed out change
        self.thinned_below = 0  # points before this index may have been thinned away
        self._append_host(flat.detach().float().cpu().numpy()[None], [(0, step)])

    def __len__(self) -> int:
        """The number of the next point (thinned points count)."""
        return self._next

    def record(self, values: Iterable[torch.Tensor], step: int) -> None:
        """Append the parameters as they are now (a device copy, no host sync)."""
        self.writer(list(values))(step)

    def writer(self, values: list[torch.Tensor]) -> Callable[[int], None]:
        """A fast ``record`` for ``values`` that keep their storage (the parameters,
        updated in place): one ``torch.cat`` into a staged row per point."""
        flat = [v.detach().view(-1) if v.is_contiguous() else None for v in values]
        if any(f is None for f in flat):  # a strided parameter: its values copied first
            return lambda step: self.writer([v.contiguous() for v in values])(step)
        views: list[torch.Tensor] = flat  # type: ignore[assignment]
        buf = self._buf
        if buf is None or buf.device != views[0].device or buf.dtype != views[0].dtype:
            self.flush()  # new, or the session moved to another device
            self._buf = torch.empty(
                (_chunk_rows(self.size), self.size), dtype=views[0].dtype, device=views[0].device
            )
            self._rows = list(self._buf.unbind(0))

        def write(step: int) -> None:
            if self._written > self._n:  # a new future: what redo could find is gone
                self._written = self._n
            if self._fill == len(self._rows):
                self.flush()
            torch.cat(views, out=self._rows[self._fill])
            self._meta.append((self._next, step))
            self._fill += 1
            self._next += 1

        return write

    def flush(self) -> None:
        """Copy the staged points to the host in one transfer."""
        if not self._fill or self._buf is None:
            return
        values = self._buf[: self._fill].float().cpu().numpy()
        meta = self._meta
        self._meta, self._fill = [], 0
        self._append_host(values, meta)

    def _append_host(self, values: np.ndarray, meta: list[tuple[int, int]]) -> None:
        need = self._n + len(values)
        if need > len(self._index):
            grow = max(need, 2 * len(self._index))
            self._values = _grown(self._values, grow, self._n)
            self._index = _grown(self._index, grow, self._n)
            self._step = _grown(self._step, grow, self._n)
        self._values[self._n : need] = values
        m = np.asarray(meta, dtype=np.int64).reshape(-1, 2)
        self._index[self._n : need] = m[:, 0]
        self._step[self._n : need] = m[:, 1]
        self._n = self._written = need
        self._next = int(self._index[need - 1]) + 1
        while (self._n > MAX_POINTS or self._n * self.size * 4 > MAX_BYTES) and self._thin():
            pass

    def _thin(self) -> bool:
        """Every other point of the older half goes (the first point stays); False if
        there was none to drop."""
        half = self._n // 2
        if half < 2:
            return False
        boundary = int(self._index[half])  # from here on every point is still there
        keep = np.ones(self._n, dtype=bool)
        keep[1:half:2] = False
        kept = int(keep.sum())
        for arr in (self._values, self._index, self._step):
            arr[:kept] = arr[: self._n][keep]
        self.thinned_below = max(self.thinned_below, boundary)
        self._n = self._written = kept
        self.version += 1
        return True

    def cut(self, length: int, step: int, values: Iterable[torch.Tensor]) -> None:
        """Back (or forward again) to a state whose path is ``length`` points long and
        whose parameters are ``values`` after ``step`` steps."""
        self.flush()
        held = self._index[: self._written]
        keep = int(np.searchsorted(held, length))
        last = keep - 1
        if last >= 0 and held[last] == length - 1 and self._step[last] == step:
            if keep < self._n:
                self.version += 1
            self._n, self._next = keep, length
            return
        # the last point is missing: thinned away (then it is put back), or a history
        # this path never saw (then the path starts again at this state)
        flat = _flat(values).detach().float().cpu().numpy()[None]
        if last >= 0 and length - 1 < self.thinned_below and self._step[last] <= step:
            self._n = self._written = keep
        else:
            self._n = self._written = 0
            self.thinned_below = length - 1
        self.version += 1
        self._append_host(flat, [(length - 1, step)])

    def points(self, start: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of (index, step, values) of the points from position ``start`` on,
        values (n, size). Positions stay while ``version`` does."""
        self.flush()
        n = self._n
        return (
            self._index[start:n].copy(),
            self._step[start:n].copy(),
            self._values[start:n].copy(),
        )

    @property
    def held(self) -> int:
        """How many points are held now (positions 0 to held - 1)."""
        return self._n + self._fill


def _flat(values: Iterable[torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.detach().reshape(-1) for v in values])


def _grown(a: np.ndarray, size: int, n: int) -> np.ndarray:
    out = np.empty((size, *a.shape[1:]), dtype=a.dtype)
    out[:n] = a[:n]
    return out


# --- the paths of the builds ----------------------------------------------------------

_PATHS: weakref.WeakKeyDictionary[object, ParamPath] = weakref.WeakKeyDictionary()


def start_path(build: object, values: Iterable[torch.Tensor]) -> ParamPath:
    """A new path for ``build``, starting at ``values`` (its initial parameters)."""
    path = _PATHS[build] = ParamPath(values)
    return path


def path_of(build: object, values: Iterable[torch.Tensor] | None = None) -> ParamPath:
    """``build``'s path (started at ``values``, or its parameters now, if it has none)."""
    path = _PATHS.get(build)
    if path is None:
        params = values if values is not None else build.model.params.values()  # type: ignore[attr-defined]
        path = start_path(build, params)
    return path


def length_of(state: TrainState) -> int:
    """How many points the path of ``state`` has: its initial point, one per step, one
    per jump of the parameters."""
    jumps = sum(1 for e in state.transcript if e.kind in JUMP_KINDS)
    return 1 + state.progress.step + jumps


def restore_path(state: TrainState) -> None:
    """Cut the path of ``state``'s build back (or forward) to ``state``."""
    path_of(state.build, state.values.values()).cut(
        length_of(state), state.progress.step, state.values.values()
    )

"""Loss history kept without a host sync per step.

Loss tensors are kept as they are, on the session's device (no ``.item()``); they are
stacked and copied to the host in one transfer when 1024 are waiting or when a snapshot is
taken. Host storage grows by doubling and is never written below its length, so views
handed out in earlier snapshots stay valid and unchanged.

Undo cuts the history back to an earlier length (``Mark``); redo puts the cut part back,
so a mark taken for redo carries that part (``Mark.tail``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

_DEVICE_CHUNK = 1024


class _Column:
    """A growable host array whose published prefix is never modified.

    An integer column starts narrow (int32: step counts and indices of any session shorter
    than 2**31 steps, half the memory of int64) and is widened to int64, once, by the
    first value that does not fit; arrays handed out before keep their own dtype."""

    def __init__(self, dtype: np.dtype | type) -> None:
        self._data = np.empty(256, dtype=dtype)
        self.n = 0

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        if len(values) and self._data.dtype.kind == "i" and values.dtype.kind in "iu":
            info = np.iinfo(self._data.dtype)
            if values.min() < info.min or values.max() > info.max:
                self._data = self._data.astype(np.int64)  # a new array: views keep theirs
        need = self.n + len(values)
        if need > len(self._data):
            grown = np.empty(max(need, 2 * len(self._data)), dtype=self._data.dtype)
            grown[: self.n] = self._data[: self.n]
            self._data = grown
        self._data[self.n : need] = values
        self.n = need

    def truncate(self, n: int) -> None:
        if n < self.n:
            # copy so that views published before the truncation keep their values
            self._data = self._data.copy()
            self.n = n

    def view(self) -> np.ndarray:
        v = self._data[: self.n]
        v.flags.writeable = False
        return v


@dataclass(frozen=True)
class Mark:
    """A recorder's length at one moment; ``tail`` holds the entries from ``length -
    len(tail)`` to ``length`` when they may have been cut since (a redo state)."""

    length: int
    tail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.tail) if self.tail else 0


class Recorder:
    """An append-only series of (loss, step, tag) with the losses staged on the device.

    ``tag`` is the kind of evaluation for batch losses (``KIND_*``) and, for validation
    losses, how many batch losses had been recorded by then (a shared x axis).
    """

    def __init__(self, device: torch.device, tag_dtype: type = np.int8) -> None:
        self.device = device
        self._staged: list[torch.Tensor] = []
        self._staged_meta: list[tuple[int, int]] = []
        self.loss = _Column(np.float32)
        self.step = _Column(np.int32)  # widened to int64 past 2**31 - 1
        self.tag = _Column(tag_dtype)

    def __len__(self) -> int:
        return self.loss.n + len(self._staged_meta)

    def record(self, loss: torch.Tensor, step: int, tag: int) -> None:
        """Stage one loss (a 0-d tensor on the device): no host synchronisation."""
        self._staged.append(loss.detach())
        self._staged_meta.append((step, tag))
        if len(self._staged) == _DEVICE_CHUNK:
            self.flush()

    def flush(self) -> None:
        """Copy staged losses to the host in one transfer."""
        k = len(self._staged_meta)
        if not k:
            return
        self.loss.extend(torch.stack(self._staged).float().cpu().numpy())
        self._staged.clear()
        meta = np.asarray(self._staged_meta, dtype=np.int64)
        self.step.extend(meta[:, 0])
        self.tag.extend(meta[:, 1])
        self._staged_meta.clear()

    def extend(self, loss: np.ndarray, step: np.ndarray, tag: np.ndarray) -> None:
        """Append host arrays (a saved or recovered history)."""
        self.flush()
        self.loss.extend(np.asarray(loss, dtype=np.float32))
        self.step.extend(np.asarray(step))
        self.tag.extend(np.asarray(tag))

    def truncate(self, n: int) -> None:
        self.flush()
        for col in (self.loss, self.step, self.tag):
            col.truncate(n)

    def mark(self, since: int | None = None) -> Mark:
        """This recorder's length; with ``since``, also the entries after index ``since``
        (what an undo back to that length cuts off, for redo)."""
        n = len(self)
        if since is None or since >= n:
            return Mark(n)
        self.flush()
        return Mark(n, tuple(c.view()[since:n].copy() for c in (self.loss, self.step, self.tag)))

    def reset_to(self, mark: Mark) -> None:
        """Back (or forward, with a tail) to ``mark``."""
        if mark.tail is None:
            if mark.length > len(self):
                raise ValueError(f"history has {len(self)} entries, the mark {mark.length}")
            self.truncate(mark.length)
            return
        start = mark.length - len(mark.tail[0])
        self.truncate(start)
        if len(self) != start:
            raise ValueError(f"history has {len(self)} entries, the mark's tail starts at {start}")
        self.extend(*mark.tail)

    def tail(self, start: int) -> np.ndarray:
        """Losses from index ``start`` on (flushes)."""
        self.flush()
        return self.loss.view()[start:]

    def last(self) -> float | None:
        self.flush()
        return float(self.loss.view()[-1]) if self.loss.n else None

    def views(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Read-only (loss, step, tag) arrays of everything recorded (flushes)."""
        self.flush()
        return self.loss.view(), self.step.view(), self.tag.view()

    def to(self, device: torch.device) -> None:
        self.flush()
        self.device = device

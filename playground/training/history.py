"""Loss history kept without a host sync per step.

Loss tensors are kept as they are, on the session's device (no ``.item()``); they are
stacked and copied to the host in one transfer when 1024 are waiting or when a snapshot is
taken. Host storage grows by doubling and is never written below its length,
so views handed out in earlier snapshots stay valid and unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

_DEVICE_CHUNK = 1024


class _Column:
    """A growable host array whose published prefix is never modified."""

    def __init__(self, dtype: np.dtype | type) -> None:
        self._data = np.empty(256, dtype=dtype)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
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


class Recorder:
    """An append-only series of (loss, step, kind) with the losses staged on the device."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._staged: list[torch.Tensor] = []
        self._staged_meta: list[tuple[int, int]] = []
        self.loss = _Column(np.float32)
        self.step = _Column(np.int64)
        self.kind = _Column(np.int8)

    def __len__(self) -> int:
        return self.loss.n + len(self._staged_meta)

    def record(self, loss: torch.Tensor, step: int, kind: int) -> None:
        """Stage one loss (a 0-d tensor on the device): no host synchronisation."""
        self._staged.append(loss.detach())
        self._staged_meta.append((step, kind))
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
        self.kind.extend(meta[:, 1].astype(np.int8))
        self._staged_meta.clear()

    def truncate(self, n: int) -> None:
        self.flush()
        for col in (self.loss, self.step, self.kind):
            col.truncate(n)

    def tail(self, start: int) -> np.ndarray:
        """Losses from index ``start`` on (flushes)."""
        self.flush()
        return self.loss.view()[start:]

    def last(self) -> float | None:
        self.flush()
        return float(self.loss.view()[-1]) if self.loss.n else None

    def to(self, device: torch.device) -> None:
        self.flush()
        self.device = device

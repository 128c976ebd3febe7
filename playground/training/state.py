"""One training state, in one shape, for undo, redo, rollback, save and recovery.

A ``TrainState`` holds copies of everything an action can change: the settings in force,
the counters (``Progress``), parameter values, their ``.grad`` (or None), the last step's
deltas, the optimizer state, the hand-derived gradient, how long the loss histories and
the transcript were, and which ``Build`` (data, model, optimizer) it belongs to. The
session captures one before every action and puts it back on failure (a transaction) or
on undo; the undo and redo stacks hold them with a label; a session file stores them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from playground.training.build import Build
from playground.training.config import TrainConfig
from playground.training.history import Mark
from playground.training.transcript import Entry

UNDO_DEPTH = 128  # levels of undo (and of redo)
UNDO_BYTES = 256 * 2**20  # and at most this much memory for them


@dataclass(frozen=True)
class Progress:
    """The counters of a session. Immutable: an action makes a new one."""

    step: int = 0  # optimizer steps taken
    cursor: int = 0  # the next micro-batch, counted over all epochs
    epochs_done: int = 0  # validation phases done: one each time the loop finishes an epoch
    epoch_mark: int = 0  # cursor // batches-per-epoch at the last epoch end
    samples_trained: int = 0  # samples whose gradient an optimizer step used (epochs x N)
    samples_pending: int = 0  # samples backwarded into .grad since the last step / zero_grad
    backward_total: int = 0
    # backward passes each .grad holds since the last zero_grad (micrograd's `+=` count)
    backwards_since_zero: dict[str, int] = field(default_factory=dict)
    last_batch: int | None = None  # the micro-batch (a cursor value) of the last forward/backward
    # the step count when the oldest gradient in .grad was computed (None: none since the
    # last zero_grad); below ``step``, the next step would use a stale gradient
    grad_step: int | None = None


@dataclass(frozen=True)
class Best:
    """The best state so far by validation loss (seed 003: keep the best state_dict).
    Device tensors, updated on the device at each epoch end (no host sync per epoch)."""

    epoch: torch.Tensor  # 0-d int64: the epoch whose validation phase it was
    val_loss: torch.Tensor  # 0-d
    values: dict[str, torch.Tensor]

    def clone(self) -> Best:
        return Best(
            self.epoch.clone(),
            self.val_loss.clone(),
            {n: t.clone() for n, t in self.values.items()},
        )

    def tensors(self) -> Iterator[torch.Tensor]:
        yield self.epoch
        yield self.val_loss
        yield from self.values.values()

    def to(self, device: torch.device) -> Best:
        return Best(
            self.epoch.to(device),
            self.val_loss.to(device),
            {n: t.to(device) for n, t in self.values.items()},
        )


@dataclass(frozen=True)
class TrainState:
    """Everything an action can change. See the module docstring."""

    build: Build
    config: TrainConfig
    progress: Progress
    values: dict[str, torch.Tensor]
    grads: dict[str, torch.Tensor | None]
    deltas: dict[str, torch.Tensor | None]  # value change made by the last optimizer step
    optimizer: dict[str, Any] | None  # a deep copy of optimizer.state_dict()
    analytic: dict[str, np.ndarray] | None  # closed-form gradient of what .grad holds
    marks: dict[str, Mark]  # how long each of the build's series was
    transcript: tuple[Entry, ...]
    best: Best | None = None

    @property
    def nbytes(self) -> int:
        """Memory held by this state itself (its build's data is shared, counted apart)."""
        return sum(_tensor_bytes(t) for t in self.tensors()) + sum(
            m.nbytes for m in self.marks.values()
        )

    def tensors(self) -> Iterator[torch.Tensor]:
        for group in (self.values, self.grads, self.deltas):
            yield from (t for t in group.values() if t is not None)
        if self.best is not None:
            yield from self.best.tensors()
        if self.optimizer is not None:
            for st in self.optimizer["state"].values():
                yield from (v for v in st.values() if isinstance(v, torch.Tensor))

    def to(self, device: torch.device) -> TrainState:
        """This state with its tensors on ``device``."""

        def mv(d: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
            return {n: t.to(device) if t is not None else None for n, t in d.items()}

        opt = self.optimizer
        if opt is not None:
            opt = {
                **opt,
                "state": {
                    i: {
                        k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in st.items()
                    }
                    for i, st in opt["state"].items()
                },
            }
        return replace(
            self,
            values=mv(self.values),  # type: ignore[arg-type]
            grads=mv(self.grads),
            deltas=mv(self.deltas),
            optimizer=opt,
            best=None if self.best is None else self.best.to(device),
        )


def _tensor_bytes(t: torch.Tensor) -> int:
    return t.element_size() * t.nelement()


@dataclass(frozen=True)
class UndoEntry:
    """A state to go back to, and what the user did after it (``label``: "step",
    "3000 train steps", "set lr"); ``note`` is said when the entry is used."""

    label: str
    state: TrainState
    note: str = ""


class UndoStack:
    """Undo (or redo) entries, newest last, bounded by depth and by bytes: the oldest go
    first. The newest entry is always kept, however large."""

    def __init__(self, depth: int = UNDO_DEPTH, max_bytes: int = UNDO_BYTES) -> None:
        self.depth = depth
        self.max_bytes = max_bytes
        self._entries: deque[UndoEntry] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[UndoEntry]:
        return iter(self._entries)

    @property
    def nbytes(self) -> int:
        """The states' own memory plus, once each, the data of every build they refer to."""
        builds = {id(e.state.build): e.state.build for e in self._entries}
        return self._bytes + sum(b.data_nbytes for b in builds.values())

    def push(self, entry: UndoEntry) -> None:
        self._entries.append(entry)
        self._bytes += entry.state.nbytes
        while len(self._entries) > 1 and (
            len(self._entries) > self.depth or self.nbytes > self.max_bytes
        ):
            self._bytes -= self._entries.popleft().state.nbytes

    def pop(self) -> UndoEntry | None:
        if not self._entries:
            return None
        entry = self._entries.pop()
        self._bytes -= entry.state.nbytes
        return entry

    def peek(self) -> UndoEntry | None:
        return self._entries[-1] if self._entries else None

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def saved(self) -> tuple[tuple[UndoEntry, ...], int]:
        """The entries as they are now, for ``put_back`` (a rolled-back transaction)."""
        return tuple(self._entries), self._bytes

    def put_back(self, saved: tuple[tuple[UndoEntry, ...], int]) -> None:
        self._entries, self._bytes = deque(saved[0]), saved[1]

    def map(self, fn: Callable[[UndoEntry], UndoEntry]) -> None:
        """Replace every entry by ``fn(entry)`` (all or nothing: a failure changes none)."""
        moved = [fn(e) for e in self._entries]
        self._entries = deque(moved)
        self._bytes = sum(e.state.nbytes for e in moved)


def copy_optimizer_state(obj: Any) -> Any:
    """A copy of an optimizer's state dict: its tensors cloned, its dicts, lists and
    tuples rebuilt, the rest (numbers, strings, None) kept. What ``copy.deepcopy`` gives
    for these, in a tenth of the time (a run takes one at every slice). Load a copy:
    ``load_state_dict`` may keep the very tensors it is given, and the optimizer updates
    its state in place."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: copy_optimizer_state(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [copy_optimizer_state(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(copy_optimizer_state(v) for v in obj)
    return obj

"""Checkpoints of a session's training state, for undo and for replaying a run chunk.

A checkpoint holds copies of everything an action can change - parameter values, their
``.grad`` (or None), backward counts, last deltas, optimizer state, step and batch
counters, and how long the loss history and the transcript were - but not the settings:
undo never changes what the user chose (lr, K, ...).
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from playground.training.history import Recorder
    from playground.training.session import Session
    from playground.training.transcript import Entry, Transcript


@dataclass(frozen=True)
class Checkpoint:
    values: dict[str, torch.Tensor]
    grads: dict[str, torch.Tensor | None]
    counts: dict[str, int]
    deltas: dict[str, torch.Tensor | None]
    optimizer: dict[str, Any] | None
    step_count: int
    cursor: int
    samples_seen: int
    backward_total: int
    analytic_acc: dict[str, np.ndarray] | None
    history: tuple[Recorder, int, Recorder, int, list[int], int]
    transcript: tuple[Transcript, list[Entry]]
    hyper: dict[str, Any]
    status: tuple[str, str, int | None, float | None]
    build: tuple[Any, ...]  # model, data and optimizer objects (differ after a reset)
    undo: tuple[Any, ...] = ()  # the undo stack as it was (restoring it makes rollback exact)


def _clone(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().clone()


def take(s: Session) -> Checkpoint:
    params = s.model.params
    return Checkpoint(
        values={n: p.detach().clone() for n, p in params.items()},
        grads={n: _clone(p.grad) for n, p in params.items()},
        counts=dict(s.counts),
        deltas=dict(s.deltas),  # deltas are never modified in place, only replaced
        optimizer=copy.deepcopy(s.optimizer.state_dict()) if s.optimizer is not None else None,
        step_count=s.step_count,
        cursor=s.cursor,
        samples_seen=s.samples_seen,
        backward_total=s.backward_total,
        analytic_acc=s.analytic_acc,
        history=(
            s.history,
            len(s.history),
            s.val_history,
            len(s.val_history),
            s.val_index,
            len(s.val_index),
        ),
        transcript=(s.transcript, list(s.transcript.entries)),
        hyper=_hyper(s),
        status=(s.status, s.message, s.diverged_at, s.last_loss),
        build=(s.model, s.optimizer, s.dataset, s.x, s.y, s.val),
        undo=tuple(s._undo),
    )


def _hyper(s: Session) -> dict[str, Any]:
    return {
        k: getattr(s.cfg, k)
        for k in ("lr", "momentum", "nesterov", "weight_decay", "betas", "accumulate", "batch_size")
    }


def restore(s: Session, c: Checkpoint) -> None:
    """Put the session back to checkpoint ``c``; the current settings stay in force."""
    s.model, s.optimizer, s.dataset, s.x, s.y, s.val = c.build
    s._undo = deque(c.undo, maxlen=s._undo.maxlen)
    with torch.no_grad():
        for n, p in s.model.params.items():
            p.copy_(c.values[n])
            p.grad = _clone(c.grads[n])
    if s.optimizer is not None and c.optimizer is not None:
        s.optimizer.load_state_dict(copy.deepcopy(c.optimizer))
    s.counts = dict(c.counts)
    s.deltas = dict(c.deltas)
    s.step_count, s.cursor = c.step_count, c.cursor
    s.samples_seen, s.backward_total = c.samples_seen, c.backward_total
    s.analytic_acc = c.analytic_acc
    hist, n_hist, val_hist, n_val, val_index, n_val_index = c.history
    s.history, s.val_history, s.val_index = hist, val_hist, val_index
    hist.truncate(n_hist)
    val_hist.truncate(n_val)
    del val_index[n_val_index:]
    s.transcript = c.transcript[0]
    s.transcript.entries[:] = c.transcript[1]
    s.status, s.message, s.diverged_at, s.last_loss = c.status
    # settings are the user's: re-apply the ones in force now and say so in the transcript
    now = _hyper(s)
    if now != c.hyper:
        s.cfg, live = _swap(s, c.hyper), now
        s.configure(**{k: v for k, v in live.items() if c.hyper.get(k) != v})


def _swap(s: Session, hyper: dict[str, Any]):
    from dataclasses import replace

    return replace(s.cfg, **hyper)

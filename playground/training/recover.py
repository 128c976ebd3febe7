"""Carrying on after the device is gone: a session rebuilt from its last snapshot.

When CUDA runs out of memory the session can usually move to the CPU as it is
(``Session.move_to``). When the device is lost, its tensors cannot even be read; the last
snapshot - plain numpy, already on the host - still holds the parameters, gradients,
optimizer state, counters, loss history and code, and is enough to continue: it becomes
a ``TrainState`` of a new session on the CPU (the undo stack stays behind on the device).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from playground.training.config import TrainConfig
from playground.training.history import Mark
from playground.training.presets import Preset
from playground.training.session import Session
from playground.training.snapshot import Snapshot
from playground.training.state import Best, TrainState
from playground.training.transcript import Entry

DEVICE_ERRORS = ("CUDA", "cuda", "out of memory", "device-side assert", "MPS", "cuDNN", "CUBLAS")


def is_device_error(exc: BaseException) -> bool:
    """An error that says the accelerator failed, rather than the user's input."""
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and any(k in str(exc) for k in DEVICE_ERRORS)


def session_from_snapshot(
    preset: Preset, config: TrainConfig, snap: Snapshot, device: str = "cpu"
) -> Session:
    """A new session on ``device`` in the state ``snap`` shows (``config``: its settings)."""
    s = Session(preset, config=config.with_overrides(device=device))
    params = s.model.params

    def host(a: np.ndarray | None, like: torch.Tensor) -> torch.Tensor | None:
        return None if a is None else torch.tensor(np.array(a), dtype=like.dtype, device=s.device)

    optimizer = None
    if s.optimizer is not None:
        index = {name: i for i, name in enumerate(params)}
        sd = s.optimizer.state_dict()
        sd["state"] = {
            index[name]: {
                key: torch.tensor(np.array(value), dtype=torch.float32)
                for key, value in entry.items()
            }
            for name, entry in snap.optimizer.state.items()
        }
        optimizer = sd
    h = snap.history
    s.history.extend(h.loss, h.step, h.kind)
    s.val_history.extend(h.val_loss, h.val_step, h.val_index)
    if len(h.val_accuracy):
        s.build.series["val_acc"].extend(
            h.val_accuracy, h.val_step, np.arange(1, len(h.val_step) + 1)
        )
    entries = (
        *snap.transcript,
        Entry(
            f"moved to {device}",
            "note",
            (("text", f"the session continued on {device} after a device failure"),),
            s._ctx(),
        ),
    )
    samples = int(round(snap.epoch * s.build.n_train))
    last = None if snap.batch is None else snap.batch[0] - 1
    state = TrainState(
        build=s.build,
        config=s.cfg,
        progress=replace(
            s.progress,
            step=snap.step,
            cursor=snap.cursor,
            samples_trained=samples,
            backward_total=snap.backward_total,
            epochs_done=snap.epochs_done,
            epoch_mark=snap.cursor // s.n_batches,
            backwards_since_zero={v.name: v.backwards_since_zero for v in snap.params},
            last_batch=last,
        ),
        values={v.name: host(v.value, params[v.name]) for v in snap.params},  # type: ignore[misc]
        grads={v.name: host(v.grad, params[v.name]) for v in snap.params},
        deltas={v.name: host(v.last_delta, params[v.name]) for v in snap.params},
        optimizer=optimizer,
        analytic={v.name: v.analytic_grad for v in snap.params if v.analytic_grad is not None}
        or None,
        marks={name: Mark(len(recorder)) for name, recorder in s.build.series.items()},
        transcript=entries,
        best=None
        if snap.best is None
        else Best(
            torch.tensor(snap.best.epoch, device=s.device),
            torch.tensor(snap.best.val_loss, device=s.device),
            {n: host(v, params[n]) for n, v in snap.best.values.items()},  # type: ignore[misc]
        ),
    )
    s.restore(state)
    return s

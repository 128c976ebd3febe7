"""Carrying on after the device is gone: a session rebuilt from its last snapshot.

When CUDA runs out of memory the session can usually move to the CPU as it is
(``Session.move_to``). When the device is lost, its tensors cannot even be read; the last
snapshot - plain numpy, already on the host - still holds the parameters, gradients,
optimizer state, counters and loss history, and is enough to continue.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from playground.training.snapshot import Snapshot
from playground.training.transcript import Entry

DEVICE_ERRORS = ("CUDA", "cuda", "out of memory", "device-side assert", "MPS", "cuDNN", "CUBLAS")


def is_device_error(exc: BaseException) -> bool:
    """An error that says the accelerator failed, rather than the user's input."""
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and any(k in str(exc) for k in DEVICE_ERRORS)


def session_from_snapshot(session: Any, snap: Snapshot, device: str = "cpu") -> Any:
    """A new session on ``device`` with the state shown in ``snap`` (settings of ``session``)."""
    from playground.training.session import Session

    s = Session(session.preset, config=session.cfg.with_overrides(device=device))
    params = s.model.params
    with torch.no_grad():
        for view in snap.params:
            p = params[view.name]
            p.copy_(torch.tensor(np.array(view.value), dtype=p.dtype))
            p.grad = (
                None if view.grad is None else torch.as_tensor(np.array(view.grad), dtype=p.dtype)
            )
    if s.optimizer is not None and snap.optimizer.state:
        index = {name: i for i, name in enumerate(params)}
        state = {}
        for name, entry in snap.optimizer.state.items():
            st = {}
            for key, value in entry.items():
                st[key] = torch.tensor(np.array(value), dtype=torch.float32)
            state[index[name]] = st
        sd = s.optimizer.state_dict()
        sd["state"] = state
        s.optimizer.load_state_dict(sd)
    s.counts = {v.name: v.backward_count for v in snap.params}
    s.step_count = snap.step
    s.samples_seen = int(round(snap.epoch * len(s.x)))
    s.cursor = session.cursor if isinstance(getattr(session, "cursor", None), int) else 0
    s.backward_total = snap.backward_total
    h = snap.history
    s.history.loss.extend(h.loss)
    s.history.step.extend(h.step)
    s.history.kind.extend(h.kind)
    s.val_history.loss.extend(h.val_loss)
    s.val_history.step.extend(h.val_step)
    s.val_history.kind.extend(np.zeros(len(h.val_loss), dtype=np.int8))
    s.val_index[:] = [int(i) for i in h.val_index]
    s.transcript.entries[:] = [_entry(line) for line in snap.log]
    s.transcript.add(
        f"moved to {device}", f"# the session continued on {device} after a device failure"
    )
    s.last_loss = snap.last_loss
    s.message = f"continued on {device} from the last snapshot (step {snap.step})"
    return s


def _entry(line: str) -> Entry:
    head, _, code = line.partition("\n")
    return Entry(head.removeprefix("# "), code)

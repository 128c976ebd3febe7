"""Training throughput: the session's run mode against a bare PyTorch loop.

Both sides train the same preset, model, batch size and device with the same torch thread
count; they alternate in several rounds so that machine noise hits both alike, and the
ratio of the medians is reported.
"""

from __future__ import annotations

import statistics
import time

import torch

from playground.training.build import make_optimizer
from playground.training.models import compute_loss
from playground.training.presets import find_preset
from playground.training.session import Session


def student_optimizer(session: Session) -> torch.optim.Optimizer | None:
    """The optimizer as the course writes it: ``torch.optim.SGD(params, lr=...)`` with
    torch's defaults (the session's own runs multi-tensor updates: ``foreach=True``)."""
    return make_optimizer(session.model, session.cfg, foreach=None)


def bare_loop(session: Session, steps: int) -> float:
    """steps/s of ``zero_grad(); loss = loss_fn(model(xb), yb); loss.backward(); step()``
    on the session's own model, data and optimizer (by-hand GD written out likewise).
    Where the preset has a validation set, each epoch ends with the course's evaluation
    phase (seed 004: ``with torch.no_grad(): loss_val = loss_fn(model(X_val), y_val)``,
    its ``.item()`` kept), as the session's run does."""
    model, x, y = session.model, session.x, session.y
    opt = student_optimizer(session)
    val = session.build.val
    val_losses: list[float] = []
    params = list(model.params.values())
    b, nb, loss_name, lr = session.batch_size, session.n_batches, session.cfg.loss, session.cfg.lr
    sync = session.device.type == "cuda"
    if sync:
        torch.cuda.synchronize()
    t = time.perf_counter()
    for c in range(steps):
        if nb == 1:
            xb, yb = x, y
        else:
            j = c % nb
            xb, yb = x[j * b : (j + 1) * b], y[j * b : (j + 1) * b]
        if opt is not None:
            opt.zero_grad()
        else:
            for p in params:
                p.grad = None
        loss = compute_loss(loss_name, model(xb), yb)
        loss.backward()
        if opt is not None:
            opt.step()
        else:
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad
        if val is not None and (c + 1) % nb == 0:
            with torch.no_grad():
                val_losses.append(compute_loss(loss_name, model(val[0]), val[1]).item())
    if sync:
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t)


def session_run(session: Session, steps: int) -> float:
    """steps/s of ``Session.run`` (chunked loss checks, history kept, undo point taken)."""
    sync = session.device.type == "cuda"
    if sync:
        torch.cuda.synchronize()
    t = time.perf_counter()
    session.run(steps)
    session.history.flush()  # the run's losses reach the host: part of the cost
    if sync:
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t)


def compare(preset: str, device: str, steps: int, rounds: int = 5) -> dict[str, float]:
    """Median steps/s of the session and of the bare loop, alternating."""
    a = Session(find_preset(preset), device=device)
    b = Session(find_preset(preset), device=device)
    session_run(a, min(steps, 200))  # warm-up: allocator, kernels, lazy init
    bare_loop(b, min(steps, 200))
    ours, bare = [], []
    for _ in range(rounds):
        ours.append(session_run(a, steps))
        bare.append(bare_loop(b, steps))
    o, r = statistics.median(ours), statistics.median(bare)
    return {"session": o, "bare": r, "ratio": o / r}

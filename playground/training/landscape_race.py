"""The optimizer race: where GD, SGD with momentum and Adam would take the parameters
from the current point, each for N train steps, on copies.

Each racer is a train step as the session does it - zero_grad, K x (forward on the
session's next micro-batch + backward of loss / K), step - on its own clones of the
parameters with a fresh optimizer of its own, so the session's parameters, gradients,
optimizer state, counters and histories are never touched. The session's lr, and its
momentum, betas and weight decay where it has them, are the racers' settings; a session
without momentum races SGD with momentum 0.9. GD is the session's own update when the
session does plain gradient descent (by hand, or SGD without momentum), so its path is
what N presses of ``n`` would give.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from playground.training.flat_params import forward, loss_at
from playground.training.models import compute_loss

if TYPE_CHECKING:
    from playground.training.session import Session

DEFAULT_MOMENTUM = 0.9  # when the session has none


@dataclass(frozen=True)
class RaceRun:
    """One racer's path: the flat parameters before and after each of its steps."""

    name: str  # "gd", "momentum", "adam"
    label: str
    values: np.ndarray  # (steps + 1, P) float64, the current point first
    final_loss: float  # the training loss where it ended


MakeOpt = Callable[[list[torch.Tensor]], torch.optim.Optimizer | None]


def racers(session: Session) -> list[tuple[str, str, MakeOpt]]:
    """(name, label, optimizer maker) of each racer; None as optimizer: by hand."""
    cfg = session.cfg
    lr, wd = cfg.lr, cfg.weight_decay
    plain_sgd = cfg.optimizer == "sgd" and cfg.momentum == 0
    momentum = cfg.momentum if cfg.momentum > 0 else DEFAULT_MOMENTUM
    nesterov = cfg.nesterov and cfg.momentum > 0

    def gd(params: list[torch.Tensor]) -> torch.optim.Optimizer | None:
        return torch.optim.SGD(params, lr=lr, weight_decay=wd) if plain_sgd else None

    return [
        ("gd", f"GD lr {lr:g}", gd),
        (
            "momentum",
            f"SGD lr {lr:g} momentum {momentum:g}",
            lambda ps: torch.optim.SGD(
                ps, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd
            ),
        ),
        (
            "adam",
            f"Adam lr {lr:g}",
            lambda ps: torch.optim.Adam(ps, lr=lr, betas=cfg.betas, weight_decay=wd),
        ),
    ]


def race(session: Session, steps: int) -> list[RaceRun]:
    """Every racer's ``steps`` train steps from the session's current point."""
    return [run_racer(session, steps, name, label, make) for name, label, make in racers(session)]


def run_racer(session: Session, steps: int, name: str, label: str, make: MakeOpt) -> RaceRun:
    model, cfg = session.model, session.cfg
    params = {n: p.detach().clone().requires_grad_(True) for n, p in model.params.items()}
    leaves = list(params.values())
    opt = make(leaves)
    k = cfg.accumulate
    scale = k if k > 1 and cfg.scale_loss else 1
    cursor = session.progress.cursor
    out = [torch.cat([p.detach().reshape(-1) for p in leaves])]
    for _ in range(steps):
        for p in leaves:
            p.grad = None
        for _ in range(k):
            xb, yb = session._batch(cursor)  # the micro-batches the session would take
            cursor += 1
            loss = compute_loss(cfg.loss, forward(model, params, xb), yb)
            (loss / scale if scale != 1 else loss).backward()
        if opt is not None:
            opt.step()
        else:
            with torch.no_grad():
                for p in leaves:
                    if p.grad is not None:
                        p -= cfg.lr * p.grad
        flat = torch.cat([p.detach().reshape(-1) for p in leaves])
        out.append(flat)
        if not bool(torch.isfinite(flat).all()):
            break  # diverged: the rest of its path is not drawable
    values = torch.stack(out).double().cpu().numpy()
    return RaceRun(name, label, values, loss_at(session, torch.as_tensor(values[-1])))

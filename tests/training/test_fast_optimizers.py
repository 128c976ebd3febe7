"""The session's optimizers run torch's multi-tensor (foreach) updates; the parameters
are exactly those of the loop a student writes with the default optimizer."""

from __future__ import annotations

import pytest
import torch

from playground.training.models import compute_loss
from playground.training.presets import find_preset
from playground.training.session import Session


def student_loop(session: Session, steps: int) -> list[torch.Tensor]:
    """The preset's training from the same start with ``torch.optim.<Name>(params, ...)``
    as written in the course (no foreach argument), mini-batches in order."""
    params = list(session.model.params.values())  # a session never run: its start
    cfg = session.cfg
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )  # fmt: skip
    model = session.model
    b, nb = session.batch_size, session.n_batches
    x, y = session.x, session.y
    for c in range(steps):
        j = c % nb
        xb, yb = (x, y) if nb == 1 else (x[j * b : (j + 1) * b], y[j * b : (j + 1) * b])
        opt.zero_grad()
        compute_loss(cfg.loss, model(xb), yb).backward()
        opt.step()
    return params


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [
        ("xor", {}),  # Adam on an MLP, mini-batches
        ("spiral", {}),
        ("noisy-line", {}),  # SGD
        ("noisy-line", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
        ("xor", {"weight_decay": 0.001}),
    ],
    ids=["xor-adam", "spiral", "noisy-line-sgd", "sgd-nesterov-decay", "adam-decay"],
)
def test_a_run_equals_the_default_optimizer_loop_bit_for_bit(preset, overrides) -> None:
    session = Session(find_preset(preset), device="cpu", shuffle=False, **overrides)
    start = Session(find_preset(preset), device="cpu", shuffle=False, **overrides)
    assert all(g.get("foreach") for g in session.optimizer.param_groups)
    want = student_loop(start, 300)
    session.run(300)
    for p, q in zip(session.model.params.values(), want, strict=True):
        assert torch.equal(p.detach(), q.detach())

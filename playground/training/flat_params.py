"""The parameters of a model as one flat vector, and the model evaluated at any such
vector without touching its own parameters (``torch.func.functional_call``): what the
loss landscape and the optimizer race compute with."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.func import functional_call

from playground.training.models import Model, compute_loss

if TYPE_CHECKING:
    from playground.training.session import Session


def entries_of(model: Model) -> tuple[str, ...]:
    """A name for each number in the parameters, in their flat order: ``w``, ``b`` for
    one-number parameters, ``weight[0,1]``, ``0.bias[3]`` for the others."""
    out: list[str] = []
    for name, p in model.params.items():
        if p.numel() == 1:
            out.append(name)
            continue
        for index in np.ndindex(*p.shape):
            out.append(f"{name}[{','.join(str(i) for i in index)}]")
    return tuple(out)


def flat_values(model: Model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.params.values()])


def unflatten(model: Model, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """(..., P) -> each parameter shaped (..., *its shape)."""
    out, at = {}, 0
    lead = flat.shape[:-1]
    for name, p in model.params.items():
        n = p.numel()
        out[name] = flat[..., at : at + n].reshape(*lead, *p.shape)
        at += n
    return out


def forward(model: Model, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The model's output at ``params`` (the by-hand w, b model or its module)."""
    if model.module is None:
        return x @ params["w"] + params["b"]
    out = functional_call(model.module, params, (x,))
    return out.squeeze(-1) if model.n_outputs == 1 else out


def loss_at(session: Session, flat: torch.Tensor) -> float:
    """The training loss at the flat parameters ``flat``."""
    model = session.model
    with torch.no_grad():
        params = unflatten(model, flat.to(session.device, torch.float32))
        return float(compute_loss(session.cfg.loss, forward(model, params, session.x), session.y))

"""Building a ``Snapshot`` from a live session: the one place tensors become plain data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from playground.engine import analytic
from playground.engine.devices import describe
from playground.engine.models import predict_labels
from playground.engine.snapshot import LossHistory, OptimizerView, ParamView, Snapshot

if TYPE_CHECKING:
    from playground.engine.session import Session


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    if t is None:
        return None
    a = t.detach().to("cpu", copy=True).numpy()
    a.flags.writeable = False
    return a


def _metrics(s: Session, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
    from playground.engine.models import compute_loss

    with torch.no_grad():
        out = s.model(x)
        loss = float(compute_loss(s.cfg.loss, out, y).item())
        acc = None
        if s.dataset.task == "classification":
            acc = float((predict_labels(s.cfg.loss, out) == y).float().mean().item())
    return loss, acc


def optimizer_view(s: Session) -> OptimizerView:
    cfg = s.cfg
    if s.optimizer is None:
        return OptimizerView("gd (by hand: p -= lr * p.grad)", {"lr": cfg.lr})
    hyper = {k: v for k, v in s.optimizer.param_groups[0].items()
             if isinstance(v, (int, float, bool)) and k in (
                 "lr", "momentum", "nesterov", "weight_decay", "dampening", "eps")}
    if "betas" in s.optimizer.param_groups[0]:
        b1, b2 = s.optimizer.param_groups[0]["betas"]
        hyper.update(beta1=b1, beta2=b2)
    names = {id(p): n for n, p in s.model.params.items()}
    state: dict[str, dict[str, np.ndarray | float]] = {}
    for p, st in s.optimizer.state.items():
        entry: dict[str, np.ndarray | float] = {}
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                entry[key] = float(value.item()) if value.dim() == 0 else _np(value)
            elif isinstance(value, (int, float)):
                entry[key] = float(value)
        state[names.get(id(p), "?")] = entry
    name = type(s.optimizer).__name__
    return OptimizerView(f"torch.optim.{name}", hyper, state)


def true_and_closed_form(s: Session) -> tuple[dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]:
    kind = s.model.kind
    if kind not in ("scalar", "linear", "logistic"):
        return None, None
    truth = None
    tp = s.dataset.true_params
    if tp is not None and s.model.n_outputs == 1:
        try:
            truth = analytic.as_model_params(kind, tp["w"], tp["b"])
        except ValueError:
            truth = None
    closed = None
    if s.dataset.task == "regression" and s.cfg.loss in ("mse", "sse"):
        w, b = analytic.least_squares(s.dataset.train.x.numpy(), s.dataset.train.y.numpy())
        closed = analytic.as_model_params(kind, w, b)
    return truth, closed


def build_snapshot(s: Session) -> Snapshot:
    s.history.flush()
    s.val_history.flush()
    params = []
    for n, p in s.model.params.items():
        params.append(ParamView(
            name=n,
            shape=tuple(p.shape),
            value=_np(p),
            grad=_np(p.grad),
            backward_count=s.counts[n],
            last_delta=_np(s.deltas[n]),
            analytic_grad=(s.analytic_acc or {}).get(n) if s.model.is_linear else None,
        ))
    train_loss, acc = _metrics(s, s.x, s.y)
    val_loss = val_acc = None
    if s.val is not None:
        val_loss, val_acc = _metrics(s, *s.val)
    if s._closed is None:
        s._closed = true_and_closed_form(s)
    truth, closed = s._closed
    history = LossHistory(
        loss=s.history.loss.view(),
        step=s.history.step.view(),
        kind=s.history.kind.view(),
        val_loss=s.val_history.loss.view(),
        val_step=s.val_history.step.view(),
        val_index=np.asarray(s.val_index, dtype=np.int64),
    )
    return Snapshot(
        preset=s.preset.name,
        title=s.preset.title,
        task=s.dataset.task,
        device=describe(s.device),
        model=s.model.kind,
        loss_name=s.cfg.loss,
        lr=s.cfg.lr,
        batch_size=s.cfg.batch_size,
        accumulate=s.cfg.accumulate,
        seed=s.cfg.seed,
        step=s.step_count,
        epoch=s.samples_seen / len(s.x),
        backward_total=s.backward_total,
        status=s.status,
        message=s.message,
        params=tuple(params),
        optimizer=optimizer_view(s),
        last_loss=s.last_loss,
        train_loss=train_loss,
        val_loss=val_loss,
        accuracy=acc,
        val_accuracy=val_acc,
        history=history,
        true_params=truth,
        closed_form=closed,
        log=s.transcript.lines(),
        undo_depth=s.undo_depth,
        diverged_at=s.diverged_at,
    )

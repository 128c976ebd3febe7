"""Building a ``Snapshot`` from a live session: the one place tensors become plain data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from playground.engine import analytic
from playground.engine.devices import describe
from playground.engine.models import predict_labels
from playground.engine.snapshot import FitView, LossHistory, OptimizerView, ParamView, Snapshot

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
    hyper = {
        k: v
        for k, v in s.optimizer.param_groups[0].items()
        if isinstance(v, (int, float, bool))
        and k in ("lr", "momentum", "nesterov", "weight_decay", "dampening", "eps")
    }
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


def true_and_closed_form(
    s: Session,
) -> tuple[dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]:
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


GRID = (48, 24)  # decision-boundary lattice (columns, rows)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _data_arrays(s: Session) -> dict[str, np.ndarray | None]:
    """Static per build: the data as numpy, and the lattice / sample points to evaluate."""
    ds = s.dataset
    x, y = _readonly(ds.train.x.numpy().copy()), _readonly(ds.train.y.numpy().copy())
    out: dict[str, np.ndarray | None] = {"x": x, "y": y, "val_x": None, "val_y": None}
    if ds.val is not None:
        out["val_x"] = _readonly(ds.val.x.numpy().copy())
        out["val_y"] = _readonly(ds.val.y.numpy().copy())
    d = x.shape[1]
    if d == 1 and ds.task == "regression":
        lo, hi = float(x.min()), float(x.max())
        pad = 0.05 * (hi - lo or 1.0)
        out["line_x"] = _readonly(np.linspace(lo - pad, hi + pad, 64, dtype=np.float32))
    elif d == 2 and ds.task == "classification":
        pad = 0.1 * (x.max(axis=0) - x.min(axis=0) + 1e-6)
        lo, hi = x.min(axis=0) - pad, x.max(axis=0) + pad
        out["grid_x"] = _readonly(np.linspace(lo[0], hi[0], GRID[0], dtype=np.float32))
        out["grid_y"] = _readonly(np.linspace(lo[1], hi[1], GRID[1], dtype=np.float32))
    return out


def _prob(s: Session, out: torch.Tensor) -> torch.Tensor:
    if s.cfg.loss == "ce":
        return torch.softmax(out, dim=-1)[:, 1]
    return torch.sigmoid(out)


def fit_view(s: Session, truth, closed) -> FitView:
    if s._data_np is None:
        s._data_np = _data_arrays(s)
    a = s._data_np
    classify = s.dataset.task == "classification"
    with torch.no_grad():
        out = s.model(s.x)
        pred = _prob(s, out) if classify else out
        extra: dict[str, np.ndarray | None] = {}
        if a.get("line_x") is not None:
            lx = a["line_x"]
            extra["line_x"] = lx
            extra["line_y"] = _np(s.model(torch.tensor(lx).reshape(-1, 1).to(s.device)))
            for key, params in (("true_y", truth), ("closed_y", closed)):
                if params is not None:
                    w, b = (np.asarray(v, dtype=np.float64).reshape(-1) for v in params.values())
                    extra[key] = _readonly((lx * w[0] + b[0]).astype(np.float32))
        if a.get("grid_x") is not None:
            gx, gy = np.meshgrid(a["grid_x"], a["grid_y"])
            pts = torch.tensor(np.stack([gx.ravel(), gy.ravel()], axis=1)).to(s.device)
            extra["grid_x"], extra["grid_y"] = a["grid_x"], a["grid_y"]
            extra["grid_p"] = _readonly(_np(_prob(s, s.model(pts))).reshape(gx.shape))
    return FitView(x=a["x"], y=a["y"], pred=_np(pred), val_x=a["val_x"], val_y=a["val_y"], **extra)


def build_snapshot(s: Session) -> Snapshot:
    s.history.flush()
    s.val_history.flush()
    params = []
    for n, p in s.model.params.items():
        params.append(
            ParamView(
                name=n,
                shape=tuple(p.shape),
                value=_np(p),
                grad=_np(p.grad),
                backward_count=s.counts[n],
                last_delta=_np(s.deltas[n]),
                analytic_grad=(s.analytic_acc or {}).get(n) if s.model.is_linear else None,
            )
        )
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
        fit=fit_view(s, truth, closed),
        description=s.preset.description,
    )

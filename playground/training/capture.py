"""Building a ``Snapshot`` from a live session: the one place tensors become plain data.

Everything a snapshot needs from the device - parameters, gradients, deltas, optimizer
state, losses, accuracies, the model's predictions for the fit panel - is gathered first
and copied to the host in one transfer per dtype: on a GPU each separate ``.cpu()`` or
``.item()`` would be a synchronisation of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from playground.training import analytic
from playground.training.devices import describe
from playground.training.models import compute_loss, predict_labels
from playground.training.snapshot import FitView, LossHistory, OptimizerView, ParamView, Snapshot

if TYPE_CHECKING:
    from playground.training.session import Session


class _Host:
    """Collects device tensors, then copies them to the host in one transfer per dtype.

    ``add`` returns a getter that yields the host array (read-only) once ``fetch`` ran.
    """

    def __init__(self) -> None:
        self._items: list[tuple[torch.Tensor, tuple[int, ...]]] = []
        self._out: list[np.ndarray] = []

    def add(self, t: torch.Tensor | None) -> Callable[[], np.ndarray | None]:
        if t is None:
            return lambda: None
        i = len(self._items)
        self._items.append((t.detach(), tuple(t.shape)))
        return lambda: self._out[i]

    def fetch(self) -> None:
        by_dtype: dict[tuple[torch.dtype, torch.device], list[int]] = {}
        for i, (t, _) in enumerate(self._items):
            by_dtype.setdefault((t.dtype, t.device), []).append(i)
        out: list[np.ndarray | None] = [None] * len(self._items)
        for idx in by_dtype.values():
            flat = torch.cat([self._items[i][0].reshape(-1) for i in idx]).cpu().numpy()
            offset = 0
            for i in idx:
                shape = self._items[i][1]
                n = int(np.prod(shape, dtype=np.int64))
                a = flat[offset : offset + n].reshape(shape)
                a.flags.writeable = False
                out[i] = a
                offset += n
        self._out = out  # type: ignore[assignment]


def _scalar(get: Callable[[], np.ndarray | None]) -> float | None:
    a = get()
    return None if a is None else float(a)


def _metrics(s: Session, host: _Host, x: torch.Tensor, y: torch.Tensor) -> tuple[Any, Any]:
    """Loss and (for classifiers) accuracy on a whole split, left on the device."""
    with torch.no_grad():
        out = s.model(x)
        loss = host.add(compute_loss(s.cfg.loss, out, y).float())
        acc = None
        if s.dataset.task == "classification":
            acc = host.add((predict_labels(s.cfg.loss, out) == y).float().mean())
    return loss, acc


def optimizer_view(s: Session, host: _Host) -> Callable[[], OptimizerView]:
    cfg = s.cfg
    if s.optimizer is None:
        view = OptimizerView("gd (by hand: p -= lr * p.grad)", {"lr": cfg.lr})
        return lambda: view
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
    pending: dict[str, dict[str, Any]] = {}
    for p, st in s.optimizer.state.items():
        entry: dict[str, Any] = {}
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                entry[key] = (host.add(value), value.dim() == 0)
            elif isinstance(value, (int, float)):
                entry[key] = float(value)
        pending[names.get(id(p), "?")] = entry
    name = f"torch.optim.{type(s.optimizer).__name__}"

    def finish() -> OptimizerView:
        state = {
            pname: {
                k: (float(v[0]()) if v[1] else v[0]()) if isinstance(v, tuple) else v
                for k, v in entry.items()
            }
            for pname, entry in pending.items()
        }
        return OptimizerView(name, hyper, state)

    return finish


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


def fit_view(s: Session, host: _Host, truth: Any, closed: Any) -> Callable[[], FitView]:
    if s._data_np is None:
        s._data_np = _data_arrays(s)
    a = s._data_np
    classify = s.dataset.task == "classification"
    extra: dict[str, Any] = {}
    later: dict[str, Callable[[], np.ndarray | None]] = {}
    with torch.no_grad():
        out = s.model(s.x)
        pred = host.add(_prob(s, out) if classify else out)
        if a.get("line_x") is not None:
            lx = a["line_x"]
            extra["line_x"] = lx
            if s._line_x is None:
                s._line_x = torch.tensor(lx).reshape(-1, 1).to(s.device)
            later["line_y"] = host.add(s.model(s._line_x))
            for key, params in (("true_y", truth), ("closed_y", closed)):
                if params is not None:
                    w, b = (np.asarray(v, dtype=np.float64).reshape(-1) for v in params.values())
                    extra[key] = _readonly((lx * w[0] + b[0]).astype(np.float32))
        if a.get("grid_x") is not None:
            if s._grid is None:
                gx, gy = np.meshgrid(a["grid_x"], a["grid_y"])
                s._grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], axis=1)).to(s.device)
            extra["grid_x"], extra["grid_y"] = a["grid_x"], a["grid_y"]
            shape = (len(a["grid_y"]), len(a["grid_x"]))
            later["grid_p"] = host.add(_prob(s, s.model(s._grid)).reshape(shape))

    def finish() -> FitView:
        done = {k: get() for k, get in later.items()}
        return FitView(
            x=a["x"], y=a["y"], pred=pred(), val_x=a["val_x"], val_y=a["val_y"], **extra, **done
        )

    return finish


def build_snapshot(s: Session) -> Snapshot:
    s.history.flush()
    s.val_history.flush()
    host = _Host()
    pending = [
        (n, p, host.add(p), host.add(p.grad), host.add(s.deltas[n]))
        for n, p in s.model.params.items()
    ]
    train = _metrics(s, host, s.x, s.y)
    val = _metrics(s, host, *s.val) if s.val is not None else (None, None)
    if s._closed is None:
        s._closed = true_and_closed_form(s)
    truth, closed = s._closed
    optimizer = optimizer_view(s, host)
    fit = fit_view(s, host, truth, closed)
    host.fetch()  # the one transfer
    params = tuple(
        ParamView(
            name=n,
            shape=tuple(p.shape),
            value=value(),
            grad=grad(),
            backward_count=s.counts[n],
            last_delta=delta(),
            analytic_grad=(s.analytic_acc or {}).get(n) if s.model.is_linear else None,
        )
        for n, p, value, grad, delta in pending
    )
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
        device=_device_name(s),
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
        params=params,
        optimizer=optimizer(),
        last_loss=s.last_loss,
        train_loss=_scalar(train[0]),
        val_loss=_scalar(val[0]) if val[0] else None,
        accuracy=_scalar(train[1]) if train[1] else None,
        val_accuracy=_scalar(val[1]) if val[1] else None,
        history=history,
        true_params=truth,
        closed_form=closed,
        log=s.transcript.lines(),
        undo_depth=s.undo_depth,
        diverged_at=s.diverged_at,
        fit=fit(),
        description=s.preset.description,
        config=_config(s),
    )


def _device_name(s: Session) -> str:
    # describe() asks the driver for the GPU's name: once per device, not per snapshot
    if s._device_label is None or s._device_label[0] != s.device:
        s._device_label = (s.device, describe(s.device))
    return s._device_label[1]


def _config(s: Session) -> dict[str, Any]:
    """The settings in force, as plain values (for the settings form)."""
    cfg = asdict(s.cfg)
    cfg["device"] = str(s.device)
    return cfg

"""Building a ``Snapshot`` from a live session: the one place tensors become plain data.

Everything that depends only on the build (the data as numpy, the fit panel's sample
points, the least-squares optimum, the device's name) is made once and kept in the
build's ``Caches``; nothing here writes to the session.

Everything a snapshot needs from the device - parameters, gradients, deltas, optimizer
state, losses, accuracies, the model's predictions for the fit panel - is gathered first
and copied to the host in one transfer per dtype: on a GPU each separate ``.cpu()`` or
``.item()`` would be a synchronisation of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from playground.training import analytic
from playground.training.build import Build
from playground.training.config import TrainConfig
from playground.training.devices import describe
from playground.training.models import compute_loss, predict_labels
from playground.training.snapshot import (
    FIT_POINTS,
    BestView,
    FitView,
    LossHistory,
    OptimizerView,
    ParamView,
    Prediction,
    Snapshot,
)

if TYPE_CHECKING:
    from playground.training.state import Best, Progress


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
                n = math.prod(shape)
                a = flat[offset : offset + n].reshape(shape)
                a.flags.writeable = False
                out[i] = a
                offset += n
        self._out = out  # type: ignore[assignment]


def _scalar(get: Callable[[], np.ndarray | None]) -> float | None:
    a = get()
    return None if a is None else float(a)


def _metrics(
    b: Build,
    cfg: TrainConfig,
    host: _Host,
    x: torch.Tensor,
    y: torch.Tensor,
    out: torch.Tensor | None = None,
) -> Any:
    """Loss and (for classifiers) accuracy on a whole split, left on the device (``out``:
    the model's output on ``x`` when it is at hand)."""
    with torch.no_grad():
        out = b.model(x) if out is None else out
        loss = host.add(compute_loss(cfg.loss, out, y).float())
        acc = None
        if b.dataset.task == "classification":
            acc = host.add((predict_labels(cfg.loss, out) == y).float().mean())
    return loss, acc


def optimizer_view(b: Build, cfg: TrainConfig, host: _Host) -> Callable[[], OptimizerView]:
    opt = b.optimizer
    if opt is None:
        view = OptimizerView("gd (by hand: p -= lr * p.grad)", {"lr": cfg.lr})
        return lambda: view
    group = opt.param_groups[0]
    hyper = {
        k: v
        for k, v in group.items()
        if isinstance(v, (int, float, bool))
        and k in ("lr", "momentum", "nesterov", "weight_decay", "dampening", "eps")
    }
    if "betas" in group:
        b1, b2 = group["betas"]
        hyper.update(beta1=b1, beta2=b2)
    names = {id(p): n for n, p in b.model.params.items()}
    pending: dict[str, dict[str, Any]] = {}
    for p, st in opt.state.items():
        entry: dict[str, Any] = {}
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                entry[key] = (host.add(value), value.dim() == 0)
            elif isinstance(value, (int, float)):
                entry[key] = float(value)
        pending[names.get(id(p), "?")] = entry
    name = f"torch.optim.{type(opt).__name__}"

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
    b: Build, cfg: TrainConfig
) -> tuple[dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]:
    kind = b.model.kind
    if kind not in ("scalar", "linear", "logistic"):
        return None, None
    truth = None
    tp = b.dataset.true_params
    if tp is not None and b.model.n_outputs == 1:
        try:
            truth = analytic.as_model_params(kind, tp["w"], tp["b"])
        except ValueError:
            truth = None
    closed = None
    if b.dataset.task == "regression" and cfg.loss in ("mse", "sse"):
        w, bias = analytic.least_squares(b.dataset.train.x.numpy(), b.dataset.train.y.numpy())
        closed = analytic.as_model_params(kind, w, bias)
    return truth, closed


GRID = (48, 24)  # decision-boundary lattice (columns, rows)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _stride(n: int) -> int:
    """A fit view draws every k-th of ``n`` points, k this: at most ``FIT_POINTS`` points."""
    return max(1, -(-n // FIT_POINTS))


def _data_arrays(b: Build) -> dict[str, Any]:
    """Static per build: the data as numpy, and the lattice / sample points to evaluate."""
    ds = b.dataset
    n = len(ds.train.y)
    stride = _stride(n)
    x, y = ds.train.x.numpy(), ds.train.y.numpy()
    out: dict[str, Any] = {"x": _readonly(x[::stride].copy()), "y": _readonly(y[::stride].copy())}
    out.update(n=n, stride=stride, val_x=None, val_y=None)
    if ds.val is not None:
        vstride = _stride(len(ds.val.y))
        out["val_x"] = _readonly(ds.val.x.numpy()[::vstride].copy())
        out["val_y"] = _readonly(ds.val.y.numpy()[::vstride].copy())
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


def _prob(cfg: TrainConfig, out: torch.Tensor) -> torch.Tensor:
    if cfg.loss == "ce":
        return torch.softmax(out, dim=-1)[:, 1]
    return torch.sigmoid(out)


def fit_view(
    b: Build, cfg: TrainConfig, host: _Host, truth: Any, closed: Any, train_out: torch.Tensor
) -> Callable[[], FitView]:
    """The fit view, its arrays fetched with the snapshot's (``train_out``: the model's
    output on the whole training set, which the train metrics use too)."""
    caches = b.caches
    if caches.data_np is None:
        caches.data_np = _data_arrays(b)
    a = caches.data_np
    classify = b.dataset.task == "classification"
    extra: dict[str, Any] = {"n_points": a["n"], "stride": a["stride"]}
    later: dict[str, Callable[[], Any]] = {}
    with torch.no_grad():
        if a["stride"] == 1:
            out = train_out
        else:  # the sample drawn; the wrong ones counted over the whole set
            if caches.fit_x is None:
                caches.fit_x = b.x[:: a["stride"]].contiguous()
            out = b.model(caches.fit_x)
            if classify and b.dataset.n_classes == 2:
                p1 = _prob(cfg, train_out).reshape(-1)
                wrong = (p1 >= 0.5) != (b.y.reshape(-1) == 1)
                count = host.add(wrong.sum())
                later["n_wrong"] = lambda: int(count())
        pred = host.add(_prob(cfg, out) if classify else out)
        if a.get("line_x") is not None:
            lx = a["line_x"]
            extra["line_x"] = lx
            if caches.line_x is None:
                caches.line_x = torch.tensor(lx).reshape(-1, 1).to(b.device)
            later["line_y"] = host.add(b.model(caches.line_x))
            for key, params in (("true_y", truth), ("closed_y", closed)):
                if params is not None:
                    w, bias = (np.asarray(v, dtype=np.float64).reshape(-1) for v in params.values())
                    extra[key] = _readonly((lx * w[0] + bias[0]).astype(np.float32))
        if a.get("grid_x") is not None:
            if caches.grid is None:
                gx, gy = np.meshgrid(a["grid_x"], a["grid_y"])
                grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
                caches.grid = torch.tensor(grid).to(b.device)
            extra["grid_x"], extra["grid_y"] = a["grid_x"], a["grid_y"]
            shape = (len(a["grid_y"]), len(a["grid_x"]))
            later["grid_p"] = host.add(_prob(cfg, b.model(caches.grid)).reshape(shape))

    def finish() -> FitView:
        done = {k: get() for k, get in later.items()}
        return FitView(
            x=a["x"], y=a["y"], pred=pred(), val_x=a["val_x"], val_y=a["val_y"], **extra, **done
        )

    return finish


def snapshot_of(
    b: Build,
    cfg: TrainConfig,
    progress: Progress,
    deltas: dict[str, torch.Tensor | None],
    analytic_grad: dict[str, np.ndarray] | None,
    best_state: Best | None = None,
    undo: tuple[int, str | None] = (0, None),
    redo: tuple[int, str | None] = (0, None),
) -> Snapshot:
    """The snapshot of a session in this state (``undo`` / ``redo``: depth and label of
    the next entry)."""
    loss, step, kind = b.history.views()
    val_loss, val_step, val_index = b.val_history.views()
    val_acc = b.series["val_acc"].views()[0]
    host = _Host()
    pending = [
        (n, p, host.add(p), host.add(p.grad), host.add(deltas[n]))
        for n, p in b.model.params.items()
    ]
    if b.caches.closed is None:
        b.caches.closed = true_and_closed_form(b, cfg)
    truth, closed = b.caches.closed
    at = b.preset.predict_at
    evaluation = _evaluation(b, cfg, host, truth, closed)
    best = None
    if best_state is not None:
        best = (
            host.add(best_state.epoch),
            host.add(best_state.val_loss),
            {n: host.add(t) for n, t in best_state.values.items()},
        )
    optimizer = optimizer_view(b, cfg, host)
    host.fetch()  # the one transfer
    ev = evaluation()
    linear = b.model.is_linear
    params = tuple(
        ParamView(
            name=n,
            shape=tuple(p.shape),
            value=value(),
            grad=grad(),
            backwards_since_zero=progress.backwards_since_zero[n],
            last_delta=delta(),
            analytic_grad=(analytic_grad or {}).get(n) if linear else None,
        )
        for n, p, value, grad, delta in pending
    )
    n_batches = -(-b.n_train // (cfg.batch_size or b.n_train))
    last = progress.last_batch
    return Snapshot(
        preset=b.preset.name,
        title=b.preset.title,
        description=b.preset.description,
        task=b.dataset.task,
        device=_device_name(b),
        model=b.model.kind,
        loss_name=cfg.loss,
        config=cfg,
        step=progress.step,
        epoch=progress.samples_trained / b.n_train,
        epochs_done=progress.epochs_done,
        grad_step=progress.grad_step,
        lessons=tuple((x.name, x.title) for x in b.preset.lessons),
        source=b.preset.source,
        backward_total=progress.backward_total,
        cursor=progress.cursor,
        batch=None if last is None else (last % n_batches + 1, n_batches),
        params=params,
        optimizer=optimizer(),
        batch_loss=float(loss[-1]) if len(loss) else None,
        train_loss=ev.train_loss,
        val_loss=ev.val_loss,
        train_accuracy=ev.train_accuracy,
        val_accuracy=ev.val_accuracy,
        history=LossHistory(loss, step, kind, val_loss, val_step, val_index, val_acc),
        true_params=truth,
        closed_form=closed,
        log=b.transcript.lines(cfg.code_style),
        transcript=tuple(b.transcript.entries),
        undo_depth=undo[0],
        redo_depth=redo[0],
        undo_label=undo[1],
        redo_label=redo[1],
        fit=ev.fit,
        best=None
        if best is None
        else BestView(int(best[0]()), float(best[1]()), {n: g() for n, g in best[2].items()}),
        test_loss=ev.test_loss,
        prediction=None
        if ev.prediction is None or at is None
        else Prediction(at, ev.prediction, least_squares_at(closed, at)),
    )


@dataclass(frozen=True)
class Evaluation:
    """What a snapshot shows that depends on the parameters' values alone: the model
    evaluated on the splits, the fit view, the prediction at the preset's point."""

    train_loss: float | None
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    test_loss: float | None
    prediction: float | None
    fit: FitView


@dataclass(frozen=True)
class _Evaluated:
    """An ``Evaluation`` and the parameters it was made at (one flat copy, on the device)."""

    at: torch.Tensor
    loss: str
    value: Evaluation


def _flat_params(b: Build) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([p.detach().reshape(-1) for p in b.model.params.values()])


def _evaluation(
    b: Build, cfg: TrainConfig, host: _Host, truth: Any, closed: Any
) -> Callable[[], Evaluation]:
    """The evaluation at the parameters as they are now: the last one again when they
    have not changed since it was made (compared value for value, so a write through
    ``.data`` or ``set_params_at`` is seen), else one forward pass per split, its results
    fetched with the snapshot's. After ``z``, ``b``, an undo of either or a setting that
    changes no parameter, a data set of a million rows costs no pass over it."""
    flat = _flat_params(b)
    last = b.caches.evaluated
    if (
        last is not None
        and last.loss == cfg.loss
        and last.at.shape == flat.shape
        and last.at.dtype == flat.dtype
        and last.at.device == flat.device
        and torch.equal(last.at, flat)
    ):
        return lambda: last.value
    with torch.no_grad():
        train_out = b.model(b.x)  # for the train metrics and the fit view: one pass
    train = _metrics(b, cfg, host, b.x, b.y, train_out)
    val = _metrics(b, cfg, host, *b.val) if b.val is not None else (None, None)
    test = b.dataset.test
    test_loss = None
    if test is not None:
        xt, yt = b.caches.test or (test.x.to(b.device), test.y.to(b.device))
        b.caches.test = (xt, yt)
        test_loss = _metrics(b, cfg, host, xt, yt)[0]
    prediction = None
    at = b.preset.predict_at
    if at is not None:
        prediction = host.add(output_at(b, cfg, at))
    fit = fit_view(b, cfg, host, truth, closed, train_out)

    def finish() -> Evaluation:
        value = Evaluation(
            train_loss=_scalar(train[0]),
            train_accuracy=_scalar(train[1]) if train[1] else None,
            val_loss=_scalar(val[0]) if val[0] else None,
            val_accuracy=_scalar(val[1]) if val[1] else None,
            test_loss=_scalar(test_loss) if test_loss else None,
            prediction=None if prediction is None else float(prediction()),
            fit=fit(),
        )
        b.caches.evaluated = _Evaluated(flat, cfg.loss, value)
        return value

    return finish


def output_at(b: Build, cfg: TrainConfig, at: tuple[float, ...]) -> torch.Tensor:
    """The model's output at one input, left on the device."""
    with torch.no_grad():
        x = torch.tensor([at], dtype=b.x.dtype, device=b.device)
        out = b.model(x)
        if b.dataset.task == "classification":
            out = _prob(cfg, out)
        return out.reshape(-1)[0]


def least_squares_at(closed: dict[str, np.ndarray] | None, at: tuple[float, ...]) -> float | None:
    """The least-squares line's prediction at ``at`` (None without a closed form)."""
    if closed is None:
        return None
    w, b = (np.asarray(v, dtype=np.float64).reshape(-1) for v in closed.values())
    return float(np.dot(w, at) + b[0])


def _device_name(b: Build) -> str:
    # describe() asks the driver for the GPU's name: once per device, not per snapshot
    if b.caches.device_label is None:
        b.caches.device_label = describe(b.device)
    return b.caches.device_label

"""A training session driven one PyTorch call at a time.

``Session`` owns the data, the model, the optimizer and their history. Each public method
is one action of the lesson (forward, backward, zero_grad, step, train_step, run, undo,
reset); each records the code it stands for in the transcript and leaves everything the
UI needs in ``snapshot()``. No threads and no UI here: the runner thread calls these.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from playground.training import analytic
from playground.training.devices import resolve_device
from playground.training.history import Recorder
from playground.training.models import Model, build_model, compute_loss, n_outputs_for
from playground.training.presets import Preset, TrainConfig
from playground.training.snapshot import KIND_BACKWARD, KIND_FORWARD, KIND_TRAIN
from playground.training.state import Checkpoint, restore, take
from playground.training.transcript import EPILOGUE, CodeStyle, Transcript, preamble

UNDO_DEPTH = 128
# settings that can change mid-training; anything else rebuilds the session
LIVE_SETTINGS = {
    "lr",
    "momentum",
    "nesterov",
    "weight_decay",
    "betas",
    "accumulate",
    "scale_loss",
    "zero_grad",
    "max_steps",
    "until_loss",
    "batch_size",
}


@dataclass(frozen=True)
class _Rebuild:
    """Undo entry for a settings change that rebuilt the session: the whole old state."""

    state: dict[str, Any]


def _moved(
    c: Checkpoint | _Rebuild, s: Session, dev: torch.device, below: tuple[Any, ...]
) -> Checkpoint | _Rebuild:
    """A checkpoint of ``s`` with its tensors on ``dev`` (other builds are left as they are)."""
    if isinstance(c, _Rebuild) or c.build[0] is not s.model:
        return c

    def mv(d: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
        return {n: t.to(dev) if t is not None else None for n, t in d.items()}

    opt = c.optimizer
    if opt is not None:
        opt = {
            **opt,
            "state": {
                i: {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in st.items()}
                for i, st in opt["state"].items()
            },
        }
    return replace(
        c,
        values=mv(c.values),
        grads=mv(c.grads),
        deltas=mv(c.deltas),
        optimizer=opt,
        build=(s.model, s.optimizer, s.dataset, s.x, s.y, s.val),
        undo=below,
    )


class ActionError(RuntimeError):
    """An action that cannot be done in the current state (the message says why)."""


@dataclass(frozen=True)
class RunResult:
    steps: int
    reason: str  # "max_steps" | "converged" | "diverged" | "budget"
    loss: float | None


class Session:
    """One exercise being trained. See the module docstring."""

    def __init__(self, preset: Preset, config: TrainConfig | None = None, **overrides: Any) -> None:
        self.preset = preset
        self.cfg = (config or preset.config).with_overrides(**overrides)
        self.device = resolve_device(self.cfg.device)
        self._undo: deque[Checkpoint | _Rebuild] = deque(maxlen=UNDO_DEPTH)
        self._device_label: tuple[torch.device, str] | None = None
        self._build()

    # --- construction ---------------------------------------------------------------

    def _build(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        ds = self.preset.build_dataset(cfg.seed)
        if cfg.loss in ("bce", "ce") and ds.task != "classification":
            raise ValueError(
                f"loss: {cfg.loss!r} needs class labels; {self.preset.name} is regression"
            )
        if cfg.batch_size > len(ds.train):
            raise ValueError(f"batch_size: {cfg.batch_size} > {len(ds.train)} training samples")
        self.dataset = ds
        # the model draws its initial values from the global RNG right after the data,
        # exactly as the exercises do
        self.model: Model = build_model(
            cfg.model,
            ds.n_features,
            n_outputs_for(cfg.loss, ds.n_classes),
            cfg.hidden,
            cfg.activation,
            cfg.init,
            dict(cfg.init_values) or None,
        ).to(self.device)
        dev = self.device
        self.x, self.y = ds.train.x.to(dev), ds.train.y.to(dev)
        self.val = (ds.val.x.to(dev), ds.val.y.to(dev)) if ds.val is not None else None
        self.optimizer = self._make_optimizer()
        self.step_count = 0
        self.cursor = 0  # index of the next micro-batch (over all epochs)
        self.samples_seen = 0
        self.backward_total = 0
        self.counts = {n: 0 for n in self.model.params}
        self.deltas: dict[str, torch.Tensor | None] = {n: None for n in self.model.params}
        self.analytic_acc: dict[str, np.ndarray] | None = None
        self.history = Recorder(dev)
        self.val_history = Recorder(dev)
        self.val_index: list[int] = []
        self.status, self.message, self.diverged_at = "idle", "", None
        self.last_loss: float | None = None
        self.transcript = Transcript(preamble=self._preamble())
        self._closed = None  # (true params, least-squares optimum), computed once per build
        self._data_np = None  # the data as numpy for the fit view, made once per build
        self._line_x: torch.Tensor | None = None  # fit-view sample points, on the device
        self._grid: torch.Tensor | None = None
        self._prev: list[torch.Tensor] | None = None  # parameters before the last fast step
        self._chunk_start: tuple[Checkpoint, int] | None = None  # the run's previous chunk
        self._chunk_size = 16  # steps per loss check in run mode; grows to 1024

    def _make_optimizer(self) -> torch.optim.Optimizer | None:
        params = list(self.model.params.values())
        cfg = self.cfg
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(
                params,
                lr=cfg.lr,
                momentum=cfg.momentum,
                nesterov=cfg.nesterov,
                weight_decay=cfg.weight_decay,
            )
        if cfg.optimizer == "adam":
            return torch.optim.Adam(
                params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
            )
        return None  # "gd": p -= lr * p.grad by hand

    @property
    def batch_size(self) -> int:
        return self.cfg.batch_size or len(self.x)

    @property
    def n_batches(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def _style(self) -> CodeStyle:
        return CodeStyle(self.cfg, self.n_batches == 1, tuple(self.model.params))

    def _preamble(self) -> str:
        module_code = None
        m = self.model
        if m.kind in ("linear", "logistic"):
            module_code = f"nn.Linear({self.dataset.n_features}, {m.n_outputs})"
        elif m.kind == "softmax":
            module_code = f"SoftmaxRegression({self.dataset.n_features}, {m.n_outputs})"
        elif m.kind == "mlp":
            module_code = (
                "nn.Sequential("
                + ", ".join(
                    f"nn.Linear({mod.in_features}, {mod.out_features})"
                    if isinstance(mod, torch.nn.Linear)
                    else f"nn.{type(mod).__name__}()"
                    for mod in m.module
                )
                + ")"
            )
        init = {n: p.detach().cpu().tolist() for n, p in m.params.items()}
        return preamble(
            self.preset.title,
            self.cfg,
            str(self.device),
            self.x.cpu().tolist(),
            self.y.cpu().tolist(),
            self.batch_size,
            m.kind,
            module_code,
            init,
            m.n_outputs,
        )

    # --- helpers --------------------------------------------------------------------

    def _batch(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.n_batches == 1:
            return self.x, self.y
        j = c % self.n_batches
        b = self.batch_size
        return self.x[j * b : (j + 1) * b], self.y[j * b : (j + 1) * b]

    def _loss(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return compute_loss(self.cfg.loss, self.model(xb), yb)

    @property
    def _scale(self) -> float:
        return self.cfg.accumulate if self.cfg.accumulate > 1 and self.cfg.scale_loss else 1

    def _backward_on(self, c: int, kind: int, track: bool) -> torch.Tensor:
        xb, yb = self._batch(c)
        loss = self._loss(xb, yb)
        scaled = loss / self._scale if self._scale != 1 else loss
        if track and self.model.is_linear:
            self._track_analytic(xb, yb)
        scaled.backward()
        for n, p in self.model.params.items():
            if p.grad is not None:
                self.counts[n] += 1
        self.backward_total += 1
        self.samples_seen += len(xb)
        self.cursor = c + 1
        self.history.record(loss, self.step_count, kind)
        return loss

    def _track_analytic(
        self, xb: torch.Tensor, yb: torch.Tensor, at: dict[str, torch.Tensor] | None = None
    ) -> None:
        """Add the hand-derived gradient of this batch's (scaled) loss at the parameters
        ``at`` (default: the current ones) to the running analytic total."""
        source = at or {n: p for n, p in self.model.params.items()}
        values = {n: t.detach().cpu().numpy() for n, t in source.items()}
        grad = analytic.affine_gradient(
            self.model.kind, self.cfg.loss, values, xb.cpu().numpy(), yb.cpu().numpy()
        )
        grad = {n: g / self._scale for n, g in grad.items()}
        if self.analytic_acc is None or all(p.grad is None for p in self.model.params.values()):
            self.analytic_acc = grad
        else:
            self.analytic_acc = {n: self.analytic_acc[n] + g for n, g in grad.items()}

    def _zero(self, set_to_none: bool) -> None:
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=set_to_none)
        else:
            for p in self.model.params.values():
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()
        self.counts = dict.fromkeys(self.counts, 0)
        self.analytic_acc = None

    def _apply_step(self, track_delta: bool = True) -> None:
        params = self.model.params
        before = {n: p.detach().clone() for n, p in params.items()} if track_delta else None
        if self.optimizer is not None:
            self.optimizer.step()
        else:
            lr = self.cfg.lr
            with torch.no_grad():
                for p in params.values():
                    if p.grad is not None:
                        p -= lr * p.grad
        if before is not None:
            self.deltas = {n: params[n].detach() - before[n] for n in params}
        self.step_count += 1
        if self.val is not None:
            with torch.no_grad():
                self.val_history.record(self._loss(*self.val), self.step_count, KIND_TRAIN)
            self.val_index.append(len(self.history))

    def _push_undo(self) -> None:
        self._undo.append(take(self))

    # --- the actions ----------------------------------------------------------------

    def forward(self) -> float:
        """``loss = loss_fn(model(xb), yb)`` on the next micro-batch. ``.grad`` is untouched."""
        xb, yb = self._batch(self.cursor)
        with torch.no_grad():
            loss = self._loss(xb, yb)
        self.history.record(loss, self.step_count, KIND_FORWARD)
        self.transcript.add("forward", self._style().forward(self.cursor))
        self.last_loss = float(loss.item())
        return self.last_loss

    def backward(self) -> float:
        """Forward on the next micro-batch, then ``loss.backward()``.

        Every parameter's ``.grad`` ADDS this batch's gradient (``p.grad += dloss/dp``);
        nothing resets it but ``zero_grad``. With K > 1 the loss is divided by K first, so
        K backward passes sum to the gradient of the mean over the K micro-batches.
        """
        c = self.cursor
        loss = self._backward_on(c, KIND_BACKWARD, track=True)
        self.transcript.add("backward", self._style().backward(c))
        self.last_loss = float(loss.item())
        return self.last_loss

    def zero_grad(self, set_to_none: bool | None = None) -> None:
        """``p.grad.zero_()`` for every parameter, or ``p.grad = None`` (``set_to_none``)."""
        if set_to_none is None:
            set_to_none = self.cfg.zero_grad == "none"
        self._zero(set_to_none)
        self.transcript.add("zero_grad", self._style().zero_grad(set_to_none))

    def step(self) -> None:
        """One optimizer step with the gradients as they are; ``.grad`` is NOT cleared."""
        if all(p.grad is None for p in self.model.params.values()):
            raise ActionError("step: every .grad is None - call backward() first")
        self._push_undo()
        self._apply_step()
        self.transcript.add("step", self._style().step())

    def train_step(self) -> float:
        """zero_grad, then K x (forward + backward), then step: one ordinary update."""
        self._push_undo()
        c0 = self.cursor
        loss = self._train_step(track=True)
        self._add_run_entry(1, c0)
        self.last_loss = float(loss.item())
        return self.last_loss

    def _train_step(self, track: bool) -> torch.Tensor:
        self._zero(self.cfg.zero_grad == "none")
        total = None
        for _ in range(self.cfg.accumulate):
            loss = self._backward_on(self.cursor, KIND_TRAIN, track)
            part = loss / self._scale if self._scale != 1 else loss
            total = part if total is None else total + part
        self._apply_step(track_delta=track)
        assert total is not None
        return total

    def _add_run_entry(self, n: int, c0: int) -> None:
        style = self._style()
        set_none = self.cfg.zero_grad == "none"
        entries = self.transcript.entries
        last = entries[-1] if entries else None
        k = self.cfg.accumulate
        # consecutive train steps / runs merge into one loop in the transcript
        if last is not None and last.run is not None:
            pn, pc0 = last.run
            if style.full_batch or pc0 + pn * k == c0:
                n, c0 = pn + n, pc0
                entries.pop()
        label = "train step" if n == 1 else f"{n} train steps"
        self.transcript.add(label, style.train_steps(n, c0, set_none), run=(n, c0))

    def run(
        self,
        steps: int | None = None,
        until_loss: float | None = None,
        time_budget: float | None = None,
    ) -> RunResult:
        """Train steps until ``steps`` are done, the step loss is <= ``until_loss``, the
        loss is not finite (reported as "diverged", not raised), or ``time_budget``
        seconds have passed.

        No host sync per step: losses stay on the device and are looked at once per chunk
        of steps. A chunk that crossed a stop condition is replayed from its start up to
        the step that crossed it, so the result is the same as checking every step. The
        validation loss is measured once at the end of the call (single actions measure
        it after every step).
        """
        steps = self.cfg.max_steps if steps is None else steps
        until = self.cfg.until_loss if until_loss is None else until_loss
        if steps <= 0:
            return RunResult(0, "max_steps", self.last_loss)
        self._push_undo()
        start_step, c0 = self.step_count, self.cursor
        deadline = None if time_budget is None else time.perf_counter() + time_budget
        # the chunk size carries over between calls: a run driven in time slices (the
        # runner's) needs about one chunk, one checkpoint and one host copy per slice
        chunk, reason = self._chunk_size, "max_steps"
        self._chunk_start = None
        while reason == "max_steps" and self.step_count - start_step < steps:
            n = min(chunk, steps - (self.step_count - start_step))
            reason = self._chunk(n, until, deadline)
            if reason == "max_steps" and deadline is not None and time.perf_counter() >= deadline:
                reason = "budget"
            chunk = min(2 * chunk, 1024)
        self._chunk_size = chunk
        done = self.step_count - start_step
        if done:
            self._add_run_entry(done, c0)
            self._finish_fast_steps()
        self.last_loss = self.history.last()
        if reason == "budget" and done >= steps:
            reason = "max_steps"
        self.status = {"budget": "running", "max_steps": "idle"}.get(reason, reason)
        return RunResult(done, reason, self.last_loss)

    def _fast_steps(self, n: int, deadline: float | None) -> int:
        """Up to ``n`` train steps with nothing per step but the training itself and a
        device-side copy of the loss (no .item(), no validation, no clones)."""
        params = list(self.model.params.values())
        if self._prev is None or len(self._prev) != len(params):
            self._prev = [torch.empty_like(p) for p in params]
        prev, opt, lr = self._prev, self.optimizer, self.cfg.lr
        # detached views share storage with the parameters, which are updated in place
        values = [p.detach() for p in params]
        full = self.n_batches == 1
        k, scale = self.cfg.accumulate, self._scale
        loss_name, model, record = self.cfg.loss, self.model, self.history.record
        done = 0
        for i in range(n):
            # the deadline is looked at before the step, so the last step is known in time
            # to keep a copy of the parameters it starts from (for the delta): one copy per
            # call instead of one per step
            last = i == n - 1 or (deadline is not None and time.perf_counter() >= deadline)
            # .grad = None rather than zero_(): the same numbers after backward (every
            # parameter gets a gradient each step) without a zeroing kernel per step
            if opt is not None:
                opt.zero_grad(set_to_none=True)
            else:
                for p in params:
                    p.grad = None
            for _ in range(k):
                xb, yb = (self.x, self.y) if full else self._batch(self.cursor)
                loss = compute_loss(loss_name, model(xb), yb)
                (loss / scale if scale != 1 else loss).backward()
                record(loss, self.step_count, KIND_TRAIN)
                self.cursor += 1
                self.samples_seen += xb.shape[0]
            if last:
                torch._foreach_copy_(prev, values)
            if opt is not None:
                opt.step()
            else:
                with torch.no_grad():
                    for p in params:
                        if p.grad is not None:
                            p -= lr * p.grad
            self.step_count += 1
            done += 1
            if last:
                break
        self.backward_total += done * k
        return done

    def _finish_fast_steps(self) -> None:
        """Counters, delta and validation loss as single steps would have left them."""
        k = self.cfg.accumulate
        params = self.model.params
        self.counts = {n: (k if p.grad is not None else 0) for n, p in params.items()}
        if self._prev is not None:
            self.deltas = {
                n: p.detach() - q for (n, p), q in zip(params.items(), self._prev, strict=True)
            }
        self.analytic_acc = None
        if self.model.is_linear:
            # the gradient now in .grad is that of the last step's micro-batches
            for i in range(k):
                xb, yb = self._batch(self.cursor - k + i)
                self._track_analytic(xb, yb, at=dict(zip(params, self._prev or [], strict=False)))
        if self.val is not None:
            with torch.no_grad():
                self.val_history.record(self._loss(*self.val), self.step_count, KIND_TRAIN)
            self.val_index.append(len(self.history))

    def _chunk(self, n: int, until: float | None, deadline: float | None) -> str:
        start = take(self)
        before = self._chunk_start
        first = len(self.history)
        done = self._fast_steps(n, deadline)
        self._chunk_start = (start, done)
        losses = self.history.tail(first)
        k = self.cfg.accumulate
        per_step = losses.reshape(-1, k).sum(axis=1) / self._scale
        bad = ~np.isfinite(per_step)
        hit = bad | (per_step <= until) if until is not None else bad
        if not hit.any():
            return "max_steps"
        i = int(np.argmax(hit))
        if bad[i]:
            self._diverge(start, i, before)
            return "diverged"
        if i + 1 < done:  # replay from the chunk's start up to the step that converged
            restore(self, start)
            self._fast_steps(i + 1, None)
        self.message = (
            f"converged at step {self.step_count}: loss {float(per_step[i]):.3g} <= {until:g}"
        )
        return "converged"

    def _diverge(self, start: Checkpoint, i: int, before: tuple[Checkpoint, int] | None) -> None:
        """Step ``i`` of the chunk begun at ``start`` had a non-finite loss. Its parameters
        came from the step before, so the last state with a finite loss is the one before
        *that* step: replay to it, keep it for ``undo``, then take the last two steps."""
        if i >= 1:
            restore(self, start)
            self._fast_steps(i - 1, None)
        elif before is not None:  # the bad parameters came from the previous chunk's last step
            restore(self, before[0])
            self._fast_steps(before[1] - 1, None)
        else:  # the run began from parameters that already give a non-finite loss
            restore(self, start)
            self._push_undo()
            self._fast_steps(1, None)
            self._mark_diverged()
            return
        self._push_undo()  # `undo` returns to the last state whose loss was finite
        self._fast_steps(2, None)
        self._mark_diverged()

    def _mark_diverged(self) -> None:
        self.diverged_at = self.step_count
        self.message = f"diverged at step {self.step_count} (lr too large?)"

    def undo(self) -> bool:
        """Restore parameters, gradients, optimizer state and counters to just before the
        last parameter-changing action (step, train step, run, reset, a new model ...).
        False if there is nothing to undo."""
        if not self._undo:
            return False
        item = self._undo.pop()
        if isinstance(item, _Rebuild):
            undo = self._undo
            self.__dict__.update(item.state)
            self._undo = undo
        else:
            restore(self, item)
        self.status = "idle"
        return True

    @property
    def undo_depth(self) -> int:
        return len(self._undo)

    def reset(self) -> None:
        """Re-initialise data, model and optimizer from the seed (undoable)."""
        self._push_undo()
        self._build()

    # --- settings -------------------------------------------------------------------

    def configure(self, **changes: Any) -> None:
        """Change settings. Live ones (lr, momentum, K, ...) keep the training state, and
        so does a new device (the state moves there); anything else (model, loss,
        optimizer, seed ...) rebuilds the session - undoably. A bad value raises
        ValueError and changes nothing."""
        changes = {k: v for k, v in changes.items() if v is not None and getattr(self.cfg, k) != v}
        if not changes:
            return
        new_cfg = self.cfg.with_overrides(**changes)
        if set(changes) <= LIVE_SETTINGS:
            old = self.cfg
            if "batch_size" in changes and (changes["batch_size"] or len(self.x)) > len(self.x):
                raise ValueError(
                    f"batch_size: {changes['batch_size']} > {len(self.x)} training samples"
                )
            self.cfg = new_cfg
            self._apply_live(old, changes)
            return
        if set(changes) == {"device"}:
            self.move_to(new_cfg.device)
            return
        saved = dict(self.__dict__)
        self.cfg, self.device = new_cfg, resolve_device(new_cfg.device)
        try:
            self._build()
        except Exception:
            self.__dict__.update(saved)  # nothing half-built survives a bad setting
            raise
        self._undo.append(_Rebuild(saved))

    def move_to(self, device: str) -> None:
        """Carry the whole training state (parameters, grads, optimizer state, data, undo
        stack) to another device, e.g. back to the CPU after CUDA ran out of memory."""
        dev = resolve_device(device)
        if dev == self.device:
            self.cfg = self.cfg.with_overrides(device=device)
            return
        saved = dict(self.__dict__)
        try:
            self.model.to(dev)
            if self.optimizer is not None:
                # load_state_dict casts the optimizer state to the parameters' device
                self.optimizer.load_state_dict(self.optimizer.state_dict())
            self.x, self.y = self.x.to(dev), self.y.to(dev)
            self.val = (self.val[0].to(dev), self.val[1].to(dev)) if self.val else None
            self.deltas = {n: d.to(dev) if d is not None else None for n, d in self.deltas.items()}
            self._prev = None
            self.history.to(dev)
            self.val_history.to(dev)
            moved: deque[Checkpoint | _Rebuild] = deque(maxlen=UNDO_DEPTH)
            for c in self._undo:
                moved.append(_moved(c, self, dev, tuple(moved)))
            self._undo = moved
        except Exception:
            self.__dict__.update(saved)
            raise
        self.device = dev
        self.cfg = self.cfg.with_overrides(device=device)

    def _apply_live(self, old: TrainConfig, changes: dict[str, Any]) -> None:
        style = self._style()
        for name in ("lr", "momentum", "nesterov", "weight_decay", "betas"):
            if name in changes and self.optimizer is not None:
                for group in self.optimizer.param_groups:
                    group[name] = changes[name]
            if name in changes:
                self.transcript.add(f"set {name}", style.set_hyper(name, changes[name]))
        if "accumulate" in changes:
            self.transcript.add("set K", f"K = {self.cfg.accumulate}")
        if "batch_size" in changes:
            self.cursor = 0  # a new batch size starts a fresh walk over the data
            self.transcript.add(
                "set batch size", f"B, n_batches = {self.batch_size}, {self.n_batches}"
            )

    # --- output ---------------------------------------------------------------------

    def export_script(self, path: str | Path) -> Path:
        """Write the transcript as a runnable .py file."""
        return self.transcript.export(path, EPILOGUE)

    def script(self) -> str:
        return self.transcript.script(EPILOGUE)

    def snapshot(self):  # -> Snapshot (import kept local: snapshot building lives apart)
        from playground.training.capture import build_snapshot

        return build_snapshot(self)

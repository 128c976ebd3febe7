"""The session's primitives: its state, transactions, and one PyTorch call at a time.

``Stepper`` is the base of ``Session``. It holds the live training state - the ``Build``
(data, model, optimizer, histories, transcript), the settings in force, the counters, the
last deltas and the hand-derived gradient - and knows how to copy all of it into a
``TrainState`` and back, and how to make an action a transaction: a state is captured
before, put back if the action fails, and kept as the action's undo entry if it succeeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from playground.training import analytic
from playground.training.build import Build, ctx_of
from playground.training.code import Ctx
from playground.training.config import TrainConfig
from playground.training.fast_calls import Calls, calls_for, ordinary
from playground.training.fast_update import fast_update
from playground.training.models import compute_loss, predict_labels
from playground.training.param_path import path_of, restore_path, start_path
from playground.training.snapshot import KIND_TRAIN
from playground.training.state import (
    Best,
    Progress,
    TrainState,
    UndoEntry,
    UndoStack,
    copy_optimizer_state,
)


class ActionError(RuntimeError):
    """An action that cannot be done in the current state (the message says why)."""


def _clone(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().clone()


class Stepper:
    """The live state of a session and its primitive operations. See the module docstring."""

    build: Build
    cfg: TrainConfig
    progress: Progress
    deltas: dict[str, torch.Tensor | None]
    analytic: dict[str, np.ndarray] | None
    best: Best | None  # the best state by validation loss so far (presets with validation)
    _run: object | None = None  # a run in progress (``runs.Runs``): no other action then

    def _init_state(self, build: Build, cfg: TrainConfig) -> None:
        self.build, self.cfg = build, cfg
        start_path(build, build.model.params.values())  # the loss landscape's path
        self.progress = self._fresh_progress(build)
        self.deltas = dict.fromkeys(build.model.params)
        self.analytic = None
        self.best = None
        self.undo_stack = UndoStack()
        self.redo_stack = UndoStack()
        # parameters before the last fast step (for its delta), once a fast step made them
        self._prev: list[torch.Tensor] | None = None
        self._prev_ready = False
        # the last backward's (scaled) loss and its micro-batch size: `backward again`
        # goes through its graph (kept only with retain_graph; never part of a state)
        self._graph: tuple[torch.Tensor, int] | None = None

    @staticmethod
    def _fresh_progress(build: Build) -> Progress:
        return Progress(backwards_since_zero=dict.fromkeys(build.model.params, 0))

    def _start_over(self, build: Build, cfg: TrainConfig) -> None:
        """A new build: counters, deltas and gradients start from nothing."""
        self.build, self.cfg = build, cfg
        start_path(build, build.model.params.values())
        self.progress = self._fresh_progress(build)
        self.deltas = dict.fromkeys(build.model.params)
        self.analytic = None
        self.best = None
        self._prev_ready = False

    # --- the one state ------------------------------------------------------------------

    def state(self, since: TrainState | None = None) -> TrainState:
        """A copy of everything an action can change. With ``since`` (an earlier state),
        the history marks also carry what going back to ``since`` would cut off (redo)."""
        b = self.build
        params = b.model.params
        same = since is not None and since.build is b
        return TrainState(
            build=b,
            config=self.cfg,
            progress=self.progress,
            values={n: p.detach().clone() for n, p in params.items()},
            grads={n: _clone(p.grad) for n, p in params.items()},
            deltas=dict(self.deltas),  # never modified in place, only replaced
            optimizer=copy_optimizer_state(b.optimizer.state_dict()) if b.optimizer else None,
            analytic=self.analytic,  # replaced, never modified in place
            marks={
                name: rec.mark(since.marks[name].length if same else None)  # type: ignore[union-attr]
                for name, rec in b.series.items()
            },
            transcript=tuple(b.transcript.entries),
            best=None if self.best is None else self.best.clone(),
        )

    def restore(self, st: TrainState) -> None:
        """Put the session in state ``st`` (its settings, build and numbers)."""
        b = st.build
        self.build, self.cfg = b, st.config
        with torch.no_grad():
            for n, p in b.model.params.items():
                p.copy_(st.values[n])
                p.grad = _clone(st.grads[n])
        if b.optimizer is not None and st.optimizer is not None:
            # a copy: load_state_dict may keep the very tensors it is given, and the
            # optimizer updates its state in place
            b.optimizer.load_state_dict(copy_optimizer_state(st.optimizer))
        self.progress, self.deltas, self.analytic = st.progress, dict(st.deltas), st.analytic
        for name, recorder in b.series.items():
            recorder.reset_to(st.marks[name])
        b.transcript.entries[:] = st.transcript
        restore_path(st)
        self.best = None if st.best is None else st.best.clone()
        self._prev_ready = False
        self._graph = None

    @contextmanager
    def transaction(self) -> Iterator[TrainState]:
        """All or nothing: if the body raises, the session goes back to the state it had
        (undo and redo stacks included) and the error goes on. No undo entry of its own."""
        before = self.state()
        stacks = self.undo_stack.saved(), self.redo_stack.saved()
        try:
            yield before
        except BaseException:
            self.restore(before)
            self.undo_stack.put_back(stacks[0])
            self.redo_stack.put_back(stacks[1])
            raise

    @contextmanager
    def _action(self, label: str, note: str = "") -> Iterator[TrainState]:
        """One user action: a transaction, and one undo entry (the state before it).
        Redo is cleared: a new action starts a new future."""
        if self._run is not None:
            raise ActionError(f"{label}: a run is going on - pause it first")
        with self.transaction() as before:
            yield before
        self.undo_stack.push(UndoEntry(label, before, note))
        self.redo_stack.clear()

    # --- data and loss ------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        return self.cfg.batch_size or self.build.n_train

    @property
    def n_batches(self) -> int:
        return -(-self.build.n_train // self.batch_size)

    @property
    def _in_one_batch(self) -> bool:
        """Every micro-batch is the whole training set in its own order."""
        return self.n_batches == 1 and not self.cfg.shuffle

    def _batch(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.build
        if self._in_one_batch:
            return b.x, b.y
        size = self.batch_size
        if self.cfg.shuffle:  # the DataLoader's order of this epoch
            epoch, j = divmod(c, self.n_batches)
            index = b.epoch_perm(epoch)[j * size : (j + 1) * size]
            return b.x[index], b.y[index]
        j = c % self.n_batches
        return b.x[j * size : (j + 1) * size], b.y[j * size : (j + 1) * size]

    def _loss(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return compute_loss(self.cfg.loss, self.build.model(xb), yb)

    @property
    def _scale(self) -> float:
        return self.cfg.accumulate if self.cfg.accumulate > 1 and self.cfg.scale_loss else 1

    # --- the primitives -----------------------------------------------------------------

    def _backward_on(self, c: int, kind: int, track: bool) -> torch.Tensor:
        """Forward on micro-batch ``c``, then ``loss.backward()``: every ``.grad`` ADDS."""
        xb, yb = self._batch(c)
        loss = self._loss(xb, yb)
        scaled = loss / self._scale if self._scale != 1 else loss
        params = self.build.model.params
        if track and self.build.model.is_linear:
            self._track_analytic(xb, yb)
        # p.grad += dloss/dp for every parameter; only zero_grad resets
        scaled.backward(retain_graph=self.cfg.retain_graph)
        self._graph = (scaled, len(xb)) if track else None
        p = self.progress
        counts = p.backwards_since_zero
        self.progress = replace(
            p,
            backwards_since_zero={
                n: counts[n] + (1 if params[n].grad is not None else 0) for n in counts
            },
            backward_total=p.backward_total + 1,
            samples_pending=p.samples_pending + len(xb),
            cursor=c + 1,
            last_batch=c,
            grad_step=p.step if p.grad_step is None else p.grad_step,
        )
        self.build.history.record(loss, p.step, kind)
        return loss

    def _track_analytic(
        self, xb: torch.Tensor, yb: torch.Tensor, at: dict[str, torch.Tensor] | None = None
    ) -> None:
        """Add the hand-derived gradient of this batch's (scaled) loss at the parameters
        ``at`` (default: the current ones) to the running analytic total."""
        model = self.build.model
        source = at or dict(model.params)
        values = {n: t.detach().cpu().numpy() for n, t in source.items()}
        grad = analytic.affine_gradient(
            model.kind, self.cfg.loss, values, xb.cpu().numpy(), yb.cpu().numpy()
        )
        grad = {n: g / self._scale for n, g in grad.items()}
        if self.analytic is None or all(p.grad is None for p in model.params.values()):
            self.analytic = grad
        else:
            self.analytic = {n: self.analytic[n] + g for n, g in grad.items()}

    def _zero(self, set_to_none: bool) -> None:
        opt = self.build.optimizer
        if opt is not None:
            opt.zero_grad(set_to_none=set_to_none)
        else:
            for p in self.build.model.params.values():
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()
        p = self.progress
        self.progress = replace(
            p,
            backwards_since_zero=dict.fromkeys(p.backwards_since_zero, 0),
            samples_pending=0,
            grad_step=None,
        )
        self.analytic = None

    def _apply_step(self, track_delta: bool = True) -> None:
        """``opt.step()`` (or ``p -= lr * p.grad``) with the gradients as they are."""
        b = self.build
        params = b.model.params
        before = {n: p.detach().clone() for n, p in params.items()} if track_delta else None
        if b.optimizer is not None:
            b.optimizer.step()
        else:
            lr = self.cfg.lr
            with torch.no_grad():
                for p in params.values():
                    if p.grad is not None:
                        p -= lr * p.grad
        if before is not None:
            self.deltas = {n: params[n].detach() - before[n] for n in params}
        p = self.progress
        self.progress = replace(
            p,
            step=p.step + 1,
            samples_trained=p.samples_trained + p.samples_pending,
            samples_pending=0,
        )
        path_of(b).record(params.values(), self.progress.step)
        mark = self.progress.cursor // self.n_batches
        if mark > p.epoch_mark:  # this step ended an epoch of the training loop
            self._validate(self.progress.step, p.epochs_done + 1)
            self.progress = replace(self.progress, epochs_done=p.epochs_done + 1, epoch_mark=mark)

    def _validate(self, step: int, epoch: int) -> None:
        """The validation phase that ends epoch ``epoch`` (see ``_validator``)."""
        validate = self._validator()
        if validate is not None:
            validate(step, epoch)

    def _validator(self, calls: Calls | None = None) -> Callable[[int, int], None] | None:
        """The validation phase, as the course's loop has it, with its tensors and
        settings looked up once (the fast path calls it every epoch): the loss averaged
        over the validation mini-batches and the accuracy, on the validation curves; the
        parameters kept if the loss is the best so far. All on the device (no host
        sync). None without a validation set. ``calls``: the forward and loss to use
        (default: ``model(x)`` and ``compute_loss``)."""
        b = self.build
        if b.val is None:
            return None
        calls = calls or ordinary(b.model, self.cfg.loss)
        forward, loss_of = calls.forward, calls.loss
        x, y = b.val
        n = len(x)
        size = self.cfg.batch_size or n
        chunks = [(x[i : i + size], y[i : i + size]) for i in range(0, n, size)]
        classify = b.dataset.task == "classification"  # accuracy only where it means one
        loss_name, history = self.cfg.loss, b.history
        record_val, record_acc = b.val_history.record, b.series["val_acc"].record
        keep = self._keep_if_best

        def validate(step: int, epoch: int) -> None:
            with torch.no_grad():
                total = correct = None
                for xv, yv in chunks:
                    out = forward(xv)
                    loss = loss_of(out, yv)
                    total = loss if total is None else total + loss
                    if classify:
                        hits = (predict_labels(loss_name, out) == yv).sum()
                        correct = hits if correct is None else correct + hits
                assert total is not None
                val = total / len(chunks) if len(chunks) > 1 else total
                record_val(val, step, len(history))
                if classify:
                    assert correct is not None
                    record_acc(correct.float() / n, step, epoch)
                keep(val, epoch)

        return validate

    def _keep_if_best(self, val: torch.Tensor, epoch: int) -> None:
        params = self.build.model.params
        best = self.best
        if best is None:
            self.best = Best(
                torch.tensor(epoch, device=val.device),
                val.detach().clone(),
                {n: p.detach().clone() for n, p in params.items()},
            )
            return
        if val.device.type == "cpu":  # reading a CPU tensor costs no device sync
            v, kept = float(val), float(best.val_loss)
            if not (v < kept or (math.isnan(kept) and not math.isnan(v))):
                return
            best.epoch.fill_(epoch)
            best.val_loss.copy_(val)
            torch._foreach_copy_(list(best.values.values()), [p.detach() for p in params.values()])
            return
        # better: lower, or the first finite one after NaN; a NaN loss is never better
        better = ~(val >= best.val_loss) & ~torch.isnan(val)
        best.epoch.copy_(torch.where(better, torch.tensor(epoch, device=val.device), best.epoch))
        best.val_loss.copy_(torch.where(better, val, best.val_loss))
        for n, p in params.items():
            best.values[n].copy_(torch.where(better, p.detach(), best.values[n]))

    def _train_step(self, track: bool) -> torch.Tensor:
        """zero_grad, K x (forward + backward), step; the step's loss (mean over K)."""
        self._zero(self.cfg.zero_grad == "none")
        total = None
        for _ in range(self.cfg.accumulate):
            loss = self._backward_on(self.progress.cursor, KIND_TRAIN, track)
            part = loss / self._scale if self._scale != 1 else loss
            total = part if total is None else total + part
        self._apply_step(track_delta=track)
        assert total is not None
        return total

    # --- many train steps, fast ---------------------------------------------------------

    def _fast_steps(self, n: int, deadline: float | None) -> int:
        """Up to ``n`` train steps with nothing per step but the training itself and a
        device-side copy of the loss (no .item(), no clones); the validation phase where
        an epoch ends, on the device. Counters, delta and analytic gradient are brought
        up to date by ``_settle``."""
        import time

        b = self.build
        self._graph = None  # the graphs of fast steps are not kept
        params = list(b.model.params.values())
        if self._prev is None or len(self._prev) != len(params):
            self._prev = [torch.empty_like(p) for p in params]
        prev, opt, lr = self._prev, b.optimizer, self.cfg.lr
        # detached views share storage with the parameters, which are updated in place
        values = [p.detach() for p in params]
        full = self._in_one_batch
        k, scale = self.cfg.accumulate, self._scale
        loss_name, model, record = self.cfg.loss, b.model, b.history.record
        step, cursor, samples = self.progress.step, self.progress.cursor, 0
        n_batches, epochs, mark = (
            self.n_batches,
            self.progress.epochs_done,
            self.progress.epoch_mark,
        )
        # model(x), the loss and backward() as the ops they end in (the same numbers)
        calls = calls_for(model, loss_name, b.x, b.y)
        forward, loss_of, backward = calls.forward, calls.loss, calls.backward
        validate = self._validator(calls)
        # the micro-batches in order, as views made once each (reshuffled ones are
        # gathered afresh every step: they are copies, one epoch of them a dataset's worth)
        views: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_batches
        shuffle = self.cfg.shuffle
        # opt.step()'s numbers with the per-call work done once (None: opt.step())
        update = fast_update(opt)
        retry = update is None and opt is not None  # once the first step has made the state
        path = path_of(b).writer(values)  # the parameters after every step (on the device)
        done = 0
        for i in range(n):
            # the deadline is looked at before the step, so the last step is known in time
            # to keep a copy of the parameters it starts from (for the delta): one copy per
            # call instead of one per step
            last = i == n - 1 or (deadline is not None and time.perf_counter() >= deadline)
            # .grad = None rather than zero_(): the same numbers after backward (every
            # parameter gets a gradient each step) without a zeroing kernel per step;
            # opt.zero_grad(set_to_none=True) does just this, through hooks
            for p in params:
                p.grad = None
            for _ in range(k):
                if full:
                    xb, yb = b.x, b.y
                elif shuffle:
                    xb, yb = self._batch(cursor)
                else:
                    pair = views[cursor % n_batches]
                    if pair is None:
                        pair = views[cursor % n_batches] = self._batch(cursor)
                    xb, yb = pair
                loss = loss_of(forward(xb), yb)
                backward(loss / scale if scale != 1 else loss)
                record(loss, step, KIND_TRAIN)
                cursor += 1
                samples += xb.shape[0]
            if last:
                torch._foreach_copy_(prev, values)
                self._prev_ready = True
            if update is not None:
                grads = [p.grad for p in params]
                if any(g is None for g in grads):  # a parameter the loss does not use:
                    opt.step()  # torch skips it (and its step count: no fast update after)
                    update = None
                else:
                    update(grads)
            elif opt is not None:
                opt.step()
                if retry:
                    update, retry = fast_update(opt), False
            else:
                with torch.no_grad():
                    for p in params:
                        if p.grad is not None:
                            p -= lr * p.grad
            step += 1
            done += 1
            path(step)
            if cursor // n_batches > mark:  # this step ended an epoch of the training loop
                epochs, mark = epochs + 1, cursor // n_batches
                if validate is not None:
                    validate(step, epochs)
            if last:
                break
        p = self.progress
        self.progress = replace(
            p,
            step=step,
            cursor=cursor,
            samples_trained=p.samples_trained + samples,
            samples_pending=0,
            backward_total=p.backward_total + done * k,
            epochs_done=epochs,
            epoch_mark=mark,
        )
        return done

    def _settle(self) -> None:
        """After fast steps: counters, delta, analytic gradient, batch and validation loss
        as single train steps would have left them (call it only after some)."""
        assert self._prev_ready, "_settle without fast steps since the last restore"
        k = self.cfg.accumulate
        b = self.build
        params = b.model.params
        self.progress = replace(
            self.progress,
            backwards_since_zero={n: (k if p.grad is not None else 0) for n, p in params.items()},
            last_batch=self.progress.cursor - 1,
            grad_step=self.progress.step - 1,  # the last step's gradient, taken before it
        )
        prev = self._prev
        assert prev is not None
        self.deltas = {n: p.detach() - q for (n, p), q in zip(params.items(), prev, strict=True)}
        self.analytic = None
        if b.model.is_linear:
            # the gradient now in .grad is that of the last step's micro-batches, taken at
            # the parameters that step started from
            start = dict(zip(params, prev, strict=True))
            for i in range(k):
                xb, yb = self._batch(self.progress.cursor - k + i)
                self._track_analytic(xb, yb, at=start)

    # --- the transcript -----------------------------------------------------------------

    def _ctx(self) -> Ctx:
        """The settings the code of an action done now depends on."""
        return ctx_of(self.cfg, self.build.n_train)

    def _record(self, action: str, kind: str, **args: Any) -> None:
        """The action, as data, in the transcript (its code is written when shown)."""
        self.build.transcript.add(action, kind, self._ctx(), **args)

    def _add_run_entry(self, n: int, c0: int) -> None:
        """``n`` train steps from micro-batch ``c0`` as one loop; consecutive train steps
        and runs with the same settings merge into one loop in the transcript."""
        ctx = self._ctx()
        entries = self.build.transcript.entries
        last = entries[-1] if entries else None
        if last is not None and last.run is not None and last.ctx == ctx:
            pn, pc0 = last.run
            if ctx.full_batch or pc0 + pn * ctx.k == c0:
                n, c0 = pn + n, pc0
                entries.pop()
        label = "train step" if n == 1 else f"{n} train steps"
        self.build.transcript.add(label, "train_steps", ctx, run=(n, c0), n=n, c0=c0)

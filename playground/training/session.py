"""A training session driven one PyTorch call at a time.

``Session`` owns the data, the model, the optimizer and their history. Each public method
is one action of the lesson (forward, backward, zero_grad, step, train_step, run, reset,
a settings change, loading a preset), and each is one undo entry: ``undo`` goes back to
the state before it, ``redo`` forward again. Each records the code it stands for in the
transcript and leaves everything the UI needs in ``snapshot()``. No threads and no UI
here: the runner thread, the CLI and notebooks call these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from playground.training import export, report
from playground.training.build import Build, make_build
from playground.training.capture import snapshot_of
from playground.training.config import LIVE, MOVE, REBUILD, SETTINGS, TrainConfig, effect_of
from playground.training.devices import resolve_device
from playground.training.history import Recorder
from playground.training.models import Model
from playground.training.param_path import path_of
from playground.training.presets import Preset, check_fit, find_preset
from playground.training.runs import Runs
from playground.training.snapshot import KIND_BACKWARD, KIND_FORWARD, Prediction, Snapshot
from playground.training.state import TrainState, UndoEntry
from playground.training.steps import ActionError
from playground.training.transcript import Transcript

__all__ = ["ActionError", "Session"]


class Session(Runs):
    """One exercise being trained. See the module docstring."""

    def __init__(self, preset: Preset, config: TrainConfig | None = None, **overrides: Any) -> None:
        cfg = (config or preset.config).with_overrides(**overrides)
        self._init_state(make_build(preset, cfg, resolve_device(cfg.device)), cfg)

    @classmethod
    def from_preset(cls, name_or_path: str, **overrides: Any) -> Session:
        """A session of a shipped preset (by name: ``"five-points"``) or of a preset file
        (a ``.toml`` path), with settings overridden (``lr=0.01``, ``device="cpu"``)."""
        return cls(find_preset(name_or_path), **overrides)

    def __repr__(self) -> str:
        """The parameters, .grad and backward counts, as a table (a plain REPL)."""
        return report.text_table(self.snapshot())

    def _repr_html_(self) -> str:
        """The same table in Jupyter."""
        return report.html_table(self.snapshot())

    # --- what it is made of -----------------------------------------------------------

    @property
    def preset(self) -> Preset:
        return self.build.preset

    @property
    def model(self) -> Model:
        return self.build.model

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        return self.build.optimizer

    @property
    def device(self) -> torch.device:
        return self.build.device

    @property
    def dataset(self) -> Any:
        return self.build.dataset

    @property
    def x(self) -> torch.Tensor:
        return self.build.x

    @property
    def y(self) -> torch.Tensor:
        return self.build.y

    @property
    def val(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self.build.val

    @property
    def history(self) -> Recorder:
        return self.build.history

    @property
    def val_history(self) -> Recorder:
        return self.build.val_history

    @property
    def transcript(self) -> Transcript:
        return self.build.transcript

    @property
    def step_count(self) -> int:
        return self.progress.step

    @property
    def cursor(self) -> int:
        return self.progress.cursor

    @property
    def backward_total(self) -> int:
        return self.progress.backward_total

    @property
    def epoch(self) -> float:
        """Passes over the training data by the training loop: samples whose gradient an
        optimizer step used, over the training set's size (a bare backward is no epoch)."""
        return self.progress.samples_trained / self.build.n_train

    # --- the actions --------------------------------------------------------------------

    def forward(self) -> float:
        """``loss = loss_fn(model(xb), yb)`` on the next micro-batch. ``.grad`` is untouched."""
        with self._action("forward"):
            c = self.progress.cursor
            with torch.no_grad():
                loss = self._loss(*self._batch(c))
            self.history.record(loss, self.progress.step, KIND_FORWARD)
            self._record("forward", "forward", c=c)
            value = float(loss.item())
            self.progress = replace(self.progress, last_batch=c)
        return value

    def backward(self) -> float:
        """Forward on the next micro-batch, then ``loss.backward()``.

        Every parameter's ``.grad`` ADDS this batch's gradient (``p.grad += dloss/dp``);
        nothing resets it but ``zero_grad``. With K > 1 the loss is divided by K first, so
        K backward passes sum to the gradient of the mean over the K micro-batches.
        """
        with self._action("backward"):
            c = self.progress.cursor
            loss = self._backward_on(c, KIND_BACKWARD, track=True)
            self._record("backward", "backward", c=c)
        return float(loss.item())

    def backward_again(self) -> float:
        """``loss.backward()`` once more through the last backward's graph (seed 002).

        Without ``retain_graph`` PyTorch has freed what the graph saved and refuses - its
        own RuntimeError is raised (as an ActionError, explained) and nothing changes;
        with it, every ``.grad`` ADDS the same gradient a second time.
        """
        if self._graph is None:
            raise ActionError(
                "backward again: there is no graph to go through - press b first (train "
                "steps, runs and undo do not keep theirs)"
            )
        loss, size = self._graph
        with self._action("backward again"):
            try:
                loss.backward(retain_graph=self.cfg.retain_graph)
            except RuntimeError as exc:
                raise ActionError(_graph_error(exc)) from exc
            params = self.model.params
            p = self.progress
            self.progress = replace(
                p,
                backwards_since_zero={
                    n: c + (1 if params[n].grad is not None else 0)
                    for n, c in p.backwards_since_zero.items()
                },
                backward_total=p.backward_total + 1,
                samples_pending=p.samples_pending + size,
            )
            self.history.record(loss * self._scale, p.step, KIND_BACKWARD)
            self.analytic = None  # the hand-derived total follows backward(), not this
            self._record("backward again", "backward_again")
        return float(loss.item()) * self._scale

    def zero_grad(self, set_to_none: bool | None = None) -> None:
        """``p.grad.zero_()`` for every parameter, or ``p.grad = None`` (``set_to_none``)."""
        if set_to_none is None:
            set_to_none = self.cfg.zero_grad == "none"
        with self._action("zero_grad(set_to_none=True)" if set_to_none else "zero_grad"):
            self._zero(set_to_none)
            self._record("zero_grad", "zero_grad", set_to_none=set_to_none)

    def step(self) -> None:
        """One optimizer step with the gradients as they are; ``.grad`` is NOT cleared."""
        if all(p.grad is None for p in self.model.params.values()):
            raise ActionError("step: every .grad is None - call backward() first")
        with self._action("step"):
            self._apply_step()
            self._record("step", "step")

    def train_step(self) -> float:
        """zero_grad, then K x (forward + backward), then step: one ordinary update."""
        with self._action("train step"):
            c0 = self.progress.cursor
            loss = self._train_step(track=True)
            self._add_run_entry(1, c0)
        return float(loss.item())

    def restore_best(self) -> int:
        """Put back the parameters of the epoch with the lowest validation loss so far
        (seed 003: "return the best model parameters"); the epoch it was. Undoable."""
        best = self.best
        if best is None:
            raise ActionError(
                "restore best: no validation phase yet (presets with a validation split keep "
                "the best state at the end of each epoch)"
            )
        epoch, loss = int(best.epoch), float(best.val_loss)
        with self._action(f"restore the best state (epoch {epoch})"):
            with torch.no_grad():
                for n, p in self.model.params.items():
                    p.copy_(best.values[n])
            self._record(
                f"restore the best state (epoch {epoch})",
                "load_values",
                values={n: t.detach().cpu().tolist() for n, t in best.values.items()},
                why=f"the best state by validation loss: epoch {epoch}, val loss {loss:.6g}",
            )
            path_of(self.build).record(self.model.params.values(), self.progress.step)
        return epoch

    def set_params(self, values: Mapping[str, Any], why: str = "") -> None:
        """Put the parameters at ``values`` (by name, each shaped like its parameter; one
        not named keeps its value): a point picked on the loss landscape, so gradient
        descent can start from anywhere. One undoable action. ``.grad`` is kept; the
        optimizer's state (momentum, Adam's moments) starts afresh: it belonged to the
        path the parameters left."""
        params = self.model.params
        unknown = sorted(set(values) - set(params))
        if unknown:
            raise ValueError(f"set parameters: no parameter(s) {unknown}; there are {list(params)}")
        new = {}
        for n, p in params.items():
            if n not in values:
                new[n] = p.detach().cpu()
                continue
            t = torch.tensor(values[n], dtype=p.dtype)
            if t.numel() != p.numel() or not bool(torch.isfinite(t).all()):
                raise ValueError(
                    f"set parameters: {n} must be {p.numel()} finite number(s) (shape "
                    f"{tuple(p.shape)}), not {values[n]!r:.80}"
                )
            new[n] = t.reshape(p.shape)
        said = ", ".join(f"{n} = {_short(new[n])}" for n in params if n in values)
        with self._action(f"set the parameters ({said})"):
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(new[n])
            if self.optimizer is not None:
                self.optimizer.state.clear()
            path_of(self.build).record(params.values(), self.progress.step)
            self._record(
                f"set the parameters ({said})",
                "set_values",
                values={n: t.tolist() for n, t in new.items()},
                why=why or "the parameters set by hand",
            )

    def split_loss(self, split: str) -> float | None:
        """The loss on a whole split ("train", "val", "test") at the current parameters,
        or None when the preset has no such split."""
        data = {"train": self.dataset.train, "val": self.dataset.val, "test": self.dataset.test}
        part = data[split]
        if part is None:
            return None
        with torch.no_grad():
            return float(self._loss(part.x.to(self.device), part.y.to(self.device)))

    def predict(self, at: Sequence[float]) -> Prediction:
        """The model's output at the input ``at`` (one value per feature), next to the
        least-squares line's when the preset has one. Changes nothing."""
        import math

        from playground.training.capture import least_squares_at, output_at, true_and_closed_form

        n = self.dataset.n_features
        if len(at) != n or not all(math.isfinite(v) for v in at):
            raise ValueError(f"predict: {list(at)!r} must be {n} finite number(s), one per input")
        values = tuple(float(v) for v in at)
        _, closed = true_and_closed_form(self.build, self.cfg)
        model = float(output_at(self.build, self.cfg, values))
        return Prediction(values, model, least_squares_at(closed, values))

    def reset(self) -> None:
        """Re-initialise data, model and optimizer from the seed (undoable)."""
        with self._action("reset"):
            self._start_over(make_build(self.preset, self.cfg, self.device), self.cfg)

    # --- undo and redo ------------------------------------------------------------------

    def undo(self) -> UndoEntry | None:
        """Go back to the state before the last action; None when there is none.
        The undone state goes on the redo stack."""
        if self.running:
            raise ActionError("undo: a run is going on - pause it first")
        entry = self.undo_stack.pop()
        if entry is None:
            return None
        current = self.state(since=entry.state)
        try:
            self.restore(entry.state)
        except BaseException:
            self.undo_stack.push(entry)
            self.restore(current)
            raise
        self.redo_stack.push(UndoEntry(entry.label, current, entry.note))
        return entry

    def redo(self) -> UndoEntry | None:
        """Apply again the last action undone; None when there is none."""
        if self.running:
            raise ActionError("redo: a run is going on - pause it first")
        entry = self.redo_stack.pop()
        if entry is None:
            return None
        current = self.state()
        try:
            self.restore(entry.state)
        except BaseException:
            self.redo_stack.push(entry)
            self.restore(current)
            raise
        self.undo_stack.push(UndoEntry(entry.label, current, entry.note))
        return entry

    @property
    def undo_depth(self) -> int:
        return len(self.undo_stack)

    @property
    def redo_depth(self) -> int:
        return len(self.redo_stack)

    # --- settings -----------------------------------------------------------------------

    def configure(self, **changes: Any) -> str:
        """Change settings; returns what that did (``config.LIVE``, ``REBUILD``, ``MOVE``).

        Live ones (lr, momentum, K, ...) keep the training state; a new device moves it
        there; anything else (model, loss, optimizer, seed ...) starts training again from
        the seed. Each change is one undo entry (a move carries the undo stack along). A
        bad value raises ValueError and changes nothing.
        """
        new_cfg = self.cfg.with_overrides(**changes)  # unknown names and bad values raise
        changes = new_cfg.changes_from(self.cfg)
        if not changes:
            return LIVE
        effect = effect_of(changes)
        if "device" in changes:
            self.move_to(changes.pop("device"))
            if not changes:
                return MOVE
            new_cfg = self.cfg.with_overrides(**changes)
        said = ", ".join(f"{k} = {v!r}" for k, v in changes.items())
        if effect == REBUILD:
            check_fit(self.preset, new_cfg)  # the loss and the labels, the model, the memory
            with self._action(f"set {said} (training restarted)"):
                build = make_build(self.preset, new_cfg, self.device)
                self._start_over(build, new_cfg)
            return effect
        with self._action(f"set {said}"):
            size = changes.get("batch_size")
            if size is not None and (size or self.build.n_train) > self.build.n_train:
                raise ValueError(f"batch_size: {size} > {self.build.n_train} training samples")
            self.cfg = new_cfg
            self._apply_live(changes)
        return effect

    def _apply_live(self, changes: dict[str, Any]) -> None:
        opt = self.optimizer
        for name, value in changes.items():
            if SETTINGS[name].optimizer_hyper:
                used = (
                    opt is None
                    and name == "lr"
                    or (opt is not None and name in opt.param_groups[0])
                )
                if opt is not None and used:
                    for group in opt.param_groups:
                        group[name] = value
                self._record(f"set {name}", "set_hyper", name=name, value=value, used=used)
        if "accumulate" in changes:
            self._record("set K", "set_k", k=self.cfg.accumulate)
        if "batch_size" in changes:
            # a fresh walk over the data: the next epoch starts at the first micro-batch
            self.progress = replace(self.progress, cursor=0, epoch_mark=0)
            self._record("set batch size", "set_batch")
        if "shuffle" in changes:
            # the loop's batches from here on: the DataLoader's (reshuffled) or in order
            self._record("set shuffle", "set_shuffle")

    def move_to(self, device: str) -> None:
        """Carry the whole training state (parameters, grads, optimizer state, data, undo
        and redo stacks) to another device, e.g. back to the CPU after CUDA ran out of
        memory. Not an undo entry of its own: every state moves along."""
        dev = resolve_device(device)
        if dev == self.device:
            self.cfg = self.cfg.with_overrides(device=device)
            return
        old = self.device
        builds = {id(b): b for b in self._builds()}.values()
        with self.transaction():  # on failure: the state and both stacks as they were
            try:
                for b in builds:
                    b.to(dev)
                for stack in (self.undo_stack, self.redo_stack):
                    stack.map(lambda e: UndoEntry(e.label, _moved(e.state, dev, device), e.note))
            except BaseException:
                for b in builds:  # the objects the saved state refers to, back where they were
                    try:
                        b.to(old)
                    except Exception:  # noqa: BLE001 - the old device may be the broken one
                        pass
                raise
            self._prev = None
            self._prev_ready = False
            self.cfg = self.cfg.with_overrides(device=device)

    def _builds(self) -> list[Build]:
        return [self.build] + [e.state.build for s in (self.undo_stack, self.redo_stack) for e in s]

    def load(self, preset: Preset, **overrides: Any) -> None:
        """Start ``preset`` afresh in this session (undoable: ``undo`` comes back here).
        The device stays unless ``overrides`` says otherwise."""
        overrides.setdefault("device", self.cfg.device)
        cfg = preset.config.with_overrides(**overrides)
        with self._action(f"load {preset.name}"):
            self._start_over(make_build(preset, cfg, resolve_device(cfg.device)), cfg)

    def adopt(self, other: Session, label: str) -> None:
        """Continue with ``other``'s state (an opened file), as one undoable action."""
        with self._action(label):
            self.restore(other.state())

    # --- output -------------------------------------------------------------------------

    def export_script(self, path: str | Path) -> Path:
        """Write the code of the session as a runnable .py file (``# %%`` cells)."""
        return export.write_script(self.transcript, path, self.cfg.code_style)

    def export_notebook(self, path: str | Path) -> Path:
        """Write the code of the session as a Jupyter notebook (.ipynb)."""
        return export.write_notebook(self.transcript, path, self.cfg.code_style)

    def export_loss_csv(self, path: str | Path) -> Path:
        """Write every batch loss (and the validation loss after each step) as CSV."""
        return export.write_loss_csv(self.history, self.val_history, path)

    def script(self) -> str:
        return self.transcript.script(self.cfg.code_style)

    def snapshot(self) -> Snapshot:
        """Everything the screen shows, as plain data (one host copy per dtype)."""
        return snapshot_of(
            self.build,
            self.cfg,
            self.progress,
            self.deltas,
            self.analytic,
            self.best,
            undo=(self.undo_depth, _label(self.undo_stack.peek())),
            redo=(self.redo_depth, _label(self.redo_stack.peek())),
        )


def _graph_error(exc: RuntimeError) -> str:
    """PyTorch's own message, first line, and what it means here."""
    text = str(exc).strip().splitlines()[0]
    if "second time" in text or "freed" in text:
        why = (
            "backward() frees what the graph saved once it is done; switch 'retain graph' "
            "on (backward(retain_graph=True)) and press b again to keep it"
        )
    elif "inplace" in text:
        why = "a step has changed the parameters in place since: the graph no longer matches"
    else:
        why = "the graph of the last backward cannot be used again"
    return f"backward again: PyTorch says: {text} - {why}"


def _short(t: torch.Tensor) -> str:
    """A parameter's value for a label: "3.15", "[0.1, -2]", "(8 values)"."""
    flat = t.reshape(-1).tolist()
    if len(flat) == 1:
        return f"{flat[0]:.4g}"
    if len(flat) <= 3:
        return "[" + ", ".join(f"{v:.4g}" for v in flat) + "]"
    return f"({len(flat)} values)"


def _label(entry: UndoEntry | None) -> str | None:
    return None if entry is None else entry.label


def _moved(state: TrainState, dev: torch.device, name: str) -> TrainState:
    return replace(state.to(dev), config=state.config.with_overrides(device=name))

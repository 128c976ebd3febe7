"""Undo and redo a user can predict: every action is one undo entry, a run is one however
many slices drove it, redo re-applies exactly, and after a divergence the first undo
lands on the last step with a finite loss - complete, as a plain torch loop has it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from playground.training.config import LIVE, REBUILD
from playground.training.presets import find_preset
from playground.training.session import Session
from playground.training.state import UndoEntry, UndoStack


def session(name: str = "five-points", **overrides: Any) -> Session:
    return Session(find_preset(name), device="cpu", **overrides)


def seen(s: Session) -> dict[str, Any]:
    """Everything the screen shows of a session, as bytes (bit-for-bit comparisons)."""
    snap = s.snapshot()
    out: dict[str, Any] = {
        "step": snap.step,
        "epoch": snap.epoch,
        "cursor": snap.cursor,
        "batch": snap.batch,
        "backward_total": snap.backward_total,
        "config": snap.config,
        "preset": snap.preset,
        "log": snap.log,
        "history": tuple(np.asarray(a).tobytes() for a in vars(snap.history).values()),
        "train_loss": snap.train_loss,
        "val_loss": snap.val_loss,
    }
    for p in snap.params:
        for key in ("value", "grad", "last_delta", "analytic_grad"):
            a = getattr(p, key)
            out[f"{p.name}.{key}"] = None if a is None else np.asarray(a).tobytes()
        out[f"{p.name}.backwards"] = p.backwards_since_zero
    out["optimizer"] = {
        n: {k: np.asarray(v).tobytes() for k, v in st.items()}
        for n, st in snap.optimizer.state.items()
    }
    return out


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    diff = [k for k in a if a[k] != b.get(k)]
    assert not diff, f"differs: {diff}"


ACTIONS: dict[str, Callable[[Session], Any]] = {
    "forward": lambda s: s.forward(),
    "backward": lambda s: s.backward(),
    "zero_grad": lambda s: s.zero_grad(),
    "zero_grad to None": lambda s: s.zero_grad(set_to_none=True),
    "step": lambda s: s.step(),
    "train step": lambda s: s.train_step(),
    "run": lambda s: s.run(7),
    "a live setting": lambda s: s.configure(lr=0.01),
    "a setting that restarts": lambda s: s.configure(optimizer="adam"),
    "reset": lambda s: s.reset(),
    "a preset load": lambda s: s.load(find_preset("noisy-line")),
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_action_is_one_undo_entry_and_redo_applies_it_again(action: str) -> None:
    """From a state with gradients, momentum and history in place: the action, one undo
    (back to before, bit for bit), one redo (back to after, bit for bit)."""
    s = session("multiple-regression", momentum=0.9)
    s.train_step()
    s.backward()
    before, depth = seen(s), s.undo_depth
    ACTIONS[action](s)
    after = seen(s)
    assert s.undo_depth == depth + 1, "one action, one entry"
    entry = s.undo()
    assert entry is not None
    assert_same(before, seen(s))
    assert s.redo() is not None
    assert_same(after, seen(s))
    assert s.redo() is None, "nothing more to redo"


def test_a_new_action_after_undo_clears_redo() -> None:
    s = session()
    s.backward()
    s.step()
    s.undo()
    assert s.redo_depth == 1
    s.zero_grad()
    assert s.redo_depth == 0 and s.redo() is None


def test_undo_after_a_run_returns_to_before_the_run_however_it_was_sliced() -> None:
    """The runner drives a run in 40 ms slices; the run is still one entry."""
    s = session("noisy-line")
    start = seen(s)
    s.begin_run(3000)
    slices = 0
    while s.run_slice(time_budget=0.001).reason == "budget":
        slices += 1
    assert slices > 1 and s.step_count == 3000
    end = seen(s)
    assert s.undo_depth == 1
    s.undo()
    assert_same(start, seen(s))
    s.redo()
    assert_same(end, seen(s))


def test_a_run_in_slices_ends_with_what_one_call_gives() -> None:
    sliced, whole = session("noisy-line"), session("noisy-line")
    sliced.begin_run(500)
    while sliced.run_slice(time_budget=0.0005).reason == "budget":
        pass
    whole.run(500)
    a, b = seen(sliced), seen(whole)
    # the loop's transcript entry and the curves are the same; only the validation curve
    # differs (one point per slice)
    for key in ("step", "cursor", "backward_total", "weight.value", "bias.grad", "log"):
        assert a[key] == b[key], key


def lr5_by_hand(steps: int) -> tuple[list[torch.Tensor], list[float]]:
    """noisy-line with lr 5, as a plain torch loop: the parameters after each step and
    each step's loss (the oracle the undo after a divergence is checked against)."""
    s = session("noisy-line", lr=5.0)
    w = s.model.params["weight"].detach().clone().requires_grad_(True)
    b = s.model.params["bias"].detach().clone().requires_grad_(True)
    x, y = s.x, s.y
    params = [torch.cat([w.detach().reshape(-1), b.detach()])]
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss((x @ w.T + b).squeeze(-1), y)
        w.grad = b.grad = None
        loss.backward()
        with torch.no_grad():
            w -= 5.0 * w.grad
            b -= 5.0 * b.grad
        losses.append(float(loss.detach()))
        params.append(torch.cat([w.detach().reshape(-1), b.detach()]))
    return params, losses


def test_after_a_divergence_undo_lands_on_the_last_finite_step_complete() -> None:
    """lr 5 on noisy-line diverges; the first undo lands on the last step whose loss was
    finite - and every column there is that step's: values and .grad as a plain torch
    loop has them, the step delta, the analytic gradient, the validation loss, the
    code; the second undo is before the run."""
    s = session("noisy-line", lr=5.0)
    start = seen(s)
    result = s.run(1000)
    assert result.reason == "diverged"
    params, losses = lr5_by_hand(result.step)
    first_bad = next(i for i, v in enumerate(losses) if not np.isfinite(v))
    finite = first_bad - 1
    assert result.finite_step == finite and result.step == first_bad + 1

    entry = s.undo()
    assert entry is not None and entry.note == "the last finite loss"
    snap = s.snapshot()
    assert snap.step == finite
    assert snap.train_loss is not None and np.isfinite(snap.train_loss)
    w, b = snap.param("weight"), snap.param("bias")
    got = np.concatenate([w.value.reshape(-1), b.value])
    # (float32 in another order of operations than nn.Linear: equal to rounding)
    np.testing.assert_allclose(got, params[finite].numpy(), rtol=1e-5)
    delta = np.concatenate([w.last_delta.reshape(-1), b.last_delta])
    np.testing.assert_allclose(delta, (params[finite] - params[finite - 1]).numpy(), rtol=1e-5)
    # .grad is that of the step that made these values, at the values before it
    np.testing.assert_allclose(
        np.concatenate([w.grad.reshape(-1), b.grad]),
        -(params[finite] - params[finite - 1]).numpy() / 5.0,
        rtol=1e-4,
    )
    np.testing.assert_allclose(w.analytic_grad, w.grad, rtol=1e-4)
    assert snap.batch_loss == pytest.approx(losses[finite - 1], rel=1e-6)
    assert snap.history.val_loss[-1] == pytest.approx(snap.val_loss, rel=1e-6)
    assert snap.history.val_step[-1] == finite
    assert snap.log[-1].startswith(f"# {finite} train steps")
    assert np.isfinite(snap.history.loss).all()

    s.undo()
    assert_same(start, seen(s))


def test_the_undo_stack_is_bounded_by_bytes_as_well_as_depth() -> None:
    s = session("tfp-spiral")  # an MLP: some kilobytes per state
    state = s.state()
    stack = UndoStack(depth=100, max_bytes=10 * state.nbytes + s.build.data_nbytes)
    for i in range(30):
        stack.push(UndoEntry(f"{i}", state))
    assert 9 <= len(stack) <= 10, "the oldest went first"
    assert [e.label for e in stack][-1] == "29"
    assert stack.nbytes <= stack.max_bytes
    one = UndoStack(depth=100, max_bytes=1)
    one.push(UndoEntry("big", state))
    assert len(one) == 1, "the newest entry is kept however large"


def test_a_failed_action_changes_nothing_not_even_the_stacks() -> None:
    s = session()
    s.backward()
    s.step()
    s.undo()
    before, stacks = seen(s), (s.undo_depth, s.redo_depth)
    with pytest.raises(ValueError):
        s.configure(batch_size=99)  # more than the 5 samples
    assert_same(before, seen(s))
    assert (s.undo_depth, s.redo_depth) == stacks


def test_settings_say_what_changing_them_does_and_unknown_ones_are_named() -> None:
    s = session()
    assert s.configure(lr=0.002) == LIVE
    assert s.configure(optimizer="sgd") == REBUILD
    with pytest.raises(ValueError, match="unknown setting.*foo"):
        s.configure(foo=1)


def test_momentum_is_kept_on_the_way_to_adam_and_back() -> None:
    s = session("noisy-line", momentum=0.9)
    s.configure(optimizer="adam")
    assert s.cfg.momentum == 0.9
    s.configure(optimizer="sgd")
    assert s.cfg.momentum == 0.9
    assert s.optimizer.param_groups[0]["momentum"] == 0.9


def test_the_code_follows_undo_so_the_script_replays_what_is_on_screen(tmp_path: Any) -> None:
    """b b z b s, then undo the step and the backward: the exported script ends with the
    values on screen (the undone actions are gone from it)."""
    import subprocess
    import sys

    s = session()
    for act in (s.backward, s.backward, s.zero_grad, s.backward, s.step, s.backward):
        act()
    s.undo()
    s.undo()
    s.undo()  # back to just after the zero_grad
    assert [e.split("\n")[0] for e in s.snapshot().log] == [
        "# backward",
        "# backward",
        "# zero_grad",
    ]
    s.train_step()
    path = s.export_script(tmp_path / "replay.py")
    out = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=120, check=True
    ).stdout.splitlines()
    printed = [float(v) for line in out[1:] for v in line.strip("[]").split(",")]
    shown = [float(p.value.reshape(-1)[0]) for p in s.snapshot().params]
    assert printed == pytest.approx(shown, rel=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_move_to_the_gpu_and_back_carries_undo_and_redo_along() -> None:
    s = session("multiple-regression", momentum=0.9)
    s.run(5)
    s.backward()
    s.step()
    s.undo()
    before = seen(s)
    s.move_to("cuda")
    assert s.snapshot().device.startswith("cuda")
    s.move_to("cpu")
    assert_same(before, seen(s))
    s.redo()
    s.undo()
    s.undo()  # the backward, then the run: entries made on the CPU, moved twice
    s.undo()
    assert s.snapshot().step == 0

"""Faults: an exception in the middle of an action, a loss that turns NaN, a bad setting.
The user sees a message, and the session is exactly as it was before the failed command;
the runner goes on taking commands."""

from __future__ import annotations

import dataclasses
import math
import queue
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

import playground.training.steps as steps_module
from playground.protocol import Act, Call, Configure, Event, Failed, Load, Published, Run
from playground.runner import Runner
from playground.training.presets import find_preset
from playground.training.runs import StopReason
from playground.training.session import Session


class Events:
    """What the runner publishes, in order; ``next`` waits for one of a kind."""

    def __init__(self) -> None:
        self.q: queue.Queue[Event] = queue.Queue()

    def __call__(self, event: Event) -> None:
        self.q.put(event)

    def next(self, kind: type = Event, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            ev = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(ev, kind):
                return ev

    def settle(self, kind: type = Published, timeout: float = 30.0) -> Any:
        """The last event of ``kind`` once the runner has been quiet for a moment (after
        at least one such event: loading torch and the first preset can take seconds)."""
        last = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ev = self.q.get(timeout=0.3)
            except queue.Empty:
                if last is not None:
                    return last
                continue
            if isinstance(ev, kind):
                last = ev
        return last


@pytest.fixture
def runner() -> Iterator[tuple[Runner, Events]]:
    events = Events()
    r = Runner(events, device="cpu")
    r.start()
    yield r, events
    r.stop(timeout=30)
    assert not r.alive


class _Boom(torch.autograd.Function):
    """Identity forward; its backward raises, as a failing kernel would."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("injected failure inside backward()")


class Injector:
    """Patches the session's loss - that of single steps and that of run mode's fast
    steps - so that the backward of its N-th call (from when it is armed) raises. Arming
    happens on the runner thread, through a Call (outside the session's transaction: the
    counters here are the test's, not the session's)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.fail_at: int | None = None
        original, original_calls = steps_module.compute_loss, steps_module.calls_for

        def counted(value: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            if self.fail_at is not None and self.calls == self.fail_at:
                return _Boom.apply(value)
            return value

        def loss(name: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return counted(original(name, out, y))

        def calls_for(*args: Any) -> Any:
            calls = original_calls(*args)
            return dataclasses.replace(calls, loss=lambda out, y: counted(calls.loss(out, y)))

        monkeypatch.setattr(steps_module, "compute_loss", loss)
        monkeypatch.setattr(steps_module, "calls_for", calls_for)

    def arm(self, nth: int) -> Call:
        def fn(_s: Any) -> None:
            self.fail_at = self.calls + nth

        return Call(fn, "arm")


def _state(snap: Any) -> dict[str, Any]:
    """Everything a user can see of the training state in a snapshot."""
    out: dict[str, Any] = {
        "step": snap.step,
        "epoch": snap.epoch,
        "backward_total": snap.backward_total,
        "batch": snap.batch,
        "batch_loss": snap.batch_loss,
        "config": snap.config,
        "model": snap.model,
        "log": tuple(snap.log),
        "undo_depth": snap.undo_depth,
        "redo_depth": snap.redo_depth,
        "history": tuple(np.asarray(a).tobytes() for a in _hist(snap)),
    }
    for p in snap.params:
        out[f"{p.name}.value"] = np.asarray(p.value).tobytes()
        out[f"{p.name}.grad"] = None if p.grad is None else np.asarray(p.grad).tobytes()
        out[f"{p.name}.count"] = p.backwards_since_zero
        out[f"{p.name}.delta"] = (
            None if p.last_delta is None else np.asarray(p.last_delta).tobytes()
        )
    return out


def _hist(snap: Any) -> tuple[np.ndarray, ...]:
    h = snap.history
    return (h.loss, h.step, h.kind, h.val_loss, h.val_index)


def _same(a: Any, b: Any) -> None:
    sa, sb = _state(a), _state(b)
    diff = [k for k in sa if sa[k] != sb.get(k)]
    assert not diff, f"changed by a failed command: {diff}"


# --- an exception inside an action, through the runner ---------------------------------


@pytest.mark.parametrize(
    "preset, overrides, action, nth",
    [
        ("five-points", {}, "train_step", 1),  # by hand, full batch
        ("five-points", {"accumulate": 2}, "train_step", 2),  # after one micro-batch
        ("multiple-regression", {"momentum": 0.9}, "train_step", 1),  # SGD state
        ("tfp-two-gaussians", {"accumulate": 3}, "train_step", 3),  # Adam, mini-batches
        ("five-points", {}, "backward", 1),  # grads must not half-accumulate
    ],
)
def test_exception_inside_backward_is_rolled_back_by_the_runner(
    runner: tuple[Runner, Events],
    monkeypatch: pytest.MonkeyPatch,
    preset: str,
    overrides: dict[str, Any],
    action: str,
    nth: int,
) -> None:
    """A crash inside loss.backward() part-way through an action: Failed is published,
    the next snapshot equals the one before (parameters, grads, counters, history,
    transcript), and later commands still run."""
    r, ev = runner
    inject = Injector(monkeypatch)
    r.submit(Load(preset, overrides))
    r.submit(Act("train_step"))
    r.submit(Act("backward"))  # some gradient and history in place already
    before = ev.settle()
    assert before is not None and before.snapshot.step == 1

    r.submit(inject.arm(nth))
    ev.next(Published)
    r.submit(Act(action))
    failed = ev.next(Failed)
    assert "injected failure" in failed.message
    after = ev.next(Published)
    assert after.seq > before.seq
    _same(before.snapshot, after.snapshot)

    inject.fail_at = None
    r.submit(Act("train_step"))
    nxt = ev.next(Published)
    assert nxt.snapshot.step == 2
    assert r.alive


def test_a_failing_call_after_changes_is_rolled_back(runner: tuple[Runner, Events]) -> None:
    """A Call that trains and then raises leaves nothing of its training behind."""
    r, ev = runner
    r.submit(Load("multiple-regression", {"momentum": 0.9}))
    r.submit(Act("train_step"))
    before = ev.settle()

    def train_then_fail(s: Any) -> None:
        s.train_step()
        s.run(5)
        s.backward()
        raise ValueError("the call failed after changing things")

    r.submit(Call(train_then_fail, "bad"))
    failed = ev.next(Failed)
    assert "failed after changing things" in failed.message
    _same(before.snapshot, ev.next(Published).snapshot)
    r.submit(Act("train_step"))
    assert ev.next(Published).snapshot.step == 2


def test_exception_during_a_run_leaves_a_consistent_state(
    runner: tuple[Runner, Events], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash inside backward() while running (K = 2): the run stops with Failed and the
    state shown is that of a whole number of completed steps - exactly what training
    that many steps without the fault gives - never half a step, and not "running"."""
    r, ev = runner
    inject = Injector(monkeypatch)
    r.submit(Load("five-points", {"accumulate": 2}))
    r.submit(Act("train_step"))
    ev.settle()
    r.submit(inject.arm(7))  # the 1st micro-batch of the 4th step of the run
    ev.next(Published)
    r.submit(Run(steps=10))
    ev.next(Failed)
    final = ev.settle()
    snap = final.snapshot
    assert not final.running and final.status == "paused"

    ref = Session(find_preset("five-points"), device="cpu", accumulate=2)
    ref.train_step()
    if snap.step > 1:
        ref.run(snap.step - 1)
    want = ref.snapshot()
    problems = []
    if snap.backward_total != want.backward_total:
        problems.append(f"backward_total {snap.backward_total} != {want.backward_total}")
    if len(snap.history.loss) != len(want.history.loss):
        problems.append(f"history length {len(snap.history.loss)} != {len(want.history.loss)}")
    for p in want.params:
        got = snap.param(p.name)
        if not np.array_equal(got.value, p.value):
            problems.append(f"{p.name} differs from {snap.step} clean steps")
        if (got.grad is None) != (p.grad is None) or (
            p.grad is not None and not np.array_equal(got.grad, p.grad)
        ):
            problems.append(f"{p.name}.grad is not that of step {snap.step}")
        if got.backwards_since_zero != p.backwards_since_zero:
            problems.append(
                f"{p.name} backward count {got.backwards_since_zero} != {p.backwards_since_zero}"
            )
    assert not problems, f"after a fault at step {snap.step} of a run: {problems}"


def test_every_session_action_is_a_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the runner too: a crash inside train_step part-way through (after its first
    micro-batch) leaves nothing of the step behind, and a state taken before (the one
    shape undo, save and recovery use) puts everything back as well."""
    inject = Injector(monkeypatch)
    s = Session(find_preset("five-points"), device="cpu", accumulate=2)
    s.train_step()
    s.backward()
    snap_before = s.snapshot()
    state = s.state()
    inject.fail_at = inject.calls + 2
    with pytest.raises(RuntimeError, match="injected failure"):
        s.train_step()
    _same(snap_before, s.snapshot())
    s.train_step()
    s.restore(state)
    s.undo_stack.pop()  # the train step's entry: the stacks are not part of a state
    _same(snap_before, s.snapshot())
    inject.fail_at = None
    s.train_step()
    assert s.step_count == 2


# --- a loss that becomes NaN ------------------------------------------------------------


@pytest.mark.parametrize("lr", [0.5, 1e30])
def test_nan_loss_mid_run_pauses_as_diverged_and_undo_returns_to_finite(
    runner: tuple[Runner, Events], lr: float
) -> None:
    """With a learning rate far too large the loss overflows (inf, then NaN parameters
    with lr = 1e30): the run stops by itself with status "diverged" and a message, and
    undo returns to the last state whose parameters and loss are finite."""
    r, ev = runner
    r.submit(Load("five-points", {"lr": lr}))
    r.submit(Run(steps=5000))
    done = ev.settle(timeout=60)
    snap = done.snapshot
    assert not done.running
    assert done.status == "diverged"
    assert f"diverged at step {snap.step}" in done.message
    assert snap.step < 5000
    losses = snap.history.loss
    assert np.isfinite(losses[:-1]).all() and not np.isfinite(losses[-1])

    r.submit(Act("undo"))
    undone = ev.next(Published)
    back = undone.snapshot
    for p in back.params:
        assert np.isfinite(p.value).all(), p.name
    assert back.train_loss is not None and math.isfinite(back.train_loss)
    assert np.isfinite(back.history.loss).all()
    assert back.step < snap.step
    assert undone.status != "diverged"


def test_nan_loss_in_session_run_is_reported_not_raised() -> None:
    """Session.run itself: a diverging run returns reason "diverged" (no exception)."""
    s = Session(find_preset("five-points"), device="cpu", lr=0.5)
    result = s.run(5000)
    assert result.reason == "diverged"
    assert result.reason is StopReason.DIVERGED
    assert s.undo()
    assert all(torch.isfinite(p).all() for p in s.model.params.values())


# --- bad settings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"lr": -1}, "lr"),
        ({"lr": 0}, "lr"),
        ({"lr": "abc"}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"lr": math.inf}, "lr"),
        ({"momentum": 1.5}, "momentum"),
        ({"accumulate": 0}, "accumulate"),
        ({"accumulate": 2.5}, "accumulate"),
        ({"batch_size": 10**6}, "batch_size"),
        ({"model": "nope"}, "model"),
        ({"optimizer": "nope"}, "optimizer"),
        ({"loss": "bce"}, "loss"),  # needs class labels; this is regression
        ({"hidden": (0,), "model": "mlp"}, "hidden"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_bad_configure_publishes_failed_and_keeps_the_old_setting(
    runner: tuple[Runner, Events], changes: dict[str, Any], field: str
) -> None:
    """A bad value in the settings panel: a message naming the setting, and training goes
    on with the setting that was in force (checked by the size of the next update)."""
    r, ev = runner
    r.submit(Load("five-points"))
    r.submit(Act("train_step"))
    before = ev.settle()
    r.submit(Configure(changes))
    failed = ev.next(Failed)
    assert field in failed.message, failed.message
    after = ev.next(Published)
    _same(before.snapshot, after.snapshot)

    # the old lr is in force: by hand, the update is exactly -lr * grad
    r.submit(Act("zero_grad"))
    r.submit(Act("backward"))
    r.submit(Act("step"))
    snap = ev.settle().snapshot
    assert snap.config.lr == 0.001
    assert snap.model == before.snapshot.model
    for p in snap.params:
        expected = -np.float32(0.001) * np.asarray(p.grad)
        np.testing.assert_allclose(p.last_delta, expected, rtol=1e-5, atol=1e-9)

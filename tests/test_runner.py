"""The runner thread alone (no UI): scripted commands in, the expected events out."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from playground.protocol import (
    Act,
    Call,
    Configure,
    Event,
    Export,
    Failed,
    Load,
    Notice,
    Pause,
    Published,
    Ready,
    Result,
    Run,
)
from playground.runner import Runner

X = np.array([5.0, 7.0, 12.0, 16.0, 20.0])
Y = np.array([40.0, 120.0, 180.0, 210.0, 240.0])


def grads(w: float, b: float) -> tuple[float, float]:
    """dL/dw, dL/db of the five-point MSE, by hand."""
    r = w * X + b - Y
    return float(np.mean(2 * r * X)), float(np.mean(2 * r))


class Events:
    """Collects what the runner publishes; ``next`` waits for the next event of a kind."""

    def __init__(self) -> None:
        self.q: queue.Queue[Event] = queue.Queue()
        self.all: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.q.put(event)

    def next(self, kind: type = Event, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            ev = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            self.all.append(ev)
            if isinstance(ev, kind):
                return ev

    def until(self, pred: Callable[[Published], bool], timeout: float = 30.0) -> Published:
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next(Published, max(0.01, deadline - time.monotonic()))
            if pred(ev):
                return ev


@pytest.fixture
def runner() -> Iterator[tuple[Runner, Events]]:
    events = Events()
    r = Runner(events, device="cpu")
    r.start()
    yield r, events
    r.stop()
    assert not r.alive


def g(ev: Published, name: str, attr: str = "grad") -> float:
    a = getattr(ev.snapshot.param(name), attr)
    return float(a.reshape(-1)[0])


def test_scripted_session_publishes_one_snapshot_per_command(runner: Any) -> None:
    r, events = runner
    for cmd in (
        Load("five-points"),
        Act("backward"),
        Act("backward"),
        Act("zero_grad"),
        Act("backward"),
        Act("step"),
        Act("undo"),
    ):
        r.submit(cmd)
    ready = events.next(Ready)
    assert "cpu" in ready.devices
    snaps = [events.next(Published) for _ in range(7)]
    assert [e.seq for e in snaps] == list(range(1, 8))
    load, b1, b2, zero, b3, step, undo = snaps
    gw, gb = grads(1.0, 1.0)
    assert load.snapshot.param("w").grad is None and load.snapshot.step == 0
    assert g(b1, "w") == pytest.approx(gw, rel=1e-5) and g(b1, "b") == pytest.approx(gb, rel=1e-5)
    assert g(b2, "w") == pytest.approx(2 * gw, rel=1e-5)
    assert b2.snapshot.param("w").backwards_since_zero == 2
    assert g(zero, "w") == 0.0 and zero.snapshot.param("w").backwards_since_zero == 0
    assert g(step, "w", "value") == pytest.approx(1 - 0.001 * gw, rel=1e-6)
    assert g(step, "b", "value") == pytest.approx(1 - 0.001 * gb, rel=1e-6)
    assert step.snapshot.step == 1
    assert g(undo, "w", "value") == 1.0 and undo.snapshot.step == 0
    assert not any(isinstance(e, Failed) for e in events.all)


def test_bad_configure_fails_and_keeps_the_session(runner: Any) -> None:
    r, events = runner
    r.submit(Load("five-points"))
    r.submit(Act("train_step"))
    r.submit(Configure({"lr": -1.0}))
    r.submit(Configure({"lr": 0.01}))
    before = events.until(lambda e: e.seq == 2)
    failed = events.next(Failed)
    assert failed.command == "Configure" and "lr" in failed.message and failed.details
    after_fail = events.next(Published)
    assert after_fail.snapshot.config.lr == 0.001
    live = events.next(Published)
    assert live.snapshot.config.lr == 0.01
    # a live setting keeps the training state
    assert live.snapshot.step == before.snapshot.step == 1
    assert g(live, "w", "value") == g(before, "w", "value")


def test_run_pause_lands_within_a_slice(runner: Any) -> None:
    r, events = runner
    r.submit(Load("noisy-line"))
    r.submit(Configure({"max_steps": 10_000_000}))
    r.submit(Run())
    events.until(lambda e: e.running and e.snapshot.step > 10)
    t0 = time.perf_counter()
    r.submit(Pause())
    paused = events.until(lambda e: not e.running)
    assert time.perf_counter() - t0 < 0.25  # slices are 40 ms; generous for loaded CI
    assert paused.status == "paused"
    steps = np.diff(paused.snapshot.history.step)
    assert (steps >= 0).all()


def test_run_until_loss_converges(runner: Any) -> None:
    r, events = runner
    r.submit(Load("noisy-line"))
    r.submit(Run(until_loss=2.0))
    done = events.until(lambda e: not e.running and e.seq >= 2)
    s = done.snapshot
    assert done.status == "converged" and done.message.startswith("converged at step")
    assert s.history.loss[-1] <= 2.0


def test_divergence_pauses_and_undo_returns_to_finite(runner: Any) -> None:
    r, events = runner
    r.submit(Load("noisy-line", {"lr": 5.0, "max_steps": 100_000}))
    r.submit(Run())
    done = events.until(lambda e: not e.running and e.seq >= 2)
    s = done.snapshot
    assert done.status == "diverged"
    assert done.message.startswith(f"diverged at step {s.step} (lr too large?)")
    r.submit(Act("undo"))
    s = events.next(Published).snapshot
    assert all(np.isfinite(p.value).all() for p in s.params)


def test_export_and_call_and_unknown_preset(runner: Any, tmp_path: Path) -> None:
    r, events = runner
    r.submit(Load("no-such-preset"))
    failed = events.next(Failed)
    assert failed.command == "Load" and "no-such-preset" in failed.message
    r.submit(Load("five-points"))
    r.submit(Act("backward"))
    path = tmp_path / "out.py"
    r.submit(Export(str(path)))
    assert events.next(Notice).message == f"wrote {path}"
    assert "loss.backward()" in path.read_text()
    r.submit(Call(lambda s: s.backward_total, "count"))
    result = events.next(Result)
    assert (result.label, result.value) == ("count", 1)

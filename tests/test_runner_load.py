"""The runner under load: a thousand queued key presses are each applied once, in order,
and quitting while they drain does not wait for the whole queue."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from playground.protocol import Act, Call, Event, Failed, Load, Published, Ready, Result
from playground.runner import Runner
from playground.training.presets import find_preset
from playground.training.session import Session

N = 1000


class Recorder:
    """Every event, in the order the runner published them (thread-safe append)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def __call__(self, event: Event) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def wait_for(self, pred: Any, timeout: float = 60.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: pred(self.events), timeout)

    def of(self, kind: type) -> list[Any]:
        with self.lock:
            return [e for e in self.events if isinstance(e, kind)]


def test_a_thousand_queued_train_steps_are_each_applied_once_in_order() -> None:
    """Holding the train-step key: 1000 commands queued at once end at step 1000 exactly,
    with one snapshot per command, sequence numbers rising by one, steps rising by one,
    and the parameters equal to 1000 train steps done directly."""
    rec = Recorder()
    r = Runner(rec, device="cpu")
    r.start()
    try:
        r.submit(Load("five-points"))
        for i in range(N):
            r.submit(Act("train_step"))
            if (i + 1) % 250 == 0:
                r.submit(Call(lambda s: s.step_count, f"at {i + 1}"))
        assert rec.wait_for(lambda evs: len([e for e in evs if isinstance(e, Result)]) == 4)
        assert rec.wait_for(lambda evs: sum(isinstance(e, Published) for e in evs) == N + 5)
    finally:
        r.stop(timeout=30)
    assert not r.alive
    assert not rec.of(Failed)
    assert len(rec.of(Ready)) == 1

    # Calls interleaved with the steps see the step count exactly where they were queued
    assert [(e.label, e.value) for e in rec.of(Result)] == [
        (f"at {k}", k) for k in (250, 500, 750, 1000)
    ]
    pubs = rec.of(Published)
    assert r.applied == N + 5  # Load + 1000 train steps + 4 calls
    assert [p.seq for p in pubs] == list(range(1, N + 6))
    steps = [p.snapshot.step for p in pubs]
    assert steps[0] == 0 and steps[-1] == N
    assert all(b - a in (0, 1) for a, b in zip(steps, steps[1:], strict=False))
    assert len(set(steps)) == N + 1  # every step from 0 to 1000 was seen
    final = pubs[-1].snapshot
    assert len(final.history.loss) == N

    ref = Session(find_preset("five-points"), device="cpu")
    for _ in range(N):
        ref.train_step()
    for p in ref.snapshot().params:
        assert np.array_equal(final.param(p.name).value, p.value), p.name


def test_stop_while_commands_drain_returns_promptly() -> None:
    """Quitting the app while a long queue drains: stop() returns, the thread is gone,
    and it ended after the command in hand rather than working through the whole queue;
    what was applied is a prefix of the queue, in order."""
    rec = Recorder()
    r = Runner(rec, device="cpu")
    r.start()
    total = 2 * N
    r.submit(Load("five-points"))
    for _ in range(total):
        r.submit(Act("train_step"))
    # wait until the drain is under way
    assert rec.wait_for(lambda evs: sum(isinstance(e, Published) for e in evs) >= 3)
    t0 = time.monotonic()
    r.stop(timeout=30)
    took = time.monotonic() - t0
    assert not r.alive, f"runner thread still alive {took:.1f} s after stop()"
    assert took < 30
    applied = r.applied
    pubs = rec.of(Published)
    steps = [p.snapshot.step for p in pubs]
    assert steps == list(range(len(steps))), "applied out of order"
    assert applied == len(pubs)
    assert applied < total + 1, (
        f"stop() waited for all {total} queued commands to be applied ({took:.1f} s) "
        "instead of ending after the command in hand"
    )

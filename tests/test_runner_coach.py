"""The runner tells each action in words: the explanation travels with the snapshot that
follows it; predictions and lessons are commands like the others."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from playground.protocol import (
    Act,
    Configure,
    Expect,
    Failed,
    Load,
    Notice,
    Published,
    Run,
    StartLesson,
)
from playground.runner import Runner
from tests.test_runner import Events


@pytest.fixture
def runner() -> Iterator[tuple[Runner, Events]]:
    events = Events()
    r = Runner(events, device="cpu")
    r.start()
    yield r, events
    r.stop()
    assert not r.alive


def test_each_action_comes_with_its_explanation(runner: Any) -> None:
    r, events = runner
    for cmd in (Load("five-points"), Act("backward"), Act("backward"), Act("step")):
        r.submit(cmd)
    load, b1, b2, step = (events.next(Published) for _ in range(4))
    assert load.explanation.lines[0].startswith("loaded Five points")
    assert "w.grad -4170.4 -> -8340.8" in b2.explanation.text
    assert "9.3408" in step.explanation.text
    # two passes in .grad with K = 1: the course's "so important" zero_grad
    assert [c.kind for c in step.explanation.cautions] == ["forgot_zero_grad"]
    assert not b2.explanation.cautions


def test_a_run_is_told_once_when_it_ends_and_a_pause_says_so(runner: Any) -> None:
    r, events = runner
    r.submit(Load("noisy-line"))
    r.submit(Run())
    events.next(Published)
    end = events.until(lambda e: not e.running)
    assert "10 train steps (step 0 -> 10)" in end.explanation.text
    r.submit(Configure({"max_steps": 10**9}))
    r.submit(Run())
    events.until(lambda e: e.running)
    r.submit(Run())  # the toggle pauses
    paused = events.until(lambda e: not e.running)
    assert paused.explanation.action == "run" and "paused at step" in paused.explanation.text


def test_a_prediction_then_the_action_says_how_close(runner: Any) -> None:
    r, events = runner
    r.submit(Load("two-points"))
    r.submit(Expect("w.grad = -174"))
    r.submit(Act("backward"))
    noted = events.next(Notice)
    assert noted.message == "prediction noted: w.grad = -174"
    after = events.until(lambda e: e.explanation is not None and e.explanation.action == "backward")
    assert after.explanation.prediction == "you predicted w.grad = -174; it is -174: exact"


def test_a_bad_prediction_fails_with_the_reason(runner: Any) -> None:
    r, events = runner
    r.submit(Load("two-points"))
    r.submit(Expect("the answer = 42"))
    failed = events.next(Failed)
    assert failed.command == "Expect" and "not a quantity" in failed.message


def test_a_lesson_starts_follows_the_actions_and_names_unknown_ones(runner: Any) -> None:
    r, events = runner
    r.submit(Load("two-points"))
    r.submit(StartLesson("nope"))
    failed = events.next(Failed)
    assert "two-points has no lesson 'nope' (lessons: by-hand)" in failed.message
    r.submit(StartLesson())
    started = events.until(lambda e: e.explanation is not None and e.explanation.lesson is not None)
    assert started.explanation.lesson.index == 0 and started.explanation.lesson.predict == "w.grad"
    r.submit(Expect("-174"))  # a number alone: the lesson's quantity
    r.submit(Act("backward"))
    done = events.until(lambda e: e.explanation is not None and e.explanation.action == "backward")
    assert done.explanation.lesson.index == 1
    assert done.explanation.lesson_feedback.startswith("✓")
    r.submit(StartLesson(stop=True))
    ended = events.until(lambda e: e.explanation is not None and e.explanation.action == "lesson")
    assert ended.explanation.lesson is None

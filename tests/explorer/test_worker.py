"""The explorer's worker thread alone: commands in, exactly one frozen event out for each.

No screen here: ``publish`` puts the events on a queue, and each test reads the answers in
the order the commands went in.
"""

from __future__ import annotations

import dataclasses
import queue
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import torch

from playground.explorer.graph import GradExplorer
from playground.explorer.protocol import (
    EXPLORER_ACTIONS,
    Explore,
    ExplorerAct,
    ExplorerCommand,
    ExplorerEvent,
    ExplorerFailed,
    ExpressionPresets,
    GraphShown,
    ListExpressionPresets,
    LoadExpressionPreset,
    SetRetainGraph,
)
from playground.explorer.worker import NO_GRAPH, ExplorerWorker

SIGMOID = "s = 1/(1 + exp(-x))"
SEED_SIGMOID_GRAD = 0.1049935854035065  # grad_sigmoid_manual(2.0) in the course
TIMEOUT_S = 60.0  # the first answer waits for torch's import on the worker thread


class Harness:
    """A started worker whose events land on a queue, with the thread that published each."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[ExplorerEvent, threading.Thread]] = queue.Queue()
        self.worker = ExplorerWorker(
            lambda event: self.events.put((event, threading.current_thread()))
        )
        self.worker.start()

    def ask(self, command: ExplorerCommand) -> ExplorerEvent:
        """Submit one command and return its answer."""
        self.worker.submit(command)
        event, _ = self.events.get(timeout=TIMEOUT_S)
        assert event.command is command  # every answer names the command it answers
        return event

    def graph(self, command: ExplorerCommand) -> GraphShown:
        event = self.ask(command)
        assert isinstance(event, GraphShown), event
        return event

    def failure(self, command: ExplorerCommand) -> ExplorerFailed:
        event = self.ask(command)
        assert isinstance(event, ExplorerFailed), event
        return event


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    assert h.worker.stop(timeout=10)


def test_explore_answers_with_the_graph_after_one_backward(harness: Harness) -> None:
    view = harness.graph(Explore("1/(1 + exp(-x))", "x=2")).view
    assert view.output == "d" and view.backward_passes == 1 and view.graph_freed
    x = next(row for row in view.checks if row.name == "x")
    assert x.autograd == pytest.approx(SEED_SIGMOID_GRAD, abs=1e-15)
    assert x.symbolic == pytest.approx(SEED_SIGMOID_GRAD, abs=1e-15)


def test_backward_adds_with_retain_graph_and_zero_grad_resets(harness: Harness) -> None:
    harness.graph(Explore(SIGMOID, "x=2"))
    again = harness.graph(ExplorerAct("backward")).view  # the graph was freed: PyTorch says so
    assert "Trying to backward through the graph a second time" in (again.error or "")
    assert again.backward_passes == 1
    assert harness.graph(SetRetainGraph(True)).view.retain_graph
    harness.graph(ExplorerAct("forward"))
    harness.graph(ExplorerAct("backward"))
    view = harness.graph(ExplorerAct("backward")).view
    assert view.backward_passes == 3
    assert view.node("x").grad == pytest.approx(3 * SEED_SIGMOID_GRAD)  # backward ADDS
    zeroed = harness.graph(ExplorerAct("zero_grad")).view
    assert zeroed.backward_passes == 0 and zeroed.node("x").grad == 0.0


def test_step_backward_starts_over_after_the_last_node(harness: Harness) -> None:
    total = harness.graph(Explore(SIGMOID, "x=2")).view.step_total
    assert total == 5
    for n in range(1, total + 1):
        assert len(harness.graph(ExplorerAct("step_backward")).view.steps_done) == n
    assert len(harness.graph(ExplorerAct("step_backward")).view.steps_done) == 1
    assert harness.graph(ExplorerAct("reset_steps")).view.steps_done == ()


def test_a_bad_expression_fails_with_the_caret_and_keeps_the_old_graph(
    harness: Harness,
) -> None:
    harness.graph(Explore(SIGMOID, "x=2"))
    failed = harness.failure(Explore("x + (", "x=1"))
    assert failed.field == "expression"
    assert "syntax error" in failed.message and "(col 5)" in failed.message
    assert failed.pointer == "x + (\n    ^"
    assert failed.text == f"expression: {failed.message}\nx + (\n    ^"
    # the graph from before is still there to act on
    assert harness.graph(ExplorerAct("zero_grad")).view.output == "s"


def test_bad_values_fail_naming_the_values_field(harness: Harness) -> None:
    failed = harness.failure(Explore("x**2", "x=oops"))
    assert failed.field == "values"
    assert failed.message.startswith("expected a number for 'x'")
    assert failed.pointer == "x=oops\n  ^"
    missing = harness.failure(Explore("x*y", "x=1"))  # found by the engine, from the expression
    assert missing.field == "expression" and "no value for y" in missing.message


def test_actions_before_any_graph_say_what_to_do_first(harness: Harness) -> None:
    for command in [*(ExplorerAct(name) for name in EXPLORER_ACTIONS), SetRetainGraph(True)]:
        failed = harness.failure(command)
        assert failed.field is None and failed.text == NO_GRAPH


def test_presets_are_listed_and_loaded(harness: Harness) -> None:
    listed = harness.ask(ListExpressionPresets())
    assert isinstance(listed, ExpressionPresets)
    names = [p.name for p in listed.presets]
    assert "sigmoid" in names and "polynomial" in names
    shown = harness.graph(LoadExpressionPreset("sigmoid"))
    assert shown.preset is not None and shown.preset.name == "sigmoid"
    assert shown.note == f"{shown.preset.title}: {shown.preset.description}"
    assert shown.view.output == "s" and shown.view.backward_passes == 1
    assert shown.view.node("x").grad == pytest.approx(SEED_SIGMOID_GRAD)
    unknown = harness.failure(LoadExpressionPreset("nope"))
    assert unknown.field is None
    assert unknown.message.startswith("error: no expression preset named 'nope'; known: ")


def test_an_engine_failure_is_an_event_and_the_thread_carries_on(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.graph(Explore(SIGMOID, "x=2", retain_graph=True))

    def broken(self: GradExplorer):  # noqa: ANN202
        raise ZeroDivisionError("inside the engine")

    monkeypatch.setattr(GradExplorer, "backward", broken)
    failed = harness.failure(ExplorerAct("backward"))
    assert failed.text == "error: ZeroDivisionError: inside the engine"
    failed = harness.failure(Explore("x**2", "x=3"))  # a new graph fails the same way
    assert failed.text == "error: ZeroDivisionError: inside the engine"
    monkeypatch.undo()
    assert harness.worker.alive
    assert harness.graph(ExplorerAct("backward")).view.backward_passes == 2  # the old graph
    assert harness.failure(object()).text.startswith("error: TypeError: not an explorer command")  # type: ignore[arg-type]


def test_events_are_published_on_the_worker_thread_frozen_and_tensor_free(
    harness: Harness,
) -> None:
    command = Explore(SIGMOID, "x=2")
    harness.worker.submit(command)
    event, publisher = harness.events.get(timeout=TIMEOUT_S)
    assert publisher is not threading.current_thread()
    assert publisher.name == ExplorerWorker.name
    assert isinstance(event, GraphShown)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.view.nodes[0].value = 0.0  # type: ignore[misc]

    def no_tensors(value: object) -> None:
        assert not isinstance(value, torch.Tensor), value
        if dataclasses.is_dataclass(value):
            for field in dataclasses.fields(value):
                no_tensors(getattr(value, field.name))
        elif isinstance(value, (tuple, list)):
            for item in value:
                no_tensors(item)

    no_tensors(event)


def test_without_torch_every_command_says_so_and_the_presets_still_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "playground.explorer.graph", None)  # import fails
    h = Harness()
    try:
        failed = h.failure(Explore("x**2", "x=3"))
        assert failed.text.startswith("error: the autograd explorer cannot start: ")
        assert "ModuleNotFoundError" in failed.text and "playground.explorer.graph" in failed.text
        assert isinstance(h.ask(ListExpressionPresets()), ExpressionPresets)
    finally:
        assert h.worker.stop(timeout=10)


def test_stop_ends_the_thread_promptly_and_drops_queued_commands() -> None:
    h = Harness()
    h.ask(Explore(SIGMOID, "x=2"))  # torch is loaded: the thread is idle on its queue
    t0 = time.perf_counter()
    assert h.worker.stop(timeout=5)
    assert time.perf_counter() - t0 < 1.0
    assert not h.worker.alive
    gate = threading.Event()

    def publish_when_let_go(event: ExplorerEvent) -> None:
        gate.wait(TIMEOUT_S)

    stuck = ExplorerWorker(publish_when_let_go)  # stuck in its first answer
    stuck.start()
    for _ in range(100):
        stuck.submit(ExplorerAct("backward"))
    stuck.stop(timeout=0)
    gate.set()
    assert stuck.stop(timeout=5)
    assert stuck.applied <= 1  # the backlog was dropped, not worked through

"""Runs: train steps until max steps, a loss tolerance, or divergence - exactly, and fast.

A run is one action however it is driven: ``run()`` does it in one call (the CLI, a
notebook); the runner thread calls ``begin_run``, then ``run_slice`` every ~40 ms so the
UI stays live and a pause lands quickly, then ``end_run``. Either way the run is one undo
entry, taken when it began: ``undo`` after a run returns to the state before it.

No host sync per step: losses stay on the device and are looked at once per chunk of
steps (16 growing to 1024). A chunk that crossed a stop condition is replayed from its
start up to the step that crossed it, so the result is the same as checking every step.
When the loss stops being finite, the run keeps the last state whose loss was finite as
an undo entry of its own, complete (delta, analytic gradient, validation loss, code), so
the first ``undo`` lands there and the next one before the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from playground.training.state import TrainState, UndoEntry
from playground.training.steps import ActionError, Stepper


class StopReason(StrEnum):
    """Why a run (or one slice of it) stopped."""

    MAX_STEPS = "max_steps"  # its number of steps is done
    CONVERGED = "converged"  # a step's loss reached the tolerance
    DIVERGED = "diverged"  # a step's loss was not finite
    BUDGET = "budget"  # the slice's time is up; the run goes on
    PAUSED = "paused"  # ended before any of the above


@dataclass(frozen=True)
class RunResult:
    steps: int  # train steps done (by this slice, or by the whole run for ``run``)
    reason: StopReason
    loss: float | None  # the batch loss of the last step
    step: int  # the step count it stopped at
    stop_loss: float | None = None  # converged: the loss that reached the tolerance
    finite_step: int | None = None  # diverged: the last step whose loss was finite


def describe(result: RunResult, until: float | None = None) -> str:
    """One line on how a run ended: "converged at step 160: loss 9.5e-06 <= 1e-05"."""
    if result.reason is StopReason.CONVERGED:
        return f"converged at step {result.step}: loss {result.stop_loss:.3g} <= {until:g}"
    if result.reason is StopReason.DIVERGED:
        back = (
            f"; step {result.finite_step} had the last finite loss"
            if result.finite_step is not None
            else "; the loss was not finite from the start"
        )
        return f"diverged at step {result.step} (lr too large?){back}"
    if result.reason is StopReason.MAX_STEPS:
        return f"reached step {result.step}"
    return f"stopped at step {result.step}"


@dataclass
class _Plan:
    """A run in progress."""

    before: TrainState  # the state the run began from: its undo entry
    target: int  # the step count to stop at
    until: float | None
    finite: TrainState | None = None  # after a divergence: the last state with a finite loss
    slice_starts: tuple[TrainState, ...] = ()  # the last two slices' first states (closed)
    stop_loss: float | None = None


class Runs(Stepper):
    """The run actions of a session. See the module docstring."""

    _run: _Plan | None = None
    _chunk_size = 16  # steps per loss check; doubles to 1024 and carries over between slices

    @property
    def running(self) -> bool:
        return self._run is not None

    def run(
        self,
        steps: int | None = None,
        until_loss: float | None = None,
        time_budget: float | None = None,
    ) -> RunResult:
        """Train steps until ``steps`` are done (default: max_steps), a step's loss is <=
        ``until_loss`` (default: the setting), the loss is not finite (reported as
        "diverged", not raised), or ``time_budget`` seconds have passed. One undo entry."""
        self.begin_run(steps, until_loss)
        start = self.progress.step
        deadline = None if time_budget is None else time.perf_counter() + time_budget
        try:
            while True:
                left = None if deadline is None else max(0.0, deadline - time.perf_counter())
                result = self.run_slice(left)
                if result.reason is not StopReason.BUDGET or deadline is not None:
                    break
        finally:
            self.end_run()
        return RunResult(
            self.progress.step - start,
            result.reason,
            result.loss,
            result.step,
            result.stop_loss,
            result.finite_step,
        )

    def begin_run(self, steps: int | None = None, until_loss: float | None = None) -> None:
        """Start a run of ``steps`` train steps; ``run_slice`` does them."""
        if self._run is not None:
            raise ActionError("run: a run is going on already")
        steps = self.cfg.max_steps if steps is None else steps
        if steps < 0:
            raise ActionError(f"run: {steps} steps")
        until = self.cfg.until_loss if until_loss is None else until_loss
        self._run = _Plan(self.state(), self.progress.step + steps, until)

    def run_slice(self, time_budget: float | None = None, steps: int | None = None) -> RunResult:
        """Train steps for up to ``time_budget`` seconds and up to ``steps`` steps (None:
        no limit, to the end of the run).

        A slice that fails is taken back whole and ends the run, which keeps the slices
        before it. Reason BUDGET means the run goes on (call again); any other reason
        ends it (``end_run`` has been called).
        """
        plan = self._run
        if plan is None:
            raise ActionError("run_slice: no run is going on")
        deadline = None if time_budget is None else time.perf_counter() + time_budget
        stop_at = plan.target if steps is None else min(plan.target, self.progress.step + steps)
        start = self.state()
        try:
            reason = self._chunks(plan, start, deadline, stop_at)
        except BaseException:
            self.restore(start)
            self.end_run()
            raise
        p = self.progress
        result = RunResult(
            p.step - start.progress.step,
            reason,
            self.build.history.last(),
            p.step,
            plan.stop_loss,
            plan.finite.progress.step if plan.finite is not None else None,
        )
        if reason is not StopReason.BUDGET:
            self.end_run()
        return result

    def end_run(self) -> None:
        """Finish the run in progress (if any): it becomes one undo entry - two after a
        divergence (the last finite state first)."""
        entries = self.run_entries()
        self._run = None
        for entry in entries:
            self.undo_stack.push(entry)
        if entries:
            self.redo_stack.clear()

    def run_entries(self) -> list[UndoEntry]:
        """The undo entries the run in progress makes when it ends (none if it has done
        nothing yet): a file saved mid-run keeps them too."""
        plan = self._run
        if plan is None or self.progress.step == plan.before.progress.step:
            return []
        n = self.progress.step - plan.before.progress.step
        entries = [UndoEntry(f"run ({n} train step{'s' if n != 1 else ''})", plan.before)]
        if plan.finite is not None:
            k = self.progress.step - plan.finite.progress.step
            label = f"the last {k} step{'s' if k != 1 else ''}"
            entries.append(UndoEntry(label, plan.finite, note="the last finite loss"))
        return entries

    # --- inside a slice -----------------------------------------------------------------

    def _chunks(
        self, plan: _Plan, start: TrainState, deadline: float | None, stop_at: int
    ) -> StopReason:
        """Fast steps in chunks from ``start`` (this slice's first state) up to step
        ``stop_at`` or a reason to stop; then the steps are closed as single train steps
        would have left them."""
        plan.slice_starts = (plan.slice_starts[-1:] + (start,))[-2:]
        chunk, reason = self._chunk_size, None
        while reason is None and self.progress.step < stop_at:
            n = min(chunk, stop_at - self.progress.step)
            reason = self._chunk(plan, n, deadline)
            if reason is None and deadline is not None and time.perf_counter() >= deadline:
                reason = StopReason.BUDGET
            chunk = min(2 * chunk, 1024)
        self._chunk_size = chunk
        if reason is not StopReason.DIVERGED:  # a divergence has closed its own steps
            self._close(start)
        if reason in (None, StopReason.BUDGET):
            reason = (
                StopReason.MAX_STEPS if self.progress.step >= plan.target else StopReason.BUDGET
            )
        return reason

    def _close(self, since: TrainState) -> None:
        """The fast steps taken since state ``since``: counters, delta, validation loss
        and the transcript's loop entry, as if each had been a single train step."""
        n = self.progress.step - since.progress.step
        if n > 0:
            self._settle()
            self._add_run_entry(n, since.progress.cursor)

    def _chunk(self, plan: _Plan, n: int, deadline: float | None) -> StopReason | None:
        """``n`` fast steps; the reason to stop, or None to go on."""
        history = self.build.history
        first, step0 = len(history), self.progress.step
        self._fast_steps(n, deadline)
        k = self.cfg.accumulate
        per_step = history.tail(first).reshape(-1, k).sum(axis=1) / self._scale
        bad = ~np.isfinite(per_step)
        hit = bad | (per_step <= plan.until) if plan.until is not None else bad
        if not hit.any():
            return None
        i = int(np.argmax(hit))  # the first step that stops the run
        if bad[i]:
            self._diverge(plan, step0 + i)
            return StopReason.DIVERGED
        self._replay_to(plan.slice_starts[-1], step0 + i + 1)
        plan.stop_loss = float(per_step[i])
        return StopReason.CONVERGED

    def _replay_to(self, origin: TrainState, step: int) -> None:
        """Back to ``origin`` and fast steps from there to step count ``step`` (the same
        numbers: the same operations in the same order)."""
        if self.progress.step != step:
            self.restore(origin)
            self._fast_steps(step - origin.progress.step, None)

    def _diverge(self, plan: _Plan, bad_step: int) -> None:
        """The step taken from step count ``bad_step`` had a non-finite loss, so the
        parameters it started from are already bad; the last state with a finite loss is
        the one before (``bad_step - 1``). Replay to it from the last state that was
        closed (a slice's start, or the run's), keep it, complete, for ``undo``, then take
        two more steps so the screen shows the loss that was not finite."""
        current = plan.slice_starts[-1]
        if bad_step == plan.before.progress.step:  # the run began from non-finite parameters
            self._replay_to(current, bad_step + 1)
            self._close(current)
            return
        finite = bad_step - 1
        origin = next(
            (s for s in (*reversed(plan.slice_starts), plan.before) if s.progress.step <= finite),
            plan.before,
        )
        self.restore(origin)
        if finite > origin.progress.step:
            self._fast_steps(finite - origin.progress.step, None)
            self._close(origin)
        plan.finite = self.state()
        self._fast_steps(2, None)
        self._close(plan.finite)

"""The coach: narration, the course's warnings, predictions and the lesson in hand.

One ``Coach`` follows a session's actions (the runner owns one; ``playground run
--explain`` another). After each action ``after(action, snapshot)`` returns an
``Explanation``: what just happened (``narrate``), the warnings the course calls "so
important" - each said once per session, before the user goes on -

- ``forgot_zero_grad``: a step with more backward passes in .grad than K;
- ``stale``: a step with a gradient computed before the previous step;
- ``lr_growing``: the training loss grew for 3 steps in a row;
- ``unscaled``: K > 1 backward passes without the 1/K scaling;

how close the student's prediction was (``expect("w.grad = -174")`` before the action),
and the lesson's progress. Tensor-free: it reads snapshots.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from playground.training.lessons import Lesson, LessonView, Tracker
from playground.training.narrate import narrate
from playground.training.quantities import (
    Quantity,
    QuantityError,
    close_enough,
    fmt,
    parse,
    value_of,
)
from playground.training.snapshot import Snapshot

GROWTH_STEPS = 3  # steps of growing training loss before the learning-rate warning
STEP_ACTIONS = ("step", "train_step", "run")

WARNINGS = {
    "forgot_zero_grad": "did you forget zero_grad?",
    "stale": "a stale gradient",
    "lr_growing": "the learning rate is too large",
    "unscaled": "K > 1 without the 1/K scaling",
}


@dataclass(frozen=True)
class Caution:
    """One of the course's warnings: its kind (``WARNINGS``) and what will happen."""

    kind: str
    text: str

    @property
    def title(self) -> str:
        return WARNINGS[self.kind]


@dataclass(frozen=True)
class Explanation:
    """What the coach says after one action."""

    action: str
    lines: tuple[str, ...]  # what just happened
    cautions: tuple[Caution, ...] = ()  # raised by this action (each kind once a session)
    prediction: str | None = None  # how close the prediction made before it was
    lesson: LessonView | None = None
    lesson_feedback: str | None = None  # what the action did for the lesson

    @property
    def text(self) -> str:
        return " ".join(self.lines)


@dataclass(frozen=True)
class Expectation:
    """A value the student expects a quantity to have after the next action."""

    quantity: Quantity
    value: float
    digits: float  # half a unit of the last digit typed: "-174" is right within 0.5

    def judged(self, snap: Snapshot) -> str:
        try:
            got = value_of(self.quantity, snap)
        except QuantityError as exc:
            return f"your prediction of {self.quantity.text} cannot be checked: {exc}"
        said = f"you predicted {self.quantity.text} = {fmt(self.value)}; it is {fmt(got)}"
        if got is None:
            return f"{said}: no value at all"
        if close_enough(got, self.value, 1e-6):
            return f"{said}: exact"
        if abs(got - self.value) <= self.digits:
            return f"{said}: right to the digits you gave"
        off = got - self.value
        rel = f" ({abs(off) / abs(got):.1%})" if got else ""
        return f"{said}: off by {fmt(off)}{rel}"


_EXPECT = re.compile(r"^\s*([^=]+?)\s*=\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*$")


def parse_expectation(text: str, default: str | None = None) -> Expectation:
    """``"w.grad = -174"`` (or just ``"-174"`` with a ``default`` quantity)."""
    m = _EXPECT.match(text)
    if m is None and default is not None:
        m = _EXPECT.match(f"{default} = {text}")
    if m is None:
        raise QuantityError(f"{text!r}: write QUANTITY = NUMBER, e.g. w.grad = -174")
    q = parse(m.group(1))
    number = m.group(2)
    try:
        value = float(number)
    except ValueError:
        raise QuantityError(f"{number!r} is not a number") from None
    if not math.isfinite(value):
        raise QuantityError(f"{number!r}: predict a finite number")
    mantissa = number.lower().split("e")[0]
    exponent = int(number.lower().split("e")[1]) if "e" in number.lower() else 0
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return Expectation(q, value, 0.5 * 10.0 ** (exponent - decimals))


class Coach:
    """Follows one session's actions. See the module docstring."""

    def __init__(self) -> None:
        self.before: Snapshot | None = None
        self.warned: set[str] = set()
        self.pending: Expectation | None = None
        self.tracker: Tracker | None = None
        self.losses: dict[int, float] = {}  # training loss after each step count reached
        self.last: Explanation | None = None

    # --- what the user tells it ---------------------------------------------------------

    def expect(self, text: str) -> str:
        """Remember a prediction for the next action; raises QuantityError."""
        default = None
        view = self.tracker.view() if self.tracker else None
        if view is not None and view.predict:
            default = view.predict
        self.pending = parse_expectation(text, default)
        if self.before is not None:
            value_of(self.pending.quantity, self.before)  # a quantity this session has
        return f"prediction noted: {self.pending.quantity.text} = {fmt(self.pending.value)}"

    def start_lesson(self, lesson: Lesson, snap: Snapshot) -> LessonView:
        self.tracker = Tracker(lesson, snap)
        return self.tracker.view()

    def stop_lesson(self) -> None:
        self.tracker = None

    # --- what the session did -----------------------------------------------------------

    def seen(self, snap: Snapshot) -> None:
        """A snapshot that follows no action of its own (a load, a run's slice)."""
        if self.before is None or snap.preset != self.before.preset:
            self.losses.clear()
            self.tracker = None
        self.before = snap
        if snap.train_loss is not None:
            self.losses[snap.step] = snap.train_loss

    def after(
        self, action: str, snap: Snapshot, detail: str = "", outcome: str = ""
    ) -> Explanation:
        """The explanation of ``action``, which took the session from the last snapshot
        seen to ``snap``. ``detail``: how a run ended, what undo took back; ``outcome``:
        why a run stopped (a ``runs.StopReason`` value)."""
        before = self.before
        if action == "lesson":  # started or stopped: nothing changed in the session
            view = self.tracker.view() if self.tracker else None
            said = f"lesson: {view.title}, {view.total} steps." if view else "lesson ended."
            self.before = snap
            self.last = Explanation(action, (said,), lesson=view)
            return self.last
        if action in ("load", "open"):
            self.losses.clear()
            self.tracker = None
        lines = narrate(action, before, snap, detail)
        cautions = self._cautions(action, before, snap) if before is not None else ()
        prediction = None
        predicted: tuple[str, ...] = ()
        if self.pending is not None and action not in ("undo", "redo", "load", "open"):
            prediction = self.pending.judged(snap)
            predicted = (self.pending.quantity.text,)
            self.pending = None
        feedback = None
        if self.tracker is not None:
            if action == "undo":
                self.tracker.undo()
            elif action == "redo":
                self.tracker.redo()
            elif action not in ("load", "open"):
                feedback = self.tracker.action(action, snap, outcome, predicted)
        if snap.train_loss is not None:
            # losses of steps undone are forgotten: steps past this one are not history
            self.losses = {s: v for s, v in self.losses.items() if s < snap.step}
            self.losses[snap.step] = snap.train_loss
        self.before = snap
        self.last = Explanation(
            action,
            lines,
            cautions,
            prediction,
            self.tracker.view() if self.tracker else None,
            feedback,
        )
        return self.last

    def _cautions(self, action: str, before: Snapshot, after: Snapshot) -> tuple[Caution, ...]:
        found = []
        cfg = after.config
        k = cfg.accumulate
        if action == "step" and any(p.grad is not None for p in before.params):
            count = max(p.backwards_since_zero for p in before.params)
            if count > k:
                found.append(
                    Caution(
                        "forgot_zero_grad",
                        f"this step used .grad holding {count} backward passes, not {k}: "
                        "gradients ADD until zero_grad, so the step was "
                        f"{_ratio(count, k)} as long as one batch's - and the next backward "
                        "adds more. Press z before b (n does zero_grad, backward, step).",
                    )
                )
            elif before.grad_step is not None and before.grad_step < before.step:
                found.append(
                    Caution(
                        "stale",
                        f"this step used a gradient computed at step {before.grad_step}, "
                        f"before the last step moved the parameters: it points where the "
                        f"loss fell then, not now. z then b computes a fresh one.",
                    )
                )
        if action in ("backward", "step", "train_step", "run") and k > 1 and not cfg.scale_loss:
            found.append(
                Caution(
                    "unscaled",
                    f"K = {k} micro-batch gradients are ADDED without dividing each loss by "
                    f"{k}: the step is {k} x the full batch's, as if lr were {fmt(k * cfg.lr)}. "
                    "Turn scale_loss on (loss / K) to match the full batch.",
                )
            )
        if action in STEP_ACTIONS and after.train_loss is not None:
            seq = [self.losses.get(after.step - i) for i in range(GROWTH_STEPS, 0, -1)]
            seq.append(after.train_loss)
            if all(v is not None for v in seq) and _growing(seq):  # type: ignore[arg-type]
                found.append(
                    Caution(
                        "lr_growing",
                        f"the training loss grew for {GROWTH_STEPS} steps in a row "
                        f"({' -> '.join(fmt(v) for v in seq)}): lr {fmt(cfg.lr)} overshoots "
                        "the minimum further each step and will blow up to inf. Undo (u) and "
                        "lower the lr.",
                    )
                )
            if action == "run" and "lr_growing" not in {c.kind for c in found}:
                grew = _grew_in_history(after, GROWTH_STEPS) if _full_batch(after) else ""
                if grew:
                    found.append(Caution("lr_growing", grew))
        fresh = tuple(c for c in found if c.kind not in self.warned)
        self.warned.update(c.kind for c in fresh)
        return fresh


def _growing(seq: list[float]) -> bool:
    """Each loss above the one before by more than 1% (not noise, not a plateau)."""
    return all(b > a * 1.01 and b > 0 for a, b in zip(seq, seq[1:], strict=False))


def _full_batch(snap: Snapshot) -> bool:
    return snap.batch is not None and snap.batch[1] == 1


def _ratio(count: int, k: int) -> str:
    r = count / k
    return {2.0: "twice", 3.0: "three times"}.get(r, f"{r:g} times")


def _grew_in_history(snap: Snapshot, n: int) -> str:
    """A run's losses: whether the last ``n`` + 1 train-step losses kept growing."""
    h = snap.history
    losses = [
        float(v)
        for v, k in zip(h.loss[-4 * (n + 1) :], h.kind[-4 * (n + 1) :], strict=True)
        if k == 2
    ]
    tail = losses[-(n + 1) :]
    if len(tail) == n + 1 and _growing(tail):
        return (
            f"the loss grew for {n} steps in a row ({' -> '.join(fmt(v) for v in tail)}): "
            f"lr {fmt(snap.config.lr)} overshoots the minimum further each step. Undo (u) and "
            "lower the lr."
        )
    return ""

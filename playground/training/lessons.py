"""Guided lessons: a preset's ordered steps, each a prompt, the actions it expects and a
check on the state they leave.

A lesson is plain data in the preset file, validated when the preset loads (a
``PresetError`` names the lesson, the step and the field)::

    [[lessons]]
    name = "repeated-backward"
    title = "Q4: backward again and again, then zero the gradients"

    [[lessons.steps]]
    prompt = "Press b: backward computes dL/dw and stores it in w.grad."
    do = ["backward"]
    check = { quantity = "w.count", equals = 1 }

    [[lessons.steps]]
    prompt = "Press b again. The loss, w and b stay put; what does w.grad do?"
    predict = "w.grad[0]"            # the student types the value first (y)
    do = ["backward"]
    check = { quantity = "w.grad[0]", equals = 2, of_step = 1 }   # twice step 1's value
    explain = "backward ADDS: two passes, twice the gradient."

``set`` (a table of settings) makes a step ask for a settings change; ``check`` takes
``equals`` / ``below`` / ``above`` (numbers, or multiples of the same quantity's value
at the end of lesson step ``of_step``, 0 being the lesson's start), ``is_none`` (a .grad
that is None) or ``outcome`` (how a run ended), and ``tol`` (relative, default 1e-4).

``Tracker`` follows one lesson through the session's actions: it accepts the expected
ones, explains a wrong one (u takes it back, and the tracker goes back with it), checks
each finished step, and gives a ``LessonView`` for the screen. Tensor-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from playground.training.catalog import PresetError
from playground.training.quantities import (
    Quantity,
    QuantityError,
    close_enough,
    fmt,
    parse,
    value_of,
)
from playground.training.snapshot import Snapshot

# what a lesson step may ask for: the session's actions (undo and redo are the student's
# way back, never a step) and "run", "configure"
ACTIONS = (
    "forward",
    "backward",
    "backward_again",
    "zero_grad",
    "zero_grad_none",
    "step",
    "train_step",
    "run",
    "reset",
    "restore_best",
    "configure",
)
OUTCOMES = ("max_steps", "converged", "diverged", "paused")
STEP_KEYS = {"prompt", "do", "set", "predict", "check", "explain"}
CHECK_KEYS = {"quantity", "equals", "below", "above", "of_step", "is_none", "outcome", "tol"}
MAX_STEPS = 64


@dataclass(frozen=True)
class Check:
    """A condition on the state a lesson step leaves. See the module docstring."""

    quantity: Quantity | None = None
    equals: float | None = None
    below: float | None = None
    above: float | None = None
    of_step: int | None = None
    is_none: bool | None = None
    outcome: str | None = None
    tol: float = 1e-4

    def says(self) -> str:
        """ "w.grad[0] = 2 x its value after step 1" """
        if self.outcome is not None:
            return f"the run ends {self.outcome.replace('_', ' ')}"
        q = self.quantity.text if self.quantity else "?"
        if self.is_none is not None:
            return f"{q} is {'' if self.is_none else 'not '}None"
        ref = ""
        if self.of_step is not None:
            ref = (
                " its value at the start"
                if self.of_step == 0
                else f" its value after step {self.of_step}"
            )
        parts = []
        for word, v in (("=", self.equals), ("<", self.below), (">", self.above)):
            if v is not None:
                parts.append(f"{q} {word} {fmt(v)}{' x' + ref if ref else ''}")
        return " and ".join(parts)


@dataclass(frozen=True)
class LessonStep:
    prompt: str
    do: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    predict: Quantity | None = None
    check: Check | None = None
    explain: str = ""


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    steps: tuple[LessonStep, ...]

    def references(self, index: int) -> tuple[Quantity, ...]:
        """The quantities later checks compare with their value after step ``index``."""
        return tuple(
            s.check.quantity
            for s in self.steps
            if s.check is not None and s.check.of_step == index and s.check.quantity is not None
        )


# --- reading ---------------------------------------------------------------------------


def parse_lessons(raw: Any, file: str, settings_ok: Any) -> tuple[Lesson, ...]:
    """``[[lessons]]`` of a preset, validated. ``settings_ok(dict)`` raises ValueError /
    TypeError for settings a step's ``set`` may not ask for."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PresetError(file, "lessons", "must be a list of tables ([[lessons]])")
    lessons, names = [], set()
    for i, doc in enumerate(raw):
        where = f"lessons[{i}]"
        if not isinstance(doc, dict):
            raise PresetError(file, where, "must be a table")
        unknown = sorted(set(doc) - {"name", "title", "steps"})
        if unknown:
            raise PresetError(file, f"{where}.{unknown[0]}", "unknown key (name, title, steps)")
        name = doc.get("name")
        if not isinstance(name, str) or not name.strip() or name in names:
            raise PresetError(file, f"{where}.name", f"{name!r} must be a new, non-empty string")
        names.add(name)
        title = doc.get("title", name)
        if not isinstance(title, str):
            raise PresetError(file, f"{where}.title", "must be a string")
        steps = doc.get("steps")
        if not isinstance(steps, list) or not steps or len(steps) > MAX_STEPS:
            raise PresetError(
                file,
                f"{where}.steps",
                f"must be a list of 1 to {MAX_STEPS} tables ([[lessons.steps]])",
            )
        parsed = tuple(
            _step(s, f"{where}.steps[{j}]", j, file, settings_ok) for j, s in enumerate(steps)
        )
        lessons.append(Lesson(name, title, parsed))
    return tuple(lessons)


def _step(doc: Any, where: str, index: int, file: str, settings_ok: Any) -> LessonStep:
    if not isinstance(doc, dict):
        raise PresetError(file, where, "must be a table")
    unknown = sorted(set(doc) - STEP_KEYS)
    if unknown:
        raise PresetError(
            file, f"{where}.{unknown[0]}", f"unknown key ({', '.join(sorted(STEP_KEYS))})"
        )
    prompt = doc.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise PresetError(file, f"{where}.prompt", "is missing: every step says what to do")
    settings = doc.get("set", {})
    if not isinstance(settings, dict):
        raise PresetError(file, f"{where}.set", "must be a table of settings, e.g. { lr = 1.5 }")
    try:
        settings_ok(settings)
    except (ValueError, TypeError) as exc:
        raise PresetError(file, f"{where}.set", str(exc)) from exc
    do = doc.get("do", ["configure"] if settings else None)
    if isinstance(do, str):
        do = [do]
    if not isinstance(do, list) or not do:
        raise PresetError(file, f"{where}.do", f"must be a list of actions ({', '.join(ACTIONS)})")
    for a in do:
        if a not in ACTIONS:
            raise PresetError(file, f"{where}.do", f"{a!r} is not one of {', '.join(ACTIONS)}")
    if settings and "configure" not in do:
        raise PresetError(file, f"{where}.do", "a step with `set` asks for 'configure'")
    predict = None
    if "predict" in doc:
        predict = _quantity(doc["predict"], f"{where}.predict", file)
    check = None if "check" not in doc else _check(doc["check"], f"{where}.check", index, file)
    explain = doc.get("explain", "")
    if not isinstance(explain, str):
        raise PresetError(file, f"{where}.explain", "must be a string")
    # the file's line breaks are its own: the screen wraps the text to its width
    return LessonStep(_flow(prompt), tuple(do), dict(settings), predict, check, _flow(explain))


def _flow(text: str) -> str:
    return " ".join(text.split())


def _quantity(text: Any, where: str, file: str) -> Quantity:
    try:
        return parse(text)
    except QuantityError as exc:
        raise PresetError(file, where, str(exc)) from exc


def _number(doc: dict[str, Any], key: str, where: str, file: str) -> float | None:
    v = doc.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or v != v or abs(v) == float("inf"):
        raise PresetError(file, f"{where}.{key}", f"{v!r} must be a finite number")
    return float(v)


def _check(doc: Any, where: str, index: int, file: str) -> Check:
    if not isinstance(doc, dict):
        raise PresetError(
            file, where, "must be a table, e.g. { quantity = 'w.grad', equals = -174 }"
        )
    unknown = sorted(set(doc) - CHECK_KEYS)
    if unknown:
        raise PresetError(
            file, f"{where}.{unknown[0]}", f"unknown key ({', '.join(sorted(CHECK_KEYS))})"
        )
    outcome = doc.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise PresetError(
            file, f"{where}.outcome", f"{outcome!r} is not one of {', '.join(OUTCOMES)}"
        )
    q = None if "quantity" not in doc else _quantity(doc["quantity"], f"{where}.quantity", file)
    is_none = doc.get("is_none")
    if is_none is not None and not isinstance(is_none, bool):
        raise PresetError(file, f"{where}.is_none", "must be true or false")
    of_step = doc.get("of_step")
    if of_step is not None and (type(of_step) is not int or not 0 <= of_step <= index):
        raise PresetError(
            file,
            f"{where}.of_step",
            f"{of_step!r} must be an earlier step (1-{index}) or 0, the start",
        )
    bounds = {k: _number(doc, k, where, file) for k in ("equals", "below", "above")}
    tol = _number(doc, "tol", where, file)
    if tol is not None and not 0 < tol < 1:
        raise PresetError(file, f"{where}.tol", f"{tol!r} must be a relative tolerance in (0, 1)")
    if outcome is None and q is None:
        raise PresetError(
            file, f"{where}.quantity", "is missing: a check needs a quantity or an outcome"
        )
    if q is not None and is_none is None and all(v is None for v in bounds.values()):
        raise PresetError(
            file, where, "says nothing to check: give equals, below, above or is_none"
        )
    return Check(q, of_step=of_step, is_none=is_none, outcome=outcome, tol=tol or 1e-4, **bounds)


# --- following one ---------------------------------------------------------------------


@dataclass(frozen=True)
class LessonView:
    """What the lesson panel shows."""

    name: str
    title: str
    index: int  # the step in hand, 0-based (== total when finished)
    total: int
    prompt: str
    expected: tuple[str, ...]  # the actions the step still expects, in order
    predict: str | None  # the quantity to predict first, if the step asks
    feedback: str  # what the last action did for the lesson
    off_track: bool  # the last action was not the one asked for (u takes it back)

    @property
    def finished(self) -> bool:
        return self.index >= self.total


@dataclass(frozen=True)
class _State:
    index: int = 0
    done: tuple[str, ...] = ()
    refs: tuple[tuple[int, str, float | None], ...] = ()  # (step, quantity, value)
    feedback: str = ""
    off_track: bool = False


class Tracker:
    """One lesson's progress through the session's actions. See the module docstring."""

    def __init__(self, lesson: Lesson, start: Snapshot) -> None:
        self.lesson = lesson
        self.state = _State(refs=self._refs(0, start), feedback="lesson started")
        self._undo: list[_State] = []
        self._redo: list[_State] = []

    def _refs(self, index: int, snap: Snapshot) -> tuple[tuple[int, str, float | None], ...]:
        out = []
        for q in self.lesson.references(index):
            try:
                out.append((index, q.text, value_of(q, snap)))
            except QuantityError:
                out.append((index, q.text, None))
        return tuple(out)

    @property
    def step(self) -> LessonStep | None:
        i = self.state.index
        return self.lesson.steps[i] if i < len(self.lesson.steps) else None

    def view(self) -> LessonView:
        st, step = self.state, self.step
        return LessonView(
            name=self.lesson.name,
            title=self.lesson.title,
            index=st.index,
            total=len(self.lesson.steps),
            prompt=step.prompt if step else "Lesson complete.",
            expected=step.do[len(st.done) :] if step and not st.off_track else (),
            predict=step.predict.text if step and step.predict and not st.done else None,
            feedback=st.feedback,
            off_track=st.off_track,
        )

    # every session action that made an undo entry comes here once, with the state after
    def action(
        self, name: str, snap: Snapshot, outcome: str = "", predicted: tuple[str, ...] = ()
    ) -> str:
        """Follow one action; returns the feedback to show."""
        self._undo.append(self.state)
        self._redo.clear()
        self.state = self._next(name, snap, outcome, predicted)
        return self.state.feedback

    def undo(self) -> None:
        if self._undo:
            self._redo.append(self.state)
            self.state = self._undo.pop()
            self.state = replace(
                self.state, feedback="taken back: " + (self.step.prompt if self.step else "done")
            )

    def redo(self) -> None:
        if self._redo:
            self._undo.append(self.state)
            self.state = self._redo.pop()

    def _next(self, name: str, snap: Snapshot, outcome: str, predicted: tuple[str, ...]) -> _State:
        st, step = self.state, self.step
        if step is None:
            return replace(st, feedback="the lesson is complete")
        if st.off_track:
            return replace(
                st, feedback="still off the lesson's path: u takes your last actions back"
            )
        wanted = step.do[len(st.done)]
        if name != wanted and not (wanted == "configure" and name == "configure"):
            return replace(
                st,
                off_track=True,
                feedback=f"this step asks for {wanted}; you did {name}. Press u to take it back.",
            )
        if step.predict is not None and not st.done and step.predict.text not in predicted:
            return replace(
                st,
                off_track=True,
                feedback=(
                    f"predict {step.predict.text} first (y), then {wanted}: "
                    "press u to take it back and try again."
                ),
            )
        done = st.done + (name,)
        if step.settings and not _settings_match(step.settings, snap):
            if name == "configure":  # more settings still to set: the step stays
                want = ", ".join(f"{k} = {v}" for k, v in step.settings.items())
                return replace(st, feedback=f"set {want}")
        if len(done) < len(step.do):
            left = len(step.do) - len(done)
            return replace(
                st,
                done=done,
                feedback=f"good: {left} more to go ({', '.join(step.do[len(done) :])})",
            )
        failed = self._failed(step, snap, outcome)
        if failed:
            return replace(
                st, off_track=True, feedback=f"{failed} Press u to take it back and try again."
            )
        index = st.index + 1
        said = step.explain or "done"
        return _State(index=index, refs=st.refs + self._refs(index, snap), feedback=f"✓ {said}")

    def _failed(self, step: LessonStep, snap: Snapshot, outcome: str) -> str:
        """Why the state does not pass the step's check ("" when it does)."""
        c = step.check
        if c is None:
            return ""
        if c.outcome is not None and outcome != c.outcome:
            return f"the check: {c.says()}; it ended {outcome.replace('_', ' ') or 'otherwise'}."
        if c.quantity is None:
            return ""
        try:
            got = value_of(c.quantity, snap)
        except QuantityError as exc:
            return f"the lesson cannot read {c.quantity.text}: {exc}."
        if c.is_none is not None:
            return "" if (got is None) == c.is_none else f"the check: {c.says()}; it is {fmt(got)}."
        if got is None:
            return f"the check: {c.says()}; {c.quantity.text} is None."
        scale = 1.0
        if c.of_step is not None:
            ref = next(
                (v for i, q, v in self.state.refs if i == c.of_step and q == c.quantity.text), None
            )
            if ref is None:
                return f"the check needs {c.quantity.text} after step {c.of_step}, and it had none."
            scale = ref
        ok = (
            (c.equals is None or close_enough(got, c.equals * scale, c.tol))
            and (c.below is None or got < c.below * scale)
            and (c.above is None or got > c.above * scale)
        )
        return "" if ok else f"the check: {c.says()}; it is {fmt(got)}."


def _settings_match(settings: dict[str, Any], snap: Snapshot) -> bool:
    cfg = snap.config
    for k, v in settings.items():
        have = getattr(cfg, k, None)
        if isinstance(v, float) or isinstance(have, float):
            if not isinstance(have, int | float) or not close_enough(float(have), float(v), 1e-9):
                return False
        elif have != v and not (isinstance(have, tuple) and list(have) == v):
            return False
    return True

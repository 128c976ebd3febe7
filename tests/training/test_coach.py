"""The coach: narration with the numbers of the course, warnings said once, predictions,
and lessons followed action by action (on a Session, without the runner or the UI)."""

from __future__ import annotations

from typing import Any

import pytest

from playground.training.coach import Coach, Explanation, parse_expectation
from playground.training.quantities import QuantityError
from playground.training.session import Session


class Drive:
    """A session and its coach, as the runner pairs them."""

    def __init__(self, preset: str, **overrides: Any) -> None:
        self.s = Session.from_preset(preset, device="cpu", **overrides)
        self.coach = Coach()
        self.coach.after("load", self.s.snapshot())

    def do(self, action: str, **kw: Any) -> Explanation:
        detail, outcome = "", ""
        if action == "configure":
            self.s.configure(**kw)
        elif action == "run":
            result = self.s.run(**kw)
            detail, outcome = f"stopped: {result.reason}", str(result.reason)
        elif action == "undo":
            detail = self.s.undo().label
        elif action == "zero_grad_none":
            self.s.zero_grad(set_to_none=True)
        else:
            getattr(self.s, action)()
        return self.coach.after(action, self.s.snapshot(), detail, outcome)

    def keys(self, keys: str) -> list[Explanation]:
        names = {"f": "forward", "b": "backward", "z": "zero_grad", "s": "step", "n": "train_step"}
        return [self.do(names[k]) for k in keys]


def warned(ex: list[Explanation], kind: str) -> list[int]:
    """The positions of the actions that raised a warning of ``kind``."""
    return [i for i, e in enumerate(ex) if any(c.kind == kind for c in e.cautions)]


# --- narration --------------------------------------------------------------------------


def test_backward_twice_on_five_points_says_the_batch_gradient_and_the_sum() -> None:
    d = Drive("five-points")
    first, second = d.keys("bb")
    # by hand: dL/dw = 2/5 sum((x + 1 - y) x) = -4170.4 at w = b = 1
    assert "dL/dw = -4170.4" in first.text and "w.grad None -> -4170.4" in first.text
    assert "dL/dw = -4170.4" in second.text
    assert "w.grad -4170.4 -> -8340.8" in second.text
    assert "2 backward passes since the last zero_grad" in second.text
    assert "ADDED" in second.text


def test_step_after_two_backwards_shows_the_update_and_its_double_length() -> None:
    d = Drive("five-points")
    d.keys("bb")
    step = d.do("step")
    assert "w = 1 - 0.001 * (-8340.8) = 9.3408" in step.text
    assert "2 backward passes" in step.text and "twice as long" in step.text


def test_zero_grad_and_set_to_none_say_what_the_next_backward_does() -> None:
    d = Drive("five-points")
    d.keys("b")
    zero = d.do("zero_grad")
    assert "w.grad -4170.4 -> 0" in zero.text and "starts the sum again" in zero.text
    d.keys("b")
    none = d.do("zero_grad_none")
    assert "w.grad -4170.4 -> None" in none.text and "ASSIGNS" in none.text


def test_accumulation_with_k_4_mentions_the_one_over_k_scaling() -> None:
    d = Drive("noisy-line", batch_size=40, accumulate=4)
    ex = d.keys("bbbb")
    assert "1/K scaling" in ex[-1].text and "K = 4" in ex[-1].text
    assert "4 backward passes since the last zero_grad" in ex[-1].text
    assert "micro-batch 4 of 4" in ex[-1].text


def test_momentum_and_adam_say_what_their_state_adds() -> None:
    d = Drive("noisy-line", momentum=0.9)
    d.keys("n")
    second = d.do("train_step")
    assert "momentum" not in second.text  # a train step says what it changed
    d.keys("zb")
    step = d.do("step")
    assert "velocity" in step.text and "momentum 0.9" in step.text
    a = Drive("xor")
    a.keys("b")
    adam = a.do("step")
    assert "Adam" in adam.text and "m̂" in adam.text


def test_a_run_says_why_it_stopped_and_undo_what_it_took_back() -> None:
    d = Drive("noisy-line")
    run = d.do("run")
    assert "10 train steps (step 0 -> 10)" in run.text and "max_steps" in run.text
    back = d.do("undo")
    assert back.text.startswith("undo took back run") and "step 10 -> 0" in back.text


def test_a_settings_change_says_what_it_does_to_the_step() -> None:
    d = Drive("five-points")
    said = d.do("configure", lr=0.002)
    assert "lr 0.001 -> 0.002" in said.text and "2 x as far" in said.text


# --- warnings ---------------------------------------------------------------------------


def test_stepping_twice_without_zero_grad_warns_once() -> None:
    d = Drive("two-points")
    ex = d.keys("bsbs")
    assert warned(ex, "forgot_zero_grad") == [3]
    text = ex[3].cautions[0].text
    assert "2 backward passes, not 1" in text and "twice" in text
    again = d.keys("bsbs")  # said once a session
    assert warned(again, "forgot_zero_grad") == []


def test_train_steps_never_warn() -> None:
    d = Drive("five-points")
    ex = d.keys("nnnnnn")
    assert all(not e.cautions for e in ex)


def test_a_step_with_the_gradient_of_before_the_last_step_is_stale() -> None:
    d = Drive("five-points")
    ex = d.keys("bss")
    assert warned(ex, "stale") == [2] and warned(ex, "forgot_zero_grad") == []
    assert "computed at step 0" in ex[2].cautions[0].text


def test_a_learning_rate_that_grows_the_loss_three_steps_running_is_said() -> None:
    d = Drive("noisy-line", lr=1.5)
    ex = d.keys("nnnn")
    assert warned(ex, "lr_growing") == [2]  # the third step is the third growth
    assert "lr 1.5" in ex[2].cautions[0].text
    calm = Drive("noisy-line")
    assert warned(calm.keys("nnnnnn"), "lr_growing") == []


def test_k_above_one_without_scaling_is_said() -> None:
    d = Drive("noisy-line", batch_size=40, accumulate=4, scale_loss=False)
    ex = d.keys("bbbbs")
    assert warned(ex, "unscaled") == [0]
    assert "as if lr were 2" in ex[0].cautions[0].text


# --- predictions ------------------------------------------------------------------------


def test_a_predicted_w_grad_of_minus_174_is_exact_on_two_points() -> None:
    d = Drive("two-points")
    d.coach.expect("w.grad = -174")
    (after,) = d.keys("b")
    assert after.prediction == "you predicted w.grad = -174; it is -174: exact"


def test_a_prediction_is_judged_to_the_digits_given_and_else_by_how_far() -> None:
    d = Drive("five-points")
    d.coach.expect("w.grad = -4170")
    assert d.keys("b")[0].prediction.endswith("right to the digits you gave")
    d.coach.expect("w.grad = -8000")
    said = d.keys("b")[0].prediction
    assert "off by -340.8 (4.1%)" in said


def test_a_prediction_names_what_is_wrong_with_it() -> None:
    d = Drive("noisy-line")
    with pytest.raises(QuantityError, match="weight has 1 numbers|no parameter 'w'"):
        d.coach.expect("w.grad = 3")
    with pytest.raises(QuantityError, match="QUANTITY = NUMBER"):
        parse_expectation("about three")


# --- lessons ----------------------------------------------------------------------------

LESSONS = [
    ("shallow-linear", "repeated-backward"),
    ("two-points", "by-hand"),
    ("noisy-line", "lr-too-large"),
    ("noisy-line", "accumulate"),
    ("logistic-val", "best-state"),
]


@pytest.mark.parametrize(("preset", "name"), LESSONS)
def test_every_shipped_lesson_is_completed_by_doing_what_it_asks(preset: str, name: str) -> None:
    d = Drive(preset)
    view = d.coach.start_lesson(d.s.preset.lesson(name), d.s.snapshot())
    while not view.finished:
        step = d.s.preset.lesson(name).steps[view.index]
        if step.predict is not None:
            d.coach.expect(f"{step.predict.text} = 0")
        for action in step.do:
            ex = d.do(action, **(step.settings if action == "configure" else {}))
        assert ex.lesson is not None and not ex.lesson.off_track, ex.lesson_feedback
        assert ex.lesson.index == view.index + 1, ex.lesson_feedback
        view = ex.lesson
    assert view.prompt == "Lesson complete."


def test_a_wrong_action_in_a_lesson_is_explained_and_undone() -> None:
    d = Drive("two-points")
    d.coach.start_lesson(d.s.preset.lesson("by-hand"), d.s.snapshot())
    d.coach.expect("w.grad = -174")
    wrong = d.do("forward")
    assert wrong.lesson.off_track
    assert wrong.lesson_feedback == (
        "this step asks for backward; you did forward. Press u to take it back."
    )
    back = d.do("undo")
    assert not back.lesson.off_track and back.lesson.index == 0
    d.coach.expect("w.grad = -174")
    right = d.do("backward")
    assert right.lesson.index == 1 and right.lesson_feedback.startswith("✓")


def test_a_lesson_step_that_asks_for_a_prediction_waits_for_one() -> None:
    d = Drive("two-points")
    d.coach.start_lesson(d.s.preset.lesson("by-hand"), d.s.snapshot())
    ex = d.do("backward")
    assert ex.lesson.off_track and "predict w.grad first" in ex.lesson_feedback


def test_a_failed_check_says_what_was_expected_and_what_is() -> None:
    d = Drive("noisy-line", lr=0.01)  # too small a step to halve the loss in three
    d.coach.start_lesson(d.s.preset.lesson("lr-too-large"), d.s.snapshot())
    ex = d.keys("nnn")
    assert ex[1].lesson_feedback == "good: 1 more to go (train_step)"
    assert ex[2].lesson.off_track and ex[2].lesson.index == 0
    assert ex[2].lesson_feedback.startswith(
        "the check: train_loss < 0.5 x its value at the start; it is "
    )
    assert ex[2].lesson_feedback.endswith("Press u to take it back and try again.")


# --- lessons are data, validated --------------------------------------------------------

GOOD = """
name = "tiny"
title = "tiny"
[data]
x = [2.0, 4.0]
y = [20.0, 40.0]
[model]
kind = "scalar"
init = { w = 1.0, b = 1.0 }
[train]
loss = "mse"
optimizer = "gd"
lr = 0.001
[[lessons]]
name = "one"
[[lessons.steps]]
prompt = "press b"
do = ["backward"]
check = { quantity = "w.grad", equals = -174 }
"""


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ('do = ["backward"]', 'do = ["jump"]', "lessons[0].steps[0].do", "'jump' is not one of"),
        ('prompt = "press b"', 'prompt = ""', "lessons[0].steps[0].prompt", "is missing"),
        ('quantity = "w.grad"', 'quantity = "w.grad[x]"', "lessons[0].steps[0].check.quantity", ""),
        ("equals = -174", 'equals = "a lot"', "lessons[0].steps[0].check.equals", "finite number"),
        (
            "equals = -174",
            "equals = 2, of_step = 3",
            "lessons[0].steps[0].check.of_step",
            "earlier",
        ),
        (
            "equals = -174",
            "equals = -174, exactly = 1",
            "lessons[0].steps[0].check.exactly",
            "unknown",
        ),
        (
            'do = ["backward"]',
            'do = ["backward"]\nset = { lr = -1 }',
            "lessons[0].steps[0].set",
            "lr",
        ),
        (
            'do = ["backward"]',
            'do = ["backward"]\nhint = "x"',
            "lessons[0].steps[0].hint",
            "unknown",
        ),
        ('name = "one"', "name = 3", "lessons[0].name", "non-empty string"),
    ],
)
def test_a_malformed_lesson_is_a_preset_error_naming_the_step_and_field(
    tmp_path, old: str, new: str, field: str, words: str
) -> None:
    from playground.training.catalog import PresetError
    from playground.training.presets import load_preset

    assert old in GOOD
    path = tmp_path / "tiny.toml"
    path.write_text(GOOD.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PresetError) as err:
        load_preset(path)
    assert err.value.field == field, str(err.value)
    assert "tiny.toml" in str(err.value) and words in str(err.value)


def test_a_well_formed_lesson_file_loads_and_its_check_passes(tmp_path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(GOOD, encoding="utf-8")
    d = Drive(str(path))
    d.coach.start_lesson(d.s.preset.lesson("one"), d.s.snapshot())
    ex = d.keys("b")
    assert ex[0].lesson.finished and ex[0].lesson_feedback == "✓ done"

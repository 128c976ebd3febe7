"""What the exercises teach beyond their numbers: predicting at a point (seed 001 ex. 6),
the same data with another way of writing the model (ex. 3-5), backward twice through
one graph (seed 002), the lab's ten steps and test split (seed 004), summed losses
(seed 000), and the MLP's settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from playground.cli.main import main
from playground.training.catalog import preset_infos
from playground.training.presets import find_preset
from playground.training.session import Session
from playground.training.steps import ActionError


def session(name: str, **overrides) -> Session:
    return Session(find_preset(name), device="cpu", **overrides)


def test_multiple_regression_predicts_at_3_2_what_least_squares_does(capsys) -> None:
    """Seed 001, exercise 6: the trained model at X1 = 3, X2 = 2, next to the least-squares
    prediction (6.30), on screen (the snapshot) and in the JSON summary."""
    s = session("multiple-regression")
    s.run()
    p = s.snapshot().prediction
    assert p is not None and p.at == (3.0, 2.0)
    x = s.dataset.train.x.numpy().astype(np.float64)
    y = s.dataset.train.y.numpy().astype(np.float64)
    theta, *_ = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)
    ls = float(theta @ [3.0, 2.0, 1.0])
    assert ls == pytest.approx(6.30, abs=5e-3)
    assert p.least_squares == pytest.approx(ls, abs=1e-9)
    assert p.model == pytest.approx(ls, abs=1e-3)
    assert p.said() == "ŷ(3, 2) = 6.300 (least squares 6.300)"
    other = s.predict([1, 1])
    assert other.model == pytest.approx(float(theta @ [1.0, 1.0, 1.0]), abs=1e-3)
    with pytest.raises(ValueError, match="2 finite number"):
        s.predict([1])
    assert (
        main(["run", "multiple-regression", "--json", "--predict", "1, 1", "--device", "cpu"]) == 0
    )
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["prediction"]["at"] == [1.0, 1.0]


REGRESSION_BY_HAND = ["23-points", "five-points", "two-points", "shallow-linear"]


@pytest.mark.parametrize("name", REGRESSION_BY_HAND)
def test_a_by_hand_preset_runs_with_nn_linear_and_the_same_numbers(name: str) -> None:
    """Seed 001 ex. 3-5: the same data and start with nn.Linear instead of plain w, b."""
    scalar = session(name)
    linear = session(name, model="linear")
    with torch.no_grad():  # the same start (randn presets draw theirs for w, b)
        linear.model.params["weight"].copy_(scalar.model.params["w"].reshape(1, -1))
        linear.model.params["bias"].copy_(scalar.model.params["b"])
    steps = min(100, scalar.cfg.max_steps)
    scalar.run(steps)
    linear.run(steps)
    w = scalar.snapshot().param("w").value.reshape(-1)
    b = scalar.snapshot().param("b").value.reshape(-1)
    np.testing.assert_allclose(
        linear.snapshot().param("weight").value.reshape(-1), w, rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(linear.snapshot().param("bias").value, b, rtol=1e-6, atol=1e-6)


def test_init_values_name_w_b_or_weight_bias_alike() -> None:
    s = session("23-points", model="linear")
    assert s.model.params["weight"].item() == 1.0 and s.model.params["bias"].item() == 1.0


def test_backward_twice_through_one_graph_seed_002() -> None:
    """Without retain_graph, PyTorch's own RuntimeError, explained, and nothing changes;
    with it, the grads are twice one pass's."""
    s = session("softmax")
    s.backward()
    one = s.snapshot().param("W").grad.copy()
    before = s.snapshot()
    with pytest.raises(
        ActionError, match="Trying to backward through the graph a second time"
    ) as e:
        s.backward_again()
    assert "retain graph" in str(e.value)
    after = s.snapshot()
    assert np.array_equal(after.param("W").grad, one)
    assert (after.backward_total, after.undo_depth, after.log) == (
        before.backward_total,
        before.undo_depth,
        before.log,
    )
    s.configure(retain_graph=True)
    s.zero_grad()
    s.backward()  # the next micro-batch, its graph kept
    one = s.snapshot().param("W").grad.copy()
    s.backward_again()
    twice = s.snapshot().param("W")
    np.testing.assert_allclose(twice.grad, 2 * one, rtol=1e-6)
    assert twice.backwards_since_zero == 2
    assert "loss.backward(retain_graph=True)" in s.script()
    s.undo()  # an action like any other
    np.testing.assert_allclose(s.snapshot().param("W").grad, one, rtol=1e-6)


def test_backward_again_after_a_step_adds_the_old_graphs_gradient() -> None:
    """The graph describes the loss at the parameters it was built from: after a step,
    backward through it again adds the gradient at the old parameters, not the new."""
    s = session("five-points", retain_graph=True)
    s.backward()
    old = s.snapshot().param("w").grad.copy()
    s.step()
    s.backward_again()
    np.testing.assert_allclose(s.snapshot().param("w").grad, 2 * old, rtol=1e-6)


def test_noisy_line_runs_the_labs_ten_steps_and_reports_the_test_split(capsys) -> None:
    s = session("noisy-line")
    assert s.cfg.max_steps == 10
    initial = s.split_loss("train")
    assert initial == pytest.approx(s.snapshot().train_loss, rel=1e-6)
    result = s.run()
    assert result.steps == 10
    snap = s.snapshot()
    assert len(snap.history.val_loss) == 10, "validation loss each step, in run mode too"
    assert snap.test_loss == pytest.approx(s.split_loss("test"), rel=1e-6)
    assert main(["run", "noisy-line", "--json", "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["steps"] == 10 and summary["test_loss"] == pytest.approx(snap.test_loss)


def test_summed_bce_has_hand_derived_gradients_seed_000() -> None:
    """Q3's loss is a sum: sum-reduced BCE next to mean BCE, autograd against the hand
    derivative sum(sigmoid(out) - y) x."""
    s = session("shallow-logistic", loss="bce_sum")
    s.backward()
    for p in s.snapshot().params:
        np.testing.assert_allclose(p.grad, p.analytic_grad, rtol=1e-5, atol=1e-6)
    mean = session("shallow-logistic")
    mean.backward()
    n = len(s.x)
    np.testing.assert_allclose(
        s.snapshot().param("w").grad, n * mean.snapshot().param("w").grad, rtol=1e-5
    )


def test_the_mlp_settings_the_presets_promise_are_in_the_cli(capsys) -> None:
    assert main(["run", "tfp-spiral", "--steps", "5", "--json", "--activation", "relu",
                 "--hidden", "8, 8", "--device", "cpu"]) == 0  # fmt: skip
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["params"]["0.weight"]["shape"] == [8, 2]
    assert set(row["params"]) == {f"{i}.{k}" for i in (0, 2, 4) for k in ("weight", "bias")}
    with pytest.raises(SystemExit) as exit_:
        main(["run", "tfp-spiral", "--hidden", "8, x"])
    assert exit_.value.code == 2 and "layer sizes" in capsys.readouterr().err


def test_every_preset_still_loads() -> None:
    infos, errors = preset_infos()
    assert not errors
    for info in infos:
        find_preset(info.name)

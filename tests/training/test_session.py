"""The training session, action by action, checked against oracles written here.

Every expected number below comes from outside the engine: a derivation by hand in the
comments, a plain PyTorch loop over the session's own data, numpy's least squares, or
the numbers printed in the course documents (/work/shared/seeds).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from playground.training.devices import DeviceError, resolve_device
from playground.training.runs import describe
from playground.training.session import ActionError, Session

# --- helpers ----------------------------------------------------------------------------


def values(s: Session) -> dict[str, torch.Tensor]:
    """A copy of every parameter's value, by name."""
    return {n: p.detach().clone() for n, p in s.model.params.items()}


def grads(s: Session) -> dict[str, torch.Tensor | None]:
    return {n: None if p.grad is None else p.grad.clone() for n, p in s.model.params.items()}


def assert_values_equal(s: Session, expected: dict[str, torch.Tensor]) -> None:
    for n, p in s.model.params.items():
        assert torch.equal(p.detach(), expected[n]), n


def linear_out(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """nn.Linear(d, 1) written out: x W^T + b, one output per sample."""
    return (x @ w.T + b).squeeze(-1)


# --- seed 001: two points by hand ------------------------------------------------------


def test_two_points_grads_and_updates_for_two_epochs_match_the_hand_derivation(make_session):
    """Exercise 2 of the lab: x = 2, 4; y = 20, 40; w = b = 1; lr 0.001; MSE.

    L(w, b) = mean((w x + b - y)^2)
    dL/dw   = mean(2 (w x + b - y) x)
    dL/db   = mean(2 (w x + b - y))

    Epoch 1, w = b = 1:
        y_p = (3, 5), y_p - y = (-17, -35)
        L     = (289 + 1225) / 2                  = 757
        dL/dw = (2*(-17)*2 + 2*(-35)*4) / 2 = (-68 - 280) / 2 = -174
        dL/db = (2*(-17) + 2*(-35)) / 2     = (-34 - 70) / 2  = -52
        w = 1 - 0.001 * (-174) = 1.174,  b = 1 - 0.001 * (-52) = 1.052
    Epoch 2, w = 1.174, b = 1.052:
        y_p = (2*1.174 + 1.052, 4*1.174 + 1.052) = (3.4, 5.748)
        y_p - y = (-16.6, -34.252)
        L     = (275.56 + 1173.199504) / 2                       = 724.379752
        dL/dw = (2*(-16.6)*2 + 2*(-34.252)*4) / 2 = (-66.4 - 274.016) / 2 = -170.208
        dL/db = (2*(-16.6) + 2*(-34.252)) / 2     = (-33.2 - 68.504) / 2  = -50.852
        w = 1.174 + 0.170208 = 1.344208,  b = 1.052 + 0.050852 = 1.102852
    """
    s = make_session("two-points")
    epochs = [
        # (loss, dL/dw, dL/db, w after the update, b after the update)
        (757.0, -174.0, -52.0, 1.174, 1.052),
        (724.379752, -170.208, -50.852, 1.344208, 1.102852),
    ]
    for loss, gw, gb, w, b in epochs:
        assert s.backward() == pytest.approx(loss, rel=1e-6)
        snap = s.snapshot()
        assert snap.param("w").grad == pytest.approx([gw], rel=1e-5)
        assert snap.param("b").grad == pytest.approx([gb], rel=1e-5)
        s.step()
        snap = s.snapshot()
        assert snap.param("w").value == pytest.approx([w], rel=1e-6)
        assert snap.param("b").value == pytest.approx([b], rel=1e-6)
        s.zero_grad()

    # the usual loop (train_step = zero_grad, forward, backward, step) gives the same
    t = make_session("two-points")
    for loss, gw, gb, w, b in epochs:
        assert t.train_step() == pytest.approx(loss, rel=1e-6)
        snap = t.snapshot()
        assert snap.param("w").grad == pytest.approx([gw], rel=1e-5)
        assert snap.param("b").grad == pytest.approx([gb], rel=1e-5)
        assert snap.param("w").value == pytest.approx([w], rel=1e-6)
        assert snap.param("b").value == pytest.approx([b], rel=1e-6)


def test_two_points_gradient_agrees_with_a_finite_difference(make_session):
    """Central differences of the MSE (in float64) give the same w.grad and b.grad."""
    s = make_session("two-points")
    x, y = np.array([2.0, 4.0]), np.array([20.0, 40.0])

    def loss(w: float, b: float) -> float:
        return float(np.mean((w * x + b - y) ** 2))

    h = 1e-6
    fd_w = (loss(1 + h, 1) - loss(1 - h, 1)) / (2 * h)
    fd_b = (loss(1, 1 + h) - loss(1, 1 - h)) / (2 * h)
    s.backward()
    snap = s.snapshot()
    assert snap.param("w").grad == pytest.approx([fd_w], rel=1e-6)
    assert snap.param("b").grad == pytest.approx([fd_b], rel=1e-6)


# --- seed 000: the shallow networks tutorial ------------------------------------------


def sse_by_hand_until(x, y, w, b, lr, tol, max_steps):
    """Q5 of the tutorial as a plain loop: loss, backward, update, zero, until loss <= tol.

    Returns (updates made, w, b, last loss)."""
    w = w.clone().requires_grad_(True)
    b = b.clone().requires_grad_(True)
    for step in range(1, max_steps + 1):
        loss = ((x @ w + b - y) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        w.grad.zero_()
        b.grad.zero_()
        if loss.item() <= tol:
            return step, w.detach(), b.detach(), loss.item()
    return max_steps, w.detach(), b.detach(), loss.item()


def test_shallow_linear_converges_and_recovers_the_true_parameters(make_session):
    """Q5: lr 0.01 until the SSE is < 1e-5; w, b end within 1e-2 of w_true, b_true; a
    plain torch loop on the same data from the same start agrees on steps and final w."""
    s = make_session("shallow-linear")
    assert s.cfg.lr == 0.01
    start = values(s)
    result = s.run()
    assert result.reason == "converged"
    assert result.loss < 1e-5
    snap = s.snapshot()
    assert result.step == snap.step
    truth = snap.true_params
    np.testing.assert_allclose(snap.param("w").value, truth["w"], atol=1e-2)
    np.testing.assert_allclose(snap.param("b").value, truth["b"], atol=1e-2)
    # the truth really generated the data: y = x @ w_true + b_true
    x, y = s.dataset.train.x, s.dataset.train.y
    np.testing.assert_allclose(x.numpy() @ truth["w"] + truth["b"], y.numpy(), atol=1e-5)

    steps, w, b, _ = sse_by_hand_until(x, y, start["w"], start["b"], 0.01, 1e-5, 5000)
    assert result.steps == steps
    np.testing.assert_allclose(snap.param("w").value, w.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(snap.param("b").value, b.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_shallow_logistic_stops_at_bce_0_05_like_a_plain_loop(make_session):
    """Q6: y = (y > 0), sigmoid + BCE, lr 0.01, stop at loss <= 0.05."""
    s = make_session("shallow-logistic")
    start = values(s)
    result = s.run()
    assert result.reason == "converged"
    assert result.loss <= 0.05
    x, y = s.dataset.train.x, s.dataset.train.y
    assert set(y.unique().tolist()) <= {0.0, 1.0}

    w = start["w"].clone().requires_grad_(True)
    b = start["b"].clone().requires_grad_(True)
    steps, loss = 0, math.inf
    while loss > 0.05 and steps < 100_000:
        bce = F.binary_cross_entropy(torch.sigmoid(x @ w + b), y)
        bce.backward()
        with torch.no_grad():
            w -= 0.01 * w.grad
            b -= 0.01 * b.grad
        w.grad.zero_()
        b.grad.zero_()
        steps, loss = steps + 1, bce.item()
    assert result.steps == steps
    snap = s.snapshot()
    np.testing.assert_allclose(snap.param("w").value, w.detach().numpy(), rtol=1e-4)
    np.testing.assert_allclose(snap.param("b").value, b.detach().numpy(), rtol=1e-4)


# --- seed 004: the noisy line ----------------------------------------------------------


def test_noisy_line_starts_from_the_labs_initial_weights(make_session):
    """The lab prints Initial w: -0.2032, Initial b: 0.5817 (the model is made right after
    the data), and the value at x = 1: 0.3785."""
    s = make_session("noisy-line")
    snap = s.snapshot()
    assert snap.param("weight").value.item() == pytest.approx(-0.2032, abs=1e-4)
    assert snap.param("bias").value.item() == pytest.approx(0.5817, abs=1e-4)
    with torch.no_grad():
        at_one = s.model(torch.tensor([[1.0]])).item()
    assert at_one == pytest.approx(0.3785, abs=1e-4)


def test_noisy_line_trains_to_the_least_squares_fit_and_the_labs_numbers(make_session):
    """SGD lr 0.5 on MSE: w, b within 1e-3 of numpy's lstsq and within 2e-3 of the lab's
    reported 3.1482 / 1.9967."""
    s = make_session("noisy-line")
    assert (s.cfg.lr, s.cfg.seed) == (0.5, 0)
    s.run(100)
    x = s.dataset.train.x.numpy().astype(np.float64)
    y = s.dataset.train.y.numpy().astype(np.float64)
    (w_ls, b_ls), *_ = np.linalg.lstsq(np.hstack([x, np.ones_like(x)]), y, rcond=None)
    snap = s.snapshot()
    w, b = snap.param("weight").value.item(), snap.param("bias").value.item()
    assert w == pytest.approx(w_ls, abs=1e-3)
    assert b == pytest.approx(b_ls, abs=1e-3)
    assert w == pytest.approx(3.1482, abs=2e-3)
    assert b == pytest.approx(1.9967, abs=2e-3)


# --- gradients accumulate ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["two-points", "shallow-linear", "noisy-line"])
def test_backward_without_zeroing_adds_the_same_gradient_each_time(make_session, name):
    """Q4: call backward() again and again - the loss and the parameters stay put while
    every .grad grows by the same amount; the count per parameter goes 1, 2, 3."""
    s = make_session(name)
    start = values(s)
    loss1 = s.backward()
    g1 = grads(s)
    for k in (1, 2, 3):
        if k > 1:
            assert s.backward() == loss1
        assert_values_equal(s, start)
        snap = s.snapshot()
        for n, g in g1.items():
            np.testing.assert_allclose(
                snap.param(n).grad, k * g.numpy(), rtol=1e-6, atol=1e-6 * float(g.abs().max())
            )
            assert snap.param(n).backwards_since_zero == k
    assert s.forward() == loss1  # forward alone leaves .grad alone
    np.testing.assert_allclose(s.snapshot().param(next(iter(g1))).grad, 3 * next(iter(g1.values())))


@pytest.mark.parametrize("name", ["two-points", "noisy-line"])
def test_zero_grad_clears_to_zeros_or_to_none(make_session, name):
    s = make_session(name)
    s.backward()
    s.backward()
    s.zero_grad()
    for p in s.snapshot().params:
        assert p.grad is not None and not p.grad.any()
        assert p.backwards_since_zero == 0
    s.backward()
    s.zero_grad(set_to_none=True)
    for p in s.snapshot().params:
        assert p.grad is None
        assert p.backwards_since_zero == 0
    with pytest.raises(ActionError):
        s.step()  # nothing to step with


def full_batch_grad(loss_of, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Plain autograd of ``loss_of(**leaves)`` at copies of ``params``."""
    leaves = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
    loss_of(**leaves).backward()
    return {n: t.grad for n, t in leaves.items()}


def test_k_micro_batches_scaled_by_1_over_k_sum_to_the_full_batch_gradient(make_session):
    """B = 20, K = 4 on the noisy line: four backward passes, each on the next 20 samples
    with the loss divided by 4, add up to the MSE gradient of the first 80 samples."""
    s = make_session("noisy-line")
    s.configure(batch_size=20, accumulate=4)
    x, y = s.dataset.train.x[:80], s.dataset.train.y[:80]
    expected = full_batch_grad(
        lambda weight, bias: F.mse_loss(linear_out(weight, bias, x), y), s.model.params
    )
    s.zero_grad()
    for _ in range(4):
        s.backward()
    snap = s.snapshot()
    for n, g in expected.items():
        np.testing.assert_allclose(snap.param(n).grad, g.numpy(), rtol=1e-6, atol=1e-6)
        assert snap.param(n).backwards_since_zero == 4


def test_micro_batches_of_the_softmax_exercise_sum_to_the_80_sample_gradient(make_session):
    """The softmax preset's own lesson: with K = 4 the four micro-batch gradients of
    h = XW + b under cross-entropy add up to the gradient of the 80 samples."""
    s = make_session("softmax", accumulate=4)
    assert s.cfg.batch_size == 20
    x, y = s.dataset.train.x[:80], s.dataset.train.y[:80].long()
    expected = full_batch_grad(lambda W, b: F.cross_entropy(x @ W + b, y), s.model.params)
    for _ in range(4):
        s.backward()
    snap = s.snapshot()
    for n, g in expected.items():
        np.testing.assert_allclose(snap.param(n).grad, g.numpy(), rtol=1e-6, atol=1e-6)


def test_without_the_1_over_k_the_accumulated_gradient_is_k_times_too_large(make_session):
    s = make_session("noisy-line")
    s.configure(batch_size=20, accumulate=4, scale_loss=False)
    x, y = s.dataset.train.x[:80], s.dataset.train.y[:80]
    expected = full_batch_grad(
        lambda weight, bias: F.mse_loss(linear_out(weight, bias, x), y), s.model.params
    )
    for _ in range(4):
        s.backward()
    snap = s.snapshot()
    for n, g in expected.items():
        np.testing.assert_allclose(snap.param(n).grad, 4 * g.numpy(), rtol=1e-5, atol=4e-6)


def test_a_train_step_with_accumulation_is_one_update_with_the_80_sample_gradient(make_session):
    """softmax is updated by hand (W -= lr * W.grad): one train step with B = 20, K = 4
    moves every parameter by -lr times the gradient of the first 80 samples."""
    s = make_session("softmax", accumulate=4)
    lr = s.cfg.lr
    x, y = s.dataset.train.x[:80], s.dataset.train.y[:80].long()
    start = values(s)
    expected = full_batch_grad(lambda W, b: F.cross_entropy(x @ W + b, y), start)
    s.train_step()
    snap = s.snapshot()
    assert snap.step == 1
    for n, g in expected.items():
        np.testing.assert_allclose(snap.param(n).value, (start[n] - lr * g).numpy(), atol=1e-6)
        assert snap.param(n).backwards_since_zero == 4


# --- step and the optimizers ----------------------------------------------------------


def test_step_by_hand_moves_by_exactly_minus_lr_grad_and_keeps_grad(make_session):
    s = make_session("five-points")
    s.backward()
    s.backward()  # a doubled gradient is stepped with as it is
    before, g = values(s), grads(s)
    s.step()
    lr = s.cfg.lr
    for n, p in s.model.params.items():
        assert torch.equal(p.detach(), before[n] - lr * g[n]), n
        assert torch.equal(p.grad, g[n]), f"{n}.grad changed by step()"
    snap = s.snapshot()
    for n in before:
        np.testing.assert_allclose(snap.param(n).last_delta, (-lr * g[n]).numpy(), rtol=1e-5)


OPTIMIZERS = {
    "sgd momentum": dict(optimizer="sgd", lr=0.1, momentum=0.9),
    "sgd nesterov": dict(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True),
    "sgd weight decay": dict(optimizer="sgd", lr=0.1, momentum=0.5, weight_decay=0.05),
    "adam": dict(optimizer="adam", lr=0.05, betas=(0.8, 0.99), weight_decay=0.01),
}


def plain_optimizer(params: list[torch.Tensor], cfg: dict) -> torch.optim.Optimizer:
    if cfg["optimizer"] == "adam":
        return torch.optim.Adam(
            params, lr=cfg["lr"], betas=cfg["betas"], weight_decay=cfg["weight_decay"]
        )
    return torch.optim.SGD(
        params,
        lr=cfg["lr"],
        momentum=cfg.get("momentum", 0.0),
        nesterov=cfg.get("nesterov", False),
        weight_decay=cfg.get("weight_decay", 0.0),
    )


@pytest.mark.parametrize("cfg", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_torch_optimizers_match_a_plain_torch_loop_for_20_steps(make_session, cfg):
    """Ten single train steps and a run of ten, against the textbook loop from the same
    initial values on the same data."""
    s = make_session("noisy-line", **cfg)
    start = values(s)
    w = start["weight"].clone().requires_grad_(True)
    b = start["bias"].clone().requires_grad_(True)
    opt = plain_optimizer([w, b], cfg)
    x, y = s.dataset.train.x, s.dataset.train.y
    for i in range(20):
        opt.zero_grad()
        F.mse_loss(linear_out(w, b, x), y).backward()
        opt.step()
        if i < 10:
            s.train_step()
    s.run(10)
    snap = s.snapshot()
    assert snap.step == 20
    np.testing.assert_allclose(snap.param("weight").value, w.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(snap.param("bias").value, b.detach().numpy(), rtol=1e-5)


def test_mini_batches_walk_the_data_in_order_like_a_plain_loop(make_session):
    """softmax: batches of 20 taken in order, epoch after epoch, W -= lr * W.grad."""
    s = make_session("softmax")
    start = values(s)
    W = start["W"].clone().requires_grad_(True)
    b = start["b"].clone().requires_grad_(True)
    x, y = s.dataset.train.x, s.dataset.train.y.long()
    n_batches = math.ceil(len(x) / 20)
    for c in range(n_batches + 3):  # past the end of an epoch
        j = c % n_batches
        loss = F.cross_entropy(x[j * 20 : (j + 1) * 20] @ W + b, y[j * 20 : (j + 1) * 20])
        loss.backward()
        with torch.no_grad():
            W -= s.cfg.lr * W.grad
            b -= s.cfg.lr * b.grad
        W.grad.zero_()
        b.grad.zero_()
    s.run(n_batches + 3)
    snap = s.snapshot()
    np.testing.assert_allclose(snap.param("W").value, W.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(snap.param("b").value, b.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert snap.epoch == pytest.approx((n_batches + 3) * 20 / len(x))


# --- undo and reset ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg, state_keys",
    [
        (dict(optimizer="sgd", momentum=0.9), ("momentum_buffer",)),
        (dict(optimizer="adam", lr=0.05), ("exp_avg", "exp_avg_sq", "step")),
    ],
    ids=["sgd momentum", "adam"],
)
def test_undo_restores_parameters_and_optimizer_state_exactly(make_session, cfg, state_keys):
    s = make_session("noisy-line", **cfg)
    for _ in range(3):
        s.train_step()
    before = values(s)
    state = {
        n: {k: s.optimizer.state[p][k].clone() for k in state_keys}
        for n, p in s.model.params.items()
    }
    s.train_step()
    after_one_more = values(s)
    assert s.undo()
    assert_values_equal(s, before)
    for n, p in s.model.params.items():
        for k in state_keys:
            assert torch.equal(s.optimizer.state[p][k], state[n][k]), (n, k)
    assert s.snapshot().step == 3
    # with the state back, the same step lands on the same values
    s.train_step()
    assert_values_equal(s, after_one_more)


def test_undo_is_at_least_100_deep(make_session):
    s = make_session("five-points")
    seen = []
    for _ in range(100):
        seen.append(values(s))
        s.train_step()
    for expected in reversed(seen):
        assert s.undo()
        assert_values_equal(s, expected)
    assert s.snapshot().step == 0


def test_undo_of_step_and_run(make_session):
    s = make_session("noisy-line")
    start = values(s)
    s.backward()
    s.step()
    after_step = values(s)
    s.run(20)
    assert s.undo()  # the whole run is one undo
    assert_values_equal(s, after_step)
    assert s.undo()
    assert_values_equal(s, start)
    assert s.undo()  # the backward is an undo entry of its own (values unchanged by it)
    assert_values_equal(s, start)
    assert not s.undo()


def test_reset_reinitialises_to_the_same_initial_values_and_keeps_settings(make_session):
    s = make_session("noisy-line")
    start = values(s)
    s.configure(lr=0.1)
    s.run(15)
    trained = values(s)
    s.reset()
    assert_values_equal(s, start)
    assert s.cfg.lr == 0.1
    snap = s.snapshot()
    assert snap.step == 0 and len(snap.history) == 0
    assert s.undo()  # a reset is undoable
    assert_values_equal(s, trained)


def test_a_new_session_with_the_same_seed_starts_from_the_same_values(presets):
    for name in ("shallow-linear", "softmax", "xor"):
        a = Session(presets[name], device="cpu")
        torch.manual_seed(12345)  # the global RNG state in between does not matter
        b = Session(presets[name], device="cpu")
        for n, p in a.model.params.items():
            assert torch.equal(p.detach(), b.model.params[n].detach()), (name, n)


# --- run(): when it stops ----------------------------------------------------------------


def test_run_stops_at_max_steps(make_session):
    s = make_session("noisy-line", max_steps=5)
    result = s.run()
    assert (result.steps, result.reason) == (5, "max_steps")
    result = s.run(37)
    assert (result.steps, result.reason) == (37, "max_steps")
    assert s.snapshot().step == 42


def gd_losses(s: Session, lr: float, n: int):
    """Plain full-batch SGD on the noisy line: the loss before each update, and the
    parameters after each update (index i = after i + 1 updates)."""
    start = values(s)
    w = start["weight"].clone().requires_grad_(True)
    b = start["bias"].clone().requires_grad_(True)
    x, y = s.dataset.train.x, s.dataset.train.y
    losses, params = [], []
    for _ in range(n):
        loss = F.mse_loss(linear_out(w, b, x), y)
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        w.grad = None
        b.grad = None
        losses.append(loss.item())
        params.append((w.detach().clone(), b.detach().clone()))
    return np.array(losses), params


@pytest.mark.parametrize("stop", [1, 16, 17, 41, 48, 49])
def test_run_stops_at_the_first_step_whose_loss_reaches_until_loss(make_session, stop):
    """The tolerance is first reached by the loss of step ``stop`` (the engine looks at the
    losses in chunks of 16, 32, ... steps: the stop may land inside one or on its edge).
    That step's update is made, as in the tutorial's loop, and the run ends there."""
    s = make_session("noisy-line", lr=0.05)
    losses, params = gd_losses(s, 0.05, 60)
    assert np.all(np.diff(losses) < 0)
    i = stop - 1
    tol = (losses[i - 1] + losses[i]) / 2 if i else losses[0] * 1.01
    result = s.run(1000, until_loss=tol)
    assert result.reason == "converged"
    assert result.steps == stop
    assert result.loss == pytest.approx(losses[i], rel=1e-6)
    w, b = params[i]
    snap = s.snapshot()
    np.testing.assert_allclose(snap.param("weight").value, w.numpy(), rtol=1e-6)
    np.testing.assert_allclose(snap.param("bias").value, b.numpy(), rtol=1e-6)
    assert result.reason == "converged" and snap.step == stop


def test_run_stops_at_the_first_non_finite_loss_and_undo_returns_to_finite_values(
    make_session,
):
    """lr 10 makes the noisy line blow up: the run reports "diverged at step N" for the
    first step whose loss is inf/NaN (not an exception), and undo gets back to a state
    whose parameters and loss are finite - the app's hint after a divergence is
    "u: undo to the last finite state"."""
    s = make_session("noisy-line", lr=10.0)
    losses, _ = gd_losses(s, 10.0, 40)
    first_bad = int(np.argmax(~np.isfinite(losses)))  # 0-based
    assert not np.isfinite(losses[first_bad]) and np.isfinite(losses[:first_bad]).all()
    result = s.run(1000)
    assert result.reason == "diverged"
    n = first_bad + 1
    assert result.steps == n
    assert f"diverged at step {n}" in describe(result)
    assert s.snapshot().step == n
    assert s.undo()
    snap = s.snapshot()
    for p in snap.params:
        assert np.isfinite(p.value).all(), p.name
    assert snap.train_loss is not None and math.isfinite(snap.train_loss), (
        f"undo after divergence left a state whose training loss is {snap.train_loss}"
    )


def test_run_with_a_time_budget_returns_budget(make_session):
    s = make_session("noisy-line")
    t0 = time.perf_counter()
    result = s.run(10**9, time_budget=0.2)
    elapsed = time.perf_counter() - t0
    assert result.reason == "budget"
    assert 0 < result.steps < 10**9
    assert elapsed < 5
    assert s.snapshot().step == result.steps


# --- analytic gradients and the closed form -------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "two-points",  # scalar w, b + MSE
        "shallow-linear",  # SSE
        "shallow-logistic",  # sigmoid + BCE (by hand)
        "logistic-9",  # nn.Linear + BCE
        "noisy-line",  # nn.Linear + MSE
        "multiple-regression",  # two features
        "softmax",  # h = XW + b + cross-entropy
    ],
)
def test_analytic_gradient_in_the_snapshot_equals_autograd(make_session, name):
    """After one backward, two backwards, a train step and a run."""
    s = make_session(name)

    def check() -> None:
        snap = s.snapshot()
        for p in snap.params:
            assert p.analytic_grad is not None, p.name
            scale = float(np.abs(p.grad).max()) or 1.0
            np.testing.assert_allclose(
                np.asarray(p.analytic_grad).reshape(p.grad.shape),
                p.grad,
                rtol=1e-4,
                atol=1e-5 * scale,
                err_msg=f"{name}: {p.name}",
            )

    s.backward()
    check()
    s.backward()
    check()
    s.train_step()
    check()
    s.run(7)
    check()


@pytest.mark.parametrize("name", ["noisy-line", "multiple-regression", "23-points", "two-points"])
def test_closed_form_is_numpys_least_squares(make_session, name):
    s = make_session(name)
    x = s.dataset.train.x.numpy().astype(np.float64)
    y = s.dataset.train.y.numpy().astype(np.float64)
    theta, *_ = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)
    closed = s.snapshot().closed_form
    assert closed is not None
    w, b = (np.asarray(v).reshape(-1) for v in closed.values())
    np.testing.assert_allclose(w, theta[:-1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b, theta[-1:], rtol=1e-9, atol=1e-9)


@pytest.mark.slow
def test_multiple_regression_predicts_the_least_squares_answer_at_3_2(make_session):
    """Exercise 6: after training, y(X1 = 3, X2 = 2) is the least-squares prediction."""
    s = make_session("multiple-regression")
    s.run()
    x = s.dataset.train.x.numpy().astype(np.float64)
    y = s.dataset.train.y.numpy().astype(np.float64)
    theta, *_ = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)
    expected = 3 * theta[0] + 2 * theta[1] + theta[2]
    with torch.no_grad():
        got = s.model(torch.tensor([[3.0, 2.0]])).item()
    assert got == pytest.approx(expected, abs=1e-2)


# --- devices ------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:7", "tpu", "mps"])
def test_an_unavailable_device_names_the_available_ones(presets, device):
    with pytest.raises(DeviceError) as info:
        Session(presets["two-points"], device=device)
    message = str(info.value)
    assert repr(device) in message or device in message
    assert "available" in message and "cpu" in message


def test_an_unavailable_cuda_index_names_the_available_devices(presets):
    bad = f"cuda:{torch.cuda.device_count() + 7}"
    with pytest.raises(DeviceError) as info:
        resolve_device(bad)
    assert bad in str(info.value) and "cpu" in str(info.value)


def test_moving_to_a_missing_device_keeps_the_session(make_session):
    s = make_session("noisy-line")
    s.train_step()
    before = values(s)
    with pytest.raises(DeviceError):
        s.configure(device="cuda:99")
    assert_values_equal(s, before)
    assert s.snapshot().device == "cpu"
    s.train_step()  # still usable


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["noisy-line", "softmax", "xor"])
def test_cuda_training_matches_the_cpu(presets, name):
    cpu = Session(presets[name], device="cpu")
    gpu = Session(presets[name], device="cuda")
    assert gpu.snapshot().device.startswith("cuda")
    for s in (cpu, gpu):
        s.backward()
        s.backward()
        s.zero_grad()
        s.train_step()
        s.run(10)
    a, b = cpu.snapshot(), gpu.snapshot()
    for pa, pb in zip(a.params, b.params, strict=True):
        np.testing.assert_allclose(pb.value, pa.value, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(pb.grad, pa.grad, rtol=1e-5, atol=1e-5)
    assert b.batch_loss == pytest.approx(a.batch_loss, rel=1e-5, abs=1e-6)


def test_a_large_training_set_reaches_the_fit_view_as_an_even_sample(tmp_path):
    """More training points than a fit view holds: every k-th point is drawn with the
    model's output on it (a plain forward pass), and the wrong ones are counted over
    the whole set."""
    from playground.training.presets import load_preset
    from playground.training.snapshot import FIT_POINTS

    text = (Path(__file__).parents[2] / "presets" / "tfp-xor.toml").read_text()
    path = tmp_path / "big-xor.toml"
    path.write_text(text.replace("n = 400", "n = 13000"))
    s = Session(load_preset(path), device="cpu")
    s.run(30)
    fit = s.snapshot().fit
    x, y = s.build.dataset.train.x, s.build.dataset.train.y
    stride = -(-len(y) // FIT_POINTS)
    assert stride > 1 and fit.n_points == len(y) and fit.stride == stride
    np.testing.assert_array_equal(fit.x, x[::stride].numpy())
    np.testing.assert_array_equal(fit.y, y[::stride].numpy())
    with torch.no_grad():
        p = torch.sigmoid(s.model(x)).reshape(-1)
    np.testing.assert_allclose(fit.pred.reshape(-1), p[::stride].numpy(), atol=1e-6)
    assert fit.n_wrong == int(((p >= 0.5) != (y == 1)).sum())
    assert fit.val_x is not None and len(fit.val_y) == len(s.build.dataset.val.y)

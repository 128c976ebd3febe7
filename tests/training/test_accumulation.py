"""The accumulation lab: one gradient three ways, and the classic mistakes, in numbers.

Oracles: the noisy line's MSE gradient derived by hand (dL/dw = mean(2 r x), dL/db =
mean(2 r), r = w x + b - y) in float64; the all-reduce computed by four real gloo ranks
(DistributedDataParallel), not by a sum in this process. fp32 sums agree to about 1e-7
of the gradient's size, not bit for bit, so equalities are checked relative to it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from playground.training.accumulation import LabComputation
from playground.training.lab import LabToggles
from playground.training.rank_pool import RankPool, default_ranks


@pytest.fixture(scope="module")
def pool():
    """Real ranks, started once for the module (as the runner keeps them)."""
    p = RankPool(device="cpu")
    yield p
    p.stop()


def _hand_gradient(session, idx: np.ndarray) -> dict[str, np.ndarray]:
    """dL/dw and dL/db of mean((w x + b - y)^2) over samples ``idx``, by hand, float64."""
    x = session.x.numpy().astype(np.float64)[idx, 0]
    y = session.y.numpy().astype(np.float64)[idx]
    w = float(session.model.params["weight"].detach().reshape(-1)[0])
    b = float(session.model.params["bias"].detach().reshape(-1)[0])
    r = w * x + b - y
    return {"weight": np.array([[np.mean(2 * r * x)]]), "bias": np.array([np.mean(2 * r)])}


def _close(a: np.ndarray, b: np.ndarray, scale: float, rel: float = 1e-6) -> bool:
    return float(np.max(np.abs(np.asarray(a, np.float64) - b))) <= rel * scale


def test_k4_full_batch_accumulated_and_all_reduced_over_4_gloo_ranks_agree(
    make_session, pool
) -> None:
    """noisy-line, K = 4: the full-batch gradient (== the hand derivation), the four
    micro-batch gradients accumulated with 1/K, and the gradient four gloo ranks hold
    after the all-reduce agree to 1e-6 (relative to the gradient's size)."""
    s = make_session("noisy-line")
    lab = LabComputation(s, k=4)
    view = lab.view(pool.allreduce(lab.tasks()))
    assert view.sizes == (40, 40, 40, 40) and view.ranks == 4
    assert view.backend == "gloo" and view.rank_spread == 0.0  # every rank holds the same
    hand = _hand_gradient(s, np.arange(160))
    scale = view.scale()
    for p in view.params:
        assert _close(p.full, hand[p.name], scale, rel=1e-5)
        assert _close(p.running[-1], p.full, scale)
        assert _close(p.allreduced, p.full, scale)
        assert _close(p.allreduced, p.running[-1], scale)
        # the K micro-batch gradients arrive one backward at a time: .grad adds g_k / K
        for k in range(4):
            by_hand = _hand_gradient(s, np.arange(40 * k, 40 * (k + 1)))[p.name]
            assert _close(p.micro[k], by_hand, scale, rel=1e-5)
            assert _close(p.running[k], sum(p.micro[: k + 1]) / 4, scale)


def test_without_1_over_k_the_accumulated_gradient_is_4x_the_full_batch(make_session) -> None:
    """Forgetting the 1/K sums four mean gradients: 4.0x the full batch, and a plain SGD
    step 4x as long, while Adam's first step barely changes."""
    s = make_session("noisy-line")
    view = LabComputation(s, k=4, toggles=LabToggles(forgot_scale=True)).view()
    assert view.ratio() == pytest.approx(4.0, rel=1e-6)
    for p in view.params:
        assert _close(p.running_unscaled[-1], 4 * p.full, 4 * view.scale())
    scale = next(pf for pf in view.pitfalls if pf.key == "forgot_scale")
    sgd, adam = scale.steps
    assert sgd.optimizer.startswith("SGD") and sgd.ratio == pytest.approx(4.0, rel=1e-6)
    assert adam.optimizer.startswith("Adam") and adam.ratio == pytest.approx(1.0, abs=1e-4)


def test_an_uneven_split_160_in_3_the_mean_of_means_differs_and_sum_over_n_agrees(
    make_session,
) -> None:
    """160 samples in 3 micro-batches (54, 54, 52): loss / K averages the three means,
    which is not the mean over 160 (by hand: the same formula); reduction="sum" / N is."""
    s = make_session("noisy-line")
    view = LabComputation(s, k=3).view()
    assert view.sizes == (54, 54, 52) and view.uneven
    hand = _hand_gradient(s, np.arange(160))
    pieces = [np.arange(0, 54), np.arange(54, 108), np.arange(108, 160)]
    means = [_hand_gradient(s, idx) for idx in pieces]
    scale = view.scale()
    for p in view.params:
        mean_of_means = sum(m[p.name] for m in means) / 3
        assert _close(p.running[-1], mean_of_means, scale, rel=1e-5)
        assert not _close(p.running[-1], hand[p.name], scale, rel=1e-4)
    uneven = dict(next(pf for pf in view.pitfalls if pf.key == "uneven").numbers)
    assert uneven["max |mean of means - full|"] > 1e-4 * scale
    assert uneven["max |sum/N - full|"] < 1e-6 * scale


def test_the_lab_leaves_the_session_exactly_as_it_was(make_session, pool) -> None:
    """A lab computation with every mistake on changes nothing: the snapshot (values,
    .grad, counters, loss history, code), the undo and redo depth, the transcript and
    torch's random state are as before."""
    s = make_session("noisy-line", batch_size=40)
    s.train_step()
    s.backward()
    before, rng = s.snapshot(), torch.get_rng_state()
    undo, redo, script = s.undo_depth, s.redo_depth, s.script()
    every = LabToggles(forgot_zero_grad=True, forgot_scale=True, uneven=True, shuffled=True)
    lab = LabComputation(s, k=4, toggles=every)
    lab.view(pool.allreduce(lab.tasks()))
    after = s.snapshot()
    for p, q in zip(before.params, after.params, strict=True):
        assert np.array_equal(p.value, q.value) and np.array_equal(p.grad, q.grad)
        assert p.backwards_since_zero == q.backwards_since_zero
    assert (before.step, before.cursor, before.log) == (after.step, after.cursor, after.log)
    assert np.array_equal(before.history.loss, after.history.loss)
    assert (s.undo_depth, s.redo_depth, s.script()) == (undo, redo, script)
    assert torch.equal(torch.get_rng_state(), rng)


def test_forgot_zero_grad_adds_the_leftover_grad_to_this_step(make_session) -> None:
    """After a backward the session's .grad holds g; a loop without zero_grad starts
    from it, so .grad ends at g + the full-batch gradient, and the SGD step is twice as
    long (the leftover is this very gradient here)."""
    s = make_session("noisy-line")
    s.backward()
    left = {n: p.grad.numpy().copy() for n, p in s.model.params.items()}
    view = LabComputation(s, k=4, toggles=LabToggles(forgot_zero_grad=True)).view()
    for p in view.params:
        assert _close(p.start, left[p.name], view.scale(), rel=0)
        assert _close(p.running[-1], left[p.name] + p.full, view.scale())
    zero = next(pf for pf in view.pitfalls if pf.key == "forgot_zero_grad")
    assert "session's .grad (1 backward" in zero.note
    assert zero.steps[0].ratio == pytest.approx(2.0, rel=1e-5)


def test_shuffled_micro_batches_change_each_gradient_not_their_sum(make_session) -> None:
    """Shuffling the 160 samples before cutting them in 4 changes every micro-batch's
    gradient, not what the four add up to (the same samples, evenly split)."""
    s = make_session("noisy-line")
    fixed = LabComputation(s, k=4).view()
    shuffled = LabComputation(s, k=4, toggles=LabToggles(shuffled=True)).view()
    scale = fixed.scale()
    for p, q in zip(fixed.params, shuffled.params, strict=True):
        assert not _close(p.micro[0], q.micro[0], scale, rel=1e-3)
        assert _close(p.running[-1], q.running[-1], scale)


def test_the_window_is_the_sessions_next_k_micro_batches(make_session) -> None:
    """With micro-batches of B = 48 the lab takes the session's next K = 4 from its
    cursor, wrapping into the next epoch (the fourth holds the 16 left of 160)."""
    s = make_session("noisy-line", batch_size=48)
    s.train_step()  # cursor 1
    view = LabComputation(s, k=4).view()
    assert view.sizes == (48, 48, 16, 48)
    idx = np.concatenate([np.arange(48, 160), np.arange(0, 48)])
    hand = _hand_gradient(s, idx)
    for p in view.params:
        assert _close(p.full, hand[p.name], view.scale(), rel=1e-5)


def test_with_shuffle_the_window_is_what_the_sessions_next_backwards_take(make_session) -> None:
    """A shuffling session (each epoch in the DataLoader's order): the lab's accumulated
    gradient is what the session's own next K backward passes leave in .grad."""
    s = make_session("noisy-line", batch_size=48, shuffle=True, accumulate=2)
    s.train_step()
    s.train_step()  # mid-epoch 1
    view = LabComputation(s, k=2).view()
    s.zero_grad()
    s.backward()
    s.backward()
    for p in view.params:
        grad = s.model.params[p.name].grad.numpy()
        assert _close(p.running[-1], grad, view.scale())


def test_four_ranks_share_eight_micro_batches_with_no_sync(make_session, pool) -> None:
    """K = 8 on the same 4 ranks: each accumulates its two micro-batches (no_sync on the
    first), the all-reduce averages the ranks: the full-batch gradient again."""
    s = make_session("noisy-line")
    lab = LabComputation(s, k=8, ranks=4)
    view = lab.view(pool.allreduce(lab.tasks()))
    assert view.per_rank == 2 and pool.starts == 1  # the ranks were reused
    for p in view.params:
        assert _close(p.allreduced, p.full, view.scale())
    assert default_ranks(4) == 4 and default_ranks(12) == 6 and default_ranks(7) == 7


def test_bad_k_or_ranks_are_named(make_session) -> None:
    s = make_session("five-points")
    with pytest.raises(ValueError, match="k: 6 micro-batches"):
        LabComputation(s, k=6)
    with pytest.raises(ValueError, match="ranks: 3 ranks cannot share 4"):
        LabComputation(s, k=4, ranks=3)

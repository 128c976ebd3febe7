"""Seed 003: epochs with a train phase and a validation phase, and the best state by
validation loss - against the loop the course writes with TensorDataset and DataLoader."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from playground.training.presets import find_preset
from playground.training.session import Session
from playground.training.steps import ActionError


def dataloader_loop(s: Session, epochs: int) -> tuple[list[float], list[float], int, dict]:
    """The course's loop, from the session's data and initial parameters: per epoch the
    train phase (zero_grad, forward, BCE, backward, optimizer.step() per mini-batch) and
    the validation phase (the loss averaged over the validation mini-batches, the
    accuracy), keeping the best state_dict by validation loss."""
    x, y = s.dataset.train.x, s.dataset.train.y
    vx, vy = s.dataset.val.x, s.dataset.val.y
    model = torch.nn.Linear(2, 1)
    model.load_state_dict(copy.deepcopy(s.model.module.state_dict()))
    opt = torch.optim.SGD(model.parameters(), lr=s.cfg.lr)
    train = DataLoader(TensorDataset(x, y), batch_size=s.cfg.batch_size)
    val = DataLoader(TensorDataset(vx, vy), batch_size=s.cfg.batch_size)
    bce = torch.nn.functional.binary_cross_entropy
    best, best_epoch, best_state = float("inf"), 0, None
    val_losses, val_accs = [], []
    for epoch in range(1, epochs + 1):
        model.train()
        for xb, yb in train:
            opt.zero_grad()
            loss = bce(torch.sigmoid(model(xb).squeeze(-1)), yb)
            loss.backward()
            opt.step()
        model.eval()
        total, correct = 0.0, 0
        with torch.no_grad():
            for xb, yb in val:
                out = model(xb).squeeze(-1)
                total += bce(torch.sigmoid(out), yb).item()
                correct += int(((out > 0).float() == yb).sum())
        avg = total / len(val)
        val_losses.append(avg)
        val_accs.append(correct / len(vx))
        if avg < best:
            best, best_epoch, best_state = avg, epoch, copy.deepcopy(model.state_dict())
    return val_losses, val_accs, best_epoch, best_state


@pytest.mark.slow
def test_epochs_validation_phases_and_the_best_state_are_the_dataloader_loops() -> None:
    s = Session(find_preset("logistic-val"), device="cpu")
    epochs = 6
    want_loss, want_acc, want_epoch, want_state = dataloader_loop(s, epochs)
    s.run(epochs * s.n_batches)
    snap = s.snapshot()
    assert snap.epochs_done == epochs and snap.epoch == pytest.approx(epochs)
    np.testing.assert_allclose(snap.history.val_loss, want_loss, rtol=1e-6)
    np.testing.assert_allclose(snap.history.val_accuracy, want_acc, rtol=1e-6)
    assert snap.best is not None and snap.best.epoch == want_epoch
    assert snap.best.val_loss == pytest.approx(want_loss[want_epoch - 1], rel=1e-6)
    epoch = s.restore_best()
    assert epoch == want_epoch
    state = s.model.module.state_dict()
    for name, tensor in want_state.items():
        assert torch.equal(state[name], tensor), name
    s.undo()  # restoring the best state is an action like any other
    assert s.snapshot().step == epochs * s.n_batches


@pytest.mark.slow
def test_accuracy_is_078_to_079_most_of_the_time_for_train_and_val_alike() -> None:
    """Over seeds 0-19 the median train and val accuracy lie in [0.775, 0.795], and the
    default seed's within 0.015 of them."""
    preset = find_preset("logistic-val")
    train, val = [], []
    for seed in range(20):
        s = Session(preset, device="cpu", seed=seed)
        s.run()
        snap = s.snapshot()
        train.append(snap.train_accuracy)
        val.append(snap.val_accuracy)
    for accs in (train, val):
        median = float(np.median(accs))
        assert 0.775 <= median <= 0.795, accs
        assert abs(accs[0] - median) <= 0.015, (accs[0], median)


def test_a_single_step_that_ends_an_epoch_runs_the_validation_phase() -> None:
    """By hand too: the step that uses the last micro-batch of the epoch validates."""
    s = Session(find_preset("softmax"), device="cpu")
    n = s.n_batches
    for _ in range(n - 1):
        s.train_step()
    assert s.snapshot().epochs_done == 0 and len(s.snapshot().history.val_loss) == 0
    s.train_step()
    snap = s.snapshot()
    assert snap.epochs_done == 1 and len(snap.history.val_loss) == 1
    assert snap.best is not None and snap.best.epoch == 1
    s.undo()
    assert s.snapshot().best is None and s.snapshot().epochs_done == 0


def test_restore_best_before_any_epoch_says_why() -> None:
    s = Session(find_preset("logistic-val"), device="cpu")
    with pytest.raises(ActionError, match="no validation phase yet"):
        s.restore_best()


def test_best_survives_a_save(tmp_path) -> None:
    from playground.training.persist import load_session, save_session

    s = Session(find_preset("softmax"), device="cpu")
    s.run(3 * s.n_batches)
    path = save_session(s, tmp_path / "s.npz")
    t = load_session(path)
    a, b = s.snapshot().best, t.snapshot().best
    assert (a.epoch, a.val_loss) == (b.epoch, b.val_loss)
    for name in a.values:
        np.testing.assert_array_equal(a.values[name], b.values[name])

"""A snapshot evaluates the model on the splits again only when a parameter has changed:
after ``z`` or ``b`` a million-row data set costs no pass over it, and a change by any
route - a step, an undo, a write through ``.data`` - is always seen."""

from __future__ import annotations

import pytest
import torch

from playground.training.models import compute_loss
from playground.training.presets import find_preset
from playground.training.session import Session


def plain_losses(s: Session) -> tuple[float, float | None]:
    """The train and validation loss of the session's model by plain torch."""
    with torch.no_grad():
        out = s.model(s.x)
        train = compute_loss(s.cfg.loss, out, s.y).item()
        val = None
        if s.build.val is not None:
            xv, yv = s.build.val
            val = compute_loss(s.cfg.loss, s.model(xv), yv).item()
    return train, val


@pytest.fixture
def counted() -> tuple[Session, list[int]]:
    s = Session(find_preset("noisy-line"), device="cpu")
    passes = [0]

    def hook(module, args, out) -> None:
        if args[0].shape[0] == s.x.shape[0]:  # a pass over the whole training set
            passes[0] += 1

    s.model.module.register_forward_hook(hook)
    return s, passes


def test_zero_grad_and_backward_reuse_the_evaluation(counted) -> None:
    s, passes = counted
    first = s.snapshot()
    assert passes[0] == 1
    s.backward()  # its forward is a pass of its own
    after_b = passes[0]
    s.zero_grad()
    snap = s.snapshot()
    s.snapshot()
    assert passes[0] == after_b  # no pass for the snapshots: the parameters are the same
    assert snap.train_loss == first.train_loss and snap.val_loss == first.val_loss
    assert snap.fit is not None and snap.fit.pred.tolist() == first.fit.pred.tolist()


def test_every_change_of_the_parameters_is_seen(counted) -> None:
    s, _ = counted
    s.snapshot()
    checks = []

    def check(what: str) -> None:
        with torch.no_grad():
            pred = s.model(s.x).tolist()
        checks.append((what, s.snapshot(), plain_losses(s), pred))

    s.train_step()
    check("a train step")
    s.undo()
    check("undo")
    with torch.no_grad():
        s.model.params["weight"].data.add_(0.25)  # no autograd version counter sees this
    check("a write through .data")
    s.run(5)
    check("a run")
    seen = [c[1].train_loss for c in checks]
    assert len(set(seen)) == len(seen)  # each change moved the loss
    for what, snap, (train, val), pred in checks:
        assert snap.train_loss == pytest.approx(train, rel=1e-6), what
        assert snap.val_loss == pytest.approx(val, rel=1e-6), what
        assert snap.fit.pred.tolist() == pytest.approx(pred, rel=1e-6), what


def test_a_parameter_that_became_nan_is_evaluated_again() -> None:
    """NaN is not equal to itself: a non-finite parameter never reuses an evaluation."""
    s = Session(find_preset("noisy-line"), device="cpu")
    s.snapshot()
    with torch.no_grad():
        s.model.params["bias"].fill_(float("nan"))
    a = s.snapshot()
    with torch.no_grad():
        s.model.params["bias"].fill_(2.0)
    b = s.snapshot()
    assert a.train_loss != a.train_loss  # NaN
    assert b.train_loss == pytest.approx(plain_losses(s)[0], rel=1e-6)

"""Run mode's update (training/fast_update.py) gives ``opt.step()``'s numbers bit for
bit, parameters and optimizer state, for every setting it takes; the rest is left to
``opt.step()``."""

from __future__ import annotations

import pytest
import torch

from playground.training import fast_update as fu


def _pair(kind, **hyper):
    gen = torch.Generator().manual_seed(1)
    start = [torch.randn(4, 3, generator=gen), torch.randn(3, generator=gen)]
    ours = [t.clone().requires_grad_() for t in start]
    theirs = [t.clone().requires_grad_() for t in start]
    return ours, kind(ours, foreach=True, **hyper), theirs, kind(theirs, foreach=True, **hyper)


VARIANTS = [
    (torch.optim.SGD, {"lr": 0.1}),
    (torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.01}),
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (torch.optim.Adam, {"lr": 0.03}),
    (torch.optim.Adam, {"lr": 0.03, "betas": (0.8, 0.99), "eps": 1e-6}),
    (torch.optim.Adam, {"lr": 0.03, "weight_decay": 0.001}),
]


@pytest.mark.parametrize(("kind", "hyper"), VARIANTS, ids=[str(h) for _, h in VARIANTS])
def test_the_fast_update_is_opt_step_bit_for_bit(kind, hyper) -> None:
    ours, opt_ours, theirs, opt_theirs = _pair(kind, **hyper)
    gen = torch.Generator().manual_seed(2)
    used = 0
    for _ in range(30):
        grads = [torch.randn(p.shape, generator=gen) for p in ours]
        for p, q, g in zip(ours, theirs, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        opt_theirs.step()
        update = fu.fast_update(opt_ours)
        if update is None:
            opt_ours.step()
        else:
            update([p.grad for p in ours])
            used += 1
        for p, q in zip(ours, theirs, strict=True):
            assert torch.equal(p.detach(), q.detach())
            assert torch.equal(p.grad, q.grad)  # nesterov adds to .grad in place, as torch
            a, b = opt_ours.state[p], opt_theirs.state[q]
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert used >= 29  # only a first step that makes the state goes through opt.step()


@pytest.mark.parametrize(
    ("kind", "hyper"),
    [
        (torch.optim.Adam, {"lr": 0.03, "amsgrad": True}),
        (torch.optim.Adam, {"lr": 0.03, "maximize": True}),
        (torch.optim.SGD, {"lr": 0.1, "maximize": True}),
        (torch.optim.AdamW, {"lr": 0.03}),  # another optimizer (a subclass of Adam)
    ],
    ids=["amsgrad", "adam-maximize", "sgd-maximize", "adamw"],
)
def test_what_it_does_not_cover_is_left_to_opt_step(kind, hyper) -> None:
    ours, opt, _, _ = _pair(kind, **hyper)
    for p in ours:
        p.grad = torch.ones_like(p)
    opt.step()  # the state is made
    assert fu.fast_update(opt) is None


def test_hooks_and_unequal_step_counts_are_left_to_opt_step() -> None:
    ours, opt, _, _ = _pair(torch.optim.Adam, lr=0.03)
    for p in ours:
        p.grad = torch.ones_like(p)
    opt.step()
    assert fu.fast_update(opt) is not None
    handle = opt.register_step_post_hook(lambda *_: None)
    assert fu.fast_update(opt) is None  # the hook must run: opt.step() runs it
    handle.remove()
    ours[1].grad = None
    opt.step()  # torch skips a parameter without a gradient, its step count with it
    assert fu.fast_update(opt) is None


def test_a_torch_whose_update_differs_is_caught_by_the_self_check(monkeypatch) -> None:
    """If this torch's own update ever differs from the calls the fast update makes, the
    once-per-setting check finds it and ``opt.step()`` stays in use."""
    monkeypatch.setattr(fu, "_AGREES", {})
    real = fu._sgd

    def off_by_a_bit(opt, leaves, group):
        update = real(opt, leaves, group)

        def wrong(grads):
            update(grads)
            torch._foreach_mul_([p.detach() for p in leaves], 1.0 + 2**-20)

        return wrong

    monkeypatch.setattr(fu, "_sgd", off_by_a_bit)
    ours, opt, _, _ = _pair(torch.optim.SGD, lr=0.1)
    for p in ours:
        p.grad = torch.ones_like(p)
    assert fu.fast_update(opt) is None

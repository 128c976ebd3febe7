"""Run mode calls the ops that ``model(x)``, the loss and ``loss.backward()`` end in
directly: the numbers must be those of the ordinary calls, bit for bit, and anything the
direct calls do not know (a hook, another layer) must keep the ordinary calls."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

import playground.training.steps as steps_module
from playground.training import fast_calls
from playground.training.fast_calls import calls_for, ordinary
from playground.training.models import Model, build_model, compute_loss
from playground.training.presets import load_presets
from playground.training.session import Session

PRESETS = sorted(load_presets()[0])


def _grads(model: Model, loss_name: str, x, y, direct: bool):
    for p in model.params.values():
        p.grad = None
    calls = calls_for(model, loss_name, x, y) if direct else ordinary(model, loss_name)
    loss = calls.loss(calls.forward(x), y)
    calls.backward(loss)
    return calls.fast, loss.detach(), [p.grad.clone() for p in model.params.values()]


CASES = [
    ("linear", 3, 1, "mse", {}),
    ("logistic", 2, 1, "bce", {}),
    ("logistic", 2, 1, "bce_sum", {}),
    ("softmax", 2, 3, "ce", {}),
    ("mlp", 2, 1, "bce", {"hidden": (8, 8), "activation": "tanh"}),
    ("mlp", 2, 1, "mse", {"hidden": (5,), "activation": "relu"}),
    ("mlp", 2, 4, "ce", {"hidden": (6,), "activation": "sigmoid"}),
]


@pytest.mark.parametrize(("kind", "d", "out", "loss", "extra"), CASES)
def test_the_direct_calls_give_the_ordinary_loss_and_gradients_bit_for_bit(
    kind, d, out, loss, extra
) -> None:
    torch.manual_seed(0)
    model = build_model(kind, d, out, **extra)
    x = torch.randn(37, d)
    y = torch.randint(0, max(out, 2), (37,)).float() if loss != "mse" else torch.randn(37)
    fast, loss_a, grads_a = _grads(model, loss, x, y, direct=True)
    _, loss_b, grads_b = _grads(model, loss, x, y, direct=False)
    assert fast  # these are the models and losses the direct calls are for
    assert torch.equal(loss_a, loss_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b, strict=True))


def test_a_hook_on_a_layer_keeps_the_ordinary_calls_and_runs_the_hook() -> None:
    torch.manual_seed(0)
    model = build_model("mlp", 2, 1, hidden=(4,))
    seen = []
    model.module[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    calls = calls_for(model, "bce", torch.randn(5, 2), torch.ones(5))
    assert not calls.fast
    calls.forward(torch.randn(5, 2))
    assert seen == [torch.Size([5, 4])]


@pytest.fixture
def global_hook() -> Iterator[list]:
    seen: list = []
    handle = nn.modules.module.register_module_forward_hook(lambda m, i, o: seen.append(m))
    yield seen
    handle.remove()


def test_a_global_module_hook_keeps_the_ordinary_calls(global_hook) -> None:
    torch.manual_seed(0)
    model = build_model("linear", 1, 1)
    calls = calls_for(model, "mse", torch.randn(4, 1), torch.randn(4))
    assert not calls.fast
    calls.forward(torch.randn(4, 1))
    assert global_hook  # the hook ran


def test_a_layer_the_direct_calls_do_not_know_keeps_the_ordinary_calls() -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 1))
    model = Model("mlp", module, dict(module.named_parameters()), 1)
    assert not calls_for(model, "mse", torch.randn(4, 2), torch.randn(4)).fast


def test_a_direct_call_that_disagrees_is_not_used(monkeypatch) -> None:
    """The check once per kind of model: a direct forward with other numbers is refused."""
    torch.manual_seed(0)
    model = build_model("linear", 1, 1)
    monkeypatch.setattr(fast_calls, "_AGREES", {})
    real = fast_calls._forward
    monkeypatch.setattr(fast_calls, "_forward", lambda m: lambda x: real(m)(x) * 1.0000001)
    assert not calls_for(model, "mse", torch.randn(4, 1), torch.randn(4)).fast


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_runs_to_the_same_numbers_with_the_ordinary_calls(name, monkeypatch) -> None:
    """Run mode with the direct calls, and with the ordinary ones: the parameters, the
    loss history and the validation losses are equal (on every preset, so on every model
    and loss the presets use)."""

    def run(direct: bool) -> Session:
        if not direct:
            monkeypatch.setattr(steps_module, "calls_for", lambda m, n, x, y: ordinary(m, n))
        session = Session(load_presets()[0][name], device="cpu")
        session.run(max(40, 2 * session.n_batches + 1))  # two epochs at least
        monkeypatch.undo()
        return session

    a, b = run(True), run(False)
    for (n, p), q in zip(a.model.params.items(), b.model.params.values(), strict=True):
        assert torch.equal(p.detach(), q.detach()), n
    assert np.array_equal(a.snapshot().history.loss, b.snapshot().history.loss, equal_nan=True)
    for h in (a.build.val_history, b.build.val_history):
        h.flush()
    val_a, val_b = a.build.val_history.loss.view(), b.build.val_history.loss.view()
    assert (len(val_a) >= 2) == (a.build.val is not None)  # two validation phases
    assert np.array_equal(val_a, val_b, equal_nan=True)


def test_the_ordinary_calls_are_compute_loss_and_backward() -> None:
    torch.manual_seed(0)
    model = build_model("linear", 1, 1)
    x, y = torch.randn(6, 1), torch.randn(6)
    calls = ordinary(model, "mse")
    assert torch.equal(calls.loss(calls.forward(x), y), compute_loss("mse", model(x), y))

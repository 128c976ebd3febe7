"""Run mode's forward, loss and backward with fewer Python-level calls than a student's loop.

For a small model, most of a train step is Python, not arithmetic:

- ``model(x)`` goes through ``nn.Module.__call__`` (hooks, tracing state) for the model and
  again for every layer of it;
- ``F.mse_loss`` checks sizes and calls ``torch.broadcast_tensors`` before its kernel;
- ``loss.backward()`` normalises its arguments and makes its gradient with ``ones_like``.

For the models and losses of this project (``nn.Linear``, ``nn.Sequential`` of linear
layers and ``ReLU`` / ``Tanh`` / ``Sigmoid``, the softmax regression; MSE, BCE, CE), with no
module hooks anywhere, run mode calls the ops those functions end in directly: the same
kernels on the same tensors, so the same numbers and gradients bit for bit. Once per
process and kind of model, loss, device and dtype, one forward and backward is taken both
ways on copies of the model and must agree exactly, or the ordinary calls stay in use
(as for the optimizer's update, see ``fast_update``). Anything else - a model or layer this
module does not know, a hook, a tracer - keeps ``model(x)``, ``compute_loss`` and
``loss.backward()``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.autograd import graph as autograd_graph
from torch.nn import _reduction
from torch.nn.modules import module as module_mod

from playground.training.models import SoftmaxRegression, compute_loss

if TYPE_CHECKING:
    from playground.training.models import Model

Forward = Callable[[torch.Tensor], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_MEAN = _reduction.get_enum("mean")
_SUM = _reduction.get_enum("sum")
_ELEMENTWISE: dict[type[nn.Module], Forward] = {
    nn.ReLU: torch.relu,
    nn.Tanh: torch.tanh,
    nn.Sigmoid: torch.sigmoid,
}


@dataclass(frozen=True)
class Calls:
    """A train step's calls: ``backward(loss)`` is ``loss.backward()``."""

    forward: Forward
    loss: Loss
    backward: Callable[[torch.Tensor], None]
    fast: bool  # False: the ordinary calls


def calls_for(model: Model, loss_name: str, x: torch.Tensor, y: torch.Tensor) -> Calls:
    """The calls of a train step of ``model`` with loss ``loss_name`` on batches like
    ``x``, ``y``: the direct ones where they are known to agree, else the ordinary ones."""
    forward, loss = _forward(model), _loss(loss_name)
    if forward is None or loss is None or not _agrees(model, loss_name, x, y):
        return ordinary(model, loss_name)
    return Calls(forward, loss, _backward(x.device, x.dtype), True)


def ordinary(model: Model, loss_name: str) -> Calls:
    """``model(x)``, ``compute_loss``, ``loss.backward()``."""
    return Calls(model, lambda out, y: compute_loss(loss_name, out, y), _plain_backward, False)


def _plain_backward(loss: torch.Tensor) -> None:
    loss.backward()


# --- the direct calls -----------------------------------------------------------------


def _forward(model: Model) -> Forward | None:
    """``model(x)`` without ``nn.Module.__call__``, or None where that could differ."""
    if model.module is None:
        return model  # the by-hand scalar model: its own two ops already
    forward = _module_forward(model.module)
    if forward is None:
        return None
    if model.n_outputs == 1:
        inner = forward
        return lambda x: inner(x).squeeze(-1)
    return forward


def _module_forward(module: nn.Module) -> Forward | None:
    if _hooked(module):
        return None
    kind = type(module)
    if kind is nn.Linear:
        linear, weight, bias = torch._C._nn.linear, module.weight, module.bias
        return lambda x: linear(x, weight, bias)
    if kind in _ELEMENTWISE:
        return _ELEMENTWISE[kind]
    if kind is SoftmaxRegression:
        w, b = module.W, module.b
        return lambda x: torch.matmul(x, w) + b
    if kind is nn.Sequential:
        layers = [_module_forward(m) for m in module]
        if not layers or any(f is None for f in layers):
            return None
        chain: list[Forward] = layers  # type: ignore[assignment]

        def sequential(x: torch.Tensor) -> torch.Tensor:
            for f in chain:
                x = f(x)
            return x

        return sequential
    return None


def _hooked(module: nn.Module) -> bool:
    """Anything that makes ``module(x)`` more than ``module.forward(x)``."""
    if torch._C._get_tracing_state() or module._compiled_call_impl is not None:
        return True
    own = (
        module._forward_hooks,
        module._forward_pre_hooks,
        module._backward_hooks,
        module._backward_pre_hooks,
    )
    every = (
        module_mod._global_forward_hooks,
        module_mod._global_forward_pre_hooks,
        module_mod._global_backward_hooks,
        module_mod._global_backward_pre_hooks,
    )
    return any(len(h) for h in (*own, *every))


def _loss(name: str) -> Loss | None:
    """``compute_loss(name, out, y)`` as the op it ends in (for same-shaped operands, which
    our models and data always give; other shapes go the ordinary way)."""
    nn_ops = torch._C._nn
    if name == "mse":

        def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if out.shape != y.shape:
                return compute_loss(name, out, y)
            return nn_ops.mse_loss(out, y, _MEAN)

        return mse
    if name in ("bce", "bce_sum"):
        reduction = _MEAN if name == "bce" else _SUM

        def bce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if out.shape != y.shape:
                return compute_loss(name, out, y)
            return nn_ops.binary_cross_entropy(torch.sigmoid(out), y, None, reduction)

        return bce
    if name == "ce":

        def ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return nn_ops.cross_entropy_loss(out, y.long(), None, _MEAN, -100, 0.0)

        return ce
    return None  # sse: its own few ops already


def _backward(device: torch.device, dtype: torch.dtype) -> Callable[[torch.Tensor], None]:
    """``loss.backward()`` for a 0-d loss: the engine call it ends in, with the gradient
    of ones made once instead of each time."""
    one = torch.ones((), device=device, dtype=dtype)
    run = autograd_graph._engine_run_backward

    def backward(loss: torch.Tensor) -> None:
        if loss.dim() != 0 or loss.dtype != one.dtype or loss.device != one.device:
            loss.backward()
            return
        run((loss,), (one,), False, False, (), allow_unreachable=True, accumulate_grad=True)

    return backward


# --- the check ------------------------------------------------------------------------

_AGREES: dict[tuple, bool] = {}


def _agrees(model: Model, loss_name: str, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether the direct calls give ``model``'s kind the ordinary calls' loss and
    gradients exactly (checked once per process, on copies: the model is not touched)."""
    key = (
        model.kind,
        repr(model.module),
        model.n_outputs,
        loss_name,
        str(x.device),
        x.dtype,
        y.dtype,
        tuple(x.shape[1:]),
    )
    if key not in _AGREES:
        _AGREES[key] = _check(model, loss_name, x[:8], y[:8])
    return _AGREES[key]


def _check(model: Model, loss_name: str, x: torch.Tensor, y: torch.Tensor) -> bool:
    from playground.training.models import Model as ModelType

    results = []
    for direct in (False, True):
        module = copy.deepcopy(model.module)
        if module is None:
            params = {n: p.detach().clone().requires_grad_() for n, p in model.params.items()}
        else:
            params = dict(module.named_parameters())
            for p in params.values():
                p.grad = None  # a copy keeps the gradients: each side starts from none
        twin = ModelType(model.kind, module, params, model.n_outputs)
        if direct:
            forward, loss_fn = _forward(twin), _loss(loss_name)
            if forward is None or loss_fn is None:
                return False
            loss = loss_fn(forward(x), y)
            _backward(x.device, x.dtype)(loss)
        else:
            loss = compute_loss(loss_name, twin(x), y)
            loss.backward()
        results.append((loss.detach(), [p.grad for p in params.values()]))
    (a, ga), (b, gb) = results
    return torch.equal(a, b) and all(
        p is not None and q is not None and torch.equal(p, q) for p, q in zip(ga, gb, strict=True)
    )

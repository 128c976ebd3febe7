"""The optimizer's update in run mode, with fewer Python-level calls than ``opt.step()``.

``opt.step()`` of torch's multi-tensor SGD and Adam spends most of a small model's update
in Python: hooks, grouping the tensors by device and dtype, one ``.item()`` per parameter
for Adam's step count. In run mode the parameters, their state and the hyperparameters
are the same for thousands of steps, so that work is done once per slice and each step
makes only the foreach calls of torch's own ``_multi_tensor_sgd`` / ``_multi_tensor_adam``,
in their order and with their scalars: the numbers are those of ``opt.step()`` bit for bit.
A torch whose own update differs from these calls is caught before they are used: once
per process and setting, a few steps on two small tensors are taken both ways and must
agree exactly, or ``opt.step()`` stays in use (tests/training/test_fast_update.py checks
every variant against it too).

Anything else (other optimizers, several parameter groups, AMSGrad, maximize,
capturable or fused updates, hooks, mixed devices or dtypes, missing state or gradients)
gets ``None`` from ``fast_update``: the caller then uses ``opt.step()``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Update = Callable[[list[torch.Tensor]], None]  # takes the gradients, in parameter order


def fast_update(opt: torch.optim.Optimizer | None) -> Update | None:
    """An update equal to ``opt.step()`` for the optimizer as it is now, or ``None``."""
    update = _build(opt)
    if update is None or not _agrees(opt):
        return None
    return update


_AGREES: dict[tuple, bool] = {}  # (optimizer, hyperparameters, device, dtype) -> checked
_CHECK_STEPS = 4


def _agrees(opt: torch.optim.Optimizer) -> bool:
    """Whether this torch's ``opt.step()`` and ``_build``'s update give the same numbers
    for ``opt``'s kind, hyperparameters, device and dtype (checked once per process)."""
    group = opt.param_groups[0]
    first = group["params"][0]
    hyper = {k: v for k, v in group.items() if k != "params"}
    key = (type(opt), repr(sorted(hyper.items())), str(first.device), first.dtype)
    if key not in _AGREES:
        try:
            _AGREES[key] = _self_check(type(opt), hyper, first.device, first.dtype)
        except (TypeError, ValueError, RuntimeError):  # a group key its constructor lacks
            _AGREES[key] = False
    return _AGREES[key]


def _self_check(kind: type, hyper: dict, device: torch.device, dtype: torch.dtype) -> bool:
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(3, 2, generator=gen), torch.randn(2, generator=gen)]
    grads = [[torch.randn(t.shape, generator=gen) for t in start] for _ in range(_CHECK_STEPS)]
    # .to() may hand back the tensor itself: each side gets copies of its own
    ours, theirs = ([t.to(device, dtype).clone().requires_grad_() for t in start] for _ in range(2))
    opt_ours, opt_theirs = kind(ours, **hyper), kind(theirs, **hyper)
    for step in grads:
        for p, q, g in zip(ours, theirs, step, strict=True):
            p.grad, q.grad = g.to(device, dtype).clone(), g.to(device, dtype).clone()
        opt_theirs.step()
        update = _build(opt_ours)
        if update is None:
            opt_ours.step()  # the first step: the state is made
        else:
            update([p.grad for p in ours])
    same = all(torch.equal(p.detach(), q.detach()) for p, q in zip(ours, theirs, strict=True))
    for p, q in zip(ours, theirs, strict=True):
        a, b = opt_ours.state[p], opt_theirs.state[q]
        same = same and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return same and _build(opt_ours) is not None


def _build(opt: torch.optim.Optimizer | None) -> Update | None:
    if opt is None or len(opt.param_groups) != 1 or _hooked(opt):
        return None
    group = opt.param_groups[0]
    params: list[torch.Tensor] = list(group["params"])
    if not params or not group.get("foreach") or group.get("differentiable"):
        return None
    if group.get("maximize") or group.get("fused") or group.get("capturable"):
        return None
    first = params[0]
    if any(
        p.device != first.device or p.dtype != first.dtype or p.is_complex() or p.is_sparse
        for p in params
    ):
        return None
    if not all(isinstance(group[k], float | int) for k in ("lr", "weight_decay")):
        return None  # a tensor lr: torch's own path
    if type(opt) is torch.optim.SGD:
        return _sgd(opt, params, group)
    if type(opt) is torch.optim.Adam:
        return _adam(opt, params, group)
    return None  # a subclass may change step(): torch's own


def _hooked(opt: torch.optim.Optimizer) -> bool:
    """Step hooks on this optimizer or on every optimizer: ``opt.step()`` must run them."""
    from torch.optim import optimizer as module

    own = (opt._optimizer_step_pre_hooks, opt._optimizer_step_post_hooks)
    every = (
        getattr(module, "_global_optimizer_pre_hooks", {}),
        getattr(module, "_global_optimizer_post_hooks", {}),
    )
    return any(len(h) for h in (*own, *every))


def _sgd(opt: torch.optim.SGD, leaves: list[torch.Tensor], group: dict) -> Update | None:
    params = [p.detach() for p in leaves]  # updated in place, as under torch.no_grad()
    lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
    decay, nesterov = group["weight_decay"], group["nesterov"]
    if momentum == 0:

        def plain(grads: list[torch.Tensor]) -> None:
            if decay != 0:
                grads = torch._foreach_add(grads, params, alpha=decay)
            torch._foreach_add_(params, grads, alpha=-lr)

        return plain
    bufs = [opt.state.get(p, {}).get("momentum_buffer") for p in leaves]
    if any(b is None for b in bufs):
        return None  # the first step creates the buffers: opt.step() does it

    def with_momentum(grads: list[torch.Tensor]) -> None:
        if decay != 0:
            grads = torch._foreach_add(grads, params, alpha=decay)
        torch._foreach_mul_(bufs, momentum)
        torch._foreach_add_(bufs, grads, alpha=1 - dampening)
        if nesterov:
            torch._foreach_add_(grads, bufs, alpha=momentum)  # in place, as torch does
        else:
            grads = bufs
        torch._foreach_add_(params, grads, alpha=-lr)

    return with_momentum


def _adam(opt: torch.optim.Adam, leaves: list[torch.Tensor], group: dict) -> Update | None:
    if group.get("amsgrad") or group.get("decoupled_weight_decay"):
        return None
    beta1, beta2 = group["betas"]
    lr, decay, eps = group["lr"], group["weight_decay"], group["eps"]
    if not all(isinstance(v, float | int) for v in (beta1, beta2, eps)):
        return None
    states = [opt.state.get(p, {}) for p in leaves]
    if not all("step" in s and "exp_avg" in s and "exp_avg_sq" in s for s in states):
        return None  # the first step creates the state: opt.step() does it
    steps = [s["step"] for s in states]
    if any(not s.is_cpu or s.numel() != 1 for s in steps):
        return None
    counts = {float(s) for s in steps}
    if len(counts) != 1 or counts.pop() >= 2**24:  # one count, exact in float32
        return None
    exp_avgs = [s["exp_avg"] for s in states]
    exp_avg_sqs = [s["exp_avg_sq"] for s in states]
    params = [p.detach() for p in leaves]  # updated in place, as under torch.no_grad()
    one = torch.tensor(1.0, device="cpu")
    n = len(params)
    step0 = steps[0]

    def adam(grads: list[torch.Tensor]) -> None:
        torch._foreach_add_(steps, one, alpha=1.0)
        if decay != 0:
            grads = torch._foreach_add(grads, params, alpha=decay)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        t = step0.item()
        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        step_size = (lr / bias_correction1) * -1
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, [bias_correction2**0.5] * n)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denom, [step_size] * n)

    return adam

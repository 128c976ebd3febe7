"""What just happened: each action told in a sentence or two, with its numbers and rule.

``narrate(action, before, after)`` compares the snapshots on either side of one session
action and says what PyTorch did, for the model and loss in use: backward computed this
batch's gradient and ADDED it (w.grad -4170.4 -> -8340.8, 2 passes since zero_grad),
step moved each parameter by -lr * grad (1 - 0.001 * (-8340.8) = 9.3408) or by what the
optimizer's state made of it (momentum's velocity, Adam's moments), zero_grad zeroed or
dropped the gradients, a run stopped for a reason, undo took an action back.

Tensor-free: it reads two ``Snapshot``s (plain arrays), so it runs anywhere.
"""

from __future__ import annotations

import numpy as np

from playground.training.config import SUM_LOSSES
from playground.training.quantities import fmt
from playground.training.snapshot import ParamView, Snapshot

SHOWN_PARAMS = 3  # parameters named one by one; more are summed up by their norms
SHOWN_ENTRIES = 3  # numbers of a parameter shown; more: its norm


def _vec(a: np.ndarray | None) -> str:
    if a is None:
        return "None"
    flat = np.asarray(a, dtype=float).reshape(-1)
    if flat.size == 1:
        return fmt(float(flat[0]))
    if flat.size <= SHOWN_ENTRIES:
        return "[" + ", ".join(fmt(float(v)) for v in flat) + "]"
    return f"|{fmt(float(np.linalg.norm(flat)))}|"  # a norm, said as such


def _small(snap: Snapshot) -> bool:
    """Few enough numbers to say them all."""
    return len(snap.params) <= SHOWN_PARAMS and all(
        int(np.prod(p.shape)) <= SHOWN_ENTRIES for p in snap.params
    )


def _zeros_like(p: ParamView) -> np.ndarray:
    return np.zeros(p.shape)


def _times(n: int) -> str:
    return {1: "once", 2: "twice", 3: "three times", 4: "four times"}.get(n, f"{n} times")


def grad_rule(snap: Snapshot) -> str:
    """The gradient's formula for this model and loss, as the course derives it."""
    model, loss = snap.model, snap.loss_name
    names = [p.name for p in snap.params]
    mean = "" if loss in SUM_LOSSES else "1/n "
    if model in ("scalar", "linear") and loss in ("mse", "sse"):
        w, b = names[0], names[1] if len(names) > 1 else "b"
        two = "2 " if loss in SUM_LOSSES else "2/n "
        return f"dL/d{w} = {two}Σ (ŷ - y)·x and dL/d{b} = {two}Σ (ŷ - y), with ŷ = {w}·x + {b}"
    if model in ("logistic", "scalar", "linear") and loss in ("bce", "bce_sum"):
        w, b = names[0], names[1] if len(names) > 1 else "b"
        return (
            f"dL/d{w} = {mean}Σ (σ(z) - y)·x and dL/d{b} = {mean}Σ (σ(z) - y), with z = {w}·x + {b}"
        )
    if model == "softmax":
        return "dL/dW = 1/n Xᵀ(softmax(XW + b) - onehot(y)) and dL/db = 1/n Σ (softmax - onehot)"
    return "autograd's chain rule, from the loss back through every layer of the graph"


def _batch_words(snap: Snapshot) -> str:
    if snap.batch is None:
        return "the training set"
    i, n = snap.batch
    return "the whole training set, one batch" if n == 1 else f"micro-batch {i} of {n}"


def _backward(before: Snapshot, after: Snapshot, again: bool = False) -> list[str]:
    k, scaled = after.config.accumulate, after.config.scale_loss
    count = max(p.backwards_since_zero for p in after.params)
    added = []
    for b, a in zip(before.params, after.params, strict=True):
        prev = b.grad if b.grad is not None else _zeros_like(b)
        got = a.grad if a.grad is not None else _zeros_like(a)
        added.append((a.name, got - prev, b.grad, a.grad))
    what = "backward through the same graph again" if again else "loss.backward()"
    loss = f"on {_batch_words(after)} (loss {fmt(after.batch_loss)})"
    if _small(after):
        parts = ", ".join(f"dL/d{n} = {_vec(d)}" for n, d, _, _ in added)
        moves = ", ".join(
            f"{n}.grad {_vec(b)} -> {_vec(a)}" if b is not None else f"{n}.grad None -> {_vec(a)}"
            for n, _, b, a in added
        )
        first = f"{what} {loss} computed {parts} and ADDED it to .grad: {moves}."
    else:
        norm = float(np.sqrt(sum(float(np.sum(d**2)) for _, d, _, _ in added)))
        first = (
            f"{what} {loss} computed a gradient of norm {fmt(norm)} for "
            f"{len(added)} parameters and ADDED it to every .grad."
        )
    rule = grad_rule(after)
    passes = f"{count} backward pass{'es' if count != 1 else ''} since the last zero_grad"
    second = f"{rule}. {passes}."
    if k > 1 and scaled:
        second += (
            f" With K = {k} the loss is divided by {k} first (the 1/K scaling): after {k} "
            f"passes .grad is the mean of {k} micro-batch gradients, as one batch of all of them."
        )
    elif k > 1:
        second += f" K = {k} without the 1/K scaling: {k} passes add up to {k} times the mean."
    return [first, second]


def _forward(after: Snapshot) -> list[str]:
    return [
        f"forward: the model's output and the loss on {_batch_words(after)}: "
        f"{fmt(after.batch_loss)} ({after.loss_name}). No backward, so every .grad is "
        "unchanged - the graph is built, and freed again unless backward uses it."
    ]


def _zero(before: Snapshot, after: Snapshot, to_none: bool) -> list[str]:
    show = ", ".join(
        f"{b.name}.grad {_vec(b.grad)} -> {_vec(a.grad)}"
        for b, a in zip(before.params, after.params, strict=True)
    )
    if to_none:
        return [
            f"zero_grad(set_to_none=True): every .grad is None now ({show}) - no memory "
            "held; the next backward ASSIGNS its gradient instead of adding to zeros."
        ]
    return [f"zero_grad(): every .grad is 0 now ({show}); the next backward starts the sum again."]


def _step(before: Snapshot, after: Snapshot) -> list[str]:
    cfg = after.config
    opt = after.optimizer.name
    count = max(p.backwards_since_zero for p in before.params)
    lines = []
    if all(p.grad is None for p in before.params):
        return ["step: no parameter has a .grad (None), so nothing moved. Press b first."]
    if opt.startswith("gd") or (opt.endswith("SGD") and cfg.momentum == 0):
        call = "p -= lr * p.grad" if opt.startswith("gd") else "optimizer.step(): p -= lr * p.grad"
        if _small(after):
            sums = "; ".join(
                f"{a.name} = {_vec(b.value)} - {fmt(cfg.lr)} * ({_vec(b.grad)}) = {_vec(a.value)}"
                for b, a in zip(before.params, after.params, strict=True)
                if b.grad is not None
            )
            lines.append(f"{call}: {sums}.")
        else:
            lines.append(f"{call} for {len(after.params)} parameters: {_moved(after)}.")
    elif opt.endswith("SGD"):
        lines.append(
            f"optimizer.step() with momentum {fmt(cfg.momentum)}: the velocity "
            f"buf = {fmt(cfg.momentum)}·buf + grad remembers earlier steps, and p -= lr * buf: "
            f"{_moved(after)} ({_against_plain(before, after)})."
        )
    else:  # Adam
        b1, b2 = cfg.betas
        lines.append(
            f"Adam's step: m = {fmt(b1)}·m + {fmt(1 - b1)}·grad and v = {fmt(b2)}·v + "
            f"{fmt(1 - b2)}·grad²; each entry moves by lr·m̂/(√v̂ + ε), about lr whatever "
            f"the gradient's scale: {_moved(after)} ({_against_plain(before, after)})."
        )
    k = cfg.accumulate
    if count > 1 and count != k:
        lines.append(
            f"This used the gradient of {count} backward passes: a step {_times(count)} as "
            f"long as one pass would make (gradients add up until zero_grad)."
        )
    elif count > 1:
        lines.append(f"This used the gradient accumulated over K = {k} micro-batches.")
    else:
        lines.append("The .grad values stay: zero_grad before the next backward, or they add up.")
    return lines


def _moved(after: Snapshot) -> str:
    if _small(after):
        return ", ".join(f"{p.name} moved by {_vec(p.last_delta)}" for p in after.params)
    total = float(
        np.sqrt(
            sum(float(np.sum(p.last_delta**2)) for p in after.params if p.last_delta is not None)
        )
    )
    return f"the parameters moved by {fmt(total)} in all (the norm of the step)"


def _against_plain(before: Snapshot, after: Snapshot) -> str:
    """How the step compares with plain -lr * grad."""
    lr = after.config.lr
    plain = sum(float(np.sum((lr * b.grad) ** 2)) for b in before.params if b.grad is not None)
    real = sum(float(np.sum(a.last_delta**2)) for a in after.params if a.last_delta is not None)
    if plain == 0:
        return "plain gradient descent would not have moved"
    return f"{fmt(float(np.sqrt(real / plain)))} x the length of plain -lr * grad"


def _train_step(before: Snapshot, after: Snapshot) -> list[str]:
    k = after.config.accumulate
    passes = "forward + backward" if k == 1 else f"{k} x (forward + backward)"
    loss = "" if after.batch_loss is None else f" (loss {fmt(after.batch_loss)} before it)"
    moves = (
        ", ".join(
            f"{b.name} {_vec(b.value)} -> {_vec(a.value)}"
            for b, a in zip(before.params, after.params, strict=True)
        )
        if _small(after)
        else _moved(after)
    )
    return [
        f"one train step = zero_grad, {passes}, step{loss}: {moves}. "
        f"Step {after.step}; train loss {fmt(before.train_loss)} -> {fmt(after.train_loss)}."
    ]


def _run(before: Snapshot, after: Snapshot, detail: str) -> list[str]:
    steps = after.step - before.step
    why = f" - {detail}" if detail else ""
    lines = [
        f"run: {steps} train step{'s' if steps != 1 else ''} (step {before.step} -> "
        f"{after.step}){why}. Train loss {fmt(before.train_loss)} -> {fmt(after.train_loss)}."
    ]
    if after.val_loss is not None:
        lines.append(f"Validation loss {fmt(before.val_loss)} -> {fmt(after.val_loss)}.")
    return lines


def _went_back(before: Snapshot, after: Snapshot, what: str) -> list[str]:
    moves = ""
    if _small(after):
        moves = ": " + ", ".join(
            f"{a.name} {_vec(b.value)} -> {_vec(a.value)}"
            for b, a in zip(before.params, after.params, strict=True)
            if not np.array_equal(b.value, a.value)
        )
        if moves == ": ":
            moves = " (the parameters are the same; the gradients and counters changed)"
    return [f"{what}: step {before.step} -> {after.step}{moves}."]


def _configure(before: Snapshot, after: Snapshot, detail: str) -> list[str]:
    old, new = before.config, after.config
    changed = [
        f"{name} {getattr(old, name)} -> {getattr(new, name)}"
        for name in old.__dataclass_fields__
        if getattr(old, name) != getattr(new, name)
    ]
    if not changed:
        return ["settings: nothing changed."]
    lines = [f"settings: {', '.join(changed)}."]
    if before.preset == after.preset and after.step == 0 and before.step > 0:
        lines.append("That setting makes the model again: training restarted (u takes it back).")
    if new.lr != old.lr and old.lr:
        lines.append(f"The same gradient now moves each parameter {fmt(new.lr / old.lr)} x as far.")
    if new.accumulate != old.accumulate and new.accumulate > 1:
        scale = "each loss divided by K" if new.scale_loss else "no 1/K scaling"
        lines.append(
            f"A train step now does {new.accumulate} backward passes, {scale}, then one step."
        )
    return lines


def narrate(
    action: str, before: Snapshot | None, after: Snapshot, detail: str = ""
) -> tuple[str, ...]:
    """One or two sentences on ``action`` (a session action name, "run", "configure",
    "load", "open"), from the snapshots before and after it. ``detail``: how a run
    ended, what undo took back."""
    if before is None or action in ("load", "open") or before.preset != after.preset:
        what = "opened" if action == "open" else "loaded"
        return (
            f"{what} {after.title}. Step {after.step}, train loss {fmt(after.train_loss)}: "
            "press b for a backward pass, n for a whole train step, ? for every key.",
        )
    if action == "backward":
        return tuple(_backward(before, after))
    if action == "backward_again":
        return tuple(_backward(before, after, again=True))
    if action == "forward":
        return tuple(_forward(after))
    if action in ("zero_grad", "zero_grad_none"):
        return tuple(_zero(before, after, action == "zero_grad_none"))
    if action == "step":
        return tuple(_step(before, after))
    if action == "train_step":
        return tuple(_train_step(before, after))
    if action == "run":
        return tuple(_run(before, after, detail))
    if action == "undo":
        return tuple(_went_back(before, after, f"undo took back {detail or 'the last action'}"))
    if action == "redo":
        return tuple(_went_back(before, after, f"redo applied {detail or 'it'} again"))
    if action == "reset":
        return tuple(_went_back(before, after, "reset to the preset's initial parameters"))
    if action == "restore_best":
        best = after.best
        epoch = f" of epoch {best.epoch} (validation loss {fmt(best.val_loss)})" if best else ""
        return tuple(_went_back(before, after, f"restored the best parameters{epoch}"))
    if action == "configure":
        return tuple(_configure(before, after, detail))
    return (f"{action}: done.",)

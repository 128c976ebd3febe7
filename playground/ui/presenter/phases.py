"""The four phases of a train step: what the banner lights, and slow motion's cycle.

A train step is ``zero_grad``, ``forward``, ``backward``, ``step``; with K accumulation
steps it is ``zero_grad``, K x (``forward``, ``backward``), ``step``. Slow motion sends
them one at a time as the session actions they are (the keys z, f, b, s), and follows
whatever the snapshots say happened - its own actions or a key pressed by hand - so the
next phase is always the one the loop would do next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playground.protocol import ActionName

PHASES: tuple[ActionName, ...] = ("zero_grad", "forward", "backward", "step")  # loop order
LABELS = {"zero_grad": "ZERO_GRAD", "forward": "FORWARD", "backward": "BACKWARD", "step": "STEP"}
RULES = {  # under each label where there is room: what the phase does
    "zero_grad": "p.grad = 0",
    "forward": "loss = loss_fn(model(x), y)",
    "backward": "p.grad += dloss/dp",
    "step": "p -= lr * p.grad",
}
# the session action an explanation reports -> the phases it lit
LIT: dict[str, tuple[str, ...]] = {
    "zero_grad": ("zero_grad",),
    "zero_grad_none": ("zero_grad",),
    "forward": ("forward",),
    "backward": ("backward",),
    "backward_again": ("backward",),
    "step": ("step",),
    "train_step": PHASES,  # all four at once
    "run": PHASES,
}
RESTART = ("load", "open", "reset")  # a new session: slow motion starts a cycle afresh


def lit_by(action: str | None) -> tuple[str, ...]:
    """The phases an action is: none for undo, redo, configure, a lesson ..."""
    return LIT.get(action or "", ())


def cycle(k: int) -> tuple[ActionName, ...]:
    """One train step as separate actions: zero_grad, K x (forward, backward), step."""
    return ("zero_grad", *(("forward", "backward") * max(k, 1)), "step")


def next_position(position: int, action: str | None, backwards: int, k: int) -> int:
    """Where in ``cycle(k)`` slow motion goes on after ``action``, with ``backwards``
    gradients in .grad since the last zero (the snapshot's count): after zero_grad the
    first forward; after a forward its backward; after the K-th backward the step; after
    a step the next zero_grad. Other actions (undo, configure ...) leave it where it was."""
    k = max(k, 1)
    last = 2 * k + 1  # the step
    if action in ("zero_grad", "zero_grad_none"):
        return 1
    if action == "forward":
        return 2 + 2 * min(backwards, k - 1)
    if action in ("backward", "backward_again"):
        return last if backwards >= k else 1 + 2 * backwards
    if action in ("step", "train_step", "run") or action in RESTART:
        return 0
    return min(position, last)

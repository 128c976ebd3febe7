"""Named quantities of a snapshot: what a student predicts and a lesson checks.

A quantity is written as the course writes it: ``w.grad``, ``b``, ``weight.grad[0]``,
``W[1,0]``, ``w.count`` (backward passes accumulated in ``w.grad`` since the last
zero_grad), ``step``, ``batch_loss``, ``train_loss``, ``val_loss``, ``train_accuracy``,
``val_accuracy``, ``best_epoch``, ``best_val_loss``, ``epoch``, ``lr``. ``parse`` checks
the spelling (for a preset's lesson, at load time); ``value_of`` reads one number from
a snapshot, and says in a ``QuantityError`` why it cannot (no such parameter, an index
out of range, a parameter with several numbers and no index).

Tensor-free: it reads the plain arrays of a ``Snapshot``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from playground.training.snapshot import Snapshot

SCALARS = {
    "step": "optimizer steps taken",
    "epoch": "epochs the training loop has finished",
    "batch_loss": "the loss on the micro-batch of the last forward / backward",
    "train_loss": "the loss on the whole training set",
    "val_loss": "the loss on the validation set",
    "train_accuracy": "the accuracy on the training set",
    "val_accuracy": "the accuracy on the validation set",
    "best_epoch": "the epoch of the best validation loss so far",
    "best_val_loss": "the best validation loss so far",
    "lr": "the learning rate in force",
}
PARTS = ("value", "grad", "count")  # NAME, NAME.grad, NAME.count
_PARAM = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*?)(?:\.(grad|count))?(?:\[([\d,\s]+)\])?$")


class QuantityError(ValueError):
    """A quantity that is not spelled right, or that this snapshot does not have."""


@dataclass(frozen=True)
class Quantity:
    """``name``: a scalar of ``SCALARS`` or a parameter; ``part``: value, grad or count;
    ``index``: the entry of a parameter with several numbers."""

    text: str
    name: str
    part: str = "value"
    index: tuple[int, ...] | None = None

    @property
    def is_param(self) -> bool:
        return self.name not in SCALARS


def parse(text: str) -> Quantity:
    """``"w.grad"`` -> Quantity("w.grad", "w", "grad"). Raises QuantityError."""
    if not isinstance(text, str):
        raise QuantityError(f"{text!r} is not a quantity (a string such as 'w.grad')")
    clean = text.strip()
    if clean in SCALARS:
        return Quantity(clean, clean)
    m = _PARAM.match(clean)
    if m is None:
        raise QuantityError(
            f"{text!r} is not a quantity: write a parameter (w, w.grad, w.count, "
            f"weight.grad[0]) or one of {', '.join(SCALARS)}"
        )
    name, part, index = m.group(1), m.group(2) or "value", m.group(3)
    at = None
    if index is not None:
        try:
            at = tuple(int(i) for i in index.split(","))
        except ValueError:
            raise QuantityError(f"{text!r}: the index must be whole numbers, e.g. [0]") from None
        if part == "count":
            raise QuantityError(f"{text!r}: a backward count has no index (write {name}.count)")
    return Quantity(clean, name, part, at)


def value_of(q: Quantity, snap: Snapshot) -> float | None:
    """The number ``q`` names in ``snap``; None where it has none yet (a .grad that is
    None, no validation loss before the first epoch)."""
    if not q.is_param:
        return _scalar(q.name, snap)
    names = [p.name for p in snap.params]
    if q.name not in names:
        raise QuantityError(f"{q.text}: no parameter {q.name!r} here (this model has {names})")
    p = snap.param(q.name)
    if q.part == "count":
        return float(p.backwards_since_zero)
    array = p.value if q.part == "value" else p.grad
    if array is None:
        return None
    return _entry(q, np.asarray(array))


def _entry(q: Quantity, array: np.ndarray) -> float:
    if q.index is None:
        if array.size != 1:
            raise QuantityError(
                f"{q.text}: {q.name} has {array.size} numbers (shape {tuple(array.shape)}): "
                f"say which one, e.g. {q.text}[0]"
            )
        return float(array.reshape(-1)[0])
    flat = array.reshape(-1)
    if len(q.index) == 1 and array.ndim != 1:
        i = q.index[0]  # one index into a matrix: the flat position (W[3] of a 2x2)
        if not 0 <= i < flat.size:
            raise QuantityError(f"{q.text}: {q.name} has {flat.size} numbers, no [{i}]")
        return float(flat[i])
    if len(q.index) != array.ndim or any(
        not 0 <= i < n for i, n in zip(q.index, array.shape, strict=True)
    ):
        raise QuantityError(f"{q.text}: no such entry in {q.name} of shape {tuple(array.shape)}")
    return float(array[q.index])


def _scalar(name: str, snap: Snapshot) -> float | None:
    if name == "step":
        return float(snap.step)
    if name == "epoch":
        return float(snap.epochs_done)
    if name == "lr":
        return float(snap.config.lr)
    if name == "best_epoch":
        return None if snap.best is None else float(snap.best.epoch)
    if name == "best_val_loss":
        return None if snap.best is None else float(snap.best.val_loss)
    value = getattr(snap, name)
    return None if value is None else float(value)


def close_enough(got: float, want: float, rel: float = 1e-4) -> bool:
    """Equal to float32 precision and a little more: the course's numbers are printed
    with a handful of digits."""
    if math.isnan(got) or math.isnan(want):
        return False
    return abs(got - want) <= rel * max(abs(want), abs(got), 1e-12) or abs(got - want) <= 1e-9


def fmt(v: float | None) -> str:
    """Five significant digits, as the course prints them: -4170.4, 9.3408, 2.536e+04."""
    if v is None:
        return "None"
    if v == 0:
        return "0"
    if math.isfinite(v) and 1e-4 <= abs(v) < 1e5:
        return f"{v:.5g}"
    return f"{v:.4g}"

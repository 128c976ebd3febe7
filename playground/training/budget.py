"""One memory budget for what a session is made of: its data, its model, its files.

Each size a preset or a session file gives is bounded on its own (at most a million
samples, a thousand features, 4096 units a layer), but sizes each within their limit
can together ask for more memory than the machine has (a million samples of a thousand
features; sixteen layers of 4096 units). So before a data set, a model or a session file
is made, what it will take is estimated here - everything the session keeps of each
number counted: the tensor, its host copy in the snapshots, the literal values of the
exported code's set-up, the undo levels - and refused above the budget, with the field
and both sizes named. ``PLAYGROUND_MEMORY_MB`` sets the budget (default 2 GiB).

Torch-free: the settings check (``config``) uses it before torch is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from playground.files import size_text

MEMORY_ENV = "PLAYGROUND_MEMORY_MB"
DEFAULT_BUDGET = 2 * 2**30
# what one number costs in all the places a session keeps it
DATA_VALUE_BYTES = 64  # the tensor, its device and snapshot copies, the set-up's literal list
PARAM_BYTES = 160  # value, grad, delta, optimizer state, three state copies, the initial list
MAX_CLASSES = 1000  # class labels 0 .. 999


class BudgetError(ValueError):
    """More memory asked for than the budget allows: which field, how much."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def budget() -> int:
    """The memory budget in bytes (``PLAYGROUND_MEMORY_MB``, else 2 GiB)."""
    text = os.environ.get(MEMORY_ENV, "")
    try:
        mb = float(text) if text else 0.0
    except ValueError:
        mb = 0.0
    return int(mb * 2**20) if mb > 0 else DEFAULT_BUDGET


def check(field: str, nbytes: int, what: str) -> None:
    """Refuse (BudgetError naming ``field``) when ``nbytes`` is above the budget."""
    limit = budget()
    if nbytes > limit:
        raise BudgetError(
            field,
            f"{what} would need about {size_text(nbytes)} of memory, more than the "
            f"budget of {size_text(limit)} (set {MEMORY_ENV} to allow more)",
        )


def check_data(field: str, samples: int, features: int) -> None:
    """A data set of ``samples`` rows of ``features`` inputs and one target."""
    check(field, samples * (features + 1) * DATA_VALUE_BYTES, f"{samples} x {features} data")


def layer_sizes(model: str, features: int, hidden: Sequence[int], outputs: int) -> list[int]:
    return [features, *hidden, outputs] if model == "mlp" else [features, outputs]


def parameter_count(model: str, features: int, hidden: Sequence[int], outputs: int) -> int:
    """Weights and biases of the model (a weight matrix and a bias per layer)."""
    sizes = layer_sizes(model, features, hidden, outputs)
    return sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))


def check_model(field: str, model: str, features: int, hidden: Sequence[int], outputs: int) -> None:
    n = parameter_count(model, features, hidden, outputs)
    check(field, n * PARAM_BYTES, f"a model of {n:,} parameters")

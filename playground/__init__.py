"""playground: a terminal training playground for teaching gradient descent with PyTorch.

The same engine the TUI drives, for notebooks, scripts and autograders::

    from playground import Session

    s = Session.from_preset("five-points", device="cpu")
    s.backward()
    s.backward()  # .grad ADDS: w.grad is now twice the one-pass gradient
    s              # a table of parameters, .grad and backward counts
    s.step()
    s.undo()       # every action is one undo entry; s.redo() applies it again
    snap = s.snapshot()  # everything the screen shows, as plain data

``Session`` is loaded on first use: ``import playground`` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Session", "__version__"]

if TYPE_CHECKING:
    from playground.training.session import Session


def __getattr__(name: str) -> Any:
    if name == "Session":
        from playground.training.session import Session

        return Session
    raise AttributeError(f"module 'playground' has no attribute {name!r}")

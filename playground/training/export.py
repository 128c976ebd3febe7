"""Exports of a session that are not code: the loss history as CSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from playground.training.snapshot import KIND_BACKWARD, KIND_FORWARD, KIND_TRAIN

if TYPE_CHECKING:
    from playground.training.session import Session

KIND_NAMES = {KIND_FORWARD: "forward", KIND_BACKWARD: "backward", KIND_TRAIN: "train"}


def write_loss_csv(session: Session, path: str | Path) -> Path:
    """One row per batch loss: index, optimizer step, action kind, loss, and the
    validation loss measured after that step (empty where there is none)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    losses, steps, kinds = session.history.views()
    val_loss, _, val_index = session.val_history.views()
    val_at = dict(zip(val_index.tolist(), val_loss.tolist(), strict=True))
    with open(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "step", "kind", "loss", "val_loss"])
        for i in range(len(losses)):
            val = val_at.get(i + 1, "")
            w.writerow(
                [
                    i,
                    int(steps[i]),
                    KIND_NAMES.get(int(kinds[i]), "?"),
                    repr(float(losses[i])),
                    repr(val) if val != "" else "",
                ]
            )
    return p

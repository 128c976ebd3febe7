"""A snapshot as words and numbers: the headless JSON rows, the REPL and notebook tables,
and the number formats the screen uses too.

Torch-free (numpy only, imported when needed): the TUI formats its table with
``fmt_array`` before numpy is even needed elsewhere, and ``playground run --json`` writes
rows that follow ``schemas/run.schema.json`` - strict JSON, where a number that is not
finite is ``null`` and the row says ``"finite": false``.
"""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from playground.training.snapshot import ParamView, Prediction, Snapshot

SCHEMA = 1  # the version of the JSON rows (schemas/run.schema.json)
INLINE_MAX = 4  # tensors with up to this many numbers are shown in full on one line


# --- numbers as the screen shows them ---------------------------------------------------


def fmt_array(a: np.ndarray | None, shape: bool = True) -> str:
    """Numbers in full when small, else shape (optional) and norm; "None" for no tensor."""
    if a is None:
        return "None"
    import numpy as np  # not at import time: the first frame does not wait for numpy

    a = np.asarray(a)
    if a.size == 1:
        return f"{float(a.reshape(-1)[0]):.5g}"
    if a.size <= INLINE_MAX:
        return "[" + ", ".join(f"{float(v):.4g}" for v in a.reshape(-1)) + "]"
    norm = f"‖{float(np.linalg.norm(a)):.4g}‖"
    return f"{tuple(a.shape)} {norm}" if shape else norm


def count_label(p: ParamView) -> str:
    """How ``.grad`` got where it is: "None", "zeroed", "x1", "x3 +=" (accumulating)."""
    if p.grad is None:
        return "None"
    if p.backwards_since_zero == 0:
        return "zeroed"
    n = p.backwards_since_zero
    return f"x{n}" + (" +=" if n > 1 else "")


# --- strict JSON ------------------------------------------------------------------------


class _Finite:
    """Collects whether a value had to lose a non-finite number on its way to JSON."""

    def __init__(self) -> None:
        self.ok = True

    def number(self, x: Any) -> float | int | None:
        if x is None:
            return None
        if isinstance(x, bool | int):
            return x
        x = float(x)
        if math.isfinite(x):
            return x
        self.ok = False
        return None

    def array(self, a: Any) -> Any:
        """A tensor as nested lists, a non-finite number as None."""
        if a is None:
            return None
        import numpy as np

        values = np.asarray(a, dtype=np.float64)
        if np.isfinite(values).all():
            return values.tolist()
        self.ok = False
        return _nulls(values.tolist())


def _nulls(value: Any) -> Any:
    if isinstance(value, list):
        return [_nulls(v) for v in value]
    return value if math.isfinite(value) else None


def row(snapshot: Snapshot, action: str | None = None) -> dict[str, Any]:
    """One JSON row: the state after ``action`` (None: a step of a plain run)."""
    s = snapshot
    f = _Finite()
    params = {
        p.name: {
            "shape": list(p.shape),
            "value": f.array(p.value),
            "grad": f.array(p.grad),
            "backwards_since_zero": p.backwards_since_zero,
            "delta": f.array(p.last_delta),
        }
        for p in s.params
    }
    out = {
        "schema": SCHEMA,
        "type": "row",
        "action": action,
        "step": s.step,
        "epochs_done": s.epochs_done,
        "epoch": round(s.epoch, 6),
        "batch": list(s.batch) if s.batch is not None else None,
        "batch_loss": f.number(s.batch_loss),
        "train_loss": f.number(s.train_loss),
        "val_loss": f.number(s.val_loss),
        "train_accuracy": f.number(s.train_accuracy),
        "val_accuracy": f.number(s.val_accuracy),
        "params": params,
    }
    out["finite"] = f.ok
    return out


def summary(
    snapshot: Snapshot,
    reason: str,
    message: str,
    restored: bool = False,
    prediction: Prediction | None = None,
) -> dict[str, Any]:
    """``prediction``: at an input asked for (default: the preset's own, if any)."""
    """The last JSON line of ``playground run``: where it stopped and why."""
    s = snapshot
    f = _Finite()

    def named(d: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if d is None else {k: f.array(v) for k, v in d.items()}

    out = {
        "schema": SCHEMA,
        "type": "summary",
        "preset": s.preset,
        "reason": reason,
        "steps": s.step,
        "message": message,
        "final": {p.name: f.array(p.value) for p in s.params},
        "true": named(s.true_params),
        "closed_form": named(s.closed_form),
        "train_loss": f.number(s.train_loss),
        "val_loss": f.number(s.val_loss),
        "train_accuracy": f.number(s.train_accuracy),
        "val_accuracy": f.number(s.val_accuracy),
        "best": None
        if s.best is None
        else {"epoch": s.best.epoch, "val_loss": f.number(s.best.val_loss), "restored": restored},
        "test_loss": f.number(s.test_loss),
        "prediction": None
        if (p := prediction or s.prediction) is None
        else {
            "at": list(p.at),
            "model": f.number(p.model),
            "least_squares": f.number(p.least_squares),
        },
    }
    out["finite"] = f.ok
    return out


def dumps(obj: dict[str, Any]) -> str:
    """Strict JSON (never ``NaN`` or ``Infinity``)."""
    return json.dumps(obj, allow_nan=False)


# --- a session in a REPL or a notebook --------------------------------------------------

_HEAD = ("param", "value", ".grad", "backward", "step Δ")


def _cells(p: ParamView) -> tuple[str, ...]:
    delta = "—" if p.last_delta is None else fmt_array(p.last_delta, shape=False)
    return (p.name, fmt_array(p.value), fmt_array(p.grad, shape=False), count_label(p), delta)


def _caption(s: Snapshot) -> str:
    losses = ", ".join(
        f"{name} {value:.4g}"
        for name, value in (
            ("batch loss", s.batch_loss),
            ("train loss", s.train_loss),
            ("val loss", s.val_loss),
        )
        if value is not None
    )
    return f"{s.preset} on {s.device}: step {s.step}, epoch {s.epoch:.4g}" + (
        f" - {losses}" if losses else ""
    )


def text_table(snapshot: Snapshot) -> str:
    """The parameters, their .grad and backward counts as a plain-text table."""
    rows = [_HEAD, *(_cells(p) for p in snapshot.params)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join([_caption(snapshot), *lines])


def html_table(snapshot: Snapshot) -> str:
    """The same table as HTML (Jupyter's rich display)."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in _HEAD)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in _cells(p)) + "</tr>" for p in snapshot.params
    )
    return (
        f"<table><caption>{esc(_caption(snapshot))}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )

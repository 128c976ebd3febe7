"""What a preset's description promises, as data that can be checked.

A preset's "Try:" text makes claims with numbers ("a linear model tops out near 65%",
"lr 1.5 blows up"). Each is also written under ``[[expected.claims]]``: the settings to
try, how many steps, and what to measure (a ``metric`` within ``between``, or how the run
ends, ``reason``). ``check`` runs one on a fresh session of the preset; the tests run them all, so a
description cannot drift from what the playground does.

    [[expected.claims]]
    says = "a linear model tops out near 65%"
    settings = { model = "logistic" }
    metric = "train_accuracy"
    between = [0.6, 0.7]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from playground.training.catalog import PresetError

REASONS = ("max_steps", "converged", "diverged")
# metric -> what it measures (``NAME`` a parameter, ``[i]`` its i-th number)
METRICS = {
    "train_loss": "the loss on the training set at the end",
    "val_loss": "the loss on the validation set at the end",
    "train_accuracy": "the training accuracy at the end",
    "val_accuracy": "the validation accuracy at the end",
    "prediction": "the model's output at the preset's predict_at",
    "cosine_to_true": "the cosine between the weights and the generating ones",
    "boundary": "where a one-input logistic model says 50%: -bias / weight",
    "param:NAME[i]": "a parameter's value",
    "gap_to_least_squares:NAME": "how far a parameter ends from the least-squares optimum",
}
_PARAM = re.compile(r"^(param|gap_to_least_squares):([A-Za-z_][\w.]*)(?:\[(\d+)\])?$")


@dataclass(frozen=True)
class Claim:
    says: str
    settings: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None  # default: the preset's max_steps
    metric: str | None = None
    between: tuple[float, float] | None = None
    reason: str | None = None


def parse_claims(expected: dict[str, Any], file: str) -> tuple[Claim, ...]:
    """``[[expected.claims]]``, validated (a PresetError names the claim and field)."""
    raw = expected.get("claims", [])
    if not isinstance(raw, list):
        raise PresetError(file, "expected.claims", "must be a list of tables ([[expected.claims]])")
    claims = []
    for i, doc in enumerate(raw):
        where = f"expected.claims[{i}]"
        if not isinstance(doc, dict):
            raise PresetError(file, where, "must be a table")
        unknown = set(doc) - {"says", "settings", "steps", "metric", "between", "reason"}
        if unknown:
            raise PresetError(file, f"{where}.{sorted(unknown)[0]}", "unknown key")
        says, settings = doc.get("says"), doc.get("settings", {})
        if not isinstance(says, str) or not says:
            raise PresetError(file, f"{where}.says", "must say what the claim is")
        if not isinstance(settings, dict):
            raise PresetError(file, f"{where}.settings", "must be a table of settings")
        steps = doc.get("steps")
        if steps is not None and not (type(steps) is int and steps >= 1):
            raise PresetError(file, f"{where}.steps", f"{steps!r} must be an integer >= 1")
        metric, between, reason = doc.get("metric"), doc.get("between"), doc.get("reason")
        for key, value in (("metric", metric), ("reason", reason)):
            if value is not None and not isinstance(value, str):
                raise PresetError(file, f"{where}.{key}", f"{value!r} must be a name")
        if (metric is None) == (reason is None):
            raise PresetError(file, where, "needs a metric (with between) or a reason")
        if reason is not None and reason not in REASONS:
            raise PresetError(file, f"{where}.reason", f"{reason!r} is not one of {REASONS}")
        if metric is not None:
            if not (metric in METRICS or _PARAM.match(metric)):
                raise PresetError(
                    file, f"{where}.metric", f"{metric!r} is not one of {', '.join(METRICS)}"
                )
            ok = isinstance(between, list) and len(between) == 2
            ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in between)
            if not ok or not all(math.isfinite(v) for v in between) or between[0] > between[1]:
                raise PresetError(file, f"{where}.between", "must be [low, high] with low <= high")
            between = (float(between[0]), float(between[1]))
        # TOML lists are the config's tuples (hidden = [8, 8])
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
        claims.append(Claim(says, settings, steps, metric, between, reason))
    return tuple(claims)


def check(session: Any, claim: Claim) -> tuple[Any, bool]:
    """Run ``claim`` on ``session`` (a fresh session of the preset with the claim's
    ``settings``): what was measured, and whether it holds."""
    result = session.run(claim.steps)
    s = session
    if claim.reason is not None:
        return str(result.reason), str(result.reason) == claim.reason
    assert claim.metric is not None and claim.between is not None
    value = measure(s, claim.metric)
    low, high = claim.between
    return value, value is not None and math.isfinite(value) and low <= value <= high


def measure(s: Any, metric: str) -> float | None:
    """The value of ``metric`` for session ``s`` as it is now."""
    import numpy as np

    snap = s.snapshot()
    if metric in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        return getattr(snap, metric)
    if metric == "prediction":
        return None if snap.prediction is None else snap.prediction.model
    if metric == "cosine_to_true":
        w = snap.params[0].value.reshape(-1).astype(np.float64)
        true = next(iter(snap.true_params.values())).reshape(-1)
        return float(w @ true / (np.linalg.norm(w) * np.linalg.norm(true)))
    if metric == "boundary":
        w, b = (p.value.reshape(-1)[0] for p in snap.params)
        return float(-b / w)
    kind, name, index = _PARAM.match(metric).groups()  # type: ignore[union-attr]
    i = int(index or 0)
    value = float(snap.param(name).value.reshape(-1)[i])
    if kind == "param":
        return value
    return abs(value - float(snap.closed_form[name].reshape(-1)[i]))

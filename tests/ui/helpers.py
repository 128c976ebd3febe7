"""Helpers for the Pilot tests: wait for the runner thread, read the parameter table."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from textual.pilot import Pilot

from playground.ui.app import PlaygroundApp
from playground.ui.training.params_table import ParamsTable

X = np.array([5.0, 7.0, 12.0, 16.0, 20.0])
Y = np.array([40.0, 120.0, 180.0, 210.0, 240.0])
LR = 0.001


def five_point_grads(w: float, b: float) -> tuple[float, float]:
    """dL/dw and dL/db of L = mean((w x + b - y)^2), by hand."""
    r = w * X + b - Y
    return float(np.mean(2 * r * X)), float(np.mean(2 * r))


async def wait_for(
    pilot: Pilot, predicate: Callable[[Any], bool], timeout: float = 30.0, what: str = ""
) -> Any:
    """Poll until ``predicate(snapshot)`` holds for the app's newest snapshot."""
    app = pilot.app
    assert isinstance(app, PlaygroundApp)
    loops = int(timeout / 0.05)
    for _ in range(loops):
        s = app.snapshot
        if s is not None and predicate(s):
            return s
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}; last: {app.snapshot!r:.300}")


async def wait_seq(pilot: Pilot, seq: int, timeout: float = 30.0) -> Any:
    """Wait until the runner has applied ``seq`` commands (one snapshot each)."""
    app = pilot.app
    assert isinstance(app, PlaygroundApp)
    return await wait_for(pilot, lambda s: app.seq >= seq, timeout, f"seq {seq}")


def cell(app: PlaygroundApp, row: str, column: str) -> str:
    return str(app.screen.query_one(ParamsTable).get_cell(row, column))


def grad(s: Any, name: str) -> float:
    g = s.param(name).grad
    return math.nan if g is None else float(g.reshape(-1)[0])


def value(s: Any, name: str) -> float:
    return float(s.param(name).value.reshape(-1)[0])


async def until(pilot: Pilot, predicate: Any, what: str, timeout: float = 30.0) -> None:
    """Wait (bounded, never on time alone) until ``predicate()`` holds."""
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")

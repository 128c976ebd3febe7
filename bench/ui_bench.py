"""Benchmarks of the app in-process (headless Textual Pilot): key latency, run-mode
throughput with the app attached, loss-plot render time, memory after a long run."""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from typing import Any

import numpy as np
from textual.app import App, ComposeResult

from playground.training.snapshot import KIND_TRAIN, LossHistory
from playground.tui import make_app
from playground.ui.training.loss_plot import LossPlot
from playground.ui.training.params_table import ParamsTable


async def _wait(pilot: Any, predicate, timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("the app did not reach the expected state")
        await pilot.pause(0.001)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


async def key_latency(preset: str, key: str, presses: int) -> dict[str, float]:
    """Keypress -> parameter table showing the new state, in milliseconds."""
    updated: list[tuple[float, int]] = []
    original = ParamsTable.update_snapshot

    def hooked(self: ParamsTable, snapshot: Any) -> None:
        original(self, snapshot)
        updated.append((time.perf_counter(), snapshot.backward_total))

    ParamsTable.update_snapshot = hooked  # type: ignore[method-assign]
    try:
        app = make_app(preset, device="cpu")
        async with app.run_test(size=(120, 40)) as pilot:
            await _wait(pilot, lambda: app.snapshot is not None)
            await pilot.pause(0.2)
            times = []
            for _ in range(presses):
                target = app.snapshot.backward_total + 1
                t0 = time.perf_counter()
                await pilot.press(key)
                await _wait(pilot, lambda t=target: bool(updated) and updated[-1][1] >= t)
                times.append((updated[-1][0] - t0) * 1000)
    finally:
        ParamsTable.update_snapshot = original  # type: ignore[method-assign]
    return {"p50": _percentile(times, 50), "p95": _percentile(times, 95)}


async def app_throughput(
    preset: str, seconds: float, stats: dict[str, float] | None = None
) -> float:
    """Train steps/s of the runner while the app is attached and drawing.

    ``stats``, when given, receives ``ui_cpu`` (CPU time of the UI thread per second of
    the run: the share of the GIL the drawing takes from training, far less noisy than
    steps/s on a busy machine) and ``snapshots`` (snapshots received per second).
    """
    app = make_app(preset, device="cpu", overrides={"max_steps": 10**9})
    async with app.run_test(size=(120, 40)) as pilot:
        await _wait(pilot, lambda: app.snapshot is not None)
        await pilot.pause(0.2)
        await pilot.press("r")
        await _wait(pilot, lambda: app.running and app.snapshot.step > 0)
        s0, n0, t0, c0 = app.snapshot.step, app.seq, time.perf_counter(), time.thread_time()
        await pilot.pause(seconds)
        s1, n1, t1, c1 = app.snapshot.step, app.seq, time.perf_counter(), time.thread_time()
        await pilot.press("r")
    if stats is not None:
        stats["ui_cpu"] = (c1 - c0) / (t1 - t0)
        stats["snapshots"] = (n1 - n0) / (t1 - t0)
    return (s1 - s0) / (t1 - t0)


class _PlotApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LossPlot(id="loss")


def _history(n: int) -> LossHistory:
    rng = np.random.default_rng(0)
    loss = (np.exp(-np.linspace(0, 8, n)) + 0.01 * rng.random(n)).astype(np.float32)
    return LossHistory(
        loss=loss,
        step=np.arange(n, dtype=np.int64),
        kind=np.full(n, KIND_TRAIN, dtype=np.int8),
        val_loss=loss[:: max(1, n // 1000)] * 1.1,
        val_step=np.arange(0, n, max(1, n // 1000), dtype=np.int64),
        val_index=np.arange(1, n + 1, max(1, n // 1000), dtype=np.int64),
        val_accuracy=np.zeros(0, dtype=np.float32),
    )


async def plot_render_ms(
    base_snapshot: Any, sizes: tuple[int, ...], repeats: int = 5
) -> dict[int, float]:
    """Median time to hand a snapshot to the loss plot and render it at 120x40."""
    out: dict[int, float] = {}
    app = _PlotApp()
    async with app.run_test(size=(120, 40)) as pilot:
        plot = app.query_one(LossPlot)
        for n in sizes:
            snap = dataclasses.replace(base_snapshot, history=_history(n))
            times = []
            for _ in range(repeats):
                # a fresh history object each time, so the plot cannot skip the redraw
                snap = dataclasses.replace(snap, history=dataclasses.replace(snap.history))
                t = time.perf_counter()
                plot.update_snapshot(snap)
                plot.render()
                times.append((time.perf_counter() - t) * 1000)
                await pilot.pause(0)
            out[n] = statistics.median(times)
    return out


def _rss_kib(field: str = "VmRSS") -> int:
    """This process's resident set in KiB: now (VmRSS) or at its peak (VmHWM).

    The peak is read here, not from ``getrusage``: Linux carries ``ru_maxrss`` over an
    exec, so a process started by a large one (bench/run.py after its other measures)
    would report its parent's size as its own peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def memory_after(preset: str, steps: int) -> dict[str, float]:
    """RSS right after start (first snapshot drawn) and peak RSS after ``steps`` steps."""
    app = make_app(preset, device="cpu", overrides={"max_steps": steps})
    async with app.run_test(size=(120, 40)) as pilot:
        await _wait(pilot, lambda: app.snapshot is not None)
        await pilot.pause(0.5)
        start = _rss_kib()
        await pilot.press("r")
        while not (app.snapshot.step >= steps and not app.running):  # polled slowly: a
            await pilot.pause(0.5)  # busy poll would take the GIL from the training thread
        await pilot.pause(0.5)
        peak = _rss_kib("VmHWM")
    return {"start_mib": start / 1024, "peak_mib": peak / 1024, "ratio": peak / max(start, 1)}


def run(coro: Any) -> Any:
    return asyncio.run(coro)

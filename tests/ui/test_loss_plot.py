"""LossPlot in a Pilot app: what it hands to plotext after a snapshot arrives."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from textual.app import App, ComposeResult

from playground.training.presets import find_preset
from playground.training.session import Session
from playground.training.snapshot import (
    KIND_BACKWARD,
    KIND_FORWARD,
    KIND_TRAIN,
    LossHistory,
    Snapshot,
)
from playground.ui.training.loss_plot import EMPTY_TITLE, LossPlot
from playground.ui.training.plot_base import linear_ticks, log_ticks

SIZE = (100, 30)


class LossApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LossPlot()


def series(plot: LossPlot) -> dict[str, tuple[list[float], list[float], str]]:
    """Legend label -> (x, y, marker) of every series handed to plotext."""
    m = plot.plt.monitor
    return {m.label[i]: (m.x[i], m.y[i], m.marker[i][0]) for i in range(len(m.x))}


def session(name: str = "noisy-line", **overrides: object) -> Session:
    return Session(find_preset(name), device="cpu", **overrides)


def with_history(base: Snapshot, n: int) -> Snapshot:
    """``base`` with a synthetic n-evaluation history of plain train steps."""
    rng = np.random.default_rng(1)
    loss = (np.exp(-np.arange(n) / n * 5) + 0.1 * rng.random(n)).astype(np.float32)
    loss[n // 3] = 40.0  # a spike that decimation must keep
    steps = np.arange(n, dtype=np.int64)
    history = LossHistory(
        loss=loss,
        step=steps,
        kind=np.full(n, KIND_TRAIN, dtype=np.int8),
        val_loss=loss[::7].copy(),
        val_step=steps[::7].copy(),
        val_index=steps[::7] + 1,
        val_accuracy=np.zeros(0, dtype=np.float32),
    )
    return dataclasses.replace(base, history=history, step=n)


async def test_empty_history_shows_how_to_start() -> None:
    app = LossApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(LossPlot)
        plot.update_snapshot(session().snapshot())
        await pilot.pause()
        assert EMPTY_TITLE in plot.render().plain
        assert plot.points_drawn == 0 and plot.plt.monitor.x == []


async def test_a_run_draws_the_train_and_validation_loss() -> None:
    s = session()
    s.run(20)
    snap = s.snapshot()
    app = LossApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(LossPlot)
        plot.update_snapshot(snap)
        await pilot.pause()
        drawn = series(plot)
        x, y, marker = drawn["train step"]
        # short history: every loss is drawn, at its evaluation index
        assert x == list(range(len(snap.history)))
        np.testing.assert_allclose(y, snap.history.loss, rtol=1e-6)
        vx, vy, _ = drawn["validation"]
        assert vx == (snap.history.val_index - 1).tolist()
        np.testing.assert_allclose(vy, snap.history.val_loss, rtol=1e-6)
        text = plot.render().plain
        assert f"batch loss {float(snap.history.loss[-1]):.4g}" in text
        assert f"val loss {snap.val_loss:.4g}" in text, "the status bar's validation loss"
        assert "train step" in text and "validation" in text


async def test_backward_only_and_forward_only_get_their_own_markers() -> None:
    s = session()
    s.forward()  # index 0: forward only
    s.backward()  # 1, 2: backward without a step (gradient accumulates)
    s.backward()
    s.step()
    s.train_step()  # 3, 4: full train steps
    s.train_step()
    snap = s.snapshot()
    assert snap.history.kind.tolist() == [KIND_FORWARD, *[KIND_BACKWARD] * 2, *[KIND_TRAIN] * 2]
    app = LossApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(LossPlot)
        plot.update_snapshot(snap)
        await pilot.pause()
        drawn = series(plot)
        bx, by, bmarker = drawn["backward only"]
        fx, _, fmarker = drawn["forward only"]
        tx, _, tmarker = drawn["train step"]
        assert bx == [1, 2] and fx == [0] and tx == [3, 4]
        np.testing.assert_allclose(by, snap.history.loss[[1, 2]], rtol=1e-6)
        assert len({bmarker, fmarker, tmarker}) == 3
        assert plot.plt.monitor.lines[list(drawn).index("backward only")] is False
        text = plot.render().plain
        assert f"{bmarker} backward only" in text  # the legend reads without colour


async def test_log_toggle_plots_log10_with_round_ticks() -> None:
    s = session()
    s.run(30)
    snap = s.snapshot()
    app = LossApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(LossPlot)
        plot.update_snapshot(snap)
        await pilot.pause()
        linear_y = series(plot)["train step"][1]
        plot.toggle_log()
        await pilot.pause()
        assert plot.log_scale
        log_y = series(plot)["train step"][1]
        np.testing.assert_allclose(log_y, np.log10(linear_y), rtol=1e-6)
        labels = plot.plt.monitor.ylabels[0]
        assert labels and all(float(lab) > 0 for lab in labels)
        assert "log" in plot.render().plain
        plot.toggle_log()
        await pilot.pause()
        np.testing.assert_allclose(series(plot)["train step"][1], linear_y)


@pytest.mark.parametrize("n", [1_000, 1_000_000])
async def test_points_handed_to_plotext_are_bounded_by_the_width(n: int) -> None:
    snap = with_history(session().snapshot(), n)
    app = LossApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(LossPlot)
        plot.update_snapshot(snap)
        await pilot.pause()
        width = plot.size.width
        drawn = series(plot)
        for x, _, _ in drawn.values():
            assert len(x) <= 2 * width + 2
        assert plot.points_drawn == sum(len(x) for x, _, _ in drawn.values())
        assert plot.points_drawn <= 2 * (2 * width + 2)
        # the spike and both ends survive decimation
        x, y, _ = drawn["train step"]
        assert max(y) == pytest.approx(40.0)
        assert x[0] == 0 and x[-1] == n - 1


async def test_resize_redecimates_to_the_new_width() -> None:
    snap = with_history(session().snapshot(), 100_000)
    app = LossApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(LossPlot)
        plot.update_snapshot(snap)
        await pilot.pause()
        wide = len(series(plot)["train step"][0])
        await pilot.resize_terminal(40, 20)
        await pilot.pause()
        narrow = len(series(plot)["train step"][0])
        assert narrow <= 2 * 40 + 2 < wide


async def test_unchanged_history_is_not_replotted() -> None:
    s = session()
    s.run(5)
    app = LossApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(LossPlot)
        plot.update_snapshot(s.snapshot())
        await pilot.pause()
        first = plot.plt.monitor.x
        s.zero_grad()  # a new snapshot, same history
        plot.update_snapshot(s.snapshot())
        assert plot.plt.monitor.x is first
        s.train_step()
        plot.update_snapshot(s.snapshot())
        assert plot.plt.monitor.x is not first
        assert len(series(plot)["train step"][0]) == 6


async def test_divergence_is_marked_where_the_loss_stops_being_finite() -> None:
    s = session(lr=2.5)
    assert s.run(200).reason == "diverged"
    snap = s.snapshot()
    first_bad = int(np.flatnonzero(~np.isfinite(snap.history.loss))[0])
    app = LossApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(LossPlot)
        plot.update_snapshot(snap)
        await pilot.pause()
        assert plot.plt.monitor.vcoord[0] == [first_bad]
        drawn = series(plot)
        assert drawn["inf/NaN"][0][0] == first_bad
        assert all(math.isfinite(v) for v in drawn["train step"][1])
        step = int(snap.history.step[first_bad])
        assert f"not finite from step {step}" in plot.render().plain


def test_ticks_are_round_numbers() -> None:
    ticks, labels = linear_ticks(0.013, 0.98, 6)
    assert labels == ["0.2", "0.4", "0.6", "0.8"]
    assert ticks[0] >= 0.013 and ticks[-1] <= 0.98
    _, labels = linear_ticks(0, 999_999, 5)
    assert labels[-1] in {"750k", "800k"}
    ticks, labels = log_ticks(-3.2, 1.5, 8)  # 6e-4 .. 31: decades only
    assert labels == ["0.001", "0.01", "0.1", "1", "10"]
    _, labels = log_ticks(math.log10(0.3), math.log10(0.9), 8)  # inside one decade
    assert labels[0] == "0.3" and labels[-1] == "0.9"

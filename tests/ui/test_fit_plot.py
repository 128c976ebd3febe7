"""FitPlot in a Pilot app: the picture it picks and the series it hands to plotext."""

from __future__ import annotations

import dataclasses

import numpy as np
from textual.app import App, ComposeResult

from playground.training.presets import find_preset
from playground.training.session import Session
from playground.training.snapshot import FitView, Snapshot
from playground.ui.training.fit_plot import FitPlot, fit_kind

SIZE = (100, 30)


class FitApp(App[None]):
    def compose(self) -> ComposeResult:
        yield FitPlot()


def series(plot: FitPlot) -> dict[str, tuple[list[float], list[float], str]]:
    """Legend label -> (x, y, marker) of every series handed to plotext."""
    m = plot.plt.monitor
    return {m.label[i]: (m.x[i], m.y[i], m.marker[i][0]) for i in range(len(m.x))}


def snapshot(name: str, steps: int = 20) -> Snapshot:
    s = Session(find_preset(name), device="cpu")
    s.run(steps)
    return s.snapshot()


def half_plane_fit() -> FitView:
    """Two classes split at x1 = 0, and a model that says class 1 exactly where x1 > 0."""
    x = np.array([[-2.0, 1.0], [-1.0, -1.0], [-1.5, 0.5], [1.0, 1.0], [2.0, -1.0]])
    y = np.array([0.0, 0.0, 0.0, 1.0, 1.0])
    grid_x = np.linspace(-3, 3, 48)
    grid_y = np.linspace(-2, 2, 24)
    gx, _ = np.meshgrid(grid_x, grid_y)
    grid_p = np.where(gx > 0, 0.9, 0.1)
    pred = np.where(x[:, 0] > 0, 0.9, 0.1)
    return FitView(x=x, y=y, pred=pred, grid_x=grid_x, grid_y=grid_y, grid_p=grid_p)


async def test_regression_draws_data_model_true_and_least_squares_lines() -> None:
    snap = snapshot("noisy-line")
    fit = snap.fit
    assert fit is not None and fit.closed_y is not None and fit.true_y is not None
    app = FitApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(FitPlot)
        plot.update_snapshot(snap)
        await pilot.pause()
        assert plot.kind == "line"
        drawn = series(plot)
        assert set(drawn) == {"data", "validation", "true line", "least squares", "model"}
        mx, my, _ = drawn["model"]
        np.testing.assert_allclose(mx, fit.line_x, rtol=1e-6)
        np.testing.assert_allclose(my, fit.line_y, rtol=1e-6)
        np.testing.assert_allclose(drawn["least squares"][1], fit.closed_y, rtol=1e-6)
        np.testing.assert_allclose(drawn["data"][0], fit.x[:, 0], rtol=1e-6)
        markers = [marker for _, _, marker in drawn.values()]
        assert len(set(markers)) == len(markers)  # each series reads without colour
        text = plot.render().plain
        assert "least squares" in text and "model" in text


async def test_classifier_draws_the_decision_regions_and_the_classes() -> None:
    base = snapshot("noisy-line", steps=1)
    snap = dataclasses.replace(
        base, task="classification", fit=half_plane_fit(), train_accuracy=1.0
    )
    app = FitApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(FitPlot)
        plot.update_snapshot(snap)
        await pilot.pause()
        assert plot.kind == "boundary"
        drawn = series(plot)
        ones_x = np.array(drawn["model says 1"][0])
        zeros_x = np.array(drawn["model says 0"][0])
        # nearest lattice point decides: the sides are split at x1 = 0, give or take
        # half a lattice cell (6 / 47 wide)
        assert ones_x.min() > -0.07 and zeros_x.max() < 0.07
        assert len(ones_x) + len(zeros_x) >= (plot.size.width - 8) * (plot.size.height - 6)
        assert drawn["model says 0"][2] != drawn["model says 1"][2]
        c0, c1 = drawn["class 0"], drawn["class 1"]
        assert c0[0] == [-2.0, -1.0, -1.5] and c1[0] == [1.0, 2.0]
        assert c0[2] != c1[2]
        text = plot.render().plain
        assert "train acc 100.0%" in text
        # every canvas row is shaded: no blank row that would read as a boundary
        rows = text.splitlines()
        top = next(i for i, r in enumerate(rows) if "┌" in r)
        bottom = next(i for i, r in enumerate(rows) if "└" in r)
        for row in rows[top + 1 : bottom]:  # the legend is above the frame, not on the canvas
            assert "·" in row and ":" in row, row


async def test_a_real_two_feature_classifier_gets_a_boundary() -> None:
    snap = snapshot("xor")
    app = FitApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(FitPlot)
        plot.update_snapshot(snap)
        await pilot.pause()
        assert plot.kind == "boundary"
        assert {"class 0", "class 1"} <= set(series(plot))


async def test_other_shapes_fall_back_to_predicted_vs_actual() -> None:
    snap = snapshot("multiple-regression")
    fit = snap.fit
    assert fit is not None and fit.x.shape[1] > 1 and fit_kind(fit) == "parity"
    app = FitApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(FitPlot)
        plot.update_snapshot(snap)
        await pilot.pause()
        drawn = series(plot)
        px, py, _ = drawn["prediction"]
        np.testing.assert_allclose(px, fit.y, rtol=1e-6)
        np.testing.assert_allclose(py, fit.pred, rtol=1e-6)
        dx, dy, _ = drawn["y = x (perfect)"]
        assert dx == dy


async def test_one_feature_classifier_draws_the_model_curve() -> None:
    snap = snapshot("logistic-9")
    app = FitApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(FitPlot)
        plot.update_snapshot(snap)
        await pilot.pause()
        assert plot.kind == "curve"
        x, p, _ = series(plot)["model"]
        assert x == sorted(x) and all(0.0 <= v <= 1.0 for v in p)


async def test_replots_only_when_the_predictions_change() -> None:
    s = Session(find_preset("noisy-line"), device="cpu")
    app = FitApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(FitPlot)
        plot.update_snapshot(s.snapshot())
        await pilot.pause()
        first = plot.plt.monitor.x
        s.forward()  # no parameter change: same predictions
        plot.update_snapshot(s.snapshot())
        assert plot.plt.monitor.x is first
        s.train_step()
        plot.update_snapshot(s.snapshot())
        assert plot.plt.monitor.x is not first


async def test_no_snapshot_yet_is_an_empty_plot() -> None:
    app = FitApp()
    async with app.run_test(size=SIZE) as pilot:
        plot = app.query_one(FitPlot)
        await pilot.pause()
        assert plot.kind == "" and plot.plt.monitor.x == []
        assert "no data to draw yet" in plot.render().plain


async def test_a_sampled_set_says_so_and_counts_its_wrong_points_over_the_whole_set() -> None:
    """A training set larger than the fit view holds arrives as an even sample: the title
    says how much of it is drawn, and the misclassified count is the engine's, over all
    points, not the sample's."""
    base = snapshot("noisy-line", steps=1)
    fit = half_plane_fit()
    wrong_pred = fit.pred.copy()
    wrong_pred[0] = 0.9  # one drawn point on the wrong side
    fit = dataclasses.replace(fit, pred=wrong_pred, n_points=5000, stride=1000, n_wrong=42)
    snap = dataclasses.replace(base, task="classification", fit=fit, train_accuracy=0.9916)
    app = FitApp()
    async with app.run_test(size=(120, 30)) as pilot:
        plot = app.query_one(FitPlot)
        plot.update_snapshot(snap)
        await pilot.pause()
        assert "misclassified (42)" in series(plot)
        assert "train loss" in plot.render().plain and "1 in 1,000 drawn" in plot.render().plain

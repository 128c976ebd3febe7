"""The loss landscape against oracles outside it: the least-squares line by numpy's
polyfit, the loss by hand in float64, the parameter history by pressing ``n``, an MLP
evaluated one parameter setting at a time, an exported script run by plain python."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from playground.training import param_path
from playground.training.landscape import Watch, landscape_of
from playground.training.landscape_race import race
from playground.training.landscape_view import LandscapeRequest, Window, decimate, log_levels
from playground.training.models import compute_loss
from playground.training.param_path import path_of
from playground.training.session import Session

FIVE_X = np.array([5.0, 7.0, 12.0, 16.0, 20.0])
FIVE_Y = np.array([40.0, 120.0, 180.0, 210.0, 240.0])


def params_now(s: Session) -> np.ndarray:
    return np.concatenate([p.detach().cpu().numpy().ravel() for p in s.model.params.values()])


def pressing_n(preset: str, times: int, **overrides: object) -> np.ndarray:
    """The parameters before and after each of ``times`` presses of n, in a session of
    its own."""
    s = Session.from_preset(preset, device="cpu", **overrides)
    out = [params_now(s)]
    for _ in range(times):
        s.train_step()
        out.append(params_now(s))
    return np.array(out)


@pytest.mark.parametrize("preset", ["five-points", "noisy-line"])
def test_the_grid_minimum_lies_within_one_cell_of_the_least_squares_line(preset: str) -> None:
    """The loss over (w, b), fitted around the path and the optimum: its lowest grid
    point is within one grid step of the line numpy's polyfit draws through the data."""
    s = Session.from_preset(preset, device="cpu")
    s.run(5)
    x = s.dataset.train.x.numpy()[:, 0].astype(np.float64)
    y = s.dataset.train.y.numpy().astype(np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    view = landscape_of(s)
    assert view.whole and (view.x_label, view.y_label) in (("w", "b"), ("weight", "bias"))
    mx, my, _ = view.minimum()
    dx, dy = view.xs[1] - view.xs[0], view.ys[1] - view.ys[0]
    assert abs(mx - slope) <= dx and abs(my - intercept) <= dy
    assert view.optimum == pytest.approx((slope, intercept), rel=1e-4)


def test_the_grid_holds_the_real_training_loss() -> None:
    """Five points: mean((w x + b - y)^2) by hand in float64 at grid points spread over
    the window, against the grid's (float32) values."""
    view = landscape_of(Session.from_preset("five-points", device="cpu"))
    for i, j in [(0, 0), (60, 60), (120, 7), (33, 101), (120, 120)]:
        w, b = view.xs[i], view.ys[j]
        by_hand = np.mean((w * FIVE_X + b - FIVE_Y) ** 2)
        assert view.loss[j, i] == pytest.approx(by_hand, rel=1e-5)


def test_a_summed_loss_is_drawn_as_the_session_sums_it() -> None:
    """seed 000's summed squared error (sse) over its features: the grid is the sum
    over the samples, by hand in float64, not the mean - the loss the session minimises."""
    s = Session.from_preset("seed000-linear", device="cpu")
    assert s.cfg.loss == "sse"
    watch = Watch(LandscapeRequest(size=11))
    view = watch.update(s, running=False)
    assert view is not None
    x = s.dataset.train.x.numpy().astype(np.float64)
    y = s.dataset.train.y.numpy().astype(np.float64)
    for i, j in [(3, 8), (0, 10), (10, 0)]:
        at = watch.values_at(view.xs[i], view.ys[j])
        by_hand = np.sum((x @ at["w"] + at["b"] - y) ** 2)
        assert view.loss[j, i] == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.parametrize("preset", ["five-points", "noisy-line"])
def test_the_path_is_the_parameter_history_point_for_point(preset: str) -> None:
    """Eight presses of n, then a run of 30 steps: the path holds the parameters before
    and after every one of them, exactly as a session pressing n 38 times has them; the
    decimated path drawn is made of those very points."""
    s = Session.from_preset(preset, device="cpu", max_steps=10_000)
    for _ in range(8):
        s.train_step()
    s.run(30)
    index, steps, values = path_of(s.build).points()
    oracle = pressing_n(preset, 38, max_steps=10_000)
    assert list(index) == list(range(39)) and list(steps) == list(range(39))
    np.testing.assert_array_equal(values, oracle.astype(np.float32))
    view = landscape_of(s)
    assert view.path_points == 39
    np.testing.assert_array_equal(view.path, oracle[view.path_index])
    assert view.path_index[0] == 0 and view.path_index[-1] == 38


def test_undo_redo_and_a_rollback_keep_the_path_with_the_session() -> None:
    """Undo takes the run's points off the path, redo puts them back; an action that
    fails leaves the path as it was; a rebuild has a path of its own, and undoing it
    returns to the old one."""
    s = Session.from_preset("five-points", device="cpu")
    s.train_step()
    s.run(5)
    assert len(path_of(s.build).points()[0]) == 7
    s.undo()
    assert len(path_of(s.build).points()[0]) == 2
    s.redo()
    _, _, values = path_of(s.build).points()
    np.testing.assert_array_equal(values, pressing_n("five-points", 6).astype(np.float32))
    with pytest.raises(ValueError):
        s.set_params({"w": [1.0, 2.0]})
    assert len(path_of(s.build).points()[0]) == 7
    s.configure(seed=3)  # a rebuild
    assert len(path_of(s.build).points()[0]) == 1
    s.undo()
    assert len(path_of(s.build).points()[0]) == 7


def test_setting_the_parameters_is_one_undoable_action_and_a_point_of_the_path() -> None:
    s = Session.from_preset("noisy-line", device="cpu", momentum=0.9)
    s.run(3)
    assert s.optimizer.state  # momentum buffers
    depth = s.undo_depth
    s.set_params({"weight": [[0.5]], "bias": [-1.0]}, why="a point on the landscape")
    assert s.undo_depth == depth + 1
    assert params_now(s).tolist() == [0.5, -1.0]
    assert not s.optimizer.state  # momentum starts afresh from the new point
    _, _, values = path_of(s.build).points()
    assert values[-1].tolist() == [0.5, -1.0] and len(values) == 5
    s.undo()
    assert len(path_of(s.build).points()[0]) == 4 and s.optimizer.state
    s.redo()
    assert params_now(s).tolist() == [0.5, -1.0]


def test_the_exported_script_reproduces_parameters_set_by_hand(tmp_path: Path) -> None:
    """Three momentum steps, the parameters set by hand, two more steps: the exported
    script, run by plain python, ends on the session's parameters (its optimizer state
    cleared as the session's was)."""
    s = Session.from_preset("noisy-line", device="cpu", momentum=0.9)
    s.run(3)
    s.set_params({"weight": [[0.5]], "bias": [-1.0]})
    s.run(2)
    for style in ("plain", "module"):
        s.configure(code_style=style)
        script = s.export_script(tmp_path / f"{style}.py")
        out = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, check=True
        )
        printed = [line for line in out.stdout.splitlines() if line.startswith("[")]
        got = np.array([float(v) for line in printed for v in line.strip("[]").split(",")])
        np.testing.assert_allclose(got, params_now(s), rtol=1e-6)
    assert "opt.state.clear()" in s.script()


@pytest.mark.parametrize("preset", ["five-points", "noisy-line"])
def test_the_race_gd_path_is_n_pressed_n_times_and_the_session_is_untouched(preset: str) -> None:
    s = Session.from_preset(preset, device="cpu", max_steps=10_000)
    s.run(4)
    before = s.state()
    history, transcript, undo = len(s.history), len(s.transcript), s.undo_depth
    path = len(path_of(s.build).points()[0])
    runs = {r.name: r for r in race(s, 12)}
    oracle = pressing_n(preset, 16, max_steps=10_000)[4:]
    np.testing.assert_array_equal(runs["gd"].values.astype(np.float32), oracle.astype(np.float32))
    assert set(runs) == {"gd", "momentum", "adam"}
    assert not np.array_equal(runs["momentum"].values, runs["gd"].values)
    after = s.state()
    for name in before.values:
        assert torch.equal(before.values[name], after.values[name])
        assert (before.grads[name] is None) == (after.grads[name] is None)
    assert before.progress == after.progress and before.optimizer == after.optimizer
    assert (len(s.history), len(s.transcript), s.undo_depth) == (history, transcript, undo)
    assert len(path_of(s.build).points()[0]) == path


def _mlp_loss_at(s: Session, values: np.ndarray) -> float:
    """The loss of a deep copy of the MLP with its parameters set to ``values``."""
    module = copy.deepcopy(s.model.module)
    at = 0
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.tensor(values[at : at + p.numel()]).reshape(p.shape))
            at += p.numel()
        return float(compute_loss(s.cfg.loss, module(s.x).squeeze(-1), s.y))


@pytest.mark.parametrize("mode", ["params", "random", "pca"])
def test_an_mlp_slice_on_the_grid_is_the_model_at_those_parameters(mode: str) -> None:
    """xor's MLP: the grid's loss at spot points equals a copy of the model with its
    parameters set to that point of the slice, evaluated the ordinary way."""
    s = Session.from_preset("xor", device="cpu")
    s.run(15)
    request = LandscapeRequest(mode=mode, x="0.weight[0,0]", y="2.bias[1]", size=15)
    watch = Watch(request)
    view = watch.update(s, running=False, force=True)
    assert view is not None and view.mode == mode
    if mode == "params":
        assert (view.x_label, view.y_label) == ("0.weight[0,0]", "2.bias[1]")
    assert view.current_loss == pytest.approx(_mlp_loss_at(s, params_now(s)), rel=1e-5)
    for i, j in [(0, 0), (7, 3), (14, 14), (2, 11)]:
        flat = np.concatenate(
            [v.reshape(-1) for v in watch.values_at(view.xs[i], view.ys[j]).values()]
        )
        assert view.loss[j, i] == pytest.approx(_mlp_loss_at(s, flat), rel=1e-4, abs=1e-6)


def test_the_watch_keeps_the_grid_and_adds_the_path_as_it_grows() -> None:
    """Two parameters: the grid is computed once and kept while the path stays inside
    it; a view is made only when something it shows changed."""
    s = Session.from_preset("noisy-line", device="cpu", max_steps=10_000)
    s.run(20)
    watch = Watch(LandscapeRequest())
    first = watch.update(s, running=False)
    assert first is not None and first.path_points == 21
    assert watch.update(s, running=False) is None  # nothing new
    s.train_step()
    second = watch.update(s, running=False)
    assert second is not None and second.path_points == 22
    assert second.loss is first.loss  # the same grid: not computed again
    s.undo()
    third = watch.update(s, running=False)
    assert third is not None and third.path_points == 21


def test_a_point_picked_on_the_plane_becomes_the_parameters() -> None:
    s = Session.from_preset("five-points", device="cpu")
    watch = Watch(LandscapeRequest())
    view = watch.update(s, running=False)
    assert view is not None
    s.set_params(watch.values_at(9.0, 4.0, view.plane_id))
    assert params_now(s).tolist() == [9.0, 4.0]
    with pytest.raises(ValueError, match="moved"):
        watch.values_at(1.0, 1.0, view.plane_id + 1)


def test_a_long_path_is_thinned_but_keeps_its_ends_and_undo(monkeypatch) -> None:
    """Past its memory bound the older half of the path keeps every other point; the
    first and the newest stay, and undo still lands on the right parameters."""
    monkeypatch.setattr(param_path, "MAX_BYTES", 4 * 2 * 4)  # four points of w, b
    s = Session.from_preset("five-points", device="cpu", max_steps=10_000)
    for _ in range(6):
        s.train_step()
    index, _, values = path_of(s.build).points()
    assert index[0] == 0 and index[-1] == 6 and len(index) < 7
    np.testing.assert_array_equal(values[-1], params_now(s).astype(np.float32))
    s.undo()
    index, _, values = path_of(s.build).points()
    assert index[-1] == 5
    np.testing.assert_array_equal(values[-1], params_now(s).astype(np.float32))


def test_a_long_run_holds_a_bounded_path_with_its_newest_points_whole(monkeypatch) -> None:
    """A run far longer than ``MAX_POINTS`` steps keeps at most that many points, the
    newest of them one per step, and its last point is the parameters now."""
    monkeypatch.setattr(param_path, "MAX_POINTS", 64)
    s = Session.from_preset("five-points", device="cpu", max_steps=10_000)
    s.run(3000)
    index, step, values = path_of(s.build).points()
    assert len(index) <= 64
    assert index[0] == 0 and step[-1] == 3000
    assert (np.diff(index[-16:]) == 1).all()  # the newest stretch is not thinned
    np.testing.assert_array_equal(values[-1], params_now(s).astype(np.float32))


def test_decimation_keeps_every_turn_and_drops_straight_runs() -> None:
    """A zigzag of 5 corners with 200 points on each leg: the corners stay, the points
    between them go; a path that stays in one dot shrinks to its ends."""
    corners = np.array([[0, 0], [10, 10], [20, 0], [30, 10], [40, 0]], dtype=float)
    legs = [
        np.linspace(a, b, 200, endpoint=False)
        for a, b in zip(corners[:-1], corners[1:], strict=True)
    ]
    path = np.vstack([*legs, corners[-1:]])
    kept = decimate(path, Window(0, 40, 0, 10), (80, 40))
    assert {tuple(p) for p in path[kept]} == {tuple(c) for c in corners}
    still = np.full((1000, 2), 3.0) + np.linspace(0, 1e-6, 1000)[:, None]
    assert len(decimate(still, Window(0, 10, 0, 10), (80, 40))) == 2


def test_levels_are_log_spaced_above_the_minimum() -> None:
    z = np.array([[2.0, 3.0], [10.0, 1002.0]])
    levels = log_levels(z, 4, decades=3)
    np.testing.assert_allclose(levels - 2.0, [1.0, 10**0.75, 10**1.5, 10**2.25])
    ratios = np.diff(np.log10(levels - 2.0))
    np.testing.assert_allclose(ratios, ratios[0])

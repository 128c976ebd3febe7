"""``playground landscape``, as a script would call it: the grid, the levels and the path
in JSON (checked against the loss by hand and a session pressing n), the picture in text,
and a clear message for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from playground.cli.main import main
from playground.training.session import Session

X = np.array([5.0, 7.0, 12.0, 16.0, 20.0])
Y = np.array([40.0, 120.0, 180.0, 210.0, 240.0])


def test_json_has_the_grid_the_levels_and_the_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["landscape", "five-points", "--steps", "20", "--size", "31", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["x"], out["y"], out["loss_name"], out["step"]) == ("w", "b", "mse", 20)
    grid = out["grid"]
    assert len(grid["x"]) == len(grid["y"]) == 31
    w, b = grid["x"][4], grid["y"][17]
    assert grid["loss"][17][4] == pytest.approx(np.mean((w * X + b - Y) ** 2), rel=1e-5)
    levels = out["levels"]
    assert len(levels) == 12 and levels == sorted(levels)
    lo, hi = out["grid_minimum"]["loss"], max(max(row) for row in grid["loss"])
    assert lo < levels[0] and levels[-1] < hi
    s = Session.from_preset("five-points", device="cpu")
    history = [(1.0, 1.0)]
    for _ in range(20):
        s.train_step()
        history.append(tuple(float(p.detach()) for p in s.model.params.values()))
    path = out["path"]
    assert path["points"] == 21 and path["index"][0] == 0 and path["index"][-1] == 20
    for i, (x, y) in zip(path["index"], path["xy"], strict=True):
        assert (x, y) == pytest.approx(history[i], rel=1e-6)
    assert out["optimum"]["x"] == pytest.approx(np.polyfit(X, Y, 1)[0], rel=1e-5)


def test_the_text_shows_the_picture_levels_path_and_race(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["landscape", "noisy-line", "--steps", "5", "--race", "10"]) == 0
    text = capsys.readouterr().out
    assert "weight across, bias up" in text and "least squares: (3.149, 1.997)" in text
    for mark in ("●", "★", "◆", "┤"):
        assert mark in text
    assert any(0x2800 < ord(ch) <= 0x28FF for ch in text)  # braille contour lines
    assert "levels: " in text and "path (update, step, x, y):" in text
    assert "race GD lr 0.5: 10 steps" in text and "race Adam lr 0.5" in text


def test_an_mlp_slice_along_named_entries(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["landscape", "xor", "--steps", "5", "--x", "0.weight[0,0]", "--y", "2.bias[1]"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["x"], out["y"], out["mode"]) == ("0.weight[0,0]", "2.bias[1]", "params")
    assert "slice through the current point" in out["note"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["five-points", "--x", "q"], "x: no parameter entry 'q'; there are w, b"),
        (["five-points", "--steps", "-1"], "--steps: -1 must be >= 0"),
        (["five-points", "--size", "2"], "size: 2 must be from 5 to 401"),
        (["no-such-preset"], "no-such-preset"),
    ],
)
def test_bad_input_says_what_is_wrong(
    capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert main(["landscape", *args]) == 2
    assert says in capsys.readouterr().err

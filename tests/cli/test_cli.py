"""The headless CLI, as a script or an autograder uses it: `playground presets`,
`playground run PRESET --json`, exported scripts, and exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

from playground.cli.main import main
from playground.training.catalog import preset_paths

SCHEMA = json.loads((Path(__file__).parents[2] / "playground/schemas/run.schema.json").read_text())


def json_lines(text: str) -> tuple[list[dict], dict]:
    """The per-report rows and the final summary of `run --json`, each line checked
    against the published JSON Schema."""
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    for record in records:
        jsonschema.validate(record, SCHEMA)
    assert [r["type"] for r in records] == ["row"] * (len(records) - 1) + ["summary"]
    return records[:-1], records[-1]


def test_presets_lists_every_name_with_its_title(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    files = preset_paths()
    assert len(lines) == len(files)
    for path in files:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        assert any(
            line.split()[0] == doc["name"] and line.rstrip().endswith(doc["title"])
            for line in lines
        ), doc["name"]


def test_run_json_prints_a_row_every_n_steps_and_a_summary(capsys, make_session):
    assert main(["run", "noisy-line", "--steps", "100", "--every", "25", "--json"]) == 0
    rows, summary = json_lines(capsys.readouterr().out)
    assert [r["step"] for r in rows] == [25, 50, 75, 100]
    losses = [r["train_loss"] for r in rows]
    assert losses == sorted(losses, reverse=True)
    assert summary["preset"] == "noisy-line"
    assert summary["reason"] == "max_steps" and summary["steps"] == 100
    # final next to the truth and the least-squares line, computed here with numpy
    s = make_session("noisy-line")
    x = s.dataset.train.x.numpy().astype(np.float64)
    y = s.dataset.train.y.numpy().astype(np.float64)
    (w_ls, b_ls), *_ = np.linalg.lstsq(np.hstack([x, np.ones_like(x)]), y, rcond=None)
    assert summary["true"] == {"weight": [[3.0]], "bias": [2.0]}
    assert summary["closed_form"]["weight"][0][0] == pytest.approx(w_ls, abs=1e-9)
    assert summary["closed_form"]["bias"][0] == pytest.approx(b_ls, abs=1e-9)
    assert summary["final"]["weight"][0][0] == pytest.approx(w_ls, abs=1e-3)
    assert summary["final"]["bias"][0] == pytest.approx(b_ls, abs=1e-3)


def test_run_stops_early_and_says_why(capsys):
    assert (
        main(["run", "noisy-line", "--lr", "10", "--steps", "200", "--every", "10", "--json"]) == 0
    )
    rows, summary = json_lines(capsys.readouterr().out)
    assert summary["reason"] == "diverged"
    assert f"diverged at step {summary['steps']}" in summary["message"]
    assert len(rows) == -(-summary["steps"] // 10)
    assert main(["run", "shallow-linear", "--json", "--every", "1000"]) == 0
    _, summary = json_lines(capsys.readouterr().out)
    assert summary["reason"] == "converged" and summary["train_loss"] < 1e-5


def test_run_prints_a_table_with_final_true_and_least_squares(capsys):
    assert main(["run", "noisy-line", "--steps", "10", "--every", "5"]) == 0
    out = capsys.readouterr().out
    assert "stopped (max steps) after 10 steps" in out
    header = next(line for line in out.splitlines() if line.startswith("param"))
    assert "final" in header and "true" in header and "least squares" in header
    assert any(line.startswith("weight") for line in out.splitlines())


@pytest.mark.slow
def test_run_two_points_from_the_command_line_and_its_exported_script(tmp_path):
    """Two by-hand epochs (w = 1.344208, b = 1.102852, derived in test_session.py), then
    the exported script run with plain python prints the same parameters."""
    script = tmp_path / "two_points.py"
    proc = subprocess.run(
        [sys.executable, "-m", "playground", "run", "two-points", "--json"]
        + ["--device", "cpu", "--export-script", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    _, summary = json_lines(proc.stdout)
    assert summary["steps"] == 2
    assert summary["final"]["w"] == pytest.approx([1.344208], rel=1e-6)
    assert summary["final"]["b"] == pytest.approx([1.102852], rel=1e-6)
    assert script.exists()
    ran = subprocess.run(
        [sys.executable, "-I", str(script)], cwd=tmp_path, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    printed = ran.stdout.split("final parameters:")[1].split()
    assert [json.loads(v) for v in printed] == [summary["final"]["w"], summary["final"]["b"]]


def test_python_m_playground_presets_works_as_a_command():
    proc = subprocess.run(
        [sys.executable, "-m", "playground", "presets"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "noisy-line" in proc.stdout and "two-points" in proc.stdout


# --- bad input: exit code 2 and a message that says what is wrong ------------------------


def run_fails(capsys, argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse rejects a value
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def test_an_unknown_preset_exits_2_and_lists_the_available_ones(capsys):
    err = run_fails(capsys, ["run", "no-such-preset"])
    assert "no-such-preset" in err and "no such preset" in err and "noisy-line" in err


def test_a_broken_preset_file_exits_2_naming_file_and_field(capsys, tmp_path):
    bad = tmp_path / "mine.toml"
    bad.write_text('name = "mine"\ntitle = "t"\n[data]\nx = [1.0]\ny = [1.0]\n[train]\nlr = -2.0\n')
    err = run_fails(capsys, ["run", str(bad)])
    assert "mine.toml" in err and "train.lr" in err


@pytest.mark.parametrize("value", ["-1", "0", "abc", "nan", "inf"])
def test_a_bad_learning_rate_exits_2(capsys, value):
    err = run_fails(capsys, ["run", "noisy-line", "--lr", value])
    assert "--lr" in err and value in err


@pytest.mark.parametrize(
    "args, words",
    [
        (["--momentum", "1.5"], ["momentum", "1.5"]),
        (["--optimizer", "rmsprop"], ["optimizer", "rmsprop"]),
        (["--loss", "bce"], ["bce"]),
        (["--batch-size", "1000"], ["batch_size", "1000"]),
    ],
)
def test_a_bad_setting_exits_2_naming_it(capsys, args, words):
    err = run_fails(capsys, ["run", "noisy-line", *args])
    for word in words:
        assert word in err


def test_a_missing_device_exits_2_and_lists_the_available_devices(capsys):
    missing = f"cuda:{torch.cuda.device_count() + 7}"
    err = run_fails(capsys, ["run", "noisy-line", "--device", missing])
    assert missing in err and "available" in err and "cpu" in err
    err = run_fails(capsys, ["run", "noisy-line", "--device", "tpu"])
    assert "tpu" in err and "cpu" in err

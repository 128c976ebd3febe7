"""An autograder's view: the TUI's keys as a script (`playground run --actions`), each
action's state as a JSON row that follows the published schema, and shell completion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from playground.cli.main import main
from playground.cli.run import parse_actions

SCHEMA = json.loads((Path(__file__).parents[2] / "playground/schemas/run.schema.json").read_text())


def run_json(capsys: pytest.CaptureFixture[str], args: list[str]) -> list[dict]:
    assert main(["run", *args, "--json", "--device", "cpu"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for record in records:
        jsonschema.validate(record, SCHEMA)
    return records


def test_the_two_point_exercise_checked_from_the_command_line(capsys) -> None:
    """Seed 001, two points by hand: w.grad = -174, b.grad = -52 after the first backward;
    after a step (w 1.174) and zero_grad, -170.208 / -50.852; the second step: 1.344208."""
    rows = run_json(capsys, ["two-points", "--actions", "b s z b s"])
    actions = [r["action"] for r in rows[:-1]]
    assert actions == ["backward", "step", "zero_grad", "backward", "step"]
    first, step1, zeroed, second, step2, summary = rows
    w = [r["params"]["w"] for r in rows[:-1]]
    b = [r["params"]["b"] for r in rows[:-1]]
    assert (w[0]["grad"], b[0]["grad"]) == ([-174.0], [-52.0])
    assert w[0]["backwards_since_zero"] == 1 and w[0]["value"] == [1.0]
    assert w[1]["value"] == pytest.approx([1.174], rel=1e-6)
    assert (w[2]["grad"], w[2]["backwards_since_zero"]) == ([0.0], 0)
    assert w[3]["grad"] == pytest.approx([-170.208], rel=1e-6)
    assert b[3]["grad"] == pytest.approx([-50.852], rel=1e-6)
    assert w[4]["value"] == pytest.approx([1.344208], rel=1e-6)
    assert w[4]["delta"] == pytest.approx([0.170208], rel=1e-5)
    assert step2["step"] == 2 and summary["type"] == "summary" and summary["reason"] == "actions"


def test_repeats_runs_undo_and_redo(capsys) -> None:
    rows = run_json(capsys, ["five-points", "--actions", "b*2 z n*3 u u ^y", "--steps", "4"])
    assert [r["action"] for r in rows[:-1]] == [
        "backward", "backward", "zero_grad", *["train_step"] * 3, "undo", "undo", "redo",
    ]  # fmt: skip
    assert rows[1]["params"]["w"]["grad"] == pytest.approx([-8340.8], rel=1e-6)
    assert rows[1]["params"]["w"]["backwards_since_zero"] == 2
    assert [r["step"] for r in rows[3:9]] == [1, 2, 3, 2, 1, 2]
    rows = run_json(capsys, ["noisy-line", "--actions", "n r", "--steps", "20"])
    assert rows[1]["action"] == "run" and rows[1]["step"] == 21
    assert rows[-1]["reason"] == "max_steps"


def test_a_bad_action_names_it_and_exits_2(capsys) -> None:
    assert main(["run", "five-points", "--actions", "b q s"]) == 2
    assert "'q' (action 2)" in capsys.readouterr().err
    assert main(["run", "five-points", "--actions", "s"]) == 2  # no .grad yet
    err = capsys.readouterr().err
    assert "step (action 1)" in err and "backward() first" in err
    assert main(["run", "five-points", "--actions", "u"]) == 2
    assert "nothing to undo" in capsys.readouterr().err


def test_action_strings_spell_out_keys_names_and_repeats() -> None:
    assert parse_actions("f,b Z s n*2 ^r redo") == [
        "forward", "backward", "zero_grad_none", "step", "train_step", "train_step", "reset",
        "redo",
    ]  # fmt: skip
    for bad in ("", "n*0", "n*x", "b*1000000"):
        with pytest.raises(ValueError, match="--actions"):
            parse_actions(bad)


def test_plain_run_rows_carry_the_same_fields(capsys) -> None:
    rows = run_json(capsys, ["tfp-xor", "--steps", "20", "--every", "10"])
    assert [r["step"] for r in rows[:-1]] == [10, 20]
    row = rows[0]
    assert row["action"] is None and row["train_accuracy"] is not None
    assert set(row["params"]) == {f"{i}.{k}" for i in (0, 2, 4) for k in ("weight", "bias")}
    assert row["params"]["0.weight"]["shape"] == [8, 2]


def test_a_diverging_run_is_strict_json_with_nulls(capsys) -> None:
    rows = run_json(capsys, ["noisy-line", "--lr", "10", "--steps", "100", "--every", "100"])
    last = rows[-2]
    assert last["finite"] is False and last["train_loss"] is None
    assert rows[-1]["reason"] == "diverged"


def test_version_and_shell_completion() -> None:
    from playground import __version__

    out = subprocess.run(
        [sys.executable, "-m", "playground", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == f"playground {__version__}"
    bash = subprocess.run(
        [sys.executable, "-m", "playground", "--print-completion", "bash"],
        capture_output=True,
        text=True,
    )
    assert bash.returncode == 0
    for word in ("run", "presets", "--actions", "--export-notebook", "--lr"):
        assert word in bash.stdout, word


def test_explain_says_each_action_in_words_and_warns_once(capsys) -> None:
    rows = run_json(capsys, ["two-points", "--actions", "b s b s b s", "--explain"])
    said = [r["explanation"] for r in rows[:-1]]
    assert "dL/dw = -174" in said[0]["lines"][0]
    assert "w = 1 - 0.001 * (-174) = 1.174" in said[1]["lines"][0]
    kinds = [[w["kind"] for w in s["warnings"]] for s in said]
    assert kinds == [[], [], [], ["forgot_zero_grad"], [], []]  # the fourth action, once


def test_explain_as_text_prints_the_words_under_each_row(capsys) -> None:
    assert main(["run", "five-points", "--actions", "b b s", "--explain", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "w.grad -4170.4 -> -8340.8" in out and "= 9.3408" in out

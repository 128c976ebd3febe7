"""Item 10: the command line. Every option is validated or refused with its name (exit 2,
one line, no traceback): overrides that do not fit the preset's data, a tolerance that
is not a number >= 0, an option the optimizer does not use, settings that a resumed
session cannot take, a preset's field of the wrong type. The session is saved before
the exports, so a failing export loses nothing; ``--json`` is strict JSON; a single
step that diverges is reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from playground.cli.main import main
from playground.training.persist import load_session
from tests.hostile.conftest import INLINE, Watch, preset_file


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["run", *argv])
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _refused(capsys: pytest.CaptureFixture, *argv: str, says: str) -> str:
    code, out, err = _run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert says in err, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["softmax", "--loss", "bce"],
            "--loss (train.loss): the softmax model is trained with 'ce'",
        ),
        (["five-points", "--loss", "ce"], "--loss"),
        (["noisy-line", "--batch-size", "100000"], "--batch-size"),
        (["five-points", "--until-loss", "nan"], "--until-loss"),
        (["five-points", "--until-loss", "-1"], "--until-loss"),
        (["five-points", "--until-loss", "inf"], "--until-loss"),
        (["five-points", "--momentum", "0.9"], "--momentum: the gd optimizer does not use it"),
        (["noisy-line", "--optimizer", "gd", "--momentum", "0.5"], "--momentum"),
        (["five-points", "--accumulate", "100000"], "--accumulate"),
        (["five-points", "--accumulate", "0"], "--accumulate"),
        (["two-gaussians", "--hidden", "4096,4096,4096,4096,4096,4096,4096,4096"], "--hidden"),
        (["five-points", "--lr", "nan"], "--lr"),
        (["five-points", "--seed", "99999999999999999999999"], "--seed"),
    ],
)
def test_a_bad_option_is_refused_with_its_name(
    argv: list[str], says: str, capsys: pytest.CaptureFixture, tmp_path: Path, watch: Any
) -> None:
    w: Watch = watch()
    _refused(capsys, *argv, "--steps", "2", "--save", str(tmp_path / "s.npz"), says=says)
    w.only()


@pytest.mark.parametrize(
    ("train", "data", "says"),
    [
        ({"scale_loss": "false"}, INLINE, "train.scale_loss"),
        ({"shuffle": 1}, INLINE, "train.shuffle"),
        ({"lr": "0.1"}, INLINE, "train.lr"),
        ({"optimizer": "gd", "momentum": 0.9}, INLINE, "train.momentum"),
        ({"optimizer": "sgd", "betas": [0.9, 0.99]}, INLINE, "train.betas"),
        ({}, {**INLINE, "task": "banana"}, "data.task"),
        ({}, {"kind": "noisy_line", "w_star": float("nan")}, "data.w_star"),
        ({}, {"kind": "noisy_line", "sigma": float("inf")}, "data.sigma"),
        ({}, {"kind": "noisy_line", "b_star": -float("inf")}, "data.b_star"),
        ({}, {"kind": "linear_features", "w_scale": float("nan")}, "data.w_scale"),
        ({}, {"kind": "classification_2d", "shape": "xor", "noise": float("nan")}, "data.noise"),
    ],
)
def test_a_preset_field_of_the_wrong_type_or_value_is_refused_with_its_name(
    train: dict[str, Any],
    data: dict[str, Any],
    says: str,
    capsys: pytest.CaptureFixture,
    tmp_path: Path,
) -> None:
    p = preset_file(tmp_path, data=data, train=train)
    err = _refused(capsys, str(p), "--steps", "1", says=says)
    assert p.name in err


def test_the_session_is_saved_before_the_exports_and_a_failing_export_loses_nothing(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    folder = tmp_path / "a folder, not a file.py"
    folder.mkdir()
    save = tmp_path / "kept.npz"
    err = _refused(
        capsys, "five-points", "--steps", "3", "--save", str(save), "--export-script",
        str(folder), says="--export-script",
    )  # fmt: skip
    assert "not a regular file" in err and str(save) in err
    assert load_session(save).step_count == 3


def test_a_save_that_fails_is_said_not_raised(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    target = tmp_path / "dir.npz"
    target.mkdir()
    _refused(capsys, "five-points", "--steps", "1", "--save", str(target), says="--save")


def test_lr_with_resume_changes_the_resumed_session_live(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    save = tmp_path / "s.npz"
    assert _run(capsys, "noisy-line", "--steps", "2", "--save", str(save))[0] == 0
    code, out, err = _run(
        capsys, "noisy-line", "--resume", str(save), "--lr", "0.05", "--steps", "1", "--json",
        "--save", str(save),
    )  # fmt: skip
    assert code == 0, err
    s = load_session(save)
    assert s.cfg.lr == 0.05 and s.step_count == 3
    assert s.optimizer.param_groups[0]["lr"] == 0.05


@pytest.mark.parametrize(
    ("option", "value"), [("--model", "mlp"), ("--loss", "sse"), ("--seed", "3")]
)
def test_with_resume_a_setting_that_restarts_training_is_refused(
    option: str, value: str, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    save = tmp_path / "s.npz"
    assert _run(capsys, "noisy-line", "--steps", "2", "--save", str(save))[0] == 0
    before = save.read_bytes()
    _refused(capsys, "noisy-line", "--resume", str(save), option, value, says=option)
    assert save.read_bytes() == before


def test_resume_says_when_the_preset_changed(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    p = preset_file(tmp_path / "c", data=INLINE, train={"optimizer": "gd", "lr": 0.01})
    save = tmp_path / "s.npz"
    assert _run(capsys, str(p), "--steps", "2", "--save", str(save))[0] == 0
    preset_file(tmp_path / "c", data={**INLINE, "y": [1.0, 1.0, 1.0, 1.0]},
                train={"optimizer": "gd", "lr": 0.01})  # fmt: skip
    code, _, err = _run(capsys, str(p), "--resume", str(save), "--steps", "1")
    assert code == 0 and "note:" in err and "changed since" in err


def _strict(line: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_json_output_is_strict_even_when_the_loss_diverges(
    capsys: pytest.CaptureFixture,
) -> None:
    code, out, _ = _run(capsys, "five-points", "--lr", "1e6", "--steps", "50", "--json")
    assert code == 0
    rows = [_strict(line) for line in out.splitlines()]
    summary = rows[-1]
    assert summary["reason"] == "diverged" and summary["finite"] is False


def test_a_single_step_that_diverges_is_reported(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = _run(capsys, "five-points", "--lr", "1e30", "--actions", "n n n n n", "--json")
    assert code == 0
    rows = [_strict(line) for line in out.splitlines()]
    summary = rows[-1]
    assert summary["reason"] == "diverged"
    assert "train_step (action 2)" in summary["message"] and "lr too large" in summary["message"]
    assert len(rows) == 3, "the actions stop where the loss left the numbers"


def test_the_tui_runner_reports_a_single_step_divergence() -> None:
    from playground.protocol import Act, Load, Published, Status
    from playground.runner import Runner
    from tests.test_runner import Events

    events = Events()
    r = Runner(events, device="cpu")
    r.start()
    try:
        r.submit(Load("five-points", {"lr": 1e30}))
        events.next(Published)
        r.submit(Act("train_step"))
        r.submit(Act("train_step"))
        ev = events.until(lambda ev: ev.snapshot.step == 2)
    finally:
        r.stop()
    assert ev.status is Status.DIVERGED
    assert "the loss is" in ev.message and "u goes back" in ev.message

"""``playground grad`` through its own argparse wiring (cli.py calls the same two functions)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from playground.cli import grad as cli_grad

SIGMOID = 0.1049935854035065


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="playground")
    cli_grad.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["grad", *argv])
    assert args.func is cli_grad.run
    return cli_grad.run(args)


def test_text_output_has_nodes_checks_and_steps(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["tanh(log(1 + z*2*x/sin(y)))", "--at", "x=1", "y=2", "z=3"]) == 0
    out = capsys.readouterr().out
    assert "expression: tanh(log(1 + z*2*x/sin(y)))" in out
    assert "g      0.965950038567       1                    g = tanh(f)" in out
    assert "dg/df = 1 - g**2 = 0.0669405229919" in out
    assert "checks: dg/d(input)" in out
    assert "y      0.026604009769       0.026604009769" in out
    assert "dg/dy = dg/dc * cos(y) = (-0.06392938125) * (-0.4161468365) = 0.026604009769" in out


def test_preset_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--preset", "sigmoid", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["output"] == "s"
    assert [n["name"] for n in data["nodes"]] == ["x", "a", "b", "c", "s"]
    (row,) = data["checks"]
    assert row["autograd"] == pytest.approx(SIGMOID, abs=1e-12)
    assert row["symbolic"] == pytest.approx(SIGMOID, abs=1e-12)
    assert row["finite_diff"] == pytest.approx(SIGMOID, abs=1e-9)
    assert data["steps"][-1]["formula"] == "ds/dx = ds/da * (-1)"
    assert data["backward_errors"] == []


def test_preset_values_can_be_overridden(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--preset", "system", "--at", "a=3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["checks"][0]["autograd"] == 2 * 2 + 3 * 10 * 3


def test_backward_twice_shows_the_error_or_accumulates(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--preset", "sigmoid", "--backward", "2"]) == 0
    assert (
        "RuntimeError: Trying to backward through the graph a second time"
        in capsys.readouterr().out
    )
    assert run(["--preset", "sigmoid", "--backward", "3", "--retain-graph", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backward_passes"] == 3
    assert data["checks"][0]["autograd"] == pytest.approx(3 * SIGMOID)


def test_float32_matches_the_course_printout(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["1/(1 + exp(-x))", "--at", "x=2", "--float32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checks"][0]["autograd"] == 0.10499356687068939


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--list"]) == 0
    out = capsys.readouterr().out
    assert "polynomial" in out and "y = 8*x**4 + 3*x**3 + 7*x**2 + 6*x + 3   at x=2" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["x +", "--at", "x=1"], "syntax error"),
        (["__import__('os').getcwd()", "--at", "x=1"], "attribute access"),
        (["x*z", "--at", "x=1"], "no value for z"),
        (["x", "--at", "x=one"], "expected a number for 'x'"),
        (["--preset", "nope"], "no expression preset named 'nope'"),
        ([], "give an expression"),
        (["x", "--preset", "sigmoid"], "not both"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("playground grad: error: ")
    assert fragment in captured.err


def test_bad_expression_error_shows_a_caret(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["x + foo(x)", "--at", "x=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown function 'foo'" in err and "(col 5)" in err
    assert "  x + foo(x)\n      ^" in err


def test_runs_as_a_process_with_its_own_parser() -> None:
    code = (
        "import argparse, sys; from playground.cli import grad as cli_grad; "
        "p = argparse.ArgumentParser(); cli_grad.add_parser(p.add_subparsers()); "
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
    )
    root = Path(__file__).resolve().parents[2]
    ok = subprocess.run(
        [sys.executable, "-c", code, "grad", "x**2", "--at", "x=2", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["checks"][0]["autograd"] == 4.0
    bad = subprocess.run(
        [sys.executable, "-c", code, "grad", "x +"], cwd=root, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "syntax error" in bad.stderr

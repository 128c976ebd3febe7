"""Item 6: code injection into exported scripts. The transcript is stored as data (an
action, its kind, plain-number arguments, its settings); code is written from it. A
session file whose entries carry code - in a label, a note, a setting's name or value,
parameter values - is refused or its text stays a comment: the exported script parses,
calls only what the exporter writes, and running it plants nothing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.training.persist import SessionFileError, load_session
from tests.hostile.conftest import Watch, doc_of, read_arrays, refused, write_session

PLANT = "import pathlib; pathlib.Path('PWNED').touch()"
# every call an exported script makes: torch's, the script's own helpers, builtins
CALLS = {
    "tensor", "device", "mse_loss", "binary_cross_entropy", "cross_entropy", "sigmoid", "sum",
    "Linear", "Sequential", "Tanh", "ReLU", "Sigmoid", "to", "parameters", "no_grad", "copy_",
    "SGD", "Adam", "backward", "step", "zero_grad", "zero_", "print", "tolist", "cpu", "detach",
    "list", "range", "batch", "forward", "loss_fn", "squeeze", "model", "len", "divmod",
    "append", "DataLoader", "TensorDataset", "Generator", "manual_seed", "long", "super",
    "__init__", "Parameter", "zeros", "matmul", "criterion", "update", "reset_grad",
    "LinearRegression", "RegressionModel", "SoftmaxRegression",
}  # fmt: skip


def _calls(script: str) -> set[str]:
    tree = ast.parse(script)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "?"))
        assert not isinstance(node, ast.Import | ast.ImportFrom) or all(
            a.name in ("torch", "torch.nn.functional", "nn", "DataLoader", "TensorDataset")
            for a in node.names
        ), ast.dump(node)
    return names


def _entries(saved: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    arrays = read_arrays(saved)
    return arrays, doc_of(arrays)


def _with_entry(saved: Path, tmp_path: Path, entry: Any, name: str = "planted") -> Path:
    arrays, doc = _entries(saved)
    doc["transcript"].append(entry)
    return write_session(tmp_path / f"{name}.npz", arrays, doc)


def _ctx(saved: Path) -> dict[str, Any]:
    return _entries(saved)[1]["transcript"][0][3]


@pytest.mark.parametrize(
    "entry",
    [
        lambda c: ["x", "exec", {"code": PLANT}, c, None],  # an unknown kind
        lambda c: ["x", "set_hyper", {"name": f"lr'] = 1; {PLANT}; x['", "value": 1.0,
                                      "used": True}, c, None],
        lambda c: ["x", "set_hyper", {"name": "lr", "value": f"1; {PLANT}", "used": True}, c, None],
        lambda c: ["x", "set_k", {"k": f"1\n{PLANT}"}, c, None],
        lambda c: ["x", "forward", {"c": "0); " + PLANT + "; (0"}, c, None],
        lambda c: ["x", "load_values", {"values": {"w": f"[1]\n{PLANT}", "b": 1.0}, "why": "x"},
                   c, None],
        lambda c: ["x", "forward", {"c": 0}, {**c, "optimizer": f"sgd'); {PLANT}; ('"}, None],
        lambda c: ["x", "forward", {"c": 0}, {**c, "k": "2\n" + PLANT}, None],
        lambda c: ["x", "train_steps", {"n": 1, "c0": 0}, c, ["1; " + PLANT, 0]],
    ],
)  # fmt: skip
def test_an_entry_carrying_code_in_a_field_is_refused(
    entry: Any, saved_sgd: Path, tmp_path: Path, watch: Any
) -> None:
    w: Watch = watch()
    bad = _with_entry(saved_sgd, tmp_path, entry(_ctx(saved_sgd)))
    refused(bad, "transcript")
    w.only(bad)


@pytest.mark.parametrize(
    "text",
    [
        f"done\n{PLANT}",
        f"done\r{PLANT}",
        f"done\u2028{PLANT}",
        f"done\x0c{PLANT}",
        f"done\x85{PLANT}",
        f'"""\n{PLANT}\n"""',
        f"\\\n{PLANT}",
    ],
)
def test_text_in_a_label_or_a_note_stays_a_comment(
    text: str, saved_sgd: Path, tmp_path: Path
) -> None:
    """Labels, notes and reasons are text: every line of them in the script is a comment."""
    ctx = _ctx(saved_sgd)
    arrays, doc = _entries(saved_sgd)
    doc["transcript"] += [
        [text, "note", {"text": text}, ctx, None],
        [text, "load_values", {"values": _values(saved_sgd), "why": text}, ctx, None],
    ]
    s = load_session(write_session(tmp_path / "texts.npz", arrays, doc))
    for style in ("plain", "class", "module"):
        s.configure(code_style=style)
        script = s.script()
        assert _calls(script) <= CALLS, _calls(script) - CALLS
        assert "PWNED" not in "".join(
            node.value for node in ast.walk(ast.parse(script))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        )  # fmt: skip
        for line in script.splitlines():
            if "PWNED" in line:
                assert line.lstrip().startswith("#"), line


def _values(saved: Path) -> dict[str, Any]:
    s = load_session(saved)
    return {n: p.detach().tolist() for n, p in s.model.params.items()}


def test_running_the_exported_script_of_a_hostile_file_plants_nothing(
    saved_sgd: Path, tmp_path: Path
) -> None:
    ctx = _ctx(saved_sgd)
    arrays, doc = _entries(saved_sgd)
    doc["transcript"].append([f"x\n{PLANT}", "note", {"text": f"a\n{PLANT}\n"}, ctx, None])
    s = load_session(write_session(tmp_path / "run.npz", arrays, doc))
    script = s.export_script(tmp_path / "out" / "session.py")
    run = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path / "out", capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert not (tmp_path / "out" / "PWNED").exists()
    assert "final parameters" in run.stdout


def _script_with(saved: Path, tmp_path: Path, text: str, kind: str) -> str | None:
    ctx = _ctx(saved)
    arrays, doc = _entries(saved)
    if kind == "note":
        entry = ["a note", "note", {"text": text}, ctx, None]
    elif kind == "action":
        entry = [text, "step", {}, ctx, None]
    else:
        entry = ["loaded", "load_values", {"values": _values(saved), "why": text}, ctx, None]
    doc["transcript"].append(entry)
    try:
        s = load_session(write_session(tmp_path / "fuzz.npz", arrays, doc))
    except SessionFileError:
        return None
    return s.script()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=60), kind=st.sampled_from(["note", "action", "why"]))
def test_any_text_in_an_entry_is_refused_or_stays_a_comment(
    text: str, kind: str, saved_sgd: Path, tmp_path: Path
) -> None:
    """The script's code (its syntax tree: comments are not in it) is the same whatever
    the text is."""
    script = _script_with(saved_sgd, tmp_path, text, kind)
    if script is None:
        return
    assert _calls(script) <= CALLS
    neutral = _script_with(saved_sgd, tmp_path, "text", kind)
    assert neutral is not None
    assert ast.dump(ast.parse(script)) == ast.dump(ast.parse(neutral))

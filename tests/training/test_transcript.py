"""The exported script is the code the student effectively wrote.

Each scenario drives a session through a mix of actions, exports the transcript, runs it
with plain ``python`` in a subprocess (no playground import in there) and compares the
parameters it prints with the session's.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from playground.training.session import Session


def mixed(s: Session) -> None:
    """forward, backward x2, step, zero_grad, train step, run 25, set lr, run, undo ..."""
    s.forward()
    s.backward()
    s.backward()
    s.step()
    s.zero_grad()
    s.train_step()
    s.run(25)
    s.configure(lr=s.cfg.lr / 2)
    s.run(5)
    s.undo()  # takes back the run of 5, keeps the new lr
    s.train_step()
    s.configure(lr=s.cfg.lr * 3)
    s.undo()  # takes back the lr change (its "set lr" entry goes from the code too)
    s.train_step()


def sgd_with_live_momentum(s: Session) -> None:
    s.backward()
    s.step()
    s.configure(momentum=0.9, nesterov=True)
    s.run(25)
    s.zero_grad(set_to_none=True)
    s.backward()
    s.backward()
    s.step()
    s.train_step()


def minibatch_mix(s: Session) -> None:
    s.forward()
    s.backward()
    s.backward()  # the next micro-batch, added to the first
    s.step()
    s.zero_grad(set_to_none=True)
    s.train_step()
    s.run(25)
    s.configure(lr=s.cfg.lr / 2)
    s.run(7)
    s.undo()
    s.train_step()


def accumulate_two(s: Session) -> None:
    s.backward()
    s.backward()
    s.step()
    s.zero_grad()
    s.train_step()
    s.run(25)
    s.train_step()


def zero_to_none_by_hand(s: Session) -> None:
    s.configure(zero_grad="none")
    s.train_step()
    s.run(25)
    s.backward()
    s.zero_grad()
    s.backward()
    s.step()


def rebuild_reset_and_undo(s: Session) -> None:
    """A new optimizer rebuilds the session, reset re-initialises it: both undoable."""
    s.run(5)
    s.configure(optimizer="adam", lr=0.05)
    s.run(5)
    s.undo()
    s.undo()  # back to SGD after the first run
    s.train_step()
    s.reset()
    s.run(3)
    s.undo()
    s.undo()  # back before the reset
    s.run(4)


# (id, preset, overrides, actions)
SCENARIOS: list[tuple[str, str, dict, Callable[[Session], None]]] = [
    ("two-points by hand", "two-points", {}, mixed),
    ("noisy-line sgd", "noisy-line", {}, mixed),
    ("noisy-line momentum set live", "noisy-line", {}, sgd_with_live_momentum),
    ("softmax mini-batches by hand", "softmax", {}, minibatch_mix),
    ("xor adam mini-batches", "xor", {}, minibatch_mix),
    ("noisy-line B=40 K=2", "noisy-line", {"batch_size": 40, "accumulate": 2}, accumulate_two),
    ("softmax K=2", "softmax", {"accumulate": 2}, accumulate_two),
    ("shallow-linear p.grad = None", "shallow-linear", {}, zero_to_none_by_hand),
    ("noisy-line rebuild, reset, undo", "noisy-line", {}, rebuild_reset_and_undo),
]


def final_parameters(stdout: str) -> list[np.ndarray]:
    """The lists the script prints after 'final parameters:'."""
    lines = stdout.splitlines()
    start = lines.index("final parameters:")
    return [np.asarray(ast.literal_eval(line), dtype=np.float64) for line in lines[start + 1 :]]


# Runs every exported script in one fresh interpreter (torch is imported once): each in
# its own namespace with runpy, as `python script.py` would, its stdout captured apart.
DRIVER = """
import contextlib, io, json, runpy, sys, traceback
results = {}
for path in sys.argv[1:]:
    buf = io.StringIO()
    error = None
    try:
        with contextlib.redirect_stdout(buf):
            runpy.run_path(path, run_name="__main__")
    except BaseException:
        error = traceback.format_exc()
    results[path] = {"stdout": buf.getvalue(), "error": error}
results["playground imported"] = any(m.startswith("playground") for m in sys.modules)
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def replayed(presets, tmp_path_factory) -> dict[str, tuple[Session, Path, str, str | None]]:
    """Every scenario played and exported, then all the scripts run in a subprocess."""
    out = tmp_path_factory.mktemp("scripts")
    sessions = {}
    for i, (sid, name, overrides, actions) in enumerate(SCENARIOS):
        s = Session(presets[name], device="cpu", **overrides)
        actions(s)
        sessions[sid] = (s, s.export_script(out / f"scenario_{i}.py"))
    paths = [str(path) for _, path in sessions.values()]
    proc = subprocess.run(
        [sys.executable, "-I", "-c", DRIVER, *paths],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    ran = json.loads(proc.stdout)
    assert ran.pop("playground imported") is False
    return {
        sid: (s, path, ran[str(path)]["stdout"], ran[str(path)]["error"])
        for sid, (s, path) in sessions.items()
    }


@pytest.mark.slow  # one interpreter importing torch and replaying every script
@pytest.mark.parametrize("sid", [sc[0] for sc in SCENARIOS])
def test_the_exported_script_reproduces_the_final_parameters(replayed, sid):
    s, path, stdout, error = replayed[sid]
    assert error is None, f"{path} failed:\n{error}"
    printed = final_parameters(stdout)
    session_values = [p.value for p in s.snapshot().params]
    assert len(printed) == len(session_values)
    for got, want in zip(printed, session_values, strict=True):
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_the_script_stands_alone_and_reads_like_the_lesson(replayed):
    s, path, *_ = replayed["two-points by hand"]
    text = path.read_text()
    assert "playground" not in text.replace("exported from playground", "")
    assert "loss.backward()" in text
    assert "p -= lr * p.grad" in text  # the by-hand update
    assert "torch.no_grad()" in text
    s, path, *_ = replayed["noisy-line sgd"]
    text = path.read_text()
    assert "torch.optim.SGD" in text and "opt.step()" in text


def test_the_log_shows_one_entry_per_action_and_undo_removes_entries(make_session):
    s = make_session("two-points")
    s.forward()
    s.backward()
    s.backward()
    s.zero_grad()
    log = s.snapshot().log
    assert [entry.splitlines()[0] for entry in log] == [
        "# forward",
        "# backward",
        "# backward",
        "# zero_grad",
    ]
    assert sum("loss.backward()" in entry for entry in log) == 2
    s.train_step()
    s.train_step()  # consecutive train steps are one loop
    assert len(s.snapshot().log) == 5
    assert "for _ in range(2)" in s.snapshot().log[-1]
    s.undo()
    assert len(s.snapshot().log) == 5
    assert "for _ in range(2)" not in s.snapshot().log[-1]


@pytest.mark.slow
def test_a_script_runs_on_its_own_with_plain_python(replayed, tmp_path):
    """`python script.py` in an empty folder prints what the replay printed."""
    s, path, stdout, _ = replayed["two-points by hand"]
    proc = subprocess.run(
        [sys.executable, "-I", str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == stdout

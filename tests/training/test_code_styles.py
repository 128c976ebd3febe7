"""Seed 001 exercises 3-5: the same session written three ways - plain tensors by hand, a
RegressionModel class, an nn.Module with a DataLoader and torch.optim.SGD - and each
exported script, run with plain python, ends on the session's parameters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from playground.training.persist import SessionFileError, load_session, save_session
from playground.training.presets import find_preset
from playground.training.session import Session


def drive(s: Session) -> None:
    """A bit of everything: accumulating backwards, steps, zero_grad, runs, settings."""
    s.forward()
    s.backward()
    s.backward()
    s.step()
    s.zero_grad()
    s.train_step()
    s.run(5)
    s.configure(lr=s.cfg.lr / 2)
    s.zero_grad(set_to_none=True)
    s.backward()
    s.step()
    s.run(4)


def replayed(script: Path) -> list[np.ndarray]:
    out = subprocess.run(
        [sys.executable, "-I", str(script)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("final parameters:")[1].split("\n")
    return [np.array(json.loads(line), dtype=np.float64) for line in lines if line]


CASES = [
    ("23-points", {}),  # plain w, b by hand
    ("two-points", {}),
    ("multiple-regression", {}),  # nn.Linear, torch.optim.SGD
    ("multiple-regression", {"optimizer": "gd"}),
    ("softmax", {"shuffle": True}),  # mini-batches: the class style falls back to plain
    ("xor", {"accumulate": 2}),  # an MLP with Adam
]


@pytest.mark.slow
@pytest.mark.parametrize("style", ["plain", "class", "module"])
@pytest.mark.parametrize("name, overrides", CASES)
def test_each_code_style_reproduces_the_session(
    name: str, overrides: dict, style: str, tmp_path: Path
) -> None:
    s = Session(find_preset(name), device="cpu", code_style=style, **overrides)
    drive(s)
    got = replayed(s.export_script(tmp_path / f"{style}.py"))
    want = [p.value.astype(np.float64) for p in s.snapshot().params]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.reshape(-1), w.reshape(-1), rtol=1e-6, atol=1e-7)


def test_the_styles_read_like_the_exercises() -> None:
    s = Session(find_preset("two-points"), device="cpu")
    s.backward()
    s.step()
    s.zero_grad()
    s.configure(code_style="class")
    text = s.script()
    assert "class RegressionModel:" in text
    for method in ("def forward(self, x)", "def criterion(self, y, yp)", "def update(self)",
                   "def reset_grad(self"):  # fmt: skip
        assert method in text
    assert "model.update()" in text and "model.reset_grad()" in text
    s.configure(code_style="module")
    text = s.script()
    assert "class LinearRegression(nn.Module):" in text
    assert "DataLoader(" in text and "torch.optim.SGD(params, lr=lr)" in text
    assert "opt.step()" in text and "opt.zero_grad(set_to_none=False)" in text
    s.configure(code_style="plain")
    assert "p -= lr * p.grad" in s.script()
    # a code style is how the code is written, not an action on the model
    assert not any("code_style" in entry for entry in s.snapshot().log)


def test_a_tampered_transcript_in_a_session_file_is_refused(tmp_path: Path) -> None:
    """Code never comes from a file: an entry that is not one of the known actions with
    plain arguments is refused, naming the file."""
    import io
    import zipfile

    s = Session(find_preset("five-points"), device="cpu")
    s.backward()
    path = save_session(s, tmp_path / "s.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    doc = json.loads(arrays["meta.json"].tobytes().decode())
    doc["transcript"][0][1] = "exec"  # a kind that does not exist
    doc["transcript"][0][2] = {"code": "__import__('os').system('touch pwned')"}
    arrays["meta.json"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    bad = tmp_path / "bad.npz"
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    bad.write_bytes(buf.getvalue())
    assert zipfile.is_zipfile(bad)
    with pytest.raises(SessionFileError, match="bad.npz.*unknown kind"):
        load_session(bad)
    doc["transcript"][0] = [
        "backward\x1b]0;pwned\x07",
        "note",
        {"text": "x\nimport os"},
        doc["transcript"][0][3],
        None,
    ]
    arrays["meta.json"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    bad.write_bytes(buf.getvalue())
    t = load_session(bad)
    line = t.snapshot().log[0]
    assert "\x1b" not in line and "\x07" not in line
    assert all(row.startswith("#") for row in line.splitlines()), "a note stays a comment"

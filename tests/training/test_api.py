"""The public face for notebooks and scripts: ``from playground import Session``, a table
in a REPL and in Jupyter, and the session exported as a notebook that runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from playground import Session


def test_from_preset_then_two_backwards_doubles_the_gradient() -> None:
    """Seed 001's five points by hand: dL/dw = -4170.4 per pass, two passes -8340.8."""
    s = Session.from_preset("five-points", device="cpu")
    s.backward()
    s.backward()
    w = s.snapshot().param("w")
    assert float(w.grad[0]) == pytest.approx(-8340.8, rel=1e-6)
    assert w.backwards_since_zero == 2
    html = s._repr_html_()
    assert "-8340.8" in html and "x2" in html and "<table>" in html
    text = repr(s)
    assert "-8340.8" in text and "x2 +=" in text and "batch loss" in text


def test_from_preset_takes_a_file_and_overrides(tmp_path: Path) -> None:
    preset = Path(__file__).parents[2] / "presets" / "seed001-two-points.toml"
    s = Session.from_preset(str(preset), device="cpu", lr=0.01)
    assert s.preset.name == "two-points" and s.cfg.lr == 0.01
    with pytest.raises(ValueError, match="no such preset"):
        Session.from_preset("no-such-preset")


def test_importing_playground_does_not_import_torch() -> None:
    code = "import sys, playground; print('torch' in sys.modules, playground.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False"


def hand_driven() -> Session:
    """b b s z n*5, as a student at the keyboard."""
    s = Session.from_preset("five-points", device="cpu")
    s.backward()
    s.backward()
    s.step()
    s.zero_grad()
    for _ in range(5):
        s.train_step()
    return s


@pytest.mark.slow
def test_the_notebook_export_runs_to_the_sessions_parameters_bit_for_bit(tmp_path: Path) -> None:
    """Executed by a real kernel (nbclient + ipykernel), the exported notebook prints
    exactly the session's parameters."""
    from nbclient import NotebookClient

    s = hand_driven()
    path = s.export_notebook(tmp_path / "session.ipynb")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds[0] == "code" and kinds.count("markdown") == len(s.snapshot().log) + 1
    assert "ADDS" in nb.cells[1].source  # what backward does, said before its code
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    printed = nb.cells[-1].outputs[0]["text"].split("final parameters:")[1].split()
    values = [np.float32(json.loads(v)[0]) for v in printed]
    want = [p.value.reshape(-1)[0] for p in s.snapshot().params]
    assert [v.tobytes() for v in values] == [w.tobytes() for w in want]


def test_the_script_is_the_notebook_in_percent_cells(tmp_path: Path) -> None:
    """Editors (and jupytext) read the .py export as the same cells as the notebook."""
    import jupytext

    s = hand_driven()
    script = s.export_script(tmp_path / "session.py").read_text()
    as_notebook = jupytext.reads(script, fmt="py:percent")
    nb = nbformat.reads(s.export_notebook(tmp_path / "session.ipynb").read_text(), as_version=4)
    assert [c.cell_type for c in as_notebook.cells] == [c.cell_type for c in nb.cells]
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert [c.source for c in as_notebook.cells if c.cell_type == "code"] == code

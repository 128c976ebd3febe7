"""The layers stay apart, checked in one place.

Statically, by the import-linter contracts in pyproject.toml (every import statement
counts, those inside functions too): the engines never import the UI or textual, the UI
never imports torch or sympy, training and the explorer are independent, and no package
has import circles. At run time, in fresh interpreters: what the first frame needs (the
protocol, the preset list, the app factory, the app) and the threads' modules load no
torch when imported - torch is imported on the worker threads, after the first frame.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_linter_contracts_are_kept() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(no_cache=True, no_logo=True))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def loaded_after(code: str) -> list[str]:
    """The torch / sympy / textual modules a fresh interpreter has after ``code``."""
    probe = (
        f"{code}\nimport sys\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sympy', 'textual'}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    return eval(proc.stdout.strip())  # noqa: S307 - our own probe's printed list


@pytest.mark.parametrize(
    "code, allowed",
    [
        # the first frame: the app and everything it imports, built by the factory
        (
            "import playground.tui, playground.ui.app, playground.ui.training.main_screen",
            {"textual"},
        ),
        ("from playground.tui import make_app; make_app('five-points', device='cpu')", {"textual"}),
        ("import playground.ui.explorer.grad_screen", {"textual"}),
        # the worker threads' modules: torch comes on the thread, not at import
        ("import playground.runner, playground.protocol", set()),
        ("import playground.explorer.worker, playground.explorer.protocol", set()),
        # the picker's list and `playground presets`
        (
            "from playground.training.catalog import preset_infos\n"
            "infos, errors = preset_infos(); assert infos and not errors, errors",
            set(),
        ),
        (
            "import contextlib, io\nfrom playground.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['presets']) == 0",
            set(),
        ),
        # the engines: torch, never textual
        ("import playground.training.session, playground.training.persist", {"torch"}),
        ("import playground.explorer.graph", {"torch", "sympy"}),
    ],
)
def test_what_a_module_loads_when_imported(code: str, allowed: set[str]) -> None:
    assert set(loaded_after(code)) <= allowed

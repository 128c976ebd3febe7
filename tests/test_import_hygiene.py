"""The layers stay apart: the engine never pulls in textual, and what the TUI needs for
its first frame (the runner, the preset list) never pulls in torch.

Each check runs in a fresh interpreter, since this test process has imported both.
"""

from __future__ import annotations

import subprocess
import sys

ENGINE_AND_RUNNER = """
import importlib, pkgutil, sys
import playground.training
names = [m.name for m in pkgutil.iter_modules(playground.training.__path__, "playground.training.")]
assert len(names) >= 10, names
for name in names:
    importlib.import_module(name)
import playground.runner
print(sorted(m for m in sys.modules if m == "textual" or m.startswith("textual.")))
"""

FIRST_FRAME = """
import sys
import playground.runner
import playground.training.presets
infos, errors = playground.training.presets.preset_infos()
assert infos and not errors, errors
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""

PRESETS_COMMAND = """
import contextlib, io, sys
from playground.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["presets"]) == 0
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""


def run_isolated(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_engine_and_the_runner_do_not_import_textual():
    assert run_isolated(ENGINE_AND_RUNNER) == "[]"


def test_the_runner_and_the_preset_list_do_not_import_torch():
    assert run_isolated(FIRST_FRAME) == "[]"


def test_playground_presets_does_not_import_torch():
    assert run_isolated(PRESETS_COMMAND) == "[]"

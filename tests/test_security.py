"""Security: the package never evaluates or unpickles what a user or a file hands it,
loading a preset only reads, and exports write only where they are told to."""

from __future__ import annotations

import ast
import builtins
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import playground
from playground.text import clean
from playground.training.catalog import PresetError
from playground.training.presets import load_preset
from playground.training.session import Session

PACKAGE = Path(playground.__file__).resolve().parent

_PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve"}
_PICKLE_FUNCS = {"load", "loads", "Unpickler", "open"}


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _has_kwargs_splat(call: ast.Call) -> bool:
    return any(k.arg is None for k in call.keywords)


class _Scanner(ast.NodeVisitor):
    """Finds eval/exec, unpickling, torch.load without weights_only=True and np.load
    with allow_pickle=True, following import aliases (import numpy as np, from pickle
    import loads as l ...)."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.modules: dict[str, str] = {}  # local name -> module
        self.funcs: dict[str, tuple[str, str]] = {}  # local name -> (module, function)
        self.found: list[str] = []

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.modules[a.asname or a.name.split(".")[0]] = a.name
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for a in node.names:
            self.funcs[a.asname or a.name] = (node.module or "", a.name)
        self.generic_visit(node)

    def _target(self, func: ast.expr) -> tuple[str, str] | None:
        if isinstance(func, ast.Name):
            if func.id in self.funcs:
                return self.funcs[func.id]
            return ("builtins", func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            return (self.modules.get(func.value.id, func.value.id), func.attr)
        if isinstance(func, ast.Attribute):
            return ("?", func.attr)
        return None

    def report(self, node: ast.AST, what: str) -> None:
        self.found.append(f"{self.filename}:{getattr(node, 'lineno', '?')}: {what}")

    def visit_Call(self, node: ast.Call) -> None:
        target = self._target(node.func)
        if target is not None:
            module, name = target
            root = module.split(".")[0]
            if module == "builtins" and name in ("eval", "exec"):
                self.report(node, f"{name}()")
            elif root == "builtins" and name == "__import__":
                self.report(node, "__import__()")
            elif root in _PICKLE_MODULES and name in _PICKLE_FUNCS:
                self.report(node, f"{module}.{name}()")
            elif root == "torch" and name == "load":
                if not _is_true(_kw(node, "weights_only")):
                    self.report(node, "torch.load() without weights_only=True")
            elif root == "numpy" and name == "load":
                allow = _kw(node, "allow_pickle")
                if allow is not None and not (
                    isinstance(allow, ast.Constant) and allow.value is False
                ):
                    self.report(node, "np.load() with allow_pickle not False")
                elif _has_kwargs_splat(node):
                    self.report(node, "np.load(**kwargs) may pass allow_pickle=True")
            elif module in ("?", "builtins") and name in ("eval", "exec"):
                self.report(node, f"{name}()")
        self.generic_visit(node)


def scan_source(text: str, filename: str) -> list[str]:
    scanner = _Scanner(filename)
    scanner.visit(ast.parse(text, filename=filename))
    return scanner.found


def _package_files() -> Iterator[Path]:
    yield from sorted(PACKAGE.rglob("*.py"))


def test_scanner_finds_what_it_looks_for() -> None:
    """The scanner itself works: each forbidden pattern in a sample is reported."""
    bad = """
import pickle, torch
import numpy as np
from pickle import loads as L
import builtins
eval("1")  # BAD
exec("x = 1")  # BAD
pickle.load(f)  # BAD
L(b"")  # BAD
torch.load("m.pt")  # BAD
torch.load("m.pt", weights_only=False)  # BAD
np.load("a.npz", allow_pickle=True)  # BAD
builtins.eval("2")  # BAD
torch.load("ok.pt", weights_only=True)
np.load("ok.npz", allow_pickle=False)
np.load("ok.npz")
"""
    found = scan_source(bad, "sample.py")
    lines = sorted(int(f.split(":")[1]) for f in found)
    expected = [i for i, line in enumerate(bad.split("\n"), 1) if line.endswith("# BAD")]
    assert lines == expected, found


def test_package_never_evals_or_unpickles() -> None:
    """No eval/exec, no pickle loads, no torch.load without weights_only=True and no
    np.load with allow_pickle=True anywhere in the package (file:line listed)."""
    files = list(_package_files())
    assert len(files) > 10, f"package not found at {PACKAGE}"
    found: list[str] = []
    for path in files:
        rel = path.relative_to(PACKAGE.parent).as_posix()
        found += scan_source(path.read_text(encoding="utf-8"), rel)
    assert not found, "forbidden calls:\n" + "\n".join(found)


# --- loading a preset only reads --------------------------------------------------------


def _toml_str(text: str) -> str:
    """A TOML basic string (JSON's escapes are all valid TOML escapes)."""
    return json.dumps(text, ensure_ascii=False)


def _tree(root: Path) -> dict[str, tuple[int, bytes]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = (p.stat().st_mtime_ns, p.read_bytes())
        else:
            out[p.relative_to(root).as_posix() + "/"] = (0, b"")
    return out


class _WriteSpy:
    """Records every open() for writing while active (builtins.open and os.open)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writes: list[str] = []
        real_open, real_os_open = builtins.open, os.open

        def spy_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if isinstance(mode, str) and any(c in mode for c in "wax+"):
                self.writes.append(f"open({file!r}, {mode!r})")
            return real_open(file, mode, *args, **kwargs)

        def spy_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> Any:
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC):
                self.writes.append(f"os.open({path!r}, {flags:#o})")
            return real_os_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", spy_open)
        monkeypatch.setattr(os, "open", spy_os_open)


@pytest.mark.parametrize(
    "csv_path",
    [
        "data.csv",
        "../outside/target.csv",
        "{abs}/outside/target.csv",
        "missing.csv",
        "../outside/new-file.csv",
        "sub/",
        "{abs}/outside/target.csv\x00.txt",
    ],
)
def test_a_csv_data_path_is_only_ever_read(
    csv_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a preset's CSV path points at - a file beside it, outside its folder, a
    missing file, a folder - loading opens nothing for writing and no file anywhere is
    created or changed."""
    presets = tmp_path / "presets"
    outside = tmp_path / "outside"
    presets.mkdir()
    outside.mkdir()
    (presets / "sub").mkdir()
    (presets / "data.csv").write_text("a,b\n1,2\n2,4\n3,6\n", encoding="utf-8")
    (outside / "target.csv").write_text("a,b\n1,1\n2,2\n", encoding="utf-8")
    path_value = csv_path.replace("{abs}", tmp_path.as_posix())
    (presets / "p.toml").write_text(
        f'[data]\nkind = "csv"\npath = {_toml_str(path_value)}\nx_columns = ["a"]\ny_column = "b"\n',
        encoding="utf-8",
    )
    before = _tree(tmp_path)
    spy = _WriteSpy(monkeypatch)
    try:
        load_preset(presets / "p.toml")
    except Exception:  # noqa: BLE001 - only writes matter here (errors: test_fuzz_presets)
        pass
    monkeypatch.undo()
    assert not spy.writes, spy.writes
    assert _tree(tmp_path) == before


def test_a_csv_path_to_an_endless_device_file_is_refused_quickly(tmp_path: Path) -> None:
    """A preset whose CSV path is /dev/zero (or any endless stream) is refused with a
    PresetError instead of reading forever and filling the memory."""
    import subprocess
    import sys

    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    (tmp_path / "z.toml").write_text(
        '[data]\nkind = "csv"\npath = "/dev/zero"\nx_columns = ["a"]\ny_column = "b"\n',
        encoding="utf-8",
    )
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))\n"
        "from playground.training.catalog import PresetError\nfrom playground.training.presets import load_preset\n"
        "try:\n"
        "    load_preset(sys.argv[1])\n"
        "except PresetError as e:\n"
        "    print('PresetError', e)\n"
        "except BaseException as e:\n"
        "    print('OTHER', type(e).__name__, str(e)[:200])\n"
        "else:\n"
        "    print('LOADED')\n"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "z.toml")],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("loading a preset with path = /dev/zero did not finish in 30 s")
    assert proc.stdout.startswith("PresetError"), proc.stdout + proc.stderr


def test_a_csv_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    """A CSV path pointing at a binary file (a typo, a .npz) gives a PresetError."""
    (tmp_path / "blob.csv").write_bytes(b"a,b\n\xff\xfe\x00\x81,2\n")
    (tmp_path / "p.toml").write_text(
        '[data]\nkind = "csv"\npath = "blob.csv"\nx_columns = ["a"]\ny_column = "b"\n',
        encoding="utf-8",
    )
    with pytest.raises(PresetError):
        load_preset(tmp_path / "p.toml")


# --- exports write only the requested path ----------------------------------------------


def _preset(tmp_path: Path, title: str = "T") -> Path:
    p = tmp_path / "preset.toml"
    p.write_text(
        f"title = {_toml_str(title)}\n"
        "[data]\nx = [1.0, 2.0, 3.0]\ny = [2.0, 4.0, 6.0]\n"
        '[model]\nkind = "scalar"\ninit = { w = 1.0, b = 0.0 }\n'
        '[train]\noptimizer = "gd"\nlr = 0.01\n',
        encoding="utf-8",
    )
    return p


def test_export_of_the_transcript_writes_only_the_requested_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Export (through the runner, as the UI does) creates the requested file and its
    folder, nothing else, anywhere."""
    import queue

    from playground.protocol import Act, Export, Failed, Load, Notice
    from playground.runner import Runner

    work = tmp_path / "work"
    work.mkdir()
    preset = _preset(work)
    out = tmp_path / "exports"
    out.mkdir()
    monkeypatch.chdir(work)
    before_work = _tree(work)
    events: queue.Queue[Any] = queue.Queue()
    r = Runner(events.put, device="cpu")
    r.start()
    try:
        r.submit(Load(str(preset)))
        r.submit(Act("train_step"))
        r.submit(Export(str(out / "deep" / "f.py")))
        r.submit(Export(str(out / "loss.csv"), kind="csv"))
        # stop() ends after the command in hand: wait for both exports first
        seen: list[Any] = []
        deadline = time.monotonic() + 60
        while sum(isinstance(e, Notice) for e in seen) < 2 and time.monotonic() < deadline:
            try:
                seen.append(events.get(timeout=0.5))
            except queue.Empty:
                pass
    finally:
        r.stop(timeout=30)
    seen += list(events.queue)
    assert not [e for e in seen if isinstance(e, Failed)], seen
    notices = [e for e in seen if isinstance(e, Notice)]
    assert len(notices) == 2
    assert all("wrote" in n.message for n in notices)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "deep",
        "deep/f.py",
        "loss.csv",
    ]
    assert _tree(work) == before_work


@pytest.mark.parametrize(
    "title",
    [
        'T"""\nimport pathlib; pathlib.Path("PWNED").touch()\n"""',
        "T'''\nimport pathlib; pathlib.Path('PWNED').touch()\n'''",
        "C:\\Users\\new folder\\N{x}",
        'ends with a quote"',
        "tab\there\r\nand CR",
    ],
)
def test_an_exported_script_runs_no_code_from_the_preset_title(title: str, tmp_path: Path) -> None:
    """A preset title is text: in the exported script it stays inside the docstring
    (the script parses, and nothing in it but string constants mentions the title)."""
    s = Session(load_preset(_preset(tmp_path, title)), device="cpu")
    s.train_step()
    script = s.script()
    try:
        tree = ast.parse(script)
    except SyntaxError as exc:
        pytest.fail(f"the exported script does not parse with title {title!r}: {exc}")
    doc = ast.get_docstring(tree, clean=False) or ""
    assert s.preset.title in doc  # the title as read (control characters out: text.clean)
    assert s.preset.title == clean(clean(title, lines=True))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            assert node.id != "pathlib", "title text became code in the exported script"

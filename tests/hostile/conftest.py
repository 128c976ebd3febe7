"""What the hostile-input tests share: files written where they are told, a tree watcher
that proves nothing outside the target changed, and session files to take apart.

Every test works under ``tmp_path``; the per-user state directory is ``XDG_STATE_HOME``
pointed there, so no test touches the real one.
"""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

Tree = dict[str, tuple[int, int, int]]


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    monkeypatch.delenv("PLAYGROUND_NO_AUTOSAVE", raising=False)
    monkeypatch.delenv("PLAYGROUND_MEMORY_MB", raising=False)
    return home


def tree(root: Path) -> Tree:
    """Every entry under ``root`` (links not followed): its kind, size and mtime."""
    out: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            # a folder changes when an entry comes or goes: those entries are compared
            size, mtime = (0, 0) if stat.S_ISDIR(st.st_mode) else (st.st_size, st.st_mtime_ns)
            out[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode), size, mtime)
    return out


class Watch:
    """``tree`` of a folder before and after: what changed must be what was allowed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.before = tree(root)

    def changed(self) -> set[str]:
        after = tree(self.root)
        keys = set(self.before) | set(after)
        return {k for k in keys if self.before.get(k) != after.get(k)}

    def only(self, *allowed: str | Path) -> None:
        names = {str(Path(a).relative_to(self.root)) if Path(a).is_absolute() else str(a)
                 for a in allowed}  # fmt: skip
        extra = self.changed() - names
        assert not extra, f"changed outside the target: {sorted(extra)}"


@pytest.fixture
def watch(tmp_path: Path) -> Callable[[Path | None], Watch]:
    """``w = watch()``, then ``w.only(target)``: nothing else under tmp_path changed."""
    return lambda root=None: Watch(root or tmp_path)


def preset_file(folder: Path, name: str = "hostile", **tables: Any) -> Path:
    """A preset .toml of ``tables`` (``top={"title": ...}``, ``data={...}``)."""
    folder.mkdir(parents=True, exist_ok=True)
    top = {"name": name, "title": name, **tables.pop("top", {})}
    lines = [f"{k} = {json.dumps(v)}" for k, v in top.items()]
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v != v:
        return "nan"
    if isinstance(v, float) and v in (float("inf"), -float("inf")):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"
    return json.dumps(v)


INLINE = {"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.0, 6.0, 8.0]}


# --- session files -------------------------------------------------------------------


def session(name: str = "five-points", **overrides: Any) -> Any:
    from playground.training.session import Session

    return Session.from_preset(name, device="cpu", **overrides)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def doc_of(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return json.loads(arrays["meta.json"].tobytes().decode("utf-8"))


def write_session(path: Path, arrays: dict[str, np.ndarray], doc: Any = None) -> Path:
    """The archive ``arrays`` (with ``doc`` as its meta.json, when given) at ``path``."""
    out = dict(arrays)
    if doc is not None:
        text = doc if isinstance(doc, str) else json.dumps(doc)
        out["meta.json"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **out)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture(scope="module")
def saved_adam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session with Adam state, grads, history and undo levels (an MLP, mini-batches)."""
    from playground.training.persist import save_session

    s = session("two-gaussians")
    s.train_step()
    s.train_step()
    s.backward()
    return save_session(s, tmp_path_factory.mktemp("adam") / "adam.npz")


@pytest.fixture(scope="module")
def saved_sgd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SGD with momentum: its buffers, grads, a few steps and undo levels."""
    from playground.training.persist import save_session

    s = session("multiple-regression", momentum=0.9)
    for _ in range(3):
        s.train_step()
    s.backward()
    return save_session(s, tmp_path_factory.mktemp("sgd") / "sgd.npz")


def refused(path: Path, *words: str) -> str:
    """``load_session(path)`` raises a SessionFileError naming the file (and ``words``)."""
    from playground.training.persist import SessionFileError, load_session

    with pytest.raises(SessionFileError) as info:
        load_session(path)
    msg = str(info.value)
    assert path.name in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), f"{w!r} not in {msg!r}"
    assert msg.isprintable(), msg
    return msg


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    p = tmp_path / "pipe.npz"
    os.mkfifo(p)
    yield p

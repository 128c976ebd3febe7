"""Item 7: an unsafe save target. Every writer goes through ``files.write_atomic``: a
temporary file of its own (never a predictable name, never followed through a link),
flushed to the disk, renamed; nothing left behind after a failure; a FIFO, a device, a
folder or a link at the target is refused by name and stays what it was."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playground import files
from playground.files import FileError, write_atomic
from tests.hostile.conftest import Watch, session


def _in_thread(fn: Callable[[], Any], timeout: float = 20.0) -> Any:
    """``fn()`` on a thread; fails the test (instead of hanging it) if it blocks."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "blocked (on a FIFO?)"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def test_the_temporary_file_is_never_a_planted_link(tmp_path: Path, watch: Any) -> None:
    """Links planted at the names of the old fixed scheme (PATH.tmp, .PATH.tmp) and at
    the target's folder point at a victim file: it is never written."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "out" / "session.npz"
    target.parent.mkdir()
    for name in ("session.npz.tmp", ".session.npz.tmp", "session.tmp"):
        (target.parent / name).symlink_to(victim)
    w: Watch = watch()
    write_atomic(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert victim.read_text() == "keep me"
    w.only(target)


def test_a_link_at_the_target_is_refused_and_its_file_is_untouched(
    tmp_path: Path, watch: Any
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "session.npz"
    target.symlink_to(victim)
    w: Watch = watch()
    with pytest.raises(FileError, match="symbolic link") as info:
        write_atomic(target, b"x")
    assert str(target) in str(info.value)
    assert victim.read_text() == "keep me" and target.is_symlink()
    w.only()


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_a_target_that_is_not_a_regular_file_is_refused_and_stays(
    kind: str, tmp_path: Path, watch: Any
) -> None:
    if kind == "device":
        target = Path("/dev/null")
        before = os.stat(target)
    else:
        target = tmp_path / "target.npz"
        os.mkfifo(target) if kind == "fifo" else target.mkdir()
    w: Watch = watch()
    with pytest.raises(FileError) as info:
        _in_thread(lambda: write_atomic(target, b"data"))
    msg = str(info.value)
    assert str(target) in msg and "not a regular file" in msg
    if kind == "fifo":
        assert stat.S_ISFIFO(os.lstat(target).st_mode)
    elif kind == "folder":
        assert target.is_dir()
    else:
        assert stat.S_ISCHR(os.stat(target).st_mode)
        assert os.stat(target).st_rdev == before.st_rdev
    w.only()


def test_every_writer_refuses_a_fifo_without_blocking(tmp_path: Path, watch: Any) -> None:
    """The session file, its sidecar, the three exports and the theme: one writer."""
    from playground.training.persist import save_session
    from playground.training.sidecar import write_sidecar
    from playground.ui.commands import read_theme, remember_theme

    s = session()
    s.train_step()
    writers: dict[str, Callable[[Path], Any]] = {
        "session.npz": lambda p: save_session(s, p),
        "script.py": s.export_script,
        "notebook.ipynb": s.export_notebook,
        "loss.csv": s.export_loss_csv,
    }
    for name, write in writers.items():
        target = tmp_path / name
        os.mkfifo(target)
        w: Watch = watch()
        with pytest.raises(FileError, match="FIFO"):
            _in_thread(lambda write=write, target=target: write(target))
        w.only()
    npz = tmp_path / "side.npz"
    os.mkfifo(npz.with_suffix(".json"))
    with pytest.raises(FileError, match="FIFO"):
        _in_thread(lambda: write_sidecar(npz, "p", "t", 1))
    theme = tmp_path / "theme.json"
    os.mkfifo(theme)
    _in_thread(lambda: remember_theme(theme, "nord"))  # not remembered, never stuck
    assert _in_thread(lambda: read_theme(theme)) is None
    assert stat.S_ISFIFO(os.lstat(theme).st_mode)


def test_the_data_is_flushed_to_the_disk_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync of the file happens while the target still holds the old contents."""
    target = tmp_path / "f.json"
    target.write_text("old")
    seen: list[str] = []

    def fsync(fd: int) -> None:
        seen.append(target.read_text() if stat.S_ISREG(os.fstat(fd).st_mode) else "folder")

    monkeypatch.setattr(files, "_fsync", fsync)
    write_atomic(target, "new")
    assert seen[0] == "old", "the file was synced after it replaced the old one"
    assert target.read_text() == "new"


class Boom(Exception):
    pass


@pytest.mark.parametrize("fails", ["writing", "fsync", "rename"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    fails: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watch: Any
) -> None:
    target = tmp_path / "session.npz"
    target.write_bytes(b"the user's work")
    w: Watch = watch()

    def write(fh: Any) -> None:
        fh.write(b"half")
        if fails == "writing":
            raise Boom

    if fails == "fsync":
        monkeypatch.setattr(files, "_fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "EIO")))
    if fails == "rename":
        monkeypatch.setattr(files.os, "replace", lambda a, b: (_ for _ in ()).throw(Boom()))
    with pytest.raises((Boom, OSError)) as info:
        write_atomic(target, write)
    if isinstance(info.value, OSError):
        assert str(target) in str(info.value)
    assert target.read_bytes() == b"the user's work"
    w.only()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session.npz"]


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "private.npz"
    target.write_bytes(b"old")
    target.chmod(0o600)
    write_atomic(target, b"new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_two_writers_at_once_never_mix_their_files(tmp_path: Path) -> None:
    """Unique temporary names: 8 threads writing the same target 25 times each; every
    version read is one writer's whole file."""
    target = tmp_path / "same.json"
    payloads = [json.dumps({"writer": i, "pad": "x" * (20000 + i)}) for i in range(8)]

    def writer(i: int) -> None:
        for _ in range(25):
            write_atomic(target, payloads[i])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    seen = set()
    while any(t.is_alive() for t in threads):
        if target.exists():
            seen.add(target.read_text())
    for t in threads:
        t.join()
    seen.add(target.read_text())
    assert seen <= set(payloads)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.json"]


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=2000))
def test_whatever_is_written_is_read_back_whole(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        target = Path(d) / "f.bin"
        write_atomic(target, data)
        assert target.read_bytes() == data
        assert os.listdir(d) == ["f.bin"]

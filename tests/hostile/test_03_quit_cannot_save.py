"""Item 3: a quit that cannot save. Quitting saves the session first and quits once it
is written; a read-only state directory or a full disk keeps the app open and says so
(nothing is lost: ctrl+s saves it elsewhere, q again quits without it); a slow disk only
keeps the app open until the save is done. Shutting down waits for the command in hand
(bounded: queued commands are dropped, a run stops at its slice) instead of ending the
process while torch is inside it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from playground import files
from playground.training.persist import load_session, save_session
from tests.hostile.conftest import session
from tests.ui.helpers import wait_for

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def _mount(where: Path, options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    return done.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` that cannot be written: a read-only tmpfs as root (root writes through
    permissions), permissions otherwise."""
    if ROOT:
        if not _mount(folder, "size=1m"):
            pytest.skip("cannot mount a tmpfs here")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        try:
            yield folder
        finally:
            _umount(folder)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)


@contextmanager
def small_disk(folder: Path, size: str = "256k") -> Iterator[Path]:
    if not ROOT:
        pytest.skip("a small tmpfs needs root")
    if not _mount(folder, f"size={size}"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        _umount(folder)


async def _wait(pilot: Any, check: Any, what: str, loops: int = 600) -> None:
    for _ in range(loops):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def _cannot_save_and_stays_open(app: Any, pilot: Any, elsewhere: Path, why: str) -> None:
    """q: told why, the app stays; ctrl+s elsewhere keeps the session; q then quits."""
    await pilot.press("n", "n")
    await wait_for(pilot, lambda s: s.step == 2, what="two steps")
    await pilot.press("q")
    await _wait(pilot, lambda: app.quitting.failed, "the failed autosave")
    assert not app._exit, "the app must stay open when the session cannot be saved"
    told = [n for n in app.notices if why in n]
    assert told, app.notices
    await pilot.press("n")  # it still trains: nothing was lost
    await wait_for(pilot, lambda s: s.step == 3, what="a step after the failed quit")
    await pilot.press("ctrl+s")
    await _wait(pilot, lambda: app.screen is not app.main, "the save prompt")
    app.screen.query_one(Input).value = str(elsewhere)
    await pilot.press("enter")
    await _wait(pilot, lambda: any("saved" in n for n in app.notices), "saved elsewhere")
    await pilot.press("q")
    await _wait(pilot, lambda: app._exit, "quitting without the autosave")


async def test_quit_with_a_read_only_state_dir_says_so_and_keeps_the_app_open(
    state_home: Path, tmp_path: Path
) -> None:
    from playground.tui import make_app

    with read_only(state_home / "playground"):
        app = make_app("five-points", device="cpu", autosave=True)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda s: s.step == 0, what="the preset")
            await _cannot_save_and_stays_open(app, pilot, tmp_path / "kept.npz", "ead-only")
        assert list((state_home / "playground").iterdir()) == []
    assert load_session(tmp_path / "kept.npz").step_count == 3


async def test_quit_with_a_full_disk_says_so_and_leaves_nothing_behind(
    state_home: Path, tmp_path: Path
) -> None:
    """The autosave's folder is a tiny tmpfs, nearly full, with the session saved there
    before: the failed save leaves that file as it was and no partial file."""
    from playground.tui import make_app

    disk = tmp_path / "disk"
    with small_disk(disk):
        old = session("two-gaussians")
        target = save_session(old, disk / "session.npz")
        before = target.read_bytes()
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # fill it up: not a byte left for a session file
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        app = make_app("two-gaussians", device="cpu", autosave=target)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda s: s.step == 0, what="the preset")
            await _cannot_save_and_stays_open(app, pilot, tmp_path / "kept.npz", "space")
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "session.npz"]
        assert target.read_bytes() == before
    assert load_session(tmp_path / "kept.npz").step_count == 3


async def test_quit_with_a_slow_disk_waits_for_the_save(
    state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk takes as long as the test says: the app stays open, saying it is
    saving, until the file is written; then it quits with the whole session there."""
    from playground.paths import autosave_path
    from playground.tui import make_app

    disk = threading.Event()
    real = files._fsync

    def slow(fd: int) -> None:
        disk.wait(120)
        real(fd)

    app = make_app("five-points", device="cpu", autosave=True)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda s: s.step == 0, what="the preset")
        await pilot.press("n", "n", "n")
        await wait_for(pilot, lambda s: s.step == 3, what="three steps")
        monkeypatch.setattr(files, "_fsync", slow)
        await pilot.press("q")
        await _wait(pilot, lambda: any("saving the session" in n for n in _toasts(app)), "told")
        for _ in range(10):
            await pilot.pause(0.05)
            assert not app._exit, "quit before the session was written"
        disk.set()
        await _wait(pilot, lambda: app._exit, "quitting once saved")
    assert load_session(autosave_path()).step_count == 3


def _toasts(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_quit_during_a_long_command_waits_for_it_and_saves_after(
    state_home: Path,
) -> None:
    """q while the runner is inside a command: the save waits for it (the commands
    queued behind it are dropped), then the app quits with the state it left."""
    from playground.paths import autosave_path
    from playground.protocol import Act, Call
    from playground.tui import make_app

    gate, inside = threading.Event(), threading.Event()
    app = make_app("five-points", device="cpu", autosave=True)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda s: s.step == 0, what="the preset")

        def long_action(s: Any) -> None:
            inside.set()
            gate.wait(120)
            s.train_step()

        app.submit(Call(long_action, "long"))
        for _ in range(50):
            app.submit(Act("train_step"))
        await _wait(pilot, inside.is_set, "the command in hand")
        await pilot.press("q")
        for _ in range(10):
            await pilot.pause(0.05)
            assert not app._exit
        gate.set()
        await _wait(pilot, lambda: app._exit, "quitting once saved")
    assert load_session(autosave_path()).step_count == 1


SCRIPT = """
import sys, threading
from pathlib import Path
from playground.protocol import Call, Load
from playground.runner import Runner
r = Runner(lambda ev: None, device="cpu")
r.start()
r.submit(Load("five-points", {}))
started = threading.Event()
def long(s):
    started.set()
    import torch
    a = torch.randn(300, 300)
    for _ in range(400):  # seconds of torch work, past the old 5 s join
        a = torch.tanh(a @ a)
    s.train_step()
r.submit(Call(long, "long"))
started.wait(120)
ok = r.stop(autosave=Path(sys.argv[1]))
print("stopped" if ok else "still running")
"""


@pytest.mark.slow
def test_a_process_quitting_during_torch_work_finishes_it_and_exits_cleanly(
    tmp_path: Path,
) -> None:
    """No SIGABRT (exit 134): the interpreter never ends while torch is inside a command."""
    target = tmp_path / "auto.npz"
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(target)], capture_output=True, text=True, timeout=600,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "stopped" in run.stdout
    assert load_session(target).step_count == 1


async def test_q_twice_while_an_unwritable_save_waits_is_told_on_the_terminal(
    state_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """q, then q again while the save waits behind a long command: the app closes, the
    runner saves as it stops, and when that fails the command line says so (exit 1) -
    the app cannot any more."""
    from playground.cli import main as cli
    from playground.protocol import Call
    from playground.tui import make_app

    target = tmp_path / "no-such-dir-file"
    target.write_text("a file, not a folder")
    gate, inside = threading.Event(), threading.Event()
    app = make_app("five-points", device="cpu", autosave=target / "autosave.npz")

    def long_action(s: Any) -> None:
        inside.set()
        gate.wait(120)

    async with app.run_test() as pilot:
        await wait_for(pilot, lambda s: s.step == 0, what="the preset")
        app.submit(Call(long_action, "long"))
        await _wait(pilot, inside.is_set, "the command in hand")
        await pilot.press("q")
        await pilot.press("q")  # "q again closes the app now; the save still ends first"
        await _wait(pilot, lambda: app._exit, "the app closing")
        gate.set()
    saved = app.runner.final_save
    assert saved is not None and saved.error and "autosave.npz" in saved.error

    class Ran:  # cmd_tui with this app, its run already over
        def __init__(self) -> None:
            self.runner, self.quitting, self.return_code = app.runner, app.quitting, 0

        def run(self) -> None:
            pass

    args = cli.build_parser().parse_args(["tui", "five-points"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "has_terminal", lambda: True)
        mp.setattr("playground.tui.make_app", lambda **_: Ran())
        code = cli.cmd_tui(args)
    assert code == 1
    assert "the session was not saved" in capsys.readouterr().err

"""The TUI started where there is no terminal (a script, a pipe, cron, CI) exits at once.

Without this check Textual reads a closed stdin forever at full CPU and draws nothing.
Each test starts ``playground`` as a user's shell would, with stdin not a terminal: once
with every stream a pipe, once with the screen a real pseudo-terminal (``pty``), as in
``playground five-points </dev/null`` typed at a prompt. Each must end with exit code 2
(bad input) and a message that names the headless ``playground run``.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

DEADLINE_S = 3.0  # a hang guard: the exit comes before the app (and torch) is even imported


def _env() -> dict[str, str]:
    env = dict(os.environ, PLAYGROUND_NO_AUTOSAVE="1")
    env.pop("TEXTUAL_DRIVER", None)  # that is the served app's driver: a terminal is not needed
    return env


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the other side of the pty is closed
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("preset", ["five-points", "nosuch"])
def test_without_a_terminal_the_tui_exits_with_code_2_and_points_to_run(preset: str) -> None:
    """`playground five-points </dev/null >out 2>&1`: exit 2 and the message, no hang."""
    done = subprocess.run(
        [sys.executable, "-m", "playground", preset],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=DEADLINE_S,
    )
    assert done.returncode == 2
    assert "needs a terminal" in done.stderr
    assert f"playground run {preset}" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("preset", ["five-points", "nosuch"])
def test_at_a_terminal_with_stdin_redirected_the_tui_exits_with_code_2(preset: str) -> None:
    """`playground five-points </dev/null` typed at a prompt: the screen is a terminal
    (a pty here), the keyboard is not; the message appears on that terminal."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "playground", preset],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env=_env(),
        )
        os.close(slave)
        slave = -1
        try:
            code = proc.wait(timeout=DEADLINE_S)
        finally:
            proc.kill()
        text = _read_all(master)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert code == 2
    assert "needs a terminal" in text
    assert f"playground run {preset}" in text

"""Benchmarks that run the real TUI in a pseudo-terminal: first frame, bytes per second.

The app is started as a user would start it (``python -m playground PRESET``) with a
120x40 window; the output stream is read as a terminal would read it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from typing import Any

# A measured app leaves no autosave behind in the user's state directory.
QUIET = {"PLAYGROUND_NO_AUTOSAVE": "1"}

# The footer's key labels are in the very first frame the app paints.
FIRST_FRAME = re.compile(rb"forward|loading torch")


@dataclass
class PtyApp:
    pid: int
    fd: int
    started: float

    def read(self, timeout: float) -> bytes:
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return b""
        try:
            return os.read(self.fd, 65536)
        except OSError:
            return b""

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def close(self) -> None:
        try:
            self.send("q")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                self.read(0.1)
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    break
            else:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        except (OSError, ChildProcessError):
            pass
        os.close(self.fd)


def spawn(
    args: list[str], cols: int = 120, rows: int = 40, env: dict[str, str] | None = None
) -> PtyApp:
    started = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.environ.update(env or {})
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, *args])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return PtyApp(pid, fd, started)


def import_torch_seconds(repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def first_frame_seconds(preset: str, repeats: int = 3) -> float:
    """Process start -> first frame with the app's own text on the terminal."""
    times = []
    for _ in range(repeats):
        app = spawn(["-m", "playground", preset, "--device", "cpu"], env=QUIET)
        seen = b""
        t_first = None
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            seen += app.read(0.05)
            if FIRST_FRAME.search(seen):
                t_first = time.perf_counter() - app.started
                break
        app.close()
        if t_first is None:
            raise RuntimeError("the app painted no frame within 60 s")
        times.append(t_first)
    return statistics.median(times)


def bytes_per_second(preset: str, seconds: float, fps: float | None = None) -> tuple[float, int]:
    """Bytes written to the terminal per second while running; also the steps reached."""
    # a run long enough to outlast the measurement
    args = ["-m", "playground", preset, "--device", "cpu", "--max-steps", "100000000"]
    if fps:
        args += ["--fps", str(fps)]
    app = spawn(args, env=QUIET)
    seen = b""
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline and b"idle" not in seen:
        seen += app.read(0.1)
    time.sleep(1.0)  # let the first snapshot render
    while app.read(0.05):
        pass
    app.send("r")
    total = 0
    t0 = time.perf_counter()
    tail = b""
    while time.perf_counter() - t0 < seconds:
        chunk = app.read(0.05)
        total += len(chunk)
        tail = (tail + chunk)[-20000:]
    elapsed = time.perf_counter() - t0
    app.close()
    steps = [int(m) for m in re.findall(rb"step (\d+)", tail)]
    return total / elapsed, max(steps, default=0)


class Screen:
    """The terminal's screen as a user sees it: the app's bytes decoded by pyte."""

    def __init__(self, app: PtyApp, cols: int, rows: int) -> None:
        import pyte

        self.app = app
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait(self, predicate: Any, timeout: float = 30.0) -> float:
        """Read until ``predicate(text on screen)`` holds; when the bytes that made it
        hold arrived (decoding them here is the terminal's work, not the app's)."""
        deadline = time.perf_counter() + timeout
        while True:
            chunk = self.app.read(0.02)
            if chunk:
                arrived = time.perf_counter()
                self.stream.feed(chunk)
                if predicate(self.text()):
                    return arrived
            if time.perf_counter() > deadline:
                raise TimeoutError("the screen never showed the expected state:\n" + self.text())


def _count(text: str, name: str) -> str:
    """The backward column of parameter ``name``'s row ("x3", "zeroed", ...)."""
    for line in text.splitlines():
        cells = line.strip("│ ").split()
        if cells and cells[0] == name and len(cells) >= 4:
            return cells[3]
    return ""


def key_to_screen(
    preset: str, key: str, presses: int, cols: int = 120, rows: int = 40, param: str = "weight"
) -> dict[str, float]:
    """Key written to the terminal -> the frame showing its effect decoded on the screen,
    in milliseconds (p50 / p95). ``b``: the backward column counts one more; ``z`` (after
    a ``b``): it says zeroed; ``n``: the status bar shows the next step."""
    env = {**QUIET, "TEXTUAL_ANIMATIONS": "none"}
    app = spawn(["-m", "playground", preset, "--device", "cpu"], cols, rows, env)
    screen = Screen(app, cols, rows)
    try:
        screen.wait(lambda t: "idle" in t and _count(t, param) != "", timeout=60)
        time.sleep(0.5)
        times = []
        for i in range(presses):
            if key == "b":
                if i % 9 == 0:  # keep the count one digit: zero first
                    app.send("z")
                    screen.wait(lambda t: _count(t, param) in ("zeroed", "None"))
                want = f"x{i % 9 + 1}"
                done = lambda t, w=want: _count(t, param).startswith(w)  # noqa: E731
            elif key == "z":
                app.send("b")
                screen.wait(lambda t: _count(t, param).startswith("x"))
                done = lambda t: _count(t, param) == "zeroed"  # noqa: E731
            elif key == "n":
                want = f"step {i + 1} "
                done = lambda t, w=want: w in t  # noqa: E731
            else:
                raise ValueError(f"no screen change known for key {key!r}")
            time.sleep(0.05)  # the previous frame is out; the next key starts clean
            while app.read(0.0):
                pass
            t0 = time.perf_counter()
            app.send(key)
            times.append((screen.wait(done) - t0) * 1000)
    finally:
        app.close()
    times.sort()
    return {
        "p50": statistics.median(times),
        "p95": times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))],
    }

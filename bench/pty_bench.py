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
        app = spawn(["-m", "playground", preset, "--device", "cpu"])
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
    app = spawn(args)
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

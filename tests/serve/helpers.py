"""Helpers for the ``playground serve`` tests: the server as a user starts it (a process of
its own, on a free port), the processes it runs, the system chromium, and the terminal a
page shows, decoded from its websocket frames (the page draws it on a canvas)."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium"))
# as CI launches it: headless, nothing of its own on the network
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS_ENV = "PLAYGROUND_ARTIFACTS"  # a folder that CI keeps: screenshots are copied there


def need_chromium() -> None:
    """Skip without the Debian chromium and Playwright - except in CI, which installs both."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[test]')")
    if missing:
        if os.environ.get("CI"):
            pytest.fail("the browser tests need " + ", ".join(missing))
        pytest.skip("needs " + ", ".join(missing))


# --- the server and its processes ------------------------------------------------------


@dataclass
class Served:
    """A running ``playground serve``: its process, the URL it printed, its output."""

    proc: subprocess.Popen[str]
    printed: str  # the URL as the banner says it
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The printed URL, reached on this machine's loopback address."""
        parts = urlsplit(self.printed)
        query = f"?{parts.query}" if parts.query else ""
        return f"http://127.0.0.1:{parts.port}{parts.path}{query}"

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def port(self) -> int:
        port = urlsplit(self.printed).port
        assert port is not None
        return port

    def sessions(self) -> set[int]:
        """The server's child processes: one per open tab."""
        return children_of(self.proc.pid)

    def output(self) -> str:
        return "\n".join(self.lines)


def serve_env(state_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_STATE_HOME"] = str(state_dir)  # no theme nor autosave from the user's own
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def serving(args: Sequence[str], state_dir: Path, timeout: float = 60.0) -> Iterator[Served]:
    """``playground serve ARGS --port 0`` until the block ends; then SIGTERM, as Ctrl+C."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground", "serve", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=serve_env(state_dir),
    )
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    served: Served | None = None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while served is None or "Ctrl+C" not in seen[-1]:  # the whole banner
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise AssertionError("playground serve ended:\n" + "\n".join(seen))
            seen.append(line)
            if m := re.match(r"\s+open\s+(http://\S+)", line):
                served = Served(proc, m.group(1), seen)

        def drain() -> None:
            while (line := lines.get()) is not None:
                seen.append(line)

        threading.Thread(target=drain, daemon=True).start()
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # pytest shows it with a failure: the sessions opened and closed, their errors
        print("playground serve said:\n" + "\n".join(seen))


def _stat(pid: int | str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # the name in ( ) may hold spaces


def children_of(pid: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(entry)) is not None and int(st[1]) == pid:
            out.add(int(entry))
    return out


def in_group(pgid: int) -> set[int]:
    """Every live process of the process group (a session's process and its helpers)."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(entry)) is not None:
            if int(st[2]) == pgid and st[0] != "Z":
                out.add(int(entry))
    return out


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


# --- the browser -------------------------------------------------------------------------


class Terminal:
    """What a page's terminal shows, decoded from its websocket's frames with pyte.

    Bytes from the server are the terminal stream the app writes; the page tells the
    server its size in the websocket's URL and in "resize" messages.
    """

    def __init__(self) -> None:
        import pyte

        self._pyte = pyte
        self.screen = pyte.Screen(80, 24)
        self.stream = pyte.ByteStream(self.screen)
        self.bytes_in = 0
        self.typed: list[str] = []  # what the page sent as keys
        self.closed = False

    def attach(self, ws: Any) -> None:
        query = parse_qs(urlsplit(ws.url).query)
        self._resize(int(query.get("width", ["80"])[0]), int(query.get("height", ["24"])[0]))
        ws.on("framereceived", self._received)
        ws.on("framesent", self._sent)
        ws.on("close", lambda _ws: setattr(self, "closed", True))

    def _resize(self, width: int, height: int) -> None:
        self.screen.resize(lines=height, columns=width)

    def _received(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.bytes_in += len(payload)
            self.stream.feed(payload)

    def _sent(self, payload: str | bytes) -> None:
        if not isinstance(payload, str):
            return
        message = json.loads(payload)
        if message[0] == "resize":
            self._resize(int(message[1]["width"]), int(message[1]["height"]))
        elif message[0] == "stdin":
            self.typed.append(message[1])

    @property
    def lines(self) -> list[str]:
        return list(self.screen.display)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.lines)

    def row(self, first: str) -> list[str]:
        """The words of the first table row whose first word is ``first`` (box drawing
        characters dropped)."""
        for line in self.lines:
            words = [w for w in re.split(r"[\s│║┃]+", line) if w]
            if words and words[0] == first:
                return words
        return []

    def wait_for(
        self, page: Any, predicate: Callable[[Terminal], bool], what: str, timeout: float = 120.0
    ) -> None:
        """Poll (letting Playwright deliver the frames) until the screen satisfies it. The
        deadline is generous: a tab's process imports torch on a machine that may be busy."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}; keys sent {self.typed!r}; "
                    f"the screen:\n{self.text()}"
                )
            page.wait_for_timeout(50)


def open_tab(context: Any, url: str) -> tuple[Any, Terminal]:
    """A new tab on ``url``, its terminal decoded as its frames come."""
    page = context.new_page()
    terminal = Terminal()
    page.on("websocket", terminal.attach)
    page.goto(url)
    return page, terminal


def keep_artifact(path: Path) -> None:
    """Copy a screenshot to the CI's artefact folder, when one is configured."""
    folder = os.environ.get(ARTIFACTS_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(folder) / path.name)

"""One browser tab's playground: the TUI in a process of its own, ended with its tab.

textual-serve's ``AppService`` speaks the web driver's protocol with the process (stdin
and stdout carry the terminal and its metadata). This subclass starts the process without
a shell (the preset name is an argument, never shell text), in a process group of its own
(a session's helpers, such as data-parallel ranks, go with it), closes the tab's websocket
when the process ends, and makes ``stop`` final: the app is asked to quit, and whatever
still runs after ``QUIT_GRACE_S`` is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from asyncio.subprocess import Process
from collections.abc import Awaitable, Callable, Sequence

from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

from playground.paths import NO_AUTOSAVE_ENV

QUIT_GRACE_S = 2.0  # the app saves nothing when served, so quitting is quick
KILL_WAIT_S = 2.0
MAX_COLUMNS, MAX_ROWS = 400, 200  # a page asks for its size: no screen larger than a wall


def terminal_size(width: object, height: object) -> tuple[int, int] | None:
    """A size a page asked for, within bounds; None for one that is not two numbers."""
    try:
        w, h = int(width), int(height)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return min(max(w, 20), MAX_COLUMNS), min(max(h, 5), MAX_ROWS)


def app_command(app_args: Sequence[str]) -> list[str]:
    """The TUI in this interpreter: ``python -m playground tui ARGS``."""
    return [sys.executable, "-m", "playground", "tui", *app_args]


class PlaygroundSession(AppService):
    """A tab's process. ``pid`` once started; ``stop`` returns when the process is gone."""

    def __init__(
        self,
        app_args: Sequence[str],
        *,
        write_bytes: Callable[[bytes], Awaitable[None]],
        write_str: Callable[[str], Awaitable[None]],
        close: Callable[[], Awaitable[None]],
        download_manager: DownloadManager,
    ) -> None:
        command = app_command(app_args)
        super().__init__(
            " ".join(command),  # for textual-serve's log lines only: nothing runs it
            write_bytes=write_bytes,
            write_str=write_str,
            close=close,
            download_manager=download_manager,
        )
        self.argv = command
        self.pid: int | None = None

    async def start(self, width: int, height: int) -> None:
        await super().start(*(terminal_size(width, height) or (80, 24)))

    async def set_terminal_size(self, width: int, height: int) -> None:
        size = terminal_size(width, height)
        if size is not None:
            await super().set_terminal_size(*size)

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        env = super()._build_environment(width, height)
        # many tabs, one user: no tab may overwrite the others' autosave, nor offer it
        env[NO_AUTOSAVE_ENV] = "1"
        return env

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Process:
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width=width, height=height),
            start_new_session=True,
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        self.pid = process.pid
        return process

    async def run(self) -> None:
        """Relay the process's output; when it ends (quit, or a crash) the tab is told,
        and shows that its session has ended instead of waiting on a dead process."""
        try:
            await super().run()
        finally:
            with contextlib.suppress(Exception):
                await self.remote_close()

    async def stop(self) -> None:
        """Ask the app to quit; kill its process group if it has not within the grace."""
        task, self._task = self._task, None
        process = self._process
        if task is None or process is None:
            return
        with contextlib.suppress(Exception):
            await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        await self.send_meta({"type": "quit"})
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), QUIT_GRACE_S)
        except TimeoutError:
            self._kill_group(process.pid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), KILL_WAIT_S)
        # helpers the app started, if any outlived it
        self._kill_group(process.pid)
        # the reader ends at the end of the process's output; do not wait on it forever
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, KILL_WAIT_S)

    @staticmethod
    def _kill_group(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

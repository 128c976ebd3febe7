"""One thread that owns some state: commands in through a queue, events out through a callback.

The pattern of Toolong's reader thread and of our training runner: the UI never touches the
state (tensors live here), it ``submit``s frozen command objects, and the thread applies
them in order, exactly once each, publishing frozen events with ``publish`` (in the app
that is ``post_message``, which is thread-safe). Between commands a subclass may do
background work in small pieces (the runner trains in ~40 ms slices), looking at the
queue after each piece so that a new command is never kept waiting for long.

This module imports neither torch nor textual; subclasses import torch on the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class _StopSentinel:
    """Wakes the thread and ends it (jumps nothing: queued commands before it are dropped)."""


_STOP = _StopSentinel()


class CommandThread:
    """Base class: subclasses implement ``setup``, ``apply`` and, optionally,
    ``busy`` / ``background`` (work between commands) and ``teardown``."""

    name = "playground-worker"

    def __init__(self, publish: Callable[[Any], None]) -> None:
        self._publish = publish
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._stopping = threading.Event()
        self.applied = 0  # commands applied (for tests and the load benchmark)

    # --- any thread -----------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, command: Any) -> None:
        self._queue.put(command)

    def submit_first(self, command: Any) -> None:
        """Drop the commands still queued, then submit ``command``: it is applied right
        after the command in hand (quitting saves the session as it is now)."""
        while True:
            try:
                dropped = self._queue.get_nowait()
            except queue.Empty:
                break
            if dropped is _STOP:  # a stop already asked for stays asked for
                self._queue.put(_STOP)
                break
        self._queue.put(command)

    def stop(self, timeout: float | None = 5.0) -> bool:
        """End the thread after the command in hand; commands still queued are dropped.
        True when the thread has ended within ``timeout`` seconds (None: wait for it)."""
        self._stopping.set()
        self._queue.put(_STOP)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def publish(self, event: Any) -> None:
        self._publish(event)

    # --- the thread -----------------------------------------------------------------

    def _main(self) -> None:
        self.setup()
        while not self._stopping.is_set():
            if self.busy():
                try:
                    command = self._queue.get_nowait()
                except queue.Empty:
                    self.background()
                    continue
            else:
                command = self._queue.get()
            if command is _STOP or self._stopping.is_set():
                break
            self.apply(command)
            self.applied += 1
        self.teardown()

    def setup(self) -> None:
        """First thing on the thread (slow imports go here, not on the UI thread)."""

    def apply(self, command: Any) -> None:  # pragma: no cover - every subclass has one
        raise NotImplementedError

    def busy(self) -> bool:
        """True while there is background work to do between commands."""
        return False

    def background(self) -> None:
        """One small piece of background work (called while ``busy()``)."""

    def teardown(self) -> None:
        """Last thing on the thread, after the command in hand (e.g. the autosave)."""

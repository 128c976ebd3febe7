"""Textual messages that carry the runner's events into the app.

The runner thread calls ``publish(event)``; the app turns each event into one of these
messages and posts it (``post_message`` is thread-safe). Snapshots can arrive faster than
the screen can draw them during a run, so a queued ``SnapshotReady`` is replaced by the
next one (``can_replace``): the UI always draws the newest state and never falls behind.
One that carries an explanation of its action is kept (runs explain only their end).
"""

from __future__ import annotations

from textual.message import Message

from playground.protocol import Event, Published


class RunnerEvent(Message):
    """Any runner event other than a snapshot (Ready, Failed, Notice, Result)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class SnapshotReady(Message):
    """A new snapshot from the runner; a newer one waiting in the queue supersedes it."""

    def __init__(self, event: Published) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        # a snapshot that comes with words on its action is never skipped: the words (a
        # warning said once) would be lost with it
        return isinstance(message, SnapshotReady) and self.event.explanation is None


def wrap(event: Event) -> Message:
    """The message for a runner event (snapshots get the mergeable kind)."""
    if isinstance(event, Published):
        return SnapshotReady(event)
    return RunnerEvent(event)

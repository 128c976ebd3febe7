"""Whether the session changed since it was last saved or opened: quitting asks first.

With the autosave off (``PLAYGROUND_NO_AUTOSAVE=1``, or an app built without one), ``q``
would throw the session away. The app tells this tracker about every snapshot, file
opened and file saved; ``unsaved(snapshot)`` then says whether there is work to lose.
A session just loaded from a preset or opened from a file holds no work of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playground.training.snapshot import Snapshot


def fingerprint(s: Snapshot) -> tuple[Any, ...]:
    """What every action changes, compared in O(1): each action writes code (the log),
    evaluates a loss, takes a step or changes a setting; undo and redo move the stacks."""
    return (
        s.preset,
        s.config,
        s.step,
        s.backward_total,
        s.cursor,
        len(s.history),
        len(s.log),
        s.log[-1:],
        s.undo_depth,
        s.redo_depth,
        s.undo_label,
    )


class UnsavedWork:
    """The fingerprint of the state last saved or opened."""

    def __init__(self) -> None:
        self._clean: tuple[Any, ...] | None = None
        self._opening: list[str] = []  # files asked for, not answered yet (undo labels)

    def published(self, before: Snapshot | None, snapshot: Snapshot) -> None:
        """A new snapshot; ``before`` the one it replaces (None: the session's first)."""
        if before is None:
            self._clean = fingerprint(snapshot)  # a fresh preset or a file just opened
        elif self._opening and snapshot.undo_label == f"open {self._opening[0]}":
            self._opening.pop(0)  # Session.adopt's undo entry: the file is in
            self._clean = fingerprint(snapshot)

    def opening(self, path: str) -> None:
        self._opening.append(Path(path).name)

    def open_failed(self) -> None:
        if self._opening:
            self._opening.pop(0)

    def saved(self, snapshot: Snapshot | None) -> None:
        if snapshot is not None:
            self._clean = fingerprint(snapshot)

    def unsaved(self, snapshot: Snapshot | None) -> bool:
        return snapshot is not None and fingerprint(snapshot) != self._clean

"""Quitting with an autosave: the session is saved first, and the app quits once it is saved.

``q`` asks the runner to save the session to this instance's autosave file right after
the command in hand (the commands still queued are dropped, as quitting always did) and
says so; the app quits when the runner answers that the file is written. When it cannot
be written - a read-only state directory, a full disk - the app stays open and says why:
nothing is lost, ctrl+s saves the session elsewhere, and ``q`` again quits without it.
A slow disk only means the app stays open until the save is done.

When the app ends another way (a crash), the runner saves as it stops - to a new
autosave file, never over the one this session was resumed from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playground.paths import claim_autosave
from playground.protocol import Save, Saved


class QuitSave:
    """Where quitting stands: saving, saved, or given up on the autosave."""

    def __init__(self) -> None:
        self.pending: str | None = None  # the autosave being written before quitting
        self.done = False  # written: quit, and the runner saves nothing more
        self.failed = False  # it could not be: the user was told, q quits without it

    def save_first(self, app: Any) -> bool:
        """True when quitting waits for the autosave (and has asked for it). Asked
        again while it is being written, quit: the runner finishes that save as it
        stops (the app waits for it there)."""
        if app.autosave is None or app.snapshot is None or self.done or self.failed:
            return False
        if self.pending is not None or not app.runner.alive:
            return False
        self.pending = str(app.autosave)
        app.runner.submit_first(Save(self.pending, sidecar=True))
        app.notify(
            f"saving the session to {self.pending} before quitting... (q again closes the "
            "app now; the save still ends first)",
            markup=False,
        )
        return True

    def saved(self, app: Any, saved: Saved) -> bool:
        """The runner's answer to that save: quit, or stay open and say why. True when
        ``saved`` was that answer."""
        if self.pending is None or saved.path != self.pending:
            return False
        self.pending = None
        if not saved.error:
            self.done = True
            app.exit()
            return True
        self.failed = True
        app.notices.append(saved.error)
        app.notify(
            f"{saved.error}\nThe session is not saved, and nothing is lost: the app stays "
            "open. ctrl+s saves it elsewhere; q quits without saving it.",
            title="cannot save the session to quit",
            severity="error",
            timeout=60,
            markup=False,
        )
        return True

    def at_exit(self, autosave: Path | None, crashed: bool) -> Path | None:
        """Where the runner saves the session as it stops: nowhere once saved (or once
        the user chose to quit without it); after a crash, a new autosave file."""
        if autosave is None or self.done or self.failed:
            return None
        return claim_autosave(avoid=autosave) if crashed and autosave.exists() else autosave

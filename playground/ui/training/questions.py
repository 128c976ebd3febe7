"""The questions the main screen asks before something throws work away.

Each is a ``ConfirmScreen`` (y / n) saying what each answer does; what happens next is
the caller's business.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from playground.ui.dialogs.confirm import ConfirmScreen

if TYPE_CHECKING:
    from playground.training.snapshot import Snapshot


def quit_question(s: Snapshot) -> ConfirmScreen:
    """Quitting would lose ``s``: it changed since it was saved, and nothing autosaves it."""
    return ConfirmScreen(
        "Quit and lose this session? - y/n",
        f"{s.preset} at step {s.step} changed since it was last saved or opened, and the "
        "autosave is off. ctrl+s saves it to a file.",
        yes="quit without saving",
        no="keep working",
    )


def restart_question(changes: dict[str, Any]) -> ConfirmScreen:
    """A setting that rebuilds the session (model, loss, optimizer, seed)."""
    said = ", ".join(f"the {k} to {v}" for k, v in changes.items())
    return ConfirmScreen(
        f"Changing {said} restarts training - y/n",
        "The model starts again from the seed: parameters, loss history and code start "
        "over (u takes it back). The other settings stay as they are.",
        yes="change it and restart",
        no="keep training as it is",
    )

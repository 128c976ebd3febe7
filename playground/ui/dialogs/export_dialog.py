"""``e``: what to export - the code as a script or a notebook, or the loss history.

Dismisses with the kind ("script", "notebook", "csv") or None (Escape). The paths are
the app's to choose; the dialog shows them so the user knows where the file will go.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

CHOICES = (  # key, kind, what it writes
    ("p", "script", "the code as a Python script (cells an editor runs one by one)"),
    ("n", "notebook", "the code as a Jupyter notebook, a markdown cell per action"),
    ("c", "csv", "every batch loss (and the validation loss) as CSV"),
)


class ExportDialog(ModalScreen[str | None]):
    """Asks which export; ``paths`` maps each kind to the file it would write."""

    BINDINGS = [
        *(Binding(key, f"choose('{kind}')", kind) for key, kind, _ in CHOICES),
        Binding("escape", "choose(None)", "cancel"),
    ]

    def __init__(self, paths: dict[str, str]) -> None:
        super().__init__()
        self.paths = paths

    def compose(self) -> ComposeResult:
        with Vertical(id="export"):
            yield Label("Export the session", id="export-title", markup=False)
            for key, kind, what in CHOICES:
                yield Label(f"{key}  {what}\n   -> {self.paths[kind]}", markup=False)
            yield Label("Escape: cancel", id="export-hint", markup=False)

    def action_choose(self, kind: str | None) -> None:
        self.dismiss(kind)

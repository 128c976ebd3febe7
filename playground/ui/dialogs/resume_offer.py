"""At start-up without a preset: offer to resume a session autosaved when the app quit.

Every instance has an autosave of its own, so there can be several: the newest is
offered first (y or 1), the others below it (2-9). Dismisses with the chosen autosave's
path, or None (n, Escape) to choose a preset instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from playground.training.sidecar import AutosaveInfo


class ResumeOffer(ModalScreen[Path | None]):
    """Asks "Resume your last session (preset, step N)? y/n", and lists the others."""

    BINDINGS = [
        Binding("y", "answer(1)", "resume"),
        Binding("n", "answer(0)", "new session"),
        Binding("escape", "answer(0)", "new session", show=False),
        *(Binding(str(k), f"answer({k})", show=False) for k in range(1, 10)),
    ]

    def __init__(self, infos: AutosaveInfo | Sequence[AutosaveInfo]) -> None:
        super().__init__()
        self.infos = [infos] if isinstance(infos, AutosaveInfo) else list(infos)[:9]
        self.info = self.infos[0]

    def compose(self) -> ComposeResult:
        i = self.info
        when = f", saved {i.saved_at}" if i.saved_at else ""
        with Vertical(id="offer"):
            yield Label(
                f"Resume your last session ({i.preset}, step {i.step})? y/n",
                id="offer-question",
                markup=False,
            )
            yield Label(f"{i.title}{when}\n{i.path}", id="offer-details", markup=False)
            if len(self.infos) > 1:  # the texts come cleaned from the sidecars
                others = [
                    f"{k}: {o.preset}, step {o.step}"
                    + (f", saved {o.saved_at}" if o.saved_at else "")
                    for k, o in enumerate(self.infos[1:], 2)
                ]
                yield Label(
                    "or another one:\n" + "\n".join(others), id="offer-others", markup=False
                )

    def action_answer(self, choice: int) -> None:
        self.dismiss(self.infos[choice - 1].path if 0 < choice <= len(self.infos) else None)

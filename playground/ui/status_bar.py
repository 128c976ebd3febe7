"""The one-line status bar: state, step, epoch, lr, losses, accuracy and device."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

if TYPE_CHECKING:
    from playground.engine.snapshot import Snapshot

# How each state is spelled and coloured; the word is always there, so it reads without colour.
STATE_STYLE = {
    "idle": "$text-muted",
    "running": "$success bold",
    "paused": "$warning bold",
    "converged": "$success bold",
    "diverged": "$error bold reverse",
    "max_steps": "$accent bold",
}


def fmt(value: float | None, spec: str = ".4g") -> str:
    """A number for the status bar, or an em dash when there is none."""
    return "—" if value is None else format(value, spec)


class StatusBar(Static):
    """Session state in one line; only redrawn when the text actually changes."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    StatusBar.-diverged {
        background: $error 30%;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("loading torch...", id=id, markup=False)
        self._shown: Content | None = None

    def show_text(self, text: str) -> None:
        """A plain message before any snapshot exists (e.g. 'loading torch...')."""
        self._set(Content(text))

    def update_snapshot(self, snapshot: Snapshot, running: bool) -> None:
        s = snapshot
        state = "running" if running else s.status
        parts: list[Content] = [Content.styled(f" {state} ", STATE_STYLE.get(state, ""))]
        if s.message:
            parts.append(Content.styled(s.message, "$error bold" if state == "diverged" else ""))
        parts.append(Content(f"step {s.step}"))
        parts.append(Content(f"epoch {s.epoch:.4g}"))
        parts.append(Content(f"lr {s.lr:g}"))
        parts.append(Content(f"loss {fmt(s.train_loss)}"))
        if s.val_loss is not None:
            parts.append(Content(f"val {fmt(s.val_loss)}"))
        if s.accuracy is not None:
            acc = f"acc {s.accuracy:.1%}"
            if s.val_accuracy is not None:
                acc += f" / {s.val_accuracy:.1%}"
            parts.append(Content(acc))
        parts.append(Content.styled(s.device, "$text-muted"))
        self.set_class(state == "diverged", "-diverged")
        self._set(Content(" │ ").join(parts))

    def _set(self, content: Content) -> None:
        # Static.update re-renders the line; skip it when nothing changed (bytes over SSH).
        if content != self._shown:
            self._shown = content
            self.update(content)

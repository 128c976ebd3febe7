"""The one-line status bar: the runner's state and message, step, epoch, the micro-batch,
lr, train / validation loss and accuracy, and the device. Every number says what it is,
and the state is a word a user reads ("reached max steps", not the runner's enum value).

When the line is too wide the least important parts go first (epoch and the micro-batch,
then lr ...); the device's name stays (a run on the CPU when a GPU was meant is worth
seeing at any width), only its long description ("NVIDIA H100 (80 GiB)") may go."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from playground.ui.training.wording import status_word

if TYPE_CHECKING:
    from playground.protocol import Status
    from playground.training.snapshot import Snapshot

# How each state is spelled and coloured; the word is always there, so it reads without colour.
STATE_STYLE = {
    "idle": "$text-muted",
    "running": "$success bold",
    "paused": "$warning bold",
    "converged": "$success bold",
    "diverged": "$error bold reverse",
    "max_steps": "$accent bold",
}


SEPARATOR = Content(" │ ")
GLUED = 9  # a part that goes on from the one before it after a space; the first to go


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
        self._parts: list[tuple[int, Content]] = []

    def show_text(self, text: str) -> None:
        """A plain message before any snapshot exists (e.g. 'loading torch...')."""
        self._set(Content(text))

    def update_snapshot(self, snapshot: Snapshot, status: Status, message: str) -> None:
        s = snapshot
        state = str(status)
        # (priority, text): when the line is too wide the highest numbers go first
        parts: list[tuple[int, Content]] = [
            (0, Content.styled(f" {status_word(status)} ", STATE_STYLE.get(state, "")))
        ]
        if message:
            parts.append((1, Content.styled(message, "$error bold" if state == "diverged" else "")))
        parts.append((2, Content(f"step {s.step}")))
        parts.append((6, Content(f"epoch {s.epoch:.4g}")))
        if s.batch is not None and s.batch[1] > 1:
            parts.append((6, Content(f"batch {s.batch[0]}/{s.batch[1]}")))
        # the settings form shows lr too: it goes first, before the epoch and the batch
        parts.append((7, Content(f"lr {s.config.lr:g}")))
        parts.append((3, Content(f"train loss {fmt(s.train_loss)}")))
        if s.val_loss is not None:
            parts.append((4, Content(f"val loss {fmt(s.val_loss)}")))
        if s.train_accuracy is not None:
            acc = f"train acc {s.train_accuracy:.1%}"
            if s.val_accuracy is not None:
                acc += f" · val acc {s.val_accuracy:.1%}"
            parts.append((4, Content(acc)))
        name, _, description = s.device.partition(" ")
        parts.append((3, Content.styled(name, "$text-muted")))
        if description:  # goes on with the name, after a space ("cuda:0 NVIDIA H100 ...")
            parts.append((GLUED, Content.styled(description, "$text-muted")))
        self.set_class(state == "diverged", "-diverged")
        self._parts = parts
        self._set(self._line())

    def on_resize(self) -> None:
        if self._parts:
            self._set(self._line())

    def _line(self) -> Content:
        """The parts that fit the width, dropping the least important first."""
        parts = list(self._parts)
        room = self.content_size.width or 10_000

        def joined() -> Content:
            line = Content("")
            for i, (priority, c) in enumerate(parts):
                if i:
                    line += Content(" ") if priority == GLUED else SEPARATOR
                line += c
            return line

        line = joined()
        while len(parts) > 1 and len(line) > room:
            parts.remove(max(parts, key=lambda p: p[0]))
            line = joined()
        return line

    def _set(self, content: Content) -> None:
        # Static.update re-renders the line; skip it when nothing changed (bytes over SSH).
        # The bar is one line high whatever it says: no layout needed.
        if content != self._shown:
            self._shown = content
            self.update(content, layout=False)

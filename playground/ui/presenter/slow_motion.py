"""Slow motion's state: playing or paused, the seconds per phase, the next phase.

Plain data (the presenter screen owns the timer): ``next_phase`` is what it sends when the
time comes, ``follow`` moves on with what a snapshot says happened. The seconds go up and
down a ladder (``SPEEDS``) with ``slower`` / ``faster``; any other value (a test's 0.05 s)
joins the ladder at the next rung either way (and stays at either end).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from playground.ui.presenter.phases import cycle, next_position

if TYPE_CHECKING:
    from playground.protocol import ActionName

SPEEDS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)  # seconds per phase
DEFAULT_SECONDS = 2.0


@dataclass
class SlowMotion:
    """One phase every ``seconds`` while ``playing``; ``position`` indexes ``cycle(k)``."""

    seconds: float = DEFAULT_SECONDS
    playing: bool = False
    position: int = 0
    k: int = 1  # the session's accumulation steps: backward passes per step
    why_paused: str = ""  # said on screen when it stopped by itself (a run, a failure)

    @property
    def phases(self) -> tuple[ActionName, ...]:
        return cycle(self.k)

    @property
    def next_phase(self) -> ActionName:
        return self.phases[min(self.position, len(self.phases) - 1)]

    @property
    def micro_batch(self) -> int:
        """Which of the K forward / backward pairs the next phase belongs to (1-based;
        0 for zero_grad and step)."""
        if self.position in (0, len(self.phases) - 1):
            return 0
        return (self.position + 1) // 2

    def follow(self, action: str | None, backwards: int, k: int) -> None:
        """A snapshot reports ``action``; .grad holds ``backwards`` passes; K is ``k``."""
        if k != self.k:
            self.k, self.position = k, 0
        if action is not None:
            self.position = next_position(self.position, action, backwards, self.k)

    def toggle(self) -> bool:
        self.playing = not self.playing
        self.why_paused = ""
        return self.playing

    def pause(self, why: str = "") -> None:
        if self.playing:
            self.playing, self.why_paused = False, why

    def slower(self) -> None:
        self.seconds = next((s for s in SPEEDS if s > self.seconds + 1e-9), self.seconds)

    def faster(self) -> None:
        self.seconds = next((s for s in reversed(SPEEDS) if s < self.seconds - 1e-9), self.seconds)

    @property
    def seconds_text(self) -> str:
        return f"{self.seconds:g} s"

"""What the UI and the training runner say to each other: typed commands and events.

Commands go from the UI to the runner thread (``Runner.submit``); events come back
through the ``publish`` callback. All are frozen dataclasses of plain data, so nothing
that crosses the thread boundary can be changed by the side that did not make it. The
runner owns the ``Status``: nothing else sets it.

Torch-free and textual-free: the UI imports this before its first frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from playground.training.coach import Explanation
    from playground.training.lab import LabToggles, LabView
    from playground.training.landscape_view import LandscapeRequest, LandscapeView
    from playground.training.snapshot import Snapshot

ActionName = Literal[
    "forward", "backward", "zero_grad", "zero_grad_none", "step", "train_step", "undo", "redo",
    "reset", "restore_best", "backward_again",
]  # fmt: skip
ACTIONS: tuple[ActionName, ...] = ActionName.__args__  # type: ignore[attr-defined]

# The session's keys, declared once: the TUI binds them, `playground run --actions` reads
# them (there "^y" stands for ctrl+y), the help screen lists them.
ACTION_KEYS: dict[str, tuple[ActionName, str]] = {
    "f": ("forward", "forward"),
    "b": ("backward", "backward"),
    "z": ("zero_grad", "zero_grad"),
    "Z": ("zero_grad_none", "zero_grad(set_to_none)"),
    "s": ("step", "step"),
    "n": ("train_step", "train step"),
    "u": ("undo", "undo"),
    "ctrl+y": ("redo", "redo"),
    "ctrl+r": ("reset", "reset"),
    "B": ("restore_best", "restore the best state (lowest validation loss)"),
    "A": ("backward_again", "backward again through the same graph (needs retain graph)"),
}
RUN_KEY = "r"  # run / pause


class Status(StrEnum):
    """What the runner is doing with the session, or how its last run ended."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    CONVERGED = "converged"
    DIVERGED = "diverged"
    MAX_STEPS = "max_steps"


# --- commands (UI -> runner) ------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """Base class of everything the UI can ask for."""


@dataclass(frozen=True)
class Load(Command):
    """Load a preset (by name or path) with setting overrides; undoable once a session
    exists (``undo`` returns to it)."""

    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Act(Command):
    """One session action: forward, backward, zero_grad, step, train_step, undo, redo, reset."""

    name: ActionName


@dataclass(frozen=True)
class Run(Command):
    """Start training (or pause, when ``toggle`` and already running)."""

    steps: int | None = None
    until_loss: float | None = None
    toggle: bool = True


@dataclass(frozen=True)
class Pause(Command):
    """Stop a run after the current slice."""


@dataclass(frozen=True)
class Configure(Command):
    """Change settings (lr, momentum, K, model ...); a bad value leaves the old one."""

    changes: dict[str, Any]


@dataclass(frozen=True)
class Export(Command):
    """Write the code (kind="script": a .py file; "notebook": an .ipynb) or the loss
    history (kind="csv") to ``path``."""

    path: str
    kind: Literal["script", "notebook", "csv"] = "script"


@dataclass(frozen=True)
class Save(Command):
    """Save the session to ``path`` (answered by ``Saved``); ``sidecar`` also writes the
    small JSON the next start reads to offer resuming it (the autosave)."""

    path: str
    sidecar: bool = False


@dataclass(frozen=True)
class Open(Command):
    """Continue with the session saved in ``path``: one undoable action when a session is
    open (``undo`` returns to it); a file that cannot be loaded changes nothing."""

    path: str


@dataclass(frozen=True)
class Recover(Command):
    """Carry on on another device (after a CUDA failure): move the session there, or, if
    the old device cannot be read any more, rebuild it from the last snapshot."""

    device: str = "cpu"


@dataclass(frozen=True)
class Predict(Command):
    """The model's output at the input ``at`` (one value per feature), next to the
    least-squares line's; answered by a ``Notice`` and the status bar's message."""

    at: tuple[float, ...]


@dataclass(frozen=True)
class Expect(Command):
    """A prediction for the next action ("w.grad = -174", or a number for the lesson's
    quantity): the explanation after it says how close it was."""

    text: str


@dataclass(frozen=True)
class StartLesson(Command):
    """Follow the preset's lesson ``name`` ("" = its first) from the current state;
    ``stop`` ends the lesson in hand instead."""

    name: str = ""
    stop: bool = False


@dataclass(frozen=True)
class Call(Command):
    """Run ``fn(session)`` on the runner thread, as one transaction (for tests and
    scripts); its return value comes back as ``Result``."""

    fn: Callable[[Any], Any]
    label: str = "call"


# the accumulation lab


@dataclass(frozen=True)
class ComputeLab(Command):
    """The accumulation lab for the current parameters and the next B*K samples, computed
    without changing the session; answered by ``LabComputed`` (twice when the ranks of the
    all-reduce must start first). ``k`` 0: the session's K (4 when that is 1); ``ranks``
    0: K (or a divisor of K up to 8)."""

    k: int = 0
    ranks: int = 0
    toggles: LabToggles | None = None


@dataclass(frozen=True)
class ExportDDP(Command):
    """Write the session's preset as a DDP training script for torchrun to ``path``."""

    path: str
    steps: int | None = None  # default: the max_steps setting


# the loss landscape


@dataclass(frozen=True)
class ComputeLandscape(Command):
    """Show the loss landscape as ``request`` asks (a new plane, window, race ...),
    computed without changing the session; answered by ``LandscapeComputed``, and again
    after every action and while running (the path grows) until ``CloseLandscape``."""

    request: LandscapeRequest


@dataclass(frozen=True)
class CloseLandscape(Command):
    """The landscape is no longer shown: stop keeping it up to date."""


@dataclass(frozen=True)
class SetParamsAt(Command):
    """Put the parameters at the point (x, y) of the landscape's plane: one undoable
    action (``Session.set_params``), so gradient descent starts from there."""

    x: float
    y: float
    plane: int = -1  # the view's plane_id (refused if the plane has moved since); -1: any


# --- events (runner -> UI) --------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Base class of everything the runner publishes."""


@dataclass(frozen=True)
class Ready(Event):
    """torch is imported; what devices this machine has."""

    torch_version: str
    devices: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class Published(Event):
    """A new snapshot (``seq`` increases by one with every command applied), with the
    runner's status and its one-line message for the status bar."""

    snapshot: Snapshot
    seq: int
    status: Status
    message: str = ""
    # what the action this snapshot follows did, in words (None while a run goes on)
    explanation: Explanation | None = None

    @property
    def running(self) -> bool:
        return self.status is Status.RUNNING


@dataclass(frozen=True)
class Failed(Event):
    """A command failed; the session is as it was before it."""

    command: str
    message: str
    details: str  # the traceback, for a "details" view
    device_failed: bool = False  # the accelerator failed: offer to continue on the CPU


@dataclass(frozen=True)
class Notice(Event):
    """A one-line message for the user (export written, nothing to undo, ...)."""

    message: str


@dataclass(frozen=True)
class Saved(Event):
    """What a ``Save`` did: the file written, or why it was not."""

    path: str
    error: str = ""


@dataclass(frozen=True)
class Result(Event):
    label: str
    value: Any


# the accumulation lab


@dataclass(frozen=True)
class LabComputed(Event):
    """The accumulation lab's numbers (``view.rank_note`` says when the all-reduce column
    is still to come, or why the ranks did not answer)."""

    view: LabView


@dataclass(frozen=True)
class LandscapeComputed(Event):
    """The loss landscape as the last ``ComputeLandscape`` asked, now."""

    view: LandscapeView


class RunnerHandle(Protocol):
    """What the app needs of the runner (``playground.runner.Runner``)."""

    def start(self) -> None: ...

    def submit(self, command: Command) -> None: ...

    def stop(self, timeout: float | None = 5.0, autosave: Path | None = None) -> bool: ...

    @property
    def alive(self) -> bool: ...


RunnerFactory = Callable[..., RunnerHandle]
"""``factory(publish, max_rate=..., device=...)``: how the app gets its runner."""

"""The runner thread: the only place tensors live while the app runs.

The UI puts ``Command`` objects on a thread-safe queue with ``submit``; one long-lived
thread takes them in order and applies each exactly once to the session, then publishes
an ``Event`` (a frozen dataclass of plain data) through the ``publish`` callback - in the
app that callback is ``post_message``, which is thread-safe. While running it trains in
slices of ~40 ms, publishing at most ``max_rate`` snapshots a second, and looks at the
queue between slices, so a pause lands within one slice.

This module imports neither textual nor (at import time) torch: ``import torch`` happens
on the runner thread, so the first frame never waits for it.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --- commands (UI -> runner) ------------------------------------------------------------

ACTIONS = (
    "forward",
    "backward",
    "zero_grad",
    "zero_grad_none",
    "step",
    "train_step",
    "undo",
    "reset",
)


@dataclass(frozen=True)
class Command:
    """Base class of everything the UI can ask for."""


@dataclass(frozen=True)
class Load(Command):
    """Load a preset (by name or path) with optional setting overrides; starts afresh."""

    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Act(Command):
    """One session action: forward, backward, zero_grad, step, train_step, undo, reset."""

    name: str


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
    """Write the transcript (kind="script") or the loss history (kind="csv") to ``path``."""

    path: str
    kind: str = "script"


@dataclass(frozen=True)
class Call(Command):
    """Run ``fn(session)`` on the runner thread (for save/load and tests); its return
    value comes back as ``Result``."""

    fn: Callable[[Any], Any]
    label: str = "call"


@dataclass(frozen=True)
class Recover(Command):
    """Carry on on another device (after a CUDA failure): move the session there, or, if
    the old device cannot be read any more, rebuild it from the last snapshot."""

    device: str = "cpu"


@dataclass(frozen=True)
class Resume(Command):
    """Replace the session with the one saved in ``path`` (``persist.save_session``); a
    file that cannot be loaded leaves the current session as it was."""

    path: str


@dataclass(frozen=True)
class Stop(Command):
    """End the thread."""


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
    """A new snapshot (``seq`` increases by one with every command applied)."""

    snapshot: Any  # playground.training.snapshot.Snapshot
    seq: int
    running: bool


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
class Result(Event):
    label: str
    value: Any


class Runner:
    """Owns the session on one thread. See the module docstring."""

    def __init__(
        self,
        publish: Callable[[Event], None],
        max_rate: float = 25.0,
        slice_s: float = 0.04,
        device: str | None = None,
    ) -> None:
        self._publish = publish
        self._queue: queue.Queue[Command] = queue.Queue()
        self._thread = threading.Thread(target=self._main, name="playground-runner", daemon=True)
        self.min_interval = 1.0 / max_rate
        self.slice_s = slice_s
        self.device = device
        self.session: Any = None  # touched only on the runner thread
        self.last_snapshot: Any = None  # the last one published (plain data)
        self.seq = 0
        self._running = False
        self._target: int | None = None
        self._until: float | None = None
        self._last_publish = 0.0
        self.applied = 0  # commands applied (for tests and the load benchmark)
        self._stopping = threading.Event()
        self._on_exit: Callable[[Any], Any] | None = None

    # --- UI side ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, command: Command) -> None:
        self._queue.put(command)

    def stop(self, timeout: float = 5.0, on_exit: Callable[[Any], Any] | None = None) -> None:
        """End the thread after the command in hand; queued commands are dropped.

        ``on_exit(session)`` runs on the runner thread just before it ends (an autosave,
        say); its failure is published as ``Failed`` and does not stop the shutdown.
        """
        self._on_exit = on_exit
        self._stopping.set()
        self._queue.put(Stop())  # wakes a thread waiting for a command
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- runner thread ------------------------------------------------------------------

    def _main(self) -> None:
        t0 = time.perf_counter()
        import torch  # the slow import, off the UI thread

        from playground.training.devices import available_devices

        # the first optimizer a process builds imports torch._dynamo (seconds): do it
        # now, under "loading torch...", not when the first preset loads
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)

        self._publish(
            Ready(torch.__version__, tuple(available_devices()), time.perf_counter() - t0)
        )
        while not self._stopping.is_set():
            if self._running:
                try:
                    cmd = self._queue.get_nowait()
                except queue.Empty:
                    self._train_slice()
                    continue
            else:
                cmd = self._queue.get()
            if isinstance(cmd, Stop) or self._stopping.is_set():
                break
            self._apply(cmd)
            self.applied += 1
        if self._on_exit is not None and self.session is not None:
            try:
                self._on_exit(self.session)
            except Exception as exc:  # noqa: BLE001 - reported; shutting down regardless
                self._fail("Stop", exc, False)

    def _apply(self, cmd: Command) -> None:
        from playground.training.recover import is_device_error
        from playground.training.state import restore, take

        before = None
        try:
            if self.session is not None and not isinstance(cmd, (Load, Recover, Resume)):
                before = take(self.session)
            self._dispatch(cmd)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none is fatal
            if before is not None:
                try:
                    restore(self.session, before)
                except Exception:  # noqa: BLE001 - a lost device: the last snapshot remains
                    pass
            self._running = False
            self._fail(type(cmd).__name__, exc, is_device_error(exc))
        if self.session is not None:
            self._emit_safely()

    def _emit_safely(self) -> None:
        try:
            self._emit()
        except Exception as exc:  # noqa: BLE001 - e.g. the device is gone: say so, keep going
            from playground.training.recover import is_device_error

            self._fail("Snapshot", exc, is_device_error(exc))

    def _dispatch(self, cmd: Command) -> None:
        s = self.session
        if isinstance(cmd, Load):
            from playground.training.presets import find_preset
            from playground.training.session import Session

            overrides = dict(cmd.overrides)
            if self.device and "device" not in overrides:
                overrides["device"] = self.device
            self._running = False
            self.session = Session(find_preset(cmd.preset), **overrides)
            return
        if isinstance(cmd, Resume):
            self._resume(cmd.path)
            return
        if s is None:
            raise RuntimeError("no preset loaded yet")
        if isinstance(cmd, Run):
            if self._running and cmd.toggle:
                self._pause()
                return
            self._running = True
            self._target = s.step_count + (cmd.steps or s.cfg.max_steps)
            self._until = cmd.until_loss if cmd.until_loss is not None else s.cfg.until_loss
            s.status, s.message = "running", ""
            return
        if isinstance(cmd, Pause):
            self._pause()
            return
        if isinstance(cmd, Recover):
            self._recover(cmd.device)
            return
        if self._running:
            self._pause()  # any other action first pauses the run, then applies
        if isinstance(cmd, Act):
            self._act(cmd.name)
        elif isinstance(cmd, Configure):
            s.configure(**cmd.changes)
        elif isinstance(cmd, Export):
            path = Path(cmd.path).expanduser()
            if cmd.kind == "csv":
                from playground.training.export import write_loss_csv

                write_loss_csv(s, path)
            else:
                s.export_script(path)
            self._publish(Notice(f"wrote {path}"))
        elif isinstance(cmd, Call):
            self._publish(Result(cmd.label, cmd.fn(s)))
        else:
            raise TypeError(f"unknown command {cmd!r}")

    def _act(self, name: str) -> None:
        s = self.session
        if name not in ACTIONS:
            raise ValueError(f"unknown action {name!r}")
        if name == "undo":
            if not s.undo():
                self._publish(Notice("nothing to undo"))
        elif name == "zero_grad_none":
            s.zero_grad(set_to_none=True)
        else:
            getattr(s, name)()
            if name in ("step", "train_step") or name == "reset":
                s.status, s.message = "idle", s.message if name != "reset" else ""

    def _resume(self, path: str) -> None:
        from playground.training.persist import load_session

        if self._running:
            self._pause()
        # load first: a bad file raises here, before the current session is touched
        session = load_session(Path(path).expanduser(), device=self.device)
        self.session = session
        self._publish(Notice(f"resumed {path} at step {session.step_count}"))

    def _recover(self, device: str) -> None:
        try:
            self.session.move_to(device)
            self._publish(Notice(f"moved the session to {device}"))
        except Exception:  # noqa: BLE001 - the device cannot be read: use the last snapshot
            from playground.training.recover import session_from_snapshot

            if self.last_snapshot is None:
                raise
            self.session = session_from_snapshot(self.session, self.last_snapshot, device)
            self._publish(Notice(f"continued on {device} from the last snapshot"))

    def _fail(self, command: str, exc: BaseException, device_failed: bool) -> None:
        message = _one_line(exc)
        if device_failed:
            message += " - the session can continue on the CPU (Recover)"
        self._publish(Failed(command, message, traceback.format_exc(), device_failed))

    def _pause(self) -> None:
        self._running = False
        if self.session is not None and self.session.status == "running":
            self.session.status = "paused"
            self.session.message = f"paused at step {self.session.step_count}"

    def _train_slice(self) -> None:
        from playground.training.state import restore, take

        s = self.session
        remaining = (self._target or 0) - s.step_count
        try:
            before = take(s)  # per ~40 ms slice: rolls a failed slice back whole
            result = s.run(remaining, self._until, time_budget=self.slice_s)
        except Exception as exc:  # noqa: BLE001
            from playground.training.recover import is_device_error

            self._running = False
            try:
                restore(s, before)
                s.status, s.message = "paused", f"stopped at step {s.step_count}: {_one_line(exc)}"
            except Exception:  # noqa: BLE001 - a lost device: the last snapshot remains
                pass
            self._fail("Run", exc, is_device_error(exc))
            self._emit_safely()
            return
        if result.reason == "budget":
            s.status = "running"
            now = time.perf_counter()
            if now - self._last_publish >= self.min_interval:
                self._emit_safely()
            return
        self._running = False
        if result.reason == "max_steps":
            s.status, s.message = "max_steps", f"reached step {s.step_count}"
        self._emit_safely()

    def _emit(self) -> None:
        snap = self.session.snapshot()
        self.seq += 1
        self._last_publish = time.perf_counter()
        self.last_snapshot = snap
        self._publish(Published(snap, self.seq, self._running))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")

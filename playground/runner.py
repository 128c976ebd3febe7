"""The runner thread: the only place the training tensors live while the app runs.

The UI ``submit``s commands (``playground.protocol``); this thread applies each exactly
once, in order, to the session, then publishes a ``Published`` snapshot with the status
and the status bar's message - the runner is their only owner. Every session action is
a transaction of its own (a failure changes nothing), so a failed command is reported as
``Failed`` and the next snapshot equals the one before it.

While running it trains in slices of ~40 ms (``Session.run_slice``), publishing at most
``max_rate`` snapshots a second, and looks at the queue between slices, so a pause lands
within one slice. The whole run is one undo entry however many slices it took.

No import of textual, and none of torch at import time: ``import torch`` happens on the
runner thread, so the first frame never waits for it.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playground.protocol import (
    Act,
    Call,
    CloseLandscape,
    Command,
    ComputeLab,
    ComputeLandscape,
    Configure,
    Event,
    Expect,
    Export,
    ExportDDP,
    Failed,
    LabComputed,
    LandscapeComputed,
    Load,
    Notice,
    Open,
    Pause,
    Predict,
    Published,
    Ready,
    Recover,
    Result,
    Run,
    Save,
    Saved,
    SetParamsAt,
    StartLesson,
    Status,
)
from playground.threads import CommandThread

SHUTDOWN_S = 120.0  # the most quitting waits for the command in hand and the save


class Runner(CommandThread):
    """Owns the session on one thread. See the module docstring."""

    name = "playground-runner"

    def __init__(
        self,
        publish: Callable[[Event], None],
        max_rate: float = 25.0,
        slice_s: float = 0.04,
        device: str | None = None,
    ) -> None:
        super().__init__(publish)
        self.min_interval = 1.0 / max_rate
        self.slice_s = slice_s
        self.device = device
        self.session: Any = None  # a training.session.Session; touched only on this thread
        self.last_snapshot: Any = None  # the last one published (plain data)
        self.seq = 0
        self.status = Status.IDLE
        self.message = ""
        self._last_publish = 0.0
        self._until: float | None = None  # the running run's loss tolerance
        self._autosave: Path | None = None
        # narration, warnings, predictions and lessons (training.coach.Coach, plain data)
        self.coach: Any = None
        self._explain: tuple[str, str, str] | None = None  # (action, detail, outcome) to tell
        self.rank_pool: Any = None  # the accumulation lab's ranks (rank_pool.RankPool)
        self.landscape: Any = None  # the loss landscape shown (training.landscape.Watch)
        self._landscape_at = 0.0  # when it was last published
        self.final_save: Saved | None = None  # the save made as the thread stopped

    def stop(self, timeout: float | None = SHUTDOWN_S, autosave: Path | None = None) -> bool:
        """End the thread after the command in hand (queued commands are dropped, a run
        stops at its slice); with ``autosave``, save the session there (and its sidecar)
        first, on this thread. Waits for that (at most ``timeout``): a process that ends
        while torch is inside a command aborts."""
        self._autosave = autosave
        return super().stop(timeout)

    # --- the thread ---------------------------------------------------------------------

    def setup(self) -> None:
        t0 = time.perf_counter()
        import torch  # the slow import, off the UI thread

        # one core stays the UI thread's: torch's intra-op threads spin on every core,
        # and on 2 cores the UI thread's turns then cost the run half its speed (xor
        # with the app attached: 0.35x of the bare loop with 2 threads, 0.78x with 1)
        cores = os.cpu_count() or 1
        if cores > 1 and torch.get_num_threads() >= cores:
            torch.set_num_threads(cores - 1)

        from playground.training.devices import available_devices

        # the first optimizer a process builds imports torch._dynamo (seconds): do it
        # now, under "loading torch...", not when the first preset loads
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        self.publish(Ready(torch.__version__, tuple(available_devices()), time.perf_counter() - t0))

    def busy(self) -> bool:
        return self.session is not None and self.session.running

    def background(self) -> None:
        self._train_slice()

    def teardown(self) -> None:
        if self._autosave is not None and self.session is not None:
            # kept: once the app has gone, the command line says what became of it
            self.final_save = self._save(self._autosave, sidecar=True)
            self.publish(self.final_save)
        if self.rank_pool is not None:  # the accumulation lab's ranks end with the runner
            self.rank_pool.stop()

    def apply(self, command: Any) -> None:
        self._explain = None
        try:
            self._dispatch(command)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none is fatal
            self._fail(type(command).__name__, exc)
        if self.session is not None:
            self._emit_safely()

    # --- commands -----------------------------------------------------------------------

    def _dispatch(self, cmd: Command) -> None:
        if isinstance(cmd, Load):
            self._load(cmd)
            return
        if isinstance(cmd, Open):
            self._open(cmd.path)
            return
        s = self.session
        if s is None:
            raise RuntimeError("no preset loaded yet")
        if isinstance(cmd, Run):
            if s.running and cmd.toggle:
                self._pause()
            elif not s.running:
                s.begin_run(cmd.steps, cmd.until_loss)
                self._until = cmd.until_loss if cmd.until_loss is not None else s.cfg.until_loss
                self._set(Status.RUNNING)
            return
        if isinstance(cmd, Pause):
            self._pause()
            return
        if isinstance(cmd, Recover):
            self._recover(cmd.device)
            return
        if isinstance(cmd, Save):
            self.publish(self._save(Path(cmd.path).expanduser(), cmd.sidecar))
            return
        if isinstance(cmd, Export):
            self._export(cmd)
            return
        if isinstance(cmd, Expect):  # a prediction for the next action: no pause
            said = self._coach().expect(cmd.text)
            self.publish(Notice(said))
            self._set(self.status, said)
            return
        if isinstance(cmd, StartLesson):
            self._lesson(cmd)
            return
        if isinstance(cmd, Predict):  # reads the session, changes nothing: no pause
            said = s.predict(cmd.at).said()
            self.publish(Notice(said))
            self._set(self.status, said)
            return
        if isinstance(cmd, ComputeLab):  # reads the session, changes nothing: no pause
            self._lab(cmd)
            return
        if isinstance(cmd, ExportDDP):
            self._export_ddp(cmd)
            return
        if isinstance(cmd, ComputeLandscape):  # reads the session, changes nothing: no pause
            self._landscape(cmd)
            return
        if isinstance(cmd, CloseLandscape):
            self.landscape = None
            return
        self._pause()  # any other action first pauses the run, then applies
        self._follow_pause()
        if isinstance(cmd, Act):
            self._act(cmd.name)
        elif isinstance(cmd, Configure):
            self._configure(cmd.changes)
        elif isinstance(cmd, Call):
            with s.transaction():
                value = cmd.fn(s)
            self.publish(Result(cmd.label, value))
        elif isinstance(cmd, SetParamsAt):
            self._set_params_at(cmd)
        else:
            raise TypeError(f"unknown command {cmd!r}")

    def _load(self, cmd: Load) -> None:
        from playground.training.presets import find_preset

        overrides = dict(cmd.overrides)
        if self.device and "device" not in overrides:
            overrides["device"] = self.device
        preset = find_preset(cmd.preset)  # a bad name raises here, before anything changes
        if self.session is None:
            from playground.training.session import Session

            self.session = Session(preset, **overrides)
            self._set(Status.IDLE, self._initial())
            self._tell("load")
            return
        self._pause()
        self.session.load(preset, **overrides)
        self._set(Status.IDLE, f"{self._initial()} (u: back to {self._undo_target()})")
        self._tell("load")

    def _initial(self) -> str:
        """What the exercises print before training: the loss at the initial parameters."""
        return f"initial train loss {self.session.split_loss('train'):.4g}"

    def _undo_target(self) -> str:
        entry = self.session.undo_stack.peek()
        return f"step {entry.state.progress.step} of {entry.state.build.preset.name}"

    def _open(self, path: str) -> None:
        from playground.training.persist import load_session

        # load first: a bad file raises here, before the current session is touched
        notes: list[str] = []  # e.g. its preset changed since it was saved
        loaded = load_session(Path(path).expanduser(), device=self.device, notes=notes)
        for note in notes:
            self.publish(Notice(note))
        said = f"resumed {path} at step {loaded.step_count}"
        if self.session is None:
            self.session = loaded
        else:
            self._pause()
            self.session.adopt(loaded, f"open {Path(path).name}")
            said += " (u returns to the session you had)"
        self.publish(Notice(said))
        self._set(Status.IDLE, said)
        self._tell("open")

    def _act(self, name: str) -> None:
        from playground.protocol import ACTIONS

        s = self.session
        if name not in ACTIONS:
            raise ValueError(f"unknown action {name!r}")
        if name in ("undo", "redo"):
            entry = s.undo() if name == "undo" else s.redo()
            if entry is None:
                self.publish(Notice(f"nothing to {name}"))
                return
            if name == "undo":
                where = f"back at step {s.step_count}" + (f", {entry.note}" if entry.note else "")
                self._set(Status.IDLE, f"undid {entry.label}: {where}")
            else:
                self._set(Status.IDLE, f"redid {entry.label}: at step {s.step_count}")
            self._tell(name, entry.label)
            return
        if name == "zero_grad_none":
            s.zero_grad(set_to_none=True)
        elif name == "restore_best":
            epoch = s.restore_best()
            self._set(Status.IDLE, f"restored the best state: epoch {epoch} (u takes it back)")
            self._tell(name)
            return
        else:
            loss = getattr(s, name)()
            if isinstance(loss, float) and not math.isfinite(loss):  # one step diverges too
                said = f"{name.replace('_', ' ')}: the loss is {loss} (lr too large?); u goes back"
                self._set(Status.DIVERGED, said)
                self._tell(name)
                return
        self._set(Status.IDLE)
        self._tell(name)

    def _configure(self, changes: dict[str, Any]) -> None:
        from playground.training.config import REBUILD

        effect = self.session.configure(**changes)
        self._tell("configure")
        said = ", ".join(f"{k} = {v}" for k, v in changes.items())
        if effect == REBUILD:
            self._set(Status.IDLE, f"{said}: training restarted from the seed (u takes it back)")
        else:
            self._set(Status.IDLE, f"{said}: in force from the next action")

    def _export(self, cmd: Export) -> None:
        path = Path(cmd.path).expanduser()
        s = self.session
        {"csv": s.export_loss_csv, "notebook": s.export_notebook, "script": s.export_script}[
            cmd.kind
        ](path)
        self.publish(Notice(f"wrote {path}"))

    def _lab(self, cmd: ComputeLab) -> None:
        """The accumulation lab, computed on copies; its all-reduce column by real ranks
        (the pool is started on first use, kept, and stopped in ``teardown``)."""
        from playground.training.accumulation import lab_views
        from playground.training.rank_pool import RankPool

        if self.rank_pool is None:
            cuda = self.session.device.type == "cuda"
            self.rank_pool = RankPool(device="auto" if cuda else "cpu")
        for view in lab_views(self.session, self.rank_pool, cmd.k, cmd.toggles, cmd.ranks):
            self.publish(LabComputed(view))

    def _landscape(self, cmd: ComputeLandscape) -> None:
        """Show the landscape ``cmd`` asks for; a request that fails keeps the old one."""
        from playground.training.landscape import Watch

        old = self.landscape.request if self.landscape is not None else None
        watch = self.landscape or Watch(cmd.request)
        watch.change(cmd.request)
        try:
            view = watch.update(self.session, self.session.running, force=True)
        except Exception:
            if old is not None:
                watch.change(old)
            raise
        self.landscape, self._landscape_at = watch, time.perf_counter()
        self.publish(LandscapeComputed(view))

    def _landscape_update(self) -> None:
        """The landscape after an action or a slice of a run (a few times a second while
        running: each view costs the UI a redraw), when it shows something new."""
        watch, s = self.landscape, self.session
        now = time.perf_counter()
        if watch is None or (s.running and now - self._landscape_at < LANDSCAPE_INTERVAL):
            return
        try:
            view = watch.update(s, s.running)
        except Exception as exc:  # noqa: BLE001 - the landscape closes, the session goes on
            self.landscape = None
            self._fail("Landscape", exc)
            return
        if view is not None:
            self._landscape_at = now
            self.publish(LandscapeComputed(view))

    def _set_params_at(self, cmd: SetParamsAt) -> None:
        if self.landscape is None:
            raise RuntimeError("set parameters: no loss landscape is shown (v shows it)")
        x, y = self.landscape.request_labels()
        self.session.set_params(
            self.landscape.values_at(cmd.x, cmd.y, cmd.plane),
            why=f"picked on the loss landscape: {x} = {cmd.x:.6g}, {y} = {cmd.y:.6g}",
        )
        said = f"parameters set: {x} = {cmd.x:.4g}, {y} = {cmd.y:.4g} (u takes it back)"
        self._set(Status.IDLE, said)

    def _export_ddp(self, cmd: ExportDDP) -> None:
        from playground.training.ddp import Job, script_for

        s = self.session
        from playground.files import write_atomic

        path = Path(cmd.path).expanduser()
        write_atomic(path, script_for(Job(s.preset, s.cfg, cmd.steps or s.cfg.max_steps, 1)))
        self.publish(
            Notice(f"wrote {path} (from the seed): torchrun --nproc-per-node N {path.name}")
        )

    def _save(self, path: Path, sidecar: bool) -> Saved:
        """Save the session; errors come back in ``Saved.error`` (a bad path is the user's
        to fix, not a crash)."""
        from playground.training.persist import SessionFileError, save_session
        from playground.training.sidecar import write_sidecar

        s = self.session
        try:
            written = save_session(s, path)
            if sidecar:
                write_sidecar(written, s.preset.name, s.preset.title, s.step_count)
        except (SessionFileError, OSError, ValueError, RuntimeError) as exc:  # said, not raised
            return Saved(str(path), f"{type(exc).__name__}: {exc}")
        return Saved(str(written))

    def _recover(self, device: str) -> None:
        try:
            self.session.move_to(device)
            self.publish(Notice(f"moved the session to {device}"))
        except Exception:  # noqa: BLE001 - the device cannot be read: use the last snapshot
            from playground.training.recover import session_from_snapshot

            if self.last_snapshot is None:
                raise
            s = self.session
            self.session = session_from_snapshot(s.preset, s.cfg, self.last_snapshot, device)
            self.publish(Notice(f"continued on {device} from the last snapshot"))
        self._set(Status.IDLE)

    # --- running ------------------------------------------------------------------------

    def _pause(self) -> None:
        s = self.session
        if s is not None and s.running:
            s.end_run()
            self._set(Status.PAUSED, f"paused at step {s.step_count}")
            self._tell("run", self.message, "paused")

    def _train_slice(self) -> None:
        from playground.training.runs import StopReason, describe

        s = self.session
        try:
            result = s.run_slice(self.slice_s)
        except Exception as exc:  # noqa: BLE001 - the slice was taken back, the run ended
            self._set(Status.PAUSED, f"stopped at step {s.step_count}: {_one_line(exc)}")
            self._fail("Run", exc)
            self._emit_safely()
            return
        if result.reason is StopReason.BUDGET:
            if time.perf_counter() - self._last_publish >= self.min_interval:
                self._emit_safely()
            return
        status = {
            StopReason.CONVERGED: Status.CONVERGED,
            StopReason.DIVERGED: Status.DIVERGED,
        }.get(result.reason, Status.MAX_STEPS)
        message = describe(result, self._until)
        if result.finite_step is not None:
            message += " (u goes back to it)"
        test = s.split_loss("test") if result.reason is not StopReason.DIVERGED else None
        if test is not None:  # the held-out split, looked at once training is done
            message += f"; test loss {test:.4g}"
        self._set(status, message)
        self._tell("run", message, str(result.reason))
        self._emit_safely()

    # --- publishing ---------------------------------------------------------------------

    def _set(self, status: Status, message: str = "") -> None:
        self.status, self.message = status, message

    def _fail(self, command: str, exc: BaseException) -> None:
        from playground.training.recover import is_device_error

        device_failed = is_device_error(exc)
        message = _one_line(exc)
        if device_failed:
            message += " - the session can continue on the CPU (Recover)"
        self.publish(Failed(command, message, traceback.format_exc(), device_failed))

    def _tell(self, action: str, detail: str = "", outcome: str = "") -> None:
        """Explain ``action`` with the snapshot published after it."""
        self._explain = (action, detail, outcome)

    def _follow_pause(self) -> None:
        """A run paused by another action: the coach follows the run to where it ended
        (its own words give way to the action's)."""
        if self._explain is not None:
            try:
                self._explained(self.session.snapshot())
            except Exception:  # noqa: BLE001 - the action's own snapshot will say it
                self._explain = None

    def _coach(self) -> Any:
        if self.coach is None:
            from playground.training.coach import Coach

            self.coach = Coach()
        return self.coach

    def _lesson(self, cmd: StartLesson) -> None:
        coach = self._coach()
        if cmd.stop:
            coach.stop_lesson()
            self._set(self.status, "lesson ended")
            self._tell("lesson")
            return
        self._pause()
        self._follow_pause()
        lesson = self.session.preset.lesson(cmd.name)  # a ValueError names the lessons there are
        snap = self.session.snapshot()
        coach.seen(snap)
        coach.start_lesson(lesson, snap)
        self._set(Status.IDLE, f"lesson: {lesson.title}")
        self._tell("lesson")

    def _explained(self, snap: Any) -> Any:
        """The coach's explanation of the action this snapshot follows (None for the
        snapshots of a run going on, and when the coach fails: words never cost a step)."""
        self._coach()
        told, self._explain = self._explain, None
        try:
            if told is None:
                if not self.session.running:
                    self.coach.seen(snap)
                return None
            return self.coach.after(told[0], snap, told[1], told[2])
        except Exception as exc:  # noqa: BLE001 - a bug in the words, not in the training
            self.publish(Notice(f"no explanation: {_one_line(exc)}"))
            return None

    def _emit_safely(self) -> None:
        try:
            snap = self.session.snapshot()
        except Exception as exc:  # noqa: BLE001 - e.g. the device is gone: say so, keep going
            self._fail("Snapshot", exc)
            return
        self.seq += 1
        self._last_publish = time.perf_counter()
        self.last_snapshot = snap
        explanation = self._explained(snap)
        self.publish(Published(snap, self.seq, self.status, self.message, explanation))
        self._landscape_update()


LANDSCAPE_INTERVAL = 0.5  # seconds between two landscapes published while running


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")

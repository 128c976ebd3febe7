"""The Textual app: owns the runner thread and turns its events into screen updates.

The runner holds the session and every tensor on its own thread; the app only submits
commands (``playground.protocol``) and receives events through ``post_message``, so the UI
thread never imports torch or waits on it. The runner and the autograd explorer's worker
come from factories (``playground.tui`` wires them), so nothing here imports them. What
the user sees lives in ``MainScreen``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual import on
from textual.app import App
from textual.binding import Binding

from playground.explorer.protocol import ExplorerFactory
from playground.paths import (
    adopt_autosave,
    default_autosave,
    release_autosave,
    state_dir,
    theme_path,
)
from playground.protocol import (
    Act,
    Command,
    Export,
    Failed,
    LabComputed,
    LandscapeComputed,
    Load,
    Notice,
    Open,
    Published,
    Ready,
    Recover,
    RunnerFactory,
    Save,
    Saved,
    Status,
)
from playground.training.sidecar import resume_list
from playground.ui.commands import PlaygroundCommands, remember_theme, restore_theme
from playground.ui.dialogs.error_screen import ErrorScreen
from playground.ui.dialogs.export_dialog import ExportDialog
from playground.ui.dialogs.help_screen import HelpScreen
from playground.ui.dialogs.path_prompt import PathPrompt
from playground.ui.dialogs.preset_picker import PresetPicker
from playground.ui.dialogs.resume_offer import ResumeOffer
from playground.ui.messages import RunnerEvent, SnapshotReady, wrap
from playground.ui.presenter.theme import THEME as PRESENTER_THEME
from playground.ui.quitting import QuitSave
from playground.ui.training.fallback import FALLBACK_DEVICE, device_unavailable
from playground.ui.training.main_screen import MainScreen
from playground.ui.training.questions import quit_question
from playground.ui.training.unsaved import UnsavedWork
from playground.ui.training.wording import failure_title, status_word

SESSION_ACTIONS = ("save", "open", "export_csv")  # keys for the main screen only
EXPORTS = {"script": ".py", "notebook": ".ipynb", "csv": "_loss.csv"}  # kind -> file suffix


def file_stem(preset: str) -> str:
    """``playground_<preset>`` with anything but letters and digits as ``_``."""
    return "playground_" + "".join(c if c.isalnum() else "_" for c in preset)


class PlaygroundApp(App[None]):
    """Gradient descent, one PyTorch call at a time."""

    CSS_PATH = "app.tcss"
    TITLE = "playground"
    COMMANDS = App.COMMANDS | {PlaygroundCommands}  # ctrl+p: every key, preset and theme
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help"),
        # in the help screen, not the footer: at 80 columns it is full already
        Binding("ctrl+s", "save", "save the session to a file", show=False),
        Binding("ctrl+o", "open", "open a saved session", show=False),
        Binding("ctrl+e", "export_csv", "export the loss history (.csv)", show=False),
    ]

    def __init__(
        self,
        preset: str | None = None,
        *,
        device: str = "auto",
        seed: int | None = None,
        overrides: dict[str, Any] | None = None,
        resume: str | None = None,
        fps: float | None = None,
        export_dir: str | Path | None = None,
        autosave: bool | str | Path = False,
        runner_factory: RunnerFactory,
        explorer_factory: ExplorerFactory | None = None,
        presenter: bool = False,
    ) -> None:
        """``autosave``: True saves to the per-user state directory on quit (the CLI's
        choice; ``PLAYGROUND_NO_AUTOSAVE=1`` turns it off), a path saves there, False
        (the default, for tests and embedding) neither saves nor offers to resume.
        ``runner_factory(publish, max_rate=, device=)`` makes the training runner and
        ``explorer_factory(publish)`` the autograd explorer's worker (``playground.tui``).
        ``presenter``: start in presenter mode (``P`` toggles it)."""
        super().__init__()
        self.preset = preset
        self.device = device
        self.overrides = dict(overrides or {})
        if seed is not None:
            self.overrides["seed"] = seed
        self.resume = resume
        self.export_dir = Path(export_dir) if export_dir is not None else None
        self.runner = runner_factory(
            self._publish, max_rate=fps or 25.0, device=None if device == "auto" else device
        )
        self.explorer_factory = explorer_factory
        self.snapshot: Any = None  # the newest Snapshot (plain data; for the screen and tests)
        self.seq = 0
        self.status = Status.IDLE  # the runner's, from the newest Published
        self.message = ""
        self.ready: Ready | None = None
        self.last_failure: Failed | None = None
        self.notices: list[str] = []  # every Notice and Failed message, for tests
        self.can_recover = False  # the accelerator failed: `c` carries on on the CPU
        self.can_fall_back = False  # the device asked for is not here: `c` loads on the CPU
        self.fallback: str | None = None  # the device every Load asks for since then
        self.last_act: str | None = None  # the last session action sent (for "backward failed")
        self.work = UnsavedWork()  # quitting asks first when it says so (autosave off)
        self.quitting = QuitSave()  # with an autosave: saved first, quit once saved
        if autosave is True:
            self.autosave = default_autosave()
        else:
            self.autosave = Path(autosave).expanduser() if autosave else None
        self.session_file: str | None = None  # the last file saved or opened (ctrl+s/o)
        # the palette's theme, remembered like the autosave: for the CLI, not for tests
        self.theme_file = theme_path() if autosave is True else None
        self.presenter = presenter  # open the presenter screen at the start
        self.presenting = False  # it is up: its theme is the room's, not remembered
        self.register_theme(PRESENTER_THEME)
        restore_theme(self, self.theme_file)

    def watch_theme(self, name: str) -> None:
        if not self.presenting:
            remember_theme(self.theme_file, name)

    def get_default_screen(self) -> MainScreen:
        return MainScreen()

    @property
    def main(self) -> MainScreen:
        return self.screen_stack[0]  # type: ignore[return-value]

    @property
    def attached(self) -> bool:
        """The main screen exists (events can arrive while the app shuts down)."""
        return bool(self.screen_stack) and not self._exit and self.is_running

    # --- the runner --------------------------------------------------------------------

    def _publish(self, event: Any) -> None:
        """Called on the runner thread: only post a message (thread-safe), touch nothing."""
        self.post_message(wrap(event))

    def on_ready(self) -> None:
        # after the first frame: the screen exists to receive events, and shows
        # "loading torch..." while the runner imports it
        self.runner.start()
        if self.presenter:
            self.action_presenter()
        if self.resume:
            self.session_file = self.resume
            self.submit(Open(self.resume))
        elif self.preset is not None:
            self.submit(Load(self.preset, self.overrides))
        elif self.autosave is not None and (infos := resume_list(self.autosave)):
            self.push_screen(ResumeOffer(infos), self._answer_offer)
        else:
            self.push_screen(PresetPicker(), self._first_preset)

    def _answer_offer(self, chosen: Path | None) -> None:
        if chosen is not None:  # that autosave is this instance's own from now on
            self.autosave = adopt_autosave(self.autosave, chosen)
            self.submit(Open(str(chosen)))
        else:
            self.push_screen(PresetPicker(), self._first_preset)

    def _first_preset(self, name: str | None) -> None:
        if name is None:  # cancelled: nothing is loaded behind the user's back
            self.main.show_loading("no preset loaded\n\np: choose a preset    q: quit")
            return
        self.preset = name
        self.submit(Load(name, {**self.overrides, **self._device_choice()}))

    def _device_choice(self) -> dict[str, Any]:
        return {"device": self.fallback} if self.fallback else {}

    def submit(self, command: Command) -> None:
        if isinstance(command, Act):
            self.last_act = command.name
        elif isinstance(command, Open):
            self.work.opening(command.path)
        self.runner.submit(command)

    async def on_unmount(self) -> None:
        # Stop jumps the queue; the autosave runs on the runner thread after the command
        # in hand, so quitting stays quick with a thousand commands still queued
        crashed = self.return_code not in (None, 0)
        self.runner.stop(autosave=self.quitting.at_exit(self.autosave, crashed))
        release_autosave(self.autosave)

    @property
    def running(self) -> bool:
        return self.status is Status.RUNNING

    @on(SnapshotReady)
    def _snapshot(self, message: SnapshotReady) -> None:
        ev: Published = message.event
        if not self.attached:
            return
        before = self.status
        self.work.published(self.snapshot, ev.snapshot)
        self.snapshot, self.seq, self.status, self.message = (
            ev.snapshot,
            ev.seq,
            ev.status,
            ev.message,
        )
        self.main.apply(ev)
        if len(self.screen_stack) > 1:  # the presenter follows the session too
            from playground.ui.presenter.screen import PresenterScreen

            for screen in self.screen_stack:
                if isinstance(screen, PresenterScreen):
                    screen.apply(ev)
        if ev.status != before and ev.status in (Status.DIVERGED, Status.CONVERGED):
            diverged = ev.status is Status.DIVERGED
            self.notify(
                ev.message,
                title=status_word(ev.status),
                severity="error" if diverged else "information",
                timeout=8 if diverged else 4,
                markup=False,
            )

    @on(RunnerEvent)
    def _event(self, message: RunnerEvent) -> None:
        ev = message.event
        if not self.attached:
            return
        if isinstance(ev, Ready):
            self.ready = ev
            self.main.set_devices(ev.devices)
            if self.snapshot is None:
                self.main.show_loading("torch ready, loading the preset...")
        elif isinstance(ev, Notice):
            self.notices.append(ev.message)
            self.notify(ev.message, markup=False)  # paths and messages may hold [ ]
        elif isinstance(ev, Failed):
            self.last_failure = ev
            self.notices.append(ev.message)
            if ev.command == "Open":
                self.work.open_failed()
            self.can_recover = ev.device_failed
            # a device that is not here fails every preset alike: offer the CPU (`c`)
            self.can_fall_back = (
                ev.command in ("Load", "Open")
                and self.snapshot is None
                and self.ready is not None
                and device_unavailable(self.device, self.ready.devices)
            )
            if ev.command == "Configure":
                self.main.show_field_error(ev.message)
            elif ev.command in ("Load", "Open") and self.snapshot is None:
                offer = "c: load it on the CPU    " if self.can_fall_back else ""
                self.main.show_loading(f"{ev.message}\n\n{offer}p: choose a preset    q: quit")
            if ev.device_failed or self.can_fall_back:
                hint = "t: details, c: continue on the CPU"
            else:
                hint = "t: details"
            self.notify(
                f"{ev.message}\n({hint})",
                title=failure_title(ev.command, self.last_act),
                severity="error",
                timeout=8,
                markup=False,
            )
        elif isinstance(ev, Saved):
            self._saved(ev)
        elif isinstance(ev, LabComputed):  # to the accumulation lab, if it is open
            from playground.ui.training.lab_screen import LabScreen

            for screen in self.screen_stack:
                if isinstance(screen, LabScreen):
                    screen.show_view(ev.view)
        elif isinstance(ev, LandscapeComputed):  # to the loss landscape, if it is open
            from playground.ui.training.landscape_screen import LandscapeScreen

            for screen in self.screen_stack:
                if isinstance(screen, LandscapeScreen):
                    screen.show_view(ev.view)

    # --- actions that leave the main screen ------------------------------------------

    def action_presets(self) -> None:
        current = self.snapshot.preset if self.snapshot is not None else self.preset

        def load(name: str | None) -> None:
            if name is not None:
                self.preset = name
                self.submit(Load(name, self._device_choice()))

        self.push_screen(PresetPicker(current), load)

    def action_export(self) -> None:
        if self.snapshot is None:
            self.notify("nothing to export yet", severity="warning")
            return
        paths = {kind: str(self._default_file(suffix)) for kind, suffix in EXPORTS.items()}

        def chosen(kind: str | None) -> None:
            if kind is not None:
                self.submit(Export(paths[kind], kind=kind))  # type: ignore[arg-type]

        self.push_screen(ExportDialog(paths), chosen)

    def action_export_csv(self) -> None:
        if self.snapshot is None:
            self.notify("nothing to export yet", severity="warning")
            return
        self.submit(Export(str(self._default_file(EXPORTS["csv"])), kind="csv"))

    def _default_file(self, suffix: str) -> Path:
        preset = self.snapshot.preset if self.snapshot is not None else self.preset or "session"
        return (self.export_dir or Path.cwd()) / f"{file_stem(preset)}{suffix}"

    # --- session files (ctrl+s, ctrl+o) ----------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in SESSION_ACTIONS:  # like the session keys: not while a screen is on top
            return bool(self.screen_stack) and self.screen is self.main
        return True

    def action_save(self) -> None:
        if self.snapshot is None:
            self.notify("nothing to save yet", severity="warning")
            return
        default = self.session_file or f"./{file_stem(self.snapshot.preset)}.npz"
        self.push_screen(PathPrompt("Save the session to", default, "save"), self._save_to)

    def _save_to(self, path: str | None) -> None:
        if path:
            self.session_file = path
            self.submit(Save(str(Path(path).expanduser().absolute())))

    def _saved(self, saved: Saved) -> None:
        if self.quitting.saved(self, saved):  # the autosave before quitting
            return
        if not saved.error:
            self.work.saved(self.snapshot)
        if saved.error:
            self.notices.append(saved.error)
            self.notify(saved.error, title="save failed", severity="error", timeout=8, markup=False)
        else:
            self.notices.append(f"saved {saved.path}")
            self.notify(f"saved {saved.path}", markup=False)

    def action_open(self) -> None:
        preset = self.snapshot.preset if self.snapshot is not None else self.preset or "session"
        default = self.session_file or f"./{file_stem(preset)}.npz"
        prompt = PathPrompt("Open a saved session (u returns to this one)", default, "open")
        self.push_screen(prompt, self._open)

    def _open(self, path: str | None) -> None:
        if path:
            self.session_file = path
            self.submit(Open(str(Path(path).expanduser().absolute())))

    def action_grad(self) -> None:
        try:
            from playground.ui.explorer.grad_screen import GradScreen
        except ImportError:
            self.notify("the autograd explorer is not available", severity="warning")
            return
        self.push_screen(GradScreen(self.explorer_factory))

    def action_presenter(self) -> None:
        """P: presenter mode (large type, a phase banner, slow motion), or back from it."""
        from playground.ui.presenter.screen import PresenterScreen

        if isinstance(self.screen, PresenterScreen):
            self.screen.dismiss(None)
        elif self.screen is self.main:
            self.push_screen(PresenterScreen())

    def action_recover(self) -> None:
        if self.can_fall_back:
            self.fall_back(FALLBACK_DEVICE)
            return
        if not self.can_recover:
            self.notify("nothing to recover from: the device is fine")
            return
        self.can_recover = False
        self.submit(Recover("cpu"))

    def fall_back(self, device: str) -> None:
        """Load the preset on ``device`` (the one asked for is not here), and every later
        preset too."""
        self.can_fall_back = False
        self.fallback = device
        if self.preset is None:
            self.action_presets()
            return
        self.main.show_loading(f"loading {self.preset} on the {device}...")
        self.submit(Load(self.preset, {**self.overrides, "device": device}))

    async def action_quit(self) -> None:
        """q: on a screen above the main one, close that screen; on the main one, quit -
        asking first when the session changed since it was saved and no autosave keeps it."""
        if len(self.screen_stack) > 1:
            self.screen.dismiss(None)
            return
        if self.quitting.save_first(self):  # quits once the autosave is written
            return
        if self.autosave is not None or not self.work.unsaved(self.snapshot):
            self.exit()
            return
        self.push_screen(quit_question(self.snapshot), lambda yes: self.exit() if yes else None)

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        # Textual's default is ~/Downloads, which a server account often lacks: the
        # working directory (the state directory when that is read-only); the toast
        # that follows names the file
        if path is None:
            where = self.export_dir or Path.cwd()
            path = str(where if os.access(where, os.W_OK) else state_dir())
            Path(path).mkdir(parents=True, exist_ok=True)
        return super().deliver_screenshot(filename, path, time_format)

    def action_traceback(self) -> None:
        if self.last_failure is None:
            self.notify("no errors so far")
            return
        self.push_screen(ErrorScreen(self.last_failure))

    def action_help(self) -> None:
        keys: list[tuple[str, str]] = []
        for screen in (self.main, self):
            for binding in screen.BINDINGS:
                assert isinstance(binding, Binding)
                key = binding.key.replace("question_mark", "?")
                if all(key != k for k, _ in keys):  # the main screen's own first
                    keys.append((key, binding.description))
        self.push_screen(HelpScreen(keys))

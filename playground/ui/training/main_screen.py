"""The main screen: action buttons, the panels, the status bar and the session keys.

Panels are one set of widgets in ``#panels``, laid out by the terminal's size (``layout``):
from 110x34 all of them in a grid; from 100x30 (``-middle``) parameters and loss side by
side and one more panel below them, chosen with the tab bar; smaller (``-compact``) one
panel at a time, so 80x24 stays readable. Switching is a CSS class, not a rebuild, so
resizing never loses state.

The session keys live here rather than on the app so that they are inactive while another
screen (presets, help, the autograd explorer) is on top.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, Tab, Tabs
from textual.widgets._tabs import Underline

from playground.protocol import ACTION_KEYS, RUN_KEY, Act, Configure, Predict, Published, Run
from playground.training.config import REBUILD, effect_of
from playground.ui.training.action_bar import ActionBar
from playground.ui.training.coaching import Coaching
from playground.ui.training.code_panel import CodePanel
from playground.ui.training.explain_panel import ExplainPanel
from playground.ui.training.hyperparams import Hyperparams
from playground.ui.training.layout import (
    GRID_ORDER,
    PANELS,
    Arrangement,
    header_title,
)
from playground.ui.training.optimizer_panel import OptimizerPanel
from playground.ui.training.params_table import ParamsTable
from playground.ui.training.questions import restart_question
from playground.ui.training.status_bar import StatusBar
from playground.ui.training.tensor_detail import TensorDetail

if TYPE_CHECKING:
    from playground.training.snapshot import Snapshot
    from playground.ui.training.fit_plot import FitPlot
    from playground.ui.training.loss_plot import LossPlot

# While running: the least time between two redraws of a panel, in seconds. The loss
# curve is what the eye follows; the fit and the code change slowly. Each redraw holds
# the GIL that the training thread needs (a plot costs tens of milliseconds).
RUN_INTERVALS = {
    "status": 0.1,
    "params": 0.3,
    "settings": 1.0,
    "code": 1.0,
    "loss": 0.3,
    "fit": 1.0,
}


@dataclass
class _Panels:
    """The widgets a snapshot goes to, looked up once."""

    status: StatusBar
    table: ParamsTable
    tensors: TensorDetail
    optimizer: OptimizerPanel
    settings: Hyperparams
    code: CodePanel
    loss: LossPlot | None  # None until mounted, just after the first frame
    fit: FitPlot | None


class MainScreen(Screen[None]):
    """Everything the session shows, and the keys that drive it."""

    AUTO_FOCUS = "#params"
    BINDINGS = [
        # the app's own, first here so that the footer shows them first (at 80 columns
        # the last keys are cut): a new user's way out and way in
        Binding("question_mark", "app.help", "help"),
        Binding("q", "app.quit", "quit"),
        *(
            Binding(key, f"act('{name}')", label, show=False)
            for key, (name, label) in ACTION_KEYS.items()
        ),
        Binding(RUN_KEY, "run", "run/pause", show=False),
        Binding(
            "equals_sign", "predict", "the model's prediction at an input you type", show=False
        ),
        Binding("y", "expect", "predict a value, then act: how close you were", show=False),
        Binding("L", "lesson", "follow the preset's lesson (or end it)", show=False),
        Binding("d", "description", "the preset's whole text", show=False),
        Binding("p", "app.presets", "presets"),
        Binding("l", "log_scale", "log"),
        Binding("e", "app.export", "export"),
        Binding("g", "app.grad", "autograd"),
        Binding("o", "optimizer", "optim"),
        Binding("a", "lab", "accum. lab"),
        Binding("v", "landscape", "the loss landscape, with the path of the updates", show=False),
        Binding("P", "app.presenter", "presenter mode: big type, slow motion", show=False),
        Binding("t", "app.traceback", "last error", show=False),
        Binding("c", "app.recover", "continue on the CPU (after a device failure)", show=False),
        Binding("escape", "home", "main view", show=False),
        *(
            Binding(str(i), f"tab('{pid}')", label, show=False)
            for i, (pid, label, _) in enumerate(PANELS, 1)
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: Snapshot | None = None
        self._was_running = False
        self.arrangement = Arrangement()  # the layout in force and the panels chosen
        self._title = ""  # the preset's title, fitted to the header's width
        self._panels: _Panels | None = None
        self._due: dict[str, float] = {}  # panel -> when a run may redraw it next
        self.coaching = Coaching(self)  # the coach's words, and the keys y, L, d

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        yield ActionBar(id="actions")
        yield Tabs(
            *(Tab(f"{i} {label}", id=f"tab-{pid}") for i, (pid, label, _) in enumerate(PANELS, 1)),
            id="tabs",
        )
        with Grid(id="panels"):
            # grid order (app.tcss): the fit goes right, under the loss, before the code
            for pid, _, title in sorted(PANELS, key=lambda p: GRID_ORDER.get(p[0], 9)):
                with Vertical(id=f"panel-{pid}", classes="panel") as panel:
                    panel.border_title = title
                    yield from self._panel(pid)
        yield Static("", id="explain-line", markup=False)  # where the panel is not in sight
        yield StatusBar(id="status")
        yield Footer(compact=True)  # at 80 columns every key fits, q and ? too

    def _panel(self, pid: str) -> ComposeResult:
        if pid == "params":
            yield Static("loading torch...", id="params-loading", markup=False)
            yield ParamsTable(id="params")
            detail = TensorDetail(id="tensors")
            detail.display = False
            yield detail
            panel = OptimizerPanel(id="optimizer")
            panel.display = False
            yield panel
            yield Static("", id="description", markup=False)
        elif pid == "settings":
            yield Hyperparams(id="settings")
        elif pid == "code":
            yield CodePanel(id="code")
        elif pid == "explain":
            yield ExplainPanel(id="explain")
        # the loss and fit plots come just after the first frame (_mount_plots)

    def on_mount(self) -> None:
        self._fit_to(*self.app.size)
        self.call_after_refresh(self._mount_plots)

    async def _mount_plots(self) -> None:
        """The plots need numpy and plotext, a few hundred milliseconds of imports that
        the first frame does not wait for (torch is still loading on the runner thread
        by then, so nothing is shown late)."""
        from playground.ui.training.fit_plot import FitPlot
        from playground.ui.training.loss_plot import LossPlot

        loss, fit = LossPlot(id="loss"), FitPlot(id="fit")
        await self.query_one("#panel-loss").mount(loss)
        await self.query_one("#panel-fit").mount(fit)
        panels = self._widgets()
        panels.loss, panels.fit = loss, fit
        if self.snapshot is not None:
            loss.update_snapshot(self.snapshot)
            fit.update_snapshot(self.snapshot)

    def on_resize(self, event: events.Resize) -> None:
        self._fit_to(*event.size)

    def _fit_to(self, width: int, height: int) -> None:
        layout = self.arrangement.fit(width, height)
        self.set_class(layout == "compact", "-compact")
        self.set_class(layout == "middle", "-middle")
        self._show_panels()
        self.query_one(ActionBar).fit(width)
        self._fit_title()

    def _show_panels(self) -> None:
        """Mark the panels on screen, and put the tab bar (and its underline) on the one
        it chose: the compact layout's panel, or the one below in the middle layout."""
        chosen = self.arrangement.chosen
        for pid, _, _ in PANELS:
            panel = self.query_one(f"#panel-{pid}")
            panel.set_class(self.arrangement.shows(pid), "-shown")
            panel.set_class(pid == chosen, "-active")
        # the one-line explanation is for where its panel is not in sight
        self.set_class(self.arrangement.shows("explain"), "-explaining")
        tabs = self.query_one(Tabs)
        if tabs.active != f"tab-{chosen}":
            tabs.active = f"tab-{chosen}"
        # Tabs slides its underline after a refresh that, for the first change after the
        # preset is in, did not come (it stayed under "1 Params"): put it under the tab
        # now, and again once a hidden tab bar has its place on screen
        self._place_underline()
        self.call_after_refresh(self._place_underline)

    def _place_underline(self) -> None:
        tabs = self.query_one(Tabs)
        tab = tabs.query_one(f"#tab-{self.arrangement.chosen}", Tab)
        start, end = tab.virtual_region.shrink(tab.styles.gutter).column_span
        underline = tabs.query_one(Underline)
        underline.show_highlight = True
        underline.highlight_start, underline.highlight_end = start, end

    def _fit_title(self) -> None:
        self.title, self.sub_title = header_title(self.app.title, self._title, self.app.size.width)

    # --- showing runner state --------------------------------------------------------

    def show_loading(self, text: str) -> None:
        self.query_one("#params-loading", Static).update(text)
        if self.snapshot is None:
            self.query_one(StatusBar).show_text(text.splitlines()[0])

    def apply(self, published: Published) -> None:
        """Hand a new snapshot to each panel; each redraws only what changed.

        While a run goes on, snapshots come up to ~25 times a second and every redraw
        takes the GIL from the training thread, so each panel is redrawn at its own
        lower rate (``RUN_INTERVALS``). Single actions, the first snapshot of a run and
        the one that ends it are drawn in full at once.
        """
        s, running = published.snapshot, published.running
        first = self.snapshot is None
        prev, self.snapshot = self.snapshot, s
        if first:
            self.query_one("#params-loading").display = False
            # torch, the model and the data are loaded by now: move all of it out of the
            # collector's sight, or every full collection (a few a minute while running)
            # walks it all, ~0.3 s holding the GIL that the training thread needs
            gc.freeze()
        if prev is None or (prev.title, prev.description) != (s.title, s.description):
            self._title = s.title
            self._fit_title()
            self.query_one("#description", Static).update(" ".join(s.description.split()))
        w = self._widgets()
        throttle = running and self._was_running
        now = time.monotonic()
        due = self._due
        if not throttle:
            due.clear()

        def ready(panel: str) -> bool:
            if now < due.get(panel, 0.0):
                return False
            if throttle:
                due[panel] = now + RUN_INTERVALS[panel]
            return True

        if ready("status"):
            w.status.update_snapshot(s, published.status, published.message)
        if ready("params"):
            w.table.update_snapshot(s)
            if w.tensors.display or w.table.expanded:
                w.tensors.update_snapshot(s, w.table.expanded)
            w.optimizer.update_view(s.optimizer)
        if ready("settings"):
            w.settings.update_snapshot(s)
        if ready("code"):
            w.code.update_log(s.log)
        if w.loss is not None and ready("loss"):
            w.loss.update_snapshot(s)
        # cheap when neither the predictions nor the title changed
        if w.fit is not None and ready("fit"):
            w.fit.update_snapshot(s)
        if published.explanation is not None:
            self.coaching.show(published.explanation)
        if running != self._was_running:
            self._was_running = running
            self.query_one(ActionBar).show_running(running)

    def _widgets(self) -> _Panels:
        if self._panels is None:
            self._panels = _Panels(
                status=self.query_one(StatusBar),
                table=self.query_one(ParamsTable),
                tensors=self.query_one(TensorDetail),
                optimizer=self.query_one(OptimizerPanel),
                settings=self.query_one(Hyperparams),
                code=self.query_one(CodePanel),
                loss=None,
                fit=None,
            )
        return self._panels

    def show_field_error(self, message: str) -> bool:
        """A failed Configure: put its message next to the field; False if none matched."""
        return self.query_one(Hyperparams).show_failure(message) is not None

    def set_devices(self, devices: tuple[str, ...]) -> None:
        self.query_one(Hyperparams).set_devices(devices)

    # --- actions ---------------------------------------------------------------------

    def action_act(self, name: str) -> None:
        self.app.submit(Act(name))  # type: ignore[attr-defined]

    def action_predict(self) -> None:
        """= : ask for the model's output at an input (one number per feature)."""
        from playground.ui.dialogs.path_prompt import PathPrompt

        s = self.snapshot
        if s is None:
            return
        at = s.prediction.at if s.prediction is not None else (0.0,) * s.fit.x.shape[1]
        default = ", ".join(f"{v:g}" for v in at)

        def asked(text: str | None) -> None:
            if not text:
                return
            try:
                values = tuple(float(v) for v in text.replace(",", " ").split())
            except ValueError:
                self.notify(f"{text!r}: numbers, one per input (e.g. {default})", severity="error")
                return
            self.app.submit(Predict(values))  # type: ignore[attr-defined]

        self.app.push_screen(PathPrompt("The model's prediction at x =", default, "predict"), asked)

    def action_expect(self) -> None:
        self.coaching.predict()

    def action_lesson(self) -> None:
        self.coaching.choose_lesson()

    def action_description(self) -> None:
        self.coaching.description()

    def show_panel(self, pid: str) -> None:
        """Bring panel ``pid`` in sight (its tab, or the panel below), focus unchanged."""
        if not self.arrangement.shows(pid):
            self._choose(pid)

    def action_run(self) -> None:
        self.app.submit(Run())  # type: ignore[attr-defined]

    def action_log_scale(self) -> None:
        loss = self._widgets().loss
        if loss is not None:
            loss.toggle_log()

    def action_lab(self) -> None:
        """The accumulation lab: full batch == K micro-batches == all-reduce over ranks."""
        from playground.ui.training.lab_screen import LabScreen

        self.app.push_screen(LabScreen())

    def action_landscape(self) -> None:
        """The loss landscape: the loss over two parameters, the path of the updates."""
        from playground.ui.training.landscape_screen import LandscapeScreen

        self.app.push_screen(LandscapeScreen())

    def action_optimizer(self) -> None:
        shown = self.query_one(OptimizerPanel).toggle()
        self._fit_description()
        if shown and self.has_class("-compact"):
            self.action_tab("params")

    def action_home(self) -> None:
        if self.arrangement.layout == "compact":
            self.action_tab("params")
        self.query_one(ParamsTable).focus()

    def action_tab(self, pid: str) -> None:
        """Keys 1-6: show the panel (its tab when compact, the panel below parameters and
        loss in the middle layout) and focus what it has to focus."""
        self._choose(pid)
        self.call_after_refresh(self._focus_panel, pid)

    def _choose(self, pid: str) -> None:
        self.arrangement.choose(pid)
        self._show_panels()

    def _focus_panel(self, pid: str) -> None:
        panel = self.query_one(f"#panel-{pid}")
        target = next((w for w in panel.query("*") if w.focusable), None)
        if target is not None:
            self.set_focus(target)
        elif self.arrangement.layout != "wide":
            self.set_focus(self.query_one(Tabs))  # plots take no focus; left/right switch tabs

    @on(Tabs.TabActivated, "#tabs")
    def _tab_changed(self, event: Tabs.TabActivated) -> None:
        """A tab chosen on the bar itself (left / right, a click)."""
        pid = (event.tab.id or "").removeprefix("tab-")
        if self.arrangement.layout == "wide" or pid == self.arrangement.chosen:
            return  # the bar only follows what _show_panels put there
        self._choose(pid)
        focused = self.focused
        if focused is not None and focused is not self.query_one(Tabs):
            # focus must not stay on a widget that just went out of sight
            panels = [f"panel-{p}" for p, _, _ in PANELS if self.arrangement.shows(p)]
            if not any(a.id in panels for a in focused.ancestors):
                self.call_after_refresh(self._focus_panel, pid)

    @on(Hyperparams.Hint)
    def _form_hint(self, event: Hyperparams.Hint) -> None:
        panel = self.query_one("#panel-settings")
        panel.border_subtitle = event.text
        panel.set_class(event.editing, "-editing")

    @on(Hyperparams.Left)
    def _left_field(self) -> None:
        """Escape in the form: the keys drive the session again. The settings stay in
        sight: the focus goes to the tab bar when there is one, else to the table."""
        if self.arrangement.layout == "wide":
            self.query_one(ParamsTable).focus()
        else:
            self.set_focus(self.query_one(Tabs))

    @on(ParamsTable.Toggled)
    def _expanded(self) -> None:
        self.query_one(TensorDetail).update_snapshot(
            self.snapshot, self.query_one(ParamsTable).expanded
        )
        self._fit_description()

    def _fit_description(self) -> None:
        """The preset's description gives its room to the optimizer state or full tensors."""
        busy = self.query_one(OptimizerPanel).display or self.query_one(TensorDetail).display
        self.query_one("#description").display = not busy

    @on(Hyperparams.Changed)
    def _configure(self, event: Hyperparams.Changed) -> None:
        changes = event.changes
        if self.snapshot is None:  # no session yet (the preset did not load)
            if "device" in changes:
                self.app.fall_back(changes["device"])  # type: ignore[attr-defined]
            else:
                self.app.notify("no preset loaded yet: p chooses one", severity="warning")
            return
        if effect_of(changes) != REBUILD:
            self.app.submit(Configure(changes))  # type: ignore[attr-defined]
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.app.submit(Configure(changes))  # type: ignore[attr-defined]
            else:
                self.query_one(Hyperparams).show_in_force(tuple(changes))

        self.app.push_screen(restart_question(changes), answer)

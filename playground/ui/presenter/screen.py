"""The presenter screen: the session as a room sees it, and slow motion.

It lies over the main screen (``P`` there, or ``--presenter``), which goes on receiving
every snapshot, so the code panel, undo and the narration follow whatever happens here.
The keys are the main screen's session keys (the same ``Act`` commands), plus slow
motion: space plays or pauses it, ``+`` / ``-`` change its pace. Playing, it sends the
next phase of the train step (``phases.cycle``) a set time after the last one was drawn,
never ahead of the runner, and moves on with whatever the snapshots report, its own
actions and keys pressed by hand alike; a run, a failed action or a loss that is not
finite pauses it.

From 120x36 (``-wide``) the parameters, the losses in large digits and the narration
share the left half, the loss curve the right (parameters too wide for half the screen
go across the top, ``-across``), and the banner and the keys grow to
three-line cells; smaller, the parameters take the whole width and the loss curve and
the narration share the row below (the losses are in the top line).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static

from playground.protocol import ACTION_KEYS, RUN_KEY, Act, Published, Run, Status
from playground.ui.presenter.big_losses import BigLosses
from playground.ui.presenter.big_params import BigParams
from playground.ui.presenter.key_bar import KeyBar, Keys, rows_of
from playground.ui.presenter.narration import Narration
from playground.ui.presenter.phase_banner import PhaseBanner
from playground.ui.presenter.phases import LABELS
from playground.ui.presenter.slow_motion import SlowMotion
from playground.ui.presenter.theme import PRESENTER_THEME
from playground.ui.training.explain_panel import ExplainPanel

if TYPE_CHECKING:
    from playground.training.coach import Explanation
    from playground.training.snapshot import Snapshot
    from playground.ui.training.loss_plot import LossPlot

WIDE_FROM = (120, 36)  # width, height from which the wide layout and the tall cells
SHOWN_KEYS = ("f", "b", "z", "s", "n", "u")  # the session keys on the key bar
RUN_INTERVAL = 0.25  # while running: the least time between two redraws, in seconds
PLOT_ROWS = 8  # the least rows the loss curve and the narration keep below the parameters
LOSSES_ROWS = 6  # the losses' panel in the wide layout (the digits side by side)


def numbers_line(s: Snapshot) -> str:
    """ "step 1 · batch loss 1.234e+04 · train loss 5678": every number named."""
    parts = [f"step {s.step}"]
    parts.append("batch loss —" if s.batch_loss is None else f"batch loss {s.batch_loss:.4g}")
    if s.train_loss is not None:
        parts.append(f"train loss {s.train_loss:.4g}")
    if s.val_loss is not None:
        parts.append(f"val loss {s.val_loss:.4g}")
    return " · ".join(parts)


def backwards(s: Snapshot) -> int:
    """Backward passes in .grad since the last zero_grad (the most any parameter holds)."""
    return max((p.backwards_since_zero for p in s.params), default=0)


class PresenterScreen(Screen[None]):
    """Large, high contrast, a phase banner and slow motion. See the module docstring."""

    CSS_PATH = "presenter.tcss"
    AUTO_FOCUS = None  # nothing here takes keys but the screen
    BINDINGS = [
        *(
            Binding(key, f"act('{name}')", label, show=key in SHOWN_KEYS)
            for key, (name, label) in ACTION_KEYS.items()
        ),
        Binding(RUN_KEY, "run", "run/pause"),
        Binding("space", "slow_motion", "slow motion", key_display="space"),
        Binding("plus", "faster", "faster", key_display="+"),
        Binding("minus", "slower", "slower", key_display="-"),
        Binding("l", "log_scale", "the loss on a log scale (or back)", show=False),
        Binding("P", "app.presenter", "leave"),
        Binding("escape", "app.presenter", "leave presenter mode", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.slow = SlowMotion()
        self.snapshot: Snapshot | None = None
        self.loss: LossPlot | None = None
        self._timer: Timer | None = None
        self._waiting: int | None = None  # the app's seq when slow motion sent a phase
        self._failure: object = None  # the app's last failure when it did
        self._theme_before: str | None = None
        self._was_running = False
        self._due = 0.0  # while running: when the next redraw may come

    def compose(self) -> ComposeResult:
        with Horizontal(id="pres-top"):
            yield Static("", id="pres-title", markup=False)
            yield Static("", id="pres-numbers", markup=False)
        yield PhaseBanner(id="banner")
        yield Static("", id="pres-slow", markup=False)
        with Grid(id="pres-body"):
            with Vertical(id="pres-params", classes="pres-panel") as panel:
                panel.border_title = "Parameters & gradients"
                yield BigParams(id="big-params")
            with Vertical(id="pres-loss", classes="pres-panel") as panel:
                panel.border_title = "Loss"
            with Vertical(id="pres-losses", classes="pres-panel") as panel:
                panel.border_title = "Loss now"
                yield BigLosses(id="big-losses")
            with Vertical(id="pres-explain", classes="pres-panel") as panel:
                panel.border_title = "What just happened"
                yield Narration(id="narration")
        yield KeyBar(self._keys(), id="keys")

    def _keys(self) -> list[Keys]:
        """The keys shown: one action at a time (the main screen's), then those that go on
        by themselves (run, slow motion) and the way out."""
        one: Keys = []
        on_its_own: Keys = []
        for b in self.BINDINGS:
            if isinstance(b, Binding) and b.show:
                group = one if b.action.startswith("act(") else on_its_own
                group.append((self.app.get_key_display(b), b.description))
        return [one, on_its_own]

    def on_mount(self) -> None:
        app = self.app
        app.presenting = True  # type: ignore[attr-defined]  # the room's theme: not remembered
        self._theme_before = app.theme
        if app.theme == PRESENTER_THEME:
            self.call_after_refresh(self._mount_plot)
        else:
            # the plot takes its colours when it draws: only once the theme's are in
            app.theme_changed_signal.subscribe(self, self._themed)
            app.theme = PRESENTER_THEME
        self._fit_to(*app.size)
        self._show_slow()
        if app.snapshot is not None:  # opened on a session in progress
            self._draw(app.snapshot)
            panel = app.main.query_one(ExplainPanel)  # type: ignore[attr-defined]
            if panel.history:
                self._explained(panel.history[-1], app.snapshot)

    def _themed(self, _theme: object) -> None:
        self.app.theme_changed_signal.unsubscribe(self)
        self.call_after_refresh(self._mount_plot)

    async def _mount_plot(self) -> None:
        """The loss curve after the first frame (numpy and plotext take a moment)."""
        if self.loss is not None or not self.is_attached:
            return
        from playground.ui.training.loss_plot import LossPlot

        self.loss = LossPlot(id="pres-loss-plot")
        await self.query_one("#pres-loss").mount(self.loss)
        if self.snapshot is not None:
            self.loss.update_snapshot(self.snapshot)

    def on_unmount(self) -> None:
        self._stop_timer()
        app = self.app
        if app.theme == PRESENTER_THEME and self._theme_before is not None:
            app.theme = self._theme_before  # a theme chosen meanwhile stays
        app.presenting = False  # type: ignore[attr-defined]

    def on_resize(self, event: events.Resize) -> None:
        self._fit_to(*event.size)

    def _fit_to(self, width: int, height: int) -> None:
        wide = width >= WIDE_FROM[0] and height >= WIDE_FROM[1]
        self.set_class(wide, "-wide")
        self.query_one(PhaseBanner).set_class(wide, "-tall")
        self.query_one(KeyBar).set_class(wide, "-tall")
        self._fit_params(width, height)

    def _fit_params(self, width: int, height: int) -> None:
        """Wide: the parameters across the whole width (``-across``) when their rows do
        not fit in half of it (matrices, many parameters). Rows for as many parameters
        as leave the loss and the narration theirs (``PLOT_ROWS``)."""
        params = self.query_one(BigParams)
        wide = self.has_class("-wide")
        half = width // 2 - 4  # less the panel's border and padding
        self.set_class(wide and params.width_needed() > half, "-across")
        key_rows = len(rows_of(self.query_one(KeyBar).groups, width - 2)) * (3 if wide else 1)
        body = height - (7 if wide else 5) - key_rows  # less the top line, banner, slow line
        room = body - PLOT_ROWS - (2 + LOSSES_ROWS if wide else 0)  # its border, the losses
        room = max(room, 4)
        if room != params.max_lines:
            params.max_lines = room
            params.refresh(layout=True)

    # --- the session -------------------------------------------------------------------

    def apply(self, published: Published) -> None:
        """A new snapshot (the app hands on every one the main screen gets)."""
        s, app = published.snapshot, self.app
        if self._waiting is not None and published.seq > self._waiting:
            self._waiting = None
            if app.last_failure is not self._failure:  # type: ignore[attr-defined]
                self.slow.pause("the last action failed")
        if published.running:
            self.slow.pause("a run is going on")
        elif published.status is Status.DIVERGED:
            self.slow.pause("the loss is not finite")
        now = time.monotonic()
        started = published.running and not self._was_running
        throttled = published.running and not started and now < self._due
        self._was_running = published.running
        if not throttled:
            self._due = now + RUN_INTERVAL
            self._draw(s)
        ex = published.explanation
        if ex is not None:
            self._explained(ex, s)
        elif started:  # a run: every phase, step after step
            self.query_one(PhaseBanner).show("run", "train steps")
        self.slow.follow(ex.action if ex is not None else None, backwards(s), s.config.accumulate)
        self._show_slow()
        self._schedule()

    def _draw(self, s: Snapshot) -> None:
        self.snapshot = s
        mark = " PRESENTER  " if self.has_class("-wide") else " "  # small: room for the title
        self.query_one("#pres-title", Static).update(mark + s.title)
        self.query_one("#pres-numbers", Static).update(numbers_line(s))
        self.query_one(BigParams).update_snapshot(s)
        self.query_one(BigLosses).update_snapshot(s)
        self._fit_params(*(self.size if self.size.width else self.app.size))
        if self.loss is not None:
            self.loss.update_snapshot(s)

    def _explained(self, ex: Explanation, s: Snapshot) -> None:
        self.query_one(Narration).show(ex)
        k, n = s.config.accumulate, backwards(s)
        detail = ""
        if k > 1 and ex.action == "backward":
            detail = f"micro-batch {n} of K={k}"
        elif k > 1 and ex.action == "forward":
            detail = f"micro-batch {min(n + 1, k)} of K={k}"
        self.query_one(PhaseBanner).show(ex.action, detail)

    # --- slow motion -------------------------------------------------------------------

    def _show_slow(self) -> None:
        slow = self.slow
        nxt = LABELS[slow.next_phase]
        if slow.micro_batch and slow.k > 1:
            nxt += f" (micro-batch {slow.micro_batch} of K={slow.k})"
        pace = f"one phase every {slow.seconds_text}"
        if slow.playing:
            text = f"▶ SLOW MOTION · {pace} · next: {nxt} · space pauses"
        else:
            why = f" ({slow.why_paused})" if slow.why_paused else ""
            text = f"■ slow motion paused{why} · {pace} · next: {nxt} · space plays"
        line = self.query_one("#pres-slow", Static)
        line.update(text)
        line.set_class(slow.playing, "-playing")

    def _schedule(self) -> None:
        """The next phase a set time from now, when playing and nothing is in flight."""
        if self.slow.playing and self._timer is None and self._waiting is None:
            self._timer = self.set_timer(self.slow.seconds, self._tick)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        app = self.app
        if not self.slow.playing or self._waiting is not None or self.snapshot is None:
            return
        if app.running:  # type: ignore[attr-defined]
            self.slow.pause("a run is going on")
            self._show_slow()
            return
        self._waiting = app.seq  # type: ignore[attr-defined]
        self._failure = app.last_failure  # type: ignore[attr-defined]
        app.submit(Act(self.slow.next_phase))  # type: ignore[attr-defined]

    def action_slow_motion(self) -> None:
        """space: play slow motion (the next phase at once) or pause it."""
        if self.slow.toggle():
            self._stop_timer()
            self._tick()
        else:
            self._stop_timer()
        self._show_slow()

    def action_faster(self) -> None:
        self.slow.faster()
        self._repace()

    def action_slower(self) -> None:
        self.slow.slower()
        self._repace()

    def _repace(self) -> None:
        """A new pace: a phase already waiting comes at the new one."""
        if self._timer is not None:
            self._stop_timer()
            self._schedule()
        self._show_slow()

    # --- the session keys --------------------------------------------------------------

    def action_act(self, name: str) -> None:
        self.app.submit(Act(name))  # type: ignore[arg-type, attr-defined]

    def action_run(self) -> None:
        self.app.submit(Run())  # type: ignore[attr-defined]

    def action_log_scale(self) -> None:
        if self.loss is not None:
            self.loss.toggle_log()

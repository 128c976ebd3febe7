"""The loss landscape screen (key ``v``): the training loss over two parameters, with the
path the updates took, live.

Contour lines of the loss on a grid (log-spaced levels), the path of every update, the
current point, the least-squares optimum, and a cursor whose grid point's loss is shown;
``enter`` puts the parameters there (an undoable action: gradient descent starts from
anywhere). The plane is two parameter entries (``x`` / ``y`` choose them), two random
filter-normalised directions or the path's principal directions (``m``); ``c`` races GD,
SGD with momentum and Adam from the current point. The session keys work here too, so
``n`` and ``r`` draw the path as it grows.

From 110 columns the numbers stand beside the picture, below it on a smaller terminal
(80x24 keeps a 71x19 picture). The view comes from the runner (``ComputeLandscape`` ->
``LandscapeComputed``, again after every action and a few times a second while running);
this screen sends requests and draws.
"""

from __future__ import annotations

from dataclasses import replace

from rich.markup import escape
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from playground.protocol import (
    ACTION_KEYS,
    RUN_KEY,
    Act,
    CloseLandscape,
    ComputeLandscape,
    Run,
    SetParamsAt,
)
from playground.training.landscape_view import (
    MODE_LABELS,
    MODES,
    LandscapeRequest,
    LandscapeView,
    fmt,
)
from playground.ui.training.landscape_panel import RACE_COLOURS, LandscapePanel

WIDE_FROM = 110  # columns from which the numbers stand beside the picture
RACE_STEPS = (10, 20, 50, 100, 200, 500)
RACER_NAMES = {"gd": "GD", "momentum": "momentum", "adam": "Adam"}
KEYS = (
    "arrows cursor     enter set params here",
    "+ - zoom          shift+arrows pan",
    "0 fit to path     m plane    x y axes",
    "d new directions  c race     [ ] steps",
    "n s b z f r u ^y  the session's keys",
)


class LandscapeScreen(Screen[None]):
    """The loss landscape. See the module docstring."""

    DEFAULT_CSS = """
    LandscapeScreen {
        layout: vertical;
    }
    #land-title {
        height: 1;
        padding: 0 1;
        color: $text-accent;
        text-style: bold;
    }
    #land-main {
        height: 1fr;
    }
    #land-side {
        display: none;
        width: 42;
        padding: 0 1;
        border-left: solid $primary 30%;
    }
    #land-info {
        height: 3;
        padding: 0 1;
    }
    LandscapeScreen.-wide #land-side {
        display: block;
    }
    LandscapeScreen.-wide #land-info {
        display: none;
    }
    """

    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("question_mark", "keys", "help", show=False),
        Binding("up", "cursor(0, 1)", "cursor", show=False),
        Binding("down", "cursor(0, -1)", "cursor", show=False),
        Binding("left", "cursor(-1, 0)", "cursor", show=False),
        Binding("right", "cursor(1, 0)", "cursor", show=False),
        Binding("shift+up", "pan(0, 0.25)", "pan", show=False),
        Binding("shift+down", "pan(0, -0.25)", "pan", show=False),
        Binding("shift+left", "pan(-0.25, 0)", "pan", show=False),
        Binding("shift+right", "pan(0.25, 0)", "pan", show=False),
        Binding("enter", "set_here", "set params here"),
        Binding("plus,equals_sign", "zoom(2.0)", "zoom in"),
        Binding("minus", "zoom(0.5)", "zoom out"),
        Binding("0", "fit", "fit"),
        Binding("m", "mode", "plane"),
        Binding("x", "axis('x', 1)", "x axis", show=False),
        Binding("X", "axis('x', -1)", "x axis back", show=False),
        Binding("y", "axis('y', 1)", "y axis", show=False),
        Binding("Y", "axis('y', -1)", "y axis back", show=False),
        Binding("d", "directions", "new random directions", show=False),
        Binding("c", "race", "race"),
        Binding("left_square_bracket", "race_steps(-1)", "fewer race steps", show=False),
        Binding("right_square_bracket", "race_steps(1)", "more race steps", show=False),
        *(
            Binding(key, f"act('{name}')", label, show=False)
            for key, (name, label) in ACTION_KEYS.items()
        ),
        Binding(RUN_KEY, "run", "run/pause", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.request = LandscapeRequest()
        self.view: LandscapeView | None = None  # the newest (plain data; tests read it)
        self.race_steps = 50  # what c races (the request's race is 0 while it is off)
        self._said: dict[str, str] = {}  # what each Static shows

    def compose(self) -> ComposeResult:
        yield Static("Loss landscape: computing...", id="land-title", markup=False)
        with Horizontal(id="land-main"):
            yield LandscapePanel(id="land-plot")
            yield Static("", id="land-side")
        yield Static("", id="land-info")
        yield Footer()

    def on_mount(self) -> None:
        self._fit_to(self.app.size.width)
        self.call_after_refresh(self._send)

    def on_unmount(self) -> None:
        self.app.submit(CloseLandscape())  # type: ignore[attr-defined]

    def on_resize(self, event: events.Resize) -> None:
        self._fit_to(event.size.width)
        self.call_after_refresh(self._resized)

    def _fit_to(self, width: int) -> None:
        self.set_class(width >= WIDE_FROM, "-wide")

    def _resized(self) -> None:
        if self.view is not None and self.query_one(LandscapePanel).dots() != self.request.dots:
            self._send()

    @property
    def panel(self) -> LandscapePanel:
        return self.query_one(LandscapePanel)

    def _send(self, **changes: object) -> None:
        """Ask the runner for the landscape as ``changes`` make the request."""
        self.request = replace(self.request, **changes, dots=self.panel.dots())  # type: ignore[arg-type]
        self.app.submit(ComputeLandscape(self.request))  # type: ignore[attr-defined]

    # --- the runner's answers -----------------------------------------------------------

    def show_view(self, view: LandscapeView) -> None:
        """A new view from the runner (the app routes ``LandscapeComputed`` here)."""
        self.view = view
        self.panel.show(view)
        self._words()

    def _words(self) -> None:
        v = self.view
        if v is None:
            return
        title = getattr(getattr(self.app, "snapshot", None), "title", "")
        side, info = self._lines(v)
        head = f"Loss landscape: {v.loss_name} over {v.n_samples} samples"
        if len(head) + 3 + len(title) <= self.size.width - 2:
            head += f" - {title}"
        texts = {
            "land-title": head,
            "land-side": "\n".join(side),
            "land-info": "\n".join(info),
        }
        for wid, text in texts.items():
            if self._said.get(wid) != text:  # an update lays the screen out again
                self._said[wid] = text
                self.query_one(f"#{wid}", Static).update(text)

    def _lines(self, v: LandscapeView) -> tuple[list[str], list[str]]:
        """The numbers: a column for beside the picture, three lines for below it."""
        sx, sy = escape(v.x_label), escape(v.y_label)
        cx, cy = self.panel.cursor_at() if self.panel.cursor is not None else v.current
        cursor_loss = fmt(self.panel.cursor_loss())
        now = f"({fmt(v.current[0])}, {fmt(v.current[1])})"
        here = f"({fmt(cx)}, {fmt(cy)})"
        opt = "" if v.optimum is None else f"({fmt(v.optimum[0])}, {fmt(v.optimum[1])})"
        levels = f"{fmt(v.levels[0])} ... {fmt(v.levels[-1])}" if len(v.levels) else "-"
        race = "  ".join(
            f"[{RACE_COLOURS[k % 3]}]{RACER_NAMES.get(r.name, r.name)} {fmt(r.final_loss)}[/]"
            for k, r in enumerate(v.race)
        )
        side = [
            f"[b]{MODE_LABELS[v.mode]}[/b]",
            f"{sx} across, {sy} up",
            "",
            f"step {v.step}",
            f"[#ff5f5f]●[/] now {now}",
            f"  loss {fmt(v.current_loss)}",
            f"[reverse]┼[/] cursor {here}",
            f"  loss {cursor_loss}",
        ]
        if v.optimum is not None:
            side += [f"[#5fff87]★[/] least squares {opt}", f"  loss {fmt(v.optimum_loss)}"]
        side += [
            f"○ start; path {v.path_points} points",
            f"levels, log-spaced: {levels}",
        ]
        if v.race:
            side += ["", f"race, {len(v.race[0].points) - 1} steps from now:", race]
        if v.note:
            side += ["", f"[dim]{escape(v.note)}[/]"]
        side += ["", *(f"[dim]{k}[/]" for k in KEYS)]
        first = f"step {v.step}  [#ff5f5f]●[/] {now} loss {fmt(v.current_loss)}"
        if v.optimum is not None:
            first += f"  [#5fff87]★[/] {opt} loss {fmt(v.optimum_loss)}"
        second = f"[reverse]┼[/] ({sx}, {sy}) = {here} loss {cursor_loss}  enter: start here"
        third = f"{MODE_LABELS[v.mode]}: m  levels {levels}"
        if v.race:
            third = f"race: {race}"
        return side, [first, second, third]

    # --- keys ---------------------------------------------------------------------------

    def action_cursor(self, dx: int, dy: int) -> None:
        self.panel.move_cursor(dx, dy)
        self._words()

    def action_set_here(self) -> None:
        v = self.view
        if v is None or self.panel.cursor is None:
            return
        x, y = self.panel.cursor_at()
        self.app.submit(SetParamsAt(x, y, v.plane_id))  # type: ignore[attr-defined]

    def action_zoom(self, factor: float) -> None:
        if self.view is not None:
            about = self.panel.cursor_at() if self.panel.cursor is not None else None
            self._send(window=self.view.window.zoomed(factor, about))

    def action_pan(self, fx: float, fy: float) -> None:
        if self.view is not None:
            self._send(window=self.view.window.panned(fx, fy))

    def action_fit(self) -> None:
        self.panel.follow = True
        self._send(window=None)

    def action_mode(self) -> None:
        mode = MODES[(MODES.index(self.request.mode) + 1) % len(MODES)]
        self._send(mode=mode, window=None)

    def action_axis(self, which: str, delta: int) -> None:
        """The next (or previous) parameter entry on the x or y axis."""
        v = self.view
        if v is None:
            return
        entries = v.entries
        x = v.x_label if v.mode == "params" else entries[0]
        y = v.y_label if v.mode == "params" else entries[-1]
        now, other = (x, y) if which == "x" else (y, x)
        i = entries.index(now) if now in entries else 0
        for _ in range(len(entries)):
            i = (i + delta) % len(entries)
            if entries[i] != other:
                break
        changes = {"mode": "params", "window": None, which: entries[i]}
        changes["y" if which == "x" else "x"] = other
        self._send(**changes)

    def action_directions(self) -> None:
        self._send(mode="random", seed=self.request.seed + 1, window=None)

    def action_race(self) -> None:
        self._send(race=0 if self.request.race else self.race_steps)

    def action_race_steps(self, delta: int) -> None:
        at = RACE_STEPS.index(self.race_steps) if self.race_steps in RACE_STEPS else 2
        self.race_steps = RACE_STEPS[max(0, min(len(RACE_STEPS) - 1, at + delta))]
        self._send(race=self.race_steps)

    def action_keys(self) -> None:
        """? : this screen's keys (the main screen's help lists its own)."""
        from playground.ui.dialogs.help_screen import HelpScreen

        keys: list[tuple[str, str]] = []
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            key = binding.key.replace("question_mark", "?")
            if binding.description and all(binding.description != d for _, d in keys):
                keys.append((key, binding.description))
        self.app.push_screen(HelpScreen(keys))

    def action_act(self, name: str) -> None:
        self.app.submit(Act(name))  # type: ignore[attr-defined]

    def action_run(self) -> None:
        self.app.submit(Run())  # type: ignore[attr-defined]

"""The accumulation lab: one gradient three ways, and the classic mistakes (key ``a``).

For the current parameters and the next B*K samples, per parameter: the full-batch
gradient; the K micro-batch gradients arriving one backward at a time (``b``) and their
running sum in ``.grad`` with and without the 1/K; the gradient K real data-parallel ranks
hold after DDP's all-reduce; and the largest differences between them. Keys 1-4 toggle
the classic mistakes into the accumulated column, each with its numbers and the step it
would make. The numbers come from the runner (``ComputeLab`` -> ``LabComputed``); this
screen only formats them (``playground.training.lab``, torch-free).

Readable at 80x24 (what does not fit scrolls; ``c`` goes to the code: the accumulation
loop and its DDP twin as a user writes them); from 150 columns the code stands beside.
"""

from __future__ import annotations

import re
from pathlib import Path

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from playground.protocol import ComputeLab, ExportDDP
from playground.training.lab import (
    FP32_NOTE,
    TOGGLES,
    LabToggles,
    LabView,
    backward_rows,
    columns,
    diff,
    header,
    notes,
    pitfall_lines,
    ranks_text,
    table_rows,
)

WIDE_FROM = 150  # columns from which the code stands beside the numbers
MAX_K = 16  # the lab's K keys stop there (more ranks than that is no demo)
NOTE = FP32_NOTE.split(" (")[0]  # "fp32 sums agree to ~1e-7, not bit for bit"


class LabScreen(Screen[None]):
    """The accumulation lab. See the module docstring."""

    DEFAULT_CSS = """
    LabScreen {
        layout: vertical;
    }
    #lab-title {
        height: auto;
        padding: 0 1;
        color: $text-accent;
        text-style: bold;
    }
    #lab-main {
        height: 1fr;
    }
    #lab-body {
        width: 1fr;
        padding: 0 1;
    }
    #lab-body Static {
        height: auto;
    }
    #lab-grads, #lab-backward, #lab-mistakes {
        margin-bottom: 1;
    }
    #lab-code {
        color: $text-muted;
    }
    #lab-side {
        display: none;
        width: 1fr;
        padding: 0 1;
        border-left: solid $primary 30%;
        color: $text-muted;
    }
    LabScreen.-wide #lab-body {
        width: 88;
    }
    LabScreen.-wide #lab-side {
        display: block;
    }
    LabScreen.-wide #lab-code {
        display: none;
    }
    """

    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        *(
            Binding(str(i), f"toggle('{name}')", label, show=False)
            for i, (name, label) in enumerate(TOGGLES, 1)
        ),
        Binding("b", "next_backward", "next backward"),
        Binding("B", "all_backwards", "all backwards", show=False),
        Binding("plus,equals_sign", "k(1)", "K+1"),
        Binding("minus", "k(-1)", "K-1"),
        Binding("right,right_square_bracket", "param(1)", "next parameter", show=False),
        Binding("left,left_square_bracket", "param(-1)", "previous parameter", show=False),
        Binding("r", "compute", "recompute", show=False),
        Binding("c", "code", "code"),
        Binding("e", "export", "DDP script"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view: LabView | None = None  # the newest one (plain data; tests read it)
        self.toggles = LabToggles()
        self.k = 0  # 0 until the first view says what the session's K is
        self.shown: int | None = None  # backward passes shown (None: all K)
        self.param_index = 0

    def compose(self) -> ComposeResult:
        yield Static("Accumulation lab: computing...", id="lab-title", markup=False)
        with Horizontal(id="lab-main"):
            with VerticalScroll(id="lab-body"):
                yield Static("", id="lab-grads", markup=False)
                yield Static("", id="lab-backward", markup=False)
                yield Static("", id="lab-mistakes", markup=False)
                yield Static("", id="lab-code", markup=False)  # below the numbers
            yield Static("", id="lab-side", markup=False)  # beside them, when wide
        yield Footer()

    def on_mount(self) -> None:
        self._fit_to(self.app.size.width)
        self.action_compute()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_to(event.size.width)

    def _fit_to(self, width: int) -> None:
        self.set_class(width >= WIDE_FROM, "-wide")

    # --- the runner's answers -----------------------------------------------------------

    def show_view(self, view: LabView) -> None:
        """A new view from the runner (the app routes ``LabComputed`` here)."""
        first = self.view is None
        self.view, self.k, self.toggles = view, view.k, view.toggles
        if first or (self.shown is not None and self.shown > view.k):
            self.shown = None
        self.param_index = min(self.param_index, len(view.params) - 1)
        self._redraw()

    def _redraw(self) -> None:
        view = self.view
        if view is None:
            return
        self.query_one("#lab-title", Static).update("Accumulation lab: " + header(view))
        grads = columns(table_rows(view, self.shown))
        scale = view.scale()
        labels = {
            "full batch vs accumulated": "max |full batch - accumulated|",
            "full batch vs all-reduced": "max |full batch - all-reduced|",
            "accumulated vs all-reduced": "max |accumulated - all-reduced|",
        }
        width = max(len(v) for v in labels.values())
        for label, v in view.diffs():
            grads.append(f"{labels[label]:<{width}}  {diff(v, scale)}")
        ratio = f"{'|accumulated| / |full batch|':<{width}}  {view.ratio():.3f}"
        if view.rank_spread is not None:
            ratio += f"; the {ranks_text(view)} agree to {view.rank_spread:.0e}"
        grads.append(ratio)
        grads += [x for x in (view.rank_note, view.rank_event) if x]
        grads += [NOTE, *notes(view)]
        self.query_one("#lab-grads", Static).update("\n".join(grads))
        p = view.params[self.param_index]
        n = len(view.params)
        more = f" ({self.param_index + 1}/{n}, left/right: another)" if n > 1 else ""
        lines = [f"backward by backward, {p.name}{more}; b: next backward"]
        lines += columns(backward_rows(view, p.name, self.shown))
        self.query_one("#lab-backward", Static).update("\n".join(lines))
        width = self.query_one("#lab-body").size.width - 1
        mistakes = ["the classic mistakes, max |differences| (keys 1-4 toggle them):"]
        mistakes += pitfall_lines(view, width=width)
        self.query_one("#lab-mistakes", Static).update("\n".join(mistakes))
        code = "the code, as a user writes it:\n\n" + view.code
        self.query_one("#lab-code", Static).update(code)
        self.query_one("#lab-side", Static).update(code)

    # --- keys ---------------------------------------------------------------------------

    def action_compute(self) -> None:
        self.app.submit(ComputeLab(self.k, 0, self.toggles))  # type: ignore[attr-defined]

    def action_toggle(self, name: str) -> None:
        self.toggles = self.toggles.flip(name)
        self.action_compute()

    def action_k(self, delta: int) -> None:
        if self.view is None:
            return
        k = max(1, min(MAX_K, self.view.n_train, self.k + delta))
        if k != self.k:
            self.k, self.shown = k, None
            self.action_compute()

    def action_next_backward(self) -> None:
        """One more backward arrives (after all K, start again from the first)."""
        if self.view is None:
            return
        self.shown = 1 if self.shown is None or self.shown >= self.view.k else self.shown + 1
        self._redraw()

    def action_all_backwards(self) -> None:
        self.shown = None
        self._redraw()

    def action_param(self, delta: int) -> None:
        if self.view is not None:
            self.param_index = (self.param_index + delta) % len(self.view.params)
            self._redraw()

    def action_code(self) -> None:
        """Scroll to the code below the numbers, or back to the top."""
        body = self.query_one("#lab-body", VerticalScroll)
        if body.scroll_y > 0:
            body.scroll_home(animate=False)
        else:
            body.scroll_to_widget(self.query_one("#lab-code"), animate=False, top=True)

    def action_export(self) -> None:
        if self.view is None:
            return
        stem = "playground_" + re.sub(r"[^0-9A-Za-z]", "_", self.view.preset)
        folder = Path(getattr(self.app, "export_dir", None) or Path.cwd())
        self.app.submit(ExportDDP(str(folder / f"{stem}_ddp.py")))  # type: ignore[attr-defined]

"""The phase banner: ZERO_GRAD, FORWARD, BACKWARD, STEP, the one that just happened lit.

One cell per phase, in the loop's order. The action the last snapshot reports lights its
cell (a train step or a run lights all four) and marks it ▶ ◀, for a screen without colour;
undo, configure and the like light none.
Where the banner is tall (``-tall``) each cell also shows the rule of its phase. The
phases lit so far are kept in order (``lit_history``), for tests and screen readers.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from playground.ui.presenter.phases import LABELS, PHASES, RULES, lit_by

KEPT = 64  # phases kept in ``lit_history``


def spaced(word: str) -> str:
    """ "F O R W A R D": wide letters read from the back of a room."""
    return " ".join(word)


def label(word: str, lit: bool, space: bool) -> str:
    """The cell's label, its letters spaced or not, marked when lit (so the lit cell
    reads without colour too)."""
    text = spaced(word) if space else word
    return f"▶ {text} ◀" if lit else text


class PhaseBanner(Horizontal):
    """Four cells; ``show(action)`` lights the phases ``action`` is."""

    DEFAULT_CSS = """
    PhaseBanner {
        height: 3;
    }
    PhaseBanner.-tall {
        height: 5;
    }
    PhaseBanner > .phase {
        width: 1fr;
        height: 100%;
        content-align: center middle;
        text-align: center;
        margin: 0 1 0 0;
        color: $text-muted;
        background: $panel;
    }
    PhaseBanner > .phase.-lit {
        color: $background;
        background: $accent;
        text-style: bold;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lit: tuple[str, ...] = ()
        self.lit_history: list[str] = []  # the phases lit, oldest first ("train_step": 4)
        self.detail = ""  # under the label in the lit cell: "micro-batch 2 of 4"

    def compose(self) -> ComposeResult:
        for phase in PHASES:
            yield Static(spaced(LABELS[phase]), id=f"phase-{phase}", classes="phase", markup=False)

    def on_resize(self) -> None:
        self._draw()

    def show(self, action: str | None, detail: str = "") -> None:
        """The newest action: light what it is (nothing for None)."""
        self.lit, self.detail = lit_by(action), detail
        self.lit_history.extend(self.lit)
        del self.lit_history[:-KEPT]
        self._draw()

    def _draw(self) -> None:
        tall = self.has_class("-tall")
        # spaced letters in every cell, or in none: where the longest fits, lit
        widest = max(len(label(w, True, True)) for w in LABELS.values())
        space = all(c.size.width >= widest for c in self.query(".phase"))
        for phase in PHASES:
            cell = self.query_one(f"#phase-{phase}", Static)
            lit = phase in self.lit
            cell.set_class(lit, "-lit")
            text = label(LABELS[phase], lit, space)
            if tall:
                under = self.detail if lit and self.detail else RULES[phase]
                text += "\n\n" + under
            cell.update(text)

    @property
    def text(self) -> str:
        """The lit phases in words ("BACKWARD"), or "" when none is."""
        return " ".join(LABELS[p] for p in PHASES if p in self.lit)

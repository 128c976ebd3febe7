"""The main screen's panels and buttons, which panels it shows at a terminal size, and a
header title that fits.

Three layouts, chosen by the size alone (a CSS class on the screen, never a rebuild):

- ``wide`` (from 110x34): every panel at once, in a grid;
- ``middle`` (from 100x30, a common SSH window): parameters and loss side by side - what
  a user watches while pressing keys - and one more panel below them, chosen with the tab
  bar (settings, code, fit, and any panel added to ``PANELS`` later: the area below is
  the place a new panel gets without a new layout);
- ``compact`` (smaller, down to 80x24): one panel at a time, chosen with the tab bar.
"""

from __future__ import annotations

from dataclasses import dataclass

PANELS = (  # id, tab label, border title (a new panel here is a tab, and below in middle)
    ("params", "Params", "Parameters & gradients"),
    ("loss", "Loss", "Loss"),
    ("settings", "Settings", "Model & hyper-parameters"),
    ("code", "Code", "Code"),
    ("fit", "Fit", "Fit"),
    ("explain", "Explain", "What just happened"),
)
BUTTONS = (  # id, label, action
    ("forward", "f forward", "act('forward')"),
    ("backward", "b backward", "act('backward')"),
    ("zero-grad", "z zero_grad", "act('zero_grad')"),
    ("step", "s step", "act('step')"),
    ("train-step", "n train step", "act('train_step')"),
    ("run", "r run", "run"),
    ("undo", "u undo", "act('undo')"),
    ("reset", "^r reset", "act('reset')"),
)
# the wide grid takes the panels in this order (app.tcss): the fit right, under the loss
GRID_ORDER = {"params": 0, "loss": 1, "settings": 2, "fit": 3, "explain": 4, "code": 5}
RUN_LABELS = ("r run", "r pause")  # the run button's two labels: it keeps one width
TIGHT_BELOW = 96  # columns under which the buttons lose their side padding

WIDE_FROM = (110, 34)  # width, height from which every panel is on screen
MIDDLE_FROM = (100, 30)  # from which parameters and loss share the screen
TOP_ROW = ("params", "loss")  # the middle layout's panels that are always there
HEADER_SIDES = 18  # the header's icon (8 cells) and clock space (10) around the title


def layout_for(width: int, height: int) -> str:
    """The layout for a terminal of ``width`` x ``height`` cells: wide, middle or compact."""
    if width >= WIDE_FROM[0] and height >= WIDE_FROM[1]:
        return "wide"
    if width >= MIDDLE_FROM[0] and height >= MIDDLE_FROM[1]:
        return "middle"
    return "compact"


def shown(layout: str, pid: str, active: str, below: str) -> bool:
    """Whether panel ``pid`` is on screen: ``active`` is the compact layout's tab,
    ``below`` the panel under the middle layout's top row."""
    if layout == "wide":
        return True
    if layout == "middle":
        return pid in TOP_ROW or pid == below
    return pid == active


def title_clauses(title: str) -> list[str]:
    """``title`` and ever shorter whole clauses of it, longest first: without a trailing
    parenthesis, then cut at each ", " and ": " outside parentheses, from the right."""
    out = [title]
    text = title
    if text.endswith(")") and " (" in text:
        text = text[: text.rindex(" (")]
        out.append(text)
    depth, cuts = 0, []
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and text[i : i + 2] in (", ", ": "):
            cuts.append(i)
    out.extend(text[:i] for i in reversed(cuts))
    return out


def header_title(app_title: str, title: str, width: int) -> tuple[str, str]:
    """(title, sub title) for the header: "playground — <preset title>" when it fits,
    else the longest whole clause of the preset title that fits ("Five points: linear
    regression by hand (w = b = 1, lr 0.001)" -> "Five points: linear regression by
    hand"), so the header never stops in the middle of a word."""
    room = width - HEADER_SIDES
    if len(app_title) + 3 + len(title) <= room:
        return app_title, title
    clauses = title_clauses(title)
    return next((c for c in clauses if len(c) <= room), clauses[-1]), ""


@dataclass
class Arrangement:
    """The layout in force, and the panels the tab bar chose for it."""

    layout: str = "wide"
    active: str = "params"  # the compact layout's panel
    below: str = "fit"  # the middle layout's panel under parameters and loss

    def fit(self, width: int, height: int) -> str:
        self.layout = layout_for(width, height)
        return self.layout

    def choose(self, pid: str) -> None:
        """Keys 1-6 and the tab bar: the compact layout shows ``pid``; the middle one
        puts it below, unless it is on the top row already."""
        self.active = pid
        if pid not in TOP_ROW:
            self.below = pid

    @property
    def chosen(self) -> str:
        """The panel the tab bar marks."""
        return self.below if self.layout == "middle" else self.active

    def shows(self, pid: str) -> bool:
        return shown(self.layout, pid, self.active, self.below)

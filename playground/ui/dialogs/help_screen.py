"""The ``?`` help screen: every key of the main screen with what it does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = (
    "Drive the training loop one PyTorch call at a time and watch .grad: backward() ADDS "
    "to .grad (x1, x2 +=, ...), zero_grad() clears it, step() moves the parameters by "
    "-lr * grad and leaves .grad alone.\n\nEvery action is one step of undo: u takes "
    "back the last one (a whole run included), ctrl+y does it again. A setting that "
    "restarts training (model, loss, optimizer, seed) asks first.\n\nThe numbers say "
    "what they are: batch loss is the micro-batch the last backward used, train loss and "
    "val loss the whole training / validation set at the current parameters; an epoch "
    "is one pass of the training loop over the data.\n\nEvery button has a key. Tab "
    "moves between panels and fields, Escape returns to the parameter table, Enter on a "
    "parameter prints it in full. Below 110x34 the panels are tabs: 1-5 switch them.\n"
)


class HelpScreen(ModalScreen[None]):
    """Key reference, built from the bindings it is given."""

    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        width = max((len(k) for k, _ in self.keys), default=4)
        table = "\n".join(f"  {k:<{width}}  {d}" for k, d in self.keys)
        with VerticalScroll(id="help"):
            yield Static(INTRO, markup=False)
            yield Static(table, markup=False, id="help-keys")
            yield Static("\nEscape, ? or q closes this screen.", markup=False)

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
    "is one pass of the training loop over the data.\n\nThe parameter table: value is the "
    "parameter now; .grad what backward left in p.grad (None until the first backward, "
    "and after zero_grad(set_to_none=True)); backward how many backward passes .grad "
    "holds since the last zero_grad (x2 += : two gradients added); analytic the "
    "gradient derived by hand from the formula of the model and loss (linear models), to "
    "compare with autograd's; step Δ how much the last optimizer step moved it (-lr * "
    "grad for plain gradient descent).\n\nSettings: batch (0=all) is the micro-batch "
    "size, 0 the whole training set; accum. K the backward passes a train step adds up "
    "before its one step, each loss divided by K so that K micro-batches give the full "
    "batch's gradient.\n\nWhat just happened (6, or a panel when the screen is large) "
    'says each action with its numbers and warns where a course says "so important" '
    "(a forgotten zero_grad, a stale gradient, too large an lr). y: type the value you "
    "expect (w.grad = -174), then act, and see how close you were. L follows the "
    "preset's lesson step by step; d shows the preset's whole text.\n\nP: presenter mode, for a "
    "projector: the parameters, gradients and losses in large digits, a banner that lights "
    "each phase (zero_grad, forward, backward, step) as it happens, and slow motion - space "
    "plays a train step one phase every 2 s (+ faster, - slower, space pauses); P or Escape "
    "comes back here.\n\nEvery button has a key. Tab "
    "moves between panels and fields, Escape returns to the parameter table, Enter on a "
    "parameter prints it in full. In a settings field the letters type (the field and its "
    "label are highlighted): Enter applies the value, Escape leaves the field and keeps "
    "the value in force. From 100x30 parameters and loss share the screen and 3-6 choose "
    "the panel below them; smaller, the panels are tabs: 1-6 switch them. q closes a "
    "screen like this one; on the main screen it quits (asking first when the session is "
    "unsaved and nothing autosaves it).\n"
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

"""The autograd explorer screen (``g``): a scalar expression as a graph with gradients.

Type an expression and the input values, press Enter: the screen shows every node with
its value and ``.grad``, the input gradients checked against sympy and a finite
difference, and lets you walk the backward pass one node at a time, call backward again
(with or without ``retain_graph``) and zero the grads.

The tensors live on the explorer's worker thread (``playground.explorer.worker``), which the
screen gets from the factory it is built with and never imports: the screen submits the
commands of ``playground.explorer.protocol`` and draws the tensor-free ``GraphView`` that
comes back in each answer. Nothing here imports torch or sympy, so the UI thread never
waits on them; the worker loads torch when it starts, on its own thread.
"""

from __future__ import annotations

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, OptionList, Static, Tree
from textual.widgets.option_list import Option
from textual.widgets.tree import TreeNode

from playground.explorer.presets import ExpressionPreset
from playground.explorer.protocol import (
    Explore,
    ExplorerAct,
    ExplorerActionName,
    ExplorerCommand,
    ExplorerEvent,
    ExplorerFactory,
    ExplorerFailed,
    ExplorerHandle,
    ExpressionPresets,
    GraphShown,
    ListExpressionPresets,
    LoadExpressionPreset,
    SetRetainGraph,
)
from playground.explorer.tree import ExpressionError
from playground.explorer.values import parse_values
from playground.explorer.views import GraphView, NodeView

CHECK_COLUMNS = (
    "input",
    "value",
    "autograd .grad",
    ".grad / passes",
    "sympy",
    "Δ sympy",
    "finite diff",
    "Δ fd",
    "sympy formula",
)
APP_KEYS = {"question_mark"}  # the app's keys that must still reach it from here
BUSY_AFTER_S = 0.3  # an answer slower than this shows "computing..." (torch's first import)


def _num(value: float | None) -> str:
    if value is None:
        return "None"
    return f"{value:.8g}"


def _delta(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1e}"


def checks_note(view: GraphView) -> str:
    """What the check table compares: .grad adds up, sympy and the finite difference are
    one derivative each."""
    n = view.backward_passes
    if n == 0:
        return "checks: .grad is zeroed (no backward pass since zero_grad) - b to compare"
    if n == 1:
        return "checks: .grad holds one backward pass; Δ = reference - .grad"
    return (
        f"checks: .grad holds {n} backward passes added up (the same derivative {n} times); "
        f"Δ = reference - .grad / {n}"
    )


class PresetPicker(ModalScreen[str | None]):
    """Pick an expression preset; Enter chooses, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, presets: tuple[ExpressionPreset, ...]) -> None:
        super().__init__()
        self._presets = presets

    def compose(self) -> ComposeResult:
        options = [
            Option(Text.assemble((p.name, "bold"), "  ", p.title), id=p.name) for p in self._presets
        ]
        yield OptionList(*options, id="grad-preset-list")

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class GradScreen(Screen[None]):
    """Autograd explorer: expression in, graph with values, grads and checks out."""

    CSS_PATH = "grad_screen.tcss"
    AUTO_FOCUS = "#grad-expr"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        # q closes this screen, not the app: the training session waits behind it
        Binding("q", "back", "close", show=False),
        Binding("n", "step", "Step"),
        Binding("b", "backward", "Backward"),
        Binding("r", "toggle_retain", "Retain"),
        Binding("z", "zero_grad", "Zero"),
        Binding("f", "forward", "Fwd"),
        Binding("p", "presets", "Presets"),
        Binding("e", "edit", "Edit"),
    ]

    class Answer(Message, bubble=False):
        """One event of the explorer's worker, carried onto the UI thread."""

        def __init__(self, event: ExplorerEvent) -> None:
            super().__init__()
            self.event = event

    def __init__(
        self,
        worker_factory: ExplorerFactory,
        expression: str | None = None,
        values: str | None = None,
        *,
        preset: str | None = "sigmoid",
    ) -> None:
        super().__init__()
        self._worker_factory = worker_factory
        self._worker: ExplorerHandle | None = None
        self._initial = (expression, values, preset)
        self._retain = False  # kept here too: a new graph (Enter, a preset) starts with it
        self._in_flight = 0  # commands submitted and not answered yet (one answer each)
        self._busy_timer: Timer | None = None
        self._busy = False
        self._status = ""
        # the command whose answer moves the focus to the graph (Enter, a preset chosen)
        self._focus_after: ExplorerCommand | None = None
        self.view: GraphView | None = None  # the last rendered view, for tests and the app

    def compose(self) -> ComposeResult:
        with Horizontal(id="grad-inputs"):
            # the cursor lands at the end, the text stays: a letter typed on the graph
            # (on_key) or after e goes on editing the expression, never replaces it
            yield Input(
                placeholder="tanh(log(1 + z*2*x/sin(y)))", id="grad-expr", select_on_focus=False
            )
            yield Input(placeholder="x=1 y=2 z=3", id="grad-values")
        yield Static("", id="grad-message")
        yield Tree("type an expression and press Enter", id="grad-tree")
        yield Static("", id="grad-checks-note")
        table: DataTable[str] = DataTable(id="grad-checks", cursor_type="row")
        table.add_columns(*CHECK_COLUMNS)
        yield table
        yield Static("", id="grad-steps")
        yield Static("", id="grad-status")
        yield Footer()

    def on_mount(self) -> None:
        try:
            self._worker = self._worker_factory(self._publish)
            self._worker.start()  # it loads torch now, on its thread, whatever comes next
        except Exception as exc:  # noqa: BLE001 - the screen stays usable to go back
            self._worker = None
            self._message(f"error: the autograd explorer cannot start: {exc}", "error")
            return
        expression, values, preset = self._initial
        if expression is not None:
            self.query_one("#grad-expr", Input).value = expression
            self.query_one("#grad-values", Input).value = values or ""
            self._compute()
        elif preset is not None:
            self._focus_after = self._submit(LoadExpressionPreset(preset, self._retain))

    def on_unmount(self) -> None:
        if self._worker is not None:
            # no join: the command in hand (even torch's import) finishes on its own and
            # the answer is dropped, since a closed screen takes no messages
            self._worker.stop(timeout=0)
            self._worker = None

    def _publish(self, event: ExplorerEvent) -> None:
        """Called on the worker's thread: only post a message (thread-safe), touch nothing."""
        self.post_message(self.Answer(event))

    def _submit(self, command: ExplorerCommand) -> ExplorerCommand:
        if self._worker is None:
            self._message("error: the autograd explorer is not running", "error")
            return command
        self._in_flight += 1
        if self._busy_timer is None:
            self._busy_timer = self.set_timer(BUSY_AFTER_S, self._show_busy)
        self._worker.submit(command)
        return command

    # -- input --------------------------------------------------------------

    @on(Input.Submitted, "#grad-expr")
    @on(Input.Submitted, "#grad-values")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "grad-expr" and not self.query_one("#grad-values", Input).value:
            self.query_one("#grad-values", Input).focus()  # inputs still need values
            return
        # on success the letter keys should drive the graph: the answer moves the focus
        self._focus_after = self._compute()

    def _compute(self) -> ExplorerCommand | None:
        """Ask for a fresh graph from the two inputs (and one backward); None if the values
        do not parse (told at once: the values syntax needs no torch)."""
        source = self.query_one("#grad-expr", Input).value
        values_text = self.query_one("#grad-values", Input).value
        try:
            parse_values(values_text)
        except ExpressionError as exc:
            self._message(f"values: {exc}\n{exc.pointer()}", "error")
            return None
        return self._submit(Explore(source, values_text, self._retain))

    # -- actions ------------------------------------------------------------

    def _act(self, name: ExplorerActionName) -> None:
        self._submit(ExplorerAct(name))

    def action_step(self) -> None:
        self._act("step_backward")  # after the last node the worker starts over

    def action_backward(self) -> None:
        self._act("backward")

    def action_toggle_retain(self) -> None:
        self._retain = not self._retain
        self._submit(SetRetainGraph(self._retain))

    def action_zero_grad(self) -> None:
        self._act("zero_grad")

    def action_forward(self) -> None:
        self._act("forward")

    def action_edit(self) -> None:
        self.query_one("#grad-expr", Input).focus()

    def on_key(self, event: events.Key) -> None:
        """A character that is no key of this screen, typed while the graph has the focus,
        goes to the expression (typing ``sqrt(`` after Enter moved the focus must edit the
        expression, not run the letters that happen to be keys)."""
        if isinstance(self.focused, Input) or not event.is_printable or event.character is None:
            return
        if event.key in {b.key for b in self.BINDINGS} | APP_KEYS:
            return
        expr = self.query_one("#grad-expr", Input)
        expr.focus()
        expr.action_end()
        expr.insert_text_at_cursor(event.character)
        event.stop()
        event.prevent_default()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_presets(self) -> None:
        self._submit(ListExpressionPresets())

    def _pick_preset(self, presets: tuple[ExpressionPreset, ...]) -> None:
        if self.app.screen is not self:
            return  # a picker is open already (p pressed twice), or the user went back

        def chosen(name: str | None) -> None:
            if name is not None:
                self._focus_after = self._submit(LoadExpressionPreset(name, self._retain))

        self.app.push_screen(PresetPicker(presets), chosen)

    # -- answers ------------------------------------------------------------

    @on(Answer)
    def _answered(self, message: Answer) -> None:
        event = message.event
        self._in_flight = max(0, self._in_flight - 1)
        if self._in_flight == 0:
            self._not_busy()
        moves_focus = event.command is self._focus_after
        if moves_focus:
            self._focus_after = None
        if isinstance(event, GraphShown):
            self._show_graph(event)
            if moves_focus:
                self.query_one("#grad-tree", Tree).focus()
        elif isinstance(event, ExpressionPresets):
            self._pick_preset(event.presets)
        elif isinstance(event, ExplorerFailed):
            self._message(event.text, "error")

    def _show_graph(self, event: GraphShown) -> None:
        if event.preset is not None:
            self.query_one("#grad-expr", Input).value = event.preset.expression
            self.query_one("#grad-values", Input).value = event.preset.values_text
        self._render_view(event.view)
        if event.note:
            self._message(event.note, "note")

    def _show_busy(self) -> None:
        self._busy_timer = None
        if self._in_flight:
            self._busy = True
            self._render_status()

    def _not_busy(self) -> None:
        if self._busy_timer is not None:
            self._busy_timer.stop()
            self._busy_timer = None
        if self._busy:
            self._busy = False
            self._render_status()

    # -- rendering ----------------------------------------------------------

    def _message(self, text: str, kind: str) -> None:
        widget = self.query_one("#grad-message", Static)
        widget.set_classes(kind)
        widget.update(Text(text))

    def _render_view(self, view: GraphView) -> None:
        self.view = view
        self._render_tree(view)
        self._render_checks(view)
        steps = self.query_one("#grad-steps", Static)
        lines = [f"{s.formula} = {s.numbers} = {_num(s.value)}" for s in view.steps_done[-4:]]
        steps.update(Text("\n".join(lines) or "n: walk the backward pass one node at a time"))
        self._status = (
            f"retain_graph={view.retain_graph} · passes {view.backward_passes} · "
            f"graph {'freed' if view.graph_freed else 'alive'} · "
            f"step {len(view.steps_done)}/{view.step_total} » {view.last_code}"
        )
        self._render_status()
        if view.error:
            self._message(f"backward failed ({view.note}):\nRuntimeError: {view.error}", "error")
        elif view.note or view.warnings:
            self._message("\n".join(filter(None, [view.note, *view.warnings])), "note")
        else:
            self._message("", "")

    def _render_status(self) -> None:
        parts = ["computing..."] if self._busy else []
        if self._status:
            parts.append(self._status)
        self.query_one("#grad-status", Static).update(Text(" · ".join(parts)))

    def _render_tree(self, view: GraphView) -> None:
        tree: Tree[str] = self.query_one("#grad-tree", Tree)
        reached = {s.node for s in view.steps_done}
        output = view.node(view.output)
        tree.reset(self._label(output, view, reached), output.name)
        seen = {output.name}

        def grow(branch: TreeNode[str], node: NodeView) -> None:
            for edge in node.edges:
                child = view.node(edge.parent)
                label = self._label(child, view, reached)
                label.append(
                    f"   ∂{node.name}/∂{child.name} = {edge.formula} = {_num(edge.value)}", "dim"
                )
                if child.edges and child.name not in seen:
                    seen.add(child.name)
                    grow(branch.add(label, child.name, expand=True), child)
                else:
                    if child.edges:
                        label.append("  (above)", "dim italic")
                    branch.add_leaf(label, child.name)

        grow(tree.root, output)
        tree.root.expand()

    @staticmethod
    def _label(node: NodeView, view: GraphView, reached: set[str]) -> Text:
        name_style = "bold green" if node.name in reached else "bold"
        text = Text(node.name, name_style)
        if node.op == "input":
            text.append(
                " input" + ("" if node.requires_grad else " (requires_grad=False)"), "italic"
            )
        else:
            text.append(" = " + node.formula.split(" = ", 1)[1])
        text.append(f"   value {_num(node.value)}")
        text.append(f"   grad {_num(node.grad)}", "cyan")
        return text

    def _render_checks(self, view: GraphView) -> None:
        self.query_one("#grad-checks-note", Static).update(Text(checks_note(view)))
        table: DataTable[str] = self.query_one("#grad-checks", DataTable)
        table.clear()
        for row in view.checks:
            table.add_row(
                row.name,
                _num(row.value),
                _num(row.autograd),
                _num(row.per_pass) if row.autograd is not None else "None",
                row.symbolic_note
                if row.symbolic is None and row.symbolic_note
                else _num(row.symbolic),
                _delta(row.symbolic_minus_autograd),
                _num(row.finite_diff),
                _delta(row.fd_minus_autograd),
                row.symbolic_formula,
                key=row.name,
            )

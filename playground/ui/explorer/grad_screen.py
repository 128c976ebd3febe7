"""The autograd explorer screen (``g``): a scalar expression as a graph with gradients.

Type an expression and the input values, press Enter: the screen shows every node with
its value and ``.grad``, the input gradients checked against sympy and a finite
difference, and lets you walk the backward pass one node at a time, call backward again
(with or without ``retain_graph``) and zero the grads.

The screen only ever sees the engine's plain-data ``GraphView``. ``playground.explorer.graph``
imports torch, so it is imported lazily (and warmed up in a thread on mount): opening the
app never waits for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, OptionList, Static, Tree
from textual.widgets.option_list import Option
from textual.widgets.tree import TreeNode

from playground.explorer.parse import ExpressionError, parse_values

if TYPE_CHECKING:
    from playground.explorer.graph import ExpressionPreset, GradExplorer, GraphView, NodeView

CHECK_COLUMNS = (
    "input",
    "value",
    "autograd .grad",
    "sympy",
    "Δ sympy",
    "finite diff",
    "Δ fd",
    "sympy formula",
)


def _graph_module() -> Any:
    from playground.explorer import graph  # torch loads here, never at app start

    return graph


def _num(value: float | None) -> str:
    if value is None:
        return "None"
    return f"{value:.8g}"


def _delta(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1e}"


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
        Binding("n", "step", "Step"),
        Binding("b", "backward", "Backward"),
        Binding("r", "toggle_retain", "Retain"),
        Binding("z", "zero_grad", "Zero"),
        Binding("f", "forward", "Fwd"),
        Binding("p", "presets", "Presets"),
        Binding("e", "edit", "Edit"),
    ]

    def __init__(
        self,
        expression: str | None = None,
        values: str | None = None,
        *,
        preset: str | None = "sigmoid",
    ) -> None:
        super().__init__()
        self._initial = (expression, values, preset)
        self._explorer: GradExplorer | None = None
        self._retain = False
        self.view: GraphView | None = None  # the last rendered view, for tests and the app

    def compose(self) -> ComposeResult:
        with Horizontal(id="grad-inputs"):
            yield Input(placeholder="tanh(log(1 + z*2*x/sin(y)))", id="grad-expr")
            yield Input(placeholder="x=1 y=2 z=3", id="grad-values")
        yield Static("", id="grad-message")
        yield Tree("type an expression and press Enter", id="grad-tree")
        table: DataTable[str] = DataTable(id="grad-checks", cursor_type="row")
        table.add_columns(*CHECK_COLUMNS)
        yield table
        yield Static("", id="grad-steps")
        yield Static("", id="grad-status")
        yield Footer()

    def on_mount(self) -> None:
        expression, values, preset = self._initial
        if expression is not None:
            self.query_one("#grad-expr", Input).value = expression
            self.query_one("#grad-values", Input).value = values or ""
            self.call_after_refresh(self._compute)
        elif preset is not None:
            self.call_after_refresh(self._load_preset, preset)
        else:
            self.run_worker(_graph_module, thread=True, exit_on_error=False, name="grad-import")

    # -- input --------------------------------------------------------------

    @on(Input.Submitted, "#grad-expr")
    @on(Input.Submitted, "#grad-values")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "grad-expr" and not self.query_one("#grad-values", Input).value:
            self.query_one("#grad-values", Input).focus()  # inputs still need values
            return
        if self._compute():
            self.query_one("#grad-tree", Tree).focus()  # letter keys now drive the graph

    def _compute(self) -> bool:
        """Build a fresh graph from the two inputs and run one backward."""
        source = self.query_one("#grad-expr", Input).value
        values_text = self.query_one("#grad-values", Input).value
        try:
            values = parse_values(values_text)
        except ExpressionError as exc:
            self._show_error("values", exc)
            return False
        try:
            explorer, view = _graph_module().explore(source, values, retain_graph=self._retain)
        except ExpressionError as exc:
            self._show_error("expression", exc)
            return False
        except Exception as exc:  # noqa: BLE001 - any engine failure is shown, never fatal
            self._message(f"error: {type(exc).__name__}: {exc}", "error")
            return False
        self._explorer = explorer
        self._render_view(view)
        return True

    def _load_preset(self, name: str) -> None:
        graph = _graph_module()
        try:
            preset = graph.find_expression_preset(name)
        except ValueError as exc:
            self._message(f"error: {exc}", "error")
            return
        self.query_one("#grad-expr", Input).value = preset.expression
        self.query_one("#grad-values", Input).value = preset.values_text
        if self._compute():
            self._message(f"{preset.title}: {preset.description}", "note")
            self.query_one("#grad-tree", Tree).focus()

    # -- actions ------------------------------------------------------------

    def _act(self, method: str, *args: object) -> None:
        if self._explorer is None:
            self._message("enter an expression and values first (Enter)", "error")
            return
        try:
            getattr(self._explorer, method)(*args)
            view = self._explorer.view()
        except Exception as exc:  # noqa: BLE001 - keep the app alive whatever happens
            self._message(f"error: {type(exc).__name__}: {exc}", "error")
            return
        self._render_view(view)

    def action_step(self) -> None:
        if self._explorer is not None and self.view is not None:
            if len(self.view.steps_done) == self.view.step_total:
                self._explorer.reset_steps()  # n after the last node starts over
        self._act("step_backward")

    def action_backward(self) -> None:
        self._act("backward")

    def action_toggle_retain(self) -> None:
        self._retain = not self._retain
        self._act("set_retain_graph", self._retain)

    def action_zero_grad(self) -> None:
        self._act("zero_grad")

    def action_forward(self) -> None:
        self._act("forward")

    def action_edit(self) -> None:
        self.query_one("#grad-expr", Input).focus()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_presets(self) -> None:
        try:
            presets = _graph_module().load_expression_presets()
        except ValueError as exc:
            self._message(f"error: {exc}", "error")
            return

        def chosen(name: str | None) -> None:
            if name is not None:
                self._load_preset(name)

        self.app.push_screen(PresetPicker(presets), chosen)

    # -- rendering ----------------------------------------------------------

    def _message(self, text: str, kind: str) -> None:
        widget = self.query_one("#grad-message", Static)
        widget.set_classes(kind)
        widget.update(Text(text))

    def _show_error(self, field: str, exc: ExpressionError) -> None:
        self._message(f"{field}: {exc}\n{exc.pointer()}", "error")

    def _render_view(self, view: GraphView) -> None:
        self.view = view
        self._render_tree(view)
        self._render_checks(view)
        steps = self.query_one("#grad-steps", Static)
        lines = [f"{s.formula} = {s.numbers} = {_num(s.value)}" for s in view.steps_done[-4:]]
        steps.update(Text("\n".join(lines) or "n: walk the backward pass one node at a time"))
        status = (
            f"retain_graph={view.retain_graph} · passes {view.backward_passes} · "
            f"graph {'freed' if view.graph_freed else 'alive'} · "
            f"step {len(view.steps_done)}/{view.step_total} » {view.last_code}"
        )
        self.query_one("#grad-status", Static).update(Text(status))
        if view.error:
            self._message(f"backward failed ({view.note}):\nRuntimeError: {view.error}", "error")
        elif view.note or view.warnings:
            self._message("\n".join(filter(None, [view.note, *view.warnings])), "note")
        else:
            self._message("", "")

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
        table: DataTable[str] = self.query_one("#grad-checks", DataTable)
        table.clear()
        for row in view.checks:
            table.add_row(
                row.name,
                _num(row.value),
                _num(row.autograd),
                row.symbolic_note
                if row.symbolic is None and row.symbolic_note
                else _num(row.symbolic),
                _delta(row.symbolic_minus_autograd),
                _num(row.finite_diff),
                _delta(row.fd_minus_autograd),
                row.symbolic_formula,
                key=row.name,
            )

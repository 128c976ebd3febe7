"""What ``GradExplorer`` hands out: frozen, tensor-free views of the graph and its checks.

The UI and the CLI only ever see these, so they handle floats and text, never tensors.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EdgeView:
    """The local derivative d(node)/d(parent) on one edge of the graph."""

    parent: str
    formula: str  # in terms of node names, e.g. "-1/c**2"
    value: float


@dataclass(frozen=True)
class NodeView:
    """One node: an input or one elementary operation, with its value and ``.grad``."""

    name: str
    op: str  # "input", "add", "exp", ...
    formula: str  # "c = 1 + b"; for an input just its name
    value: float
    grad: float | None  # retained .grad (accumulates); None before backward / no grad
    requires_grad: bool
    edges: tuple[EdgeView, ...]
    is_output: bool


@dataclass(frozen=True)
class CheckRow:
    """d(output)/d(input) three ways, with each difference from autograd.

    ``.grad`` adds up over backward passes, the references are one derivative: the
    differences compare them with ``per_pass`` (``.grad`` / ``passes``)."""

    name: str
    value: float
    autograd: float | None  # the input's .grad as PyTorch holds it now (all passes)
    symbolic: float | None  # sympy's derivative evaluated at the point
    symbolic_formula: str  # "ds/dx = exp(-x)/(1 + exp(-x))**2"
    finite_diff: float  # central difference in float64
    symbolic_minus_autograd: float | None  # symbolic - per_pass
    fd_minus_autograd: float | None  # finite_diff - per_pass
    # why ``symbolic`` is None: "undefined at this point", "too large for a symbolic
    # derivative", ...; the sympy column shows it in place of a number
    symbolic_note: str | None = None
    passes: int = 1  # backward passes summed in .grad since the last zero_grad
    per_pass: float | None = None  # .grad / passes: one derivative; None with no pass


@dataclass(frozen=True)
class BackwardStep:
    """One node of the backward pass done by hand with the chain rule."""

    index: int
    node: str
    formula: str  # "ds/db = ds/dc * 1"
    numbers: str  # "-0.104993585 * 1"
    value: float  # the chain-rule product
    autograd: float | None  # torch.autograd.grad's value for the same node


@dataclass(frozen=True)
class GraphView:
    """Everything the screen or the CLI shows; plain data only."""

    source: str
    output: str
    output_value: float
    dtype: str
    nodes: tuple[NodeView, ...]  # inputs first, then operations in creation order
    checks: tuple[CheckRow, ...]
    steps_done: tuple[BackwardStep, ...]
    step_total: int
    retain_graph: bool
    backward_passes: int  # backward calls summed in the input .grads since the last zero
    graph_freed: bool  # a backward without retain_graph has freed the saved tensors
    last_code: str  # the PyTorch line the last action stands for
    error: str | None  # PyTorch's own error text from the last failed backward
    note: str | None
    warnings: tuple[str, ...]

    def node(self, name: str) -> NodeView:
        return next(n for n in self.nodes if n.name == name)


def format_number(value: float | None, digits: int = 10) -> str:
    """Numbers for tables: ``None`` stays visible as None (a .grad that was never set)."""
    if value is None:
        return "None"
    return f"{value:.{digits}g}"

"""A scalar expression as a PyTorch computation graph: values, gradients and checks.

``GradExplorer`` builds one tensor per elementary operation of a planned expression
(``plan``: nodes named a, b, c, ... in creation order), calls ``retain_grad()`` on each
so d(output)/d(node) can be read after ``backward()``, and compares the input gradients with
sympy and a central finite difference (``checks``); ``steps`` walks the same backward pass
by hand. Every public method returns a frozen, tensor-free ``GraphView`` (``views``): the
torch objects never leave this module, so the UI and the CLI only handle floats and text.

This is the only explorer module that imports torch. In the TUI it runs on the explorer's
worker thread (``playground.explorer.worker``), never on the UI thread.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

from playground.explorer.checks import ReferenceDerivative, check_rows, reference_derivatives
from playground.explorer.plan import local_derivatives, op_args, op_formula, plan_graph
from playground.explorer.steps import backward_steps
from playground.explorer.values import InputValues
from playground.explorer.views import BackwardStep, CheckRow, EdgeView, GraphView, NodeView

DTYPES = {"float64": torch.float64, "float32": torch.float32}
_TORCH_FUNCS = {
    "exp": torch.exp,
    "log": torch.log,
    "sin": torch.sin,
    "cos": torch.cos,
    "tan": torch.tan,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
}


class GradExplorer:
    """One expression at one point, held as live tensors; methods return ``GraphView``.

    ``backward()`` is a real ``out.backward(retain_graph=...)``: every input ``.grad``
    ADDS the new gradient, a second call on a freed graph raises PyTorch's own error, and
    ``zero_grad()`` does ``x.grad.zero_()``. ``forward()`` builds a fresh graph from the same
    leaf tensors, so their ``.grad`` keeps accumulating, as re-running a notebook cell does.
    """

    def __init__(
        self,
        source: str,
        values: Mapping[str, float] | InputValues,
        *,
        requires_grad: Iterable[str] | None = None,
        retain_graph: bool = False,
        dtype: str = "float64",
    ) -> None:
        plan = plan_graph(source, values, requires_grad)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        self.program = plan.program
        self._ops = plan.ops
        self._output = plan.output
        self.dtype = dtype
        self.values = dict(plan.values)
        self._warnings = plan.warnings
        self._leaves = {
            name: torch.tensor(v, dtype=DTYPES[dtype], requires_grad=name in plan.requires_grad)
            for name, v in self.values.items()
        }
        self.retain_graph = retain_graph
        self._passes = 0
        self._error: str | None = None
        self._note: str | None = None
        self._code = ""
        self._cursor = 0
        self._reference: dict[str, ReferenceDerivative] | None = None
        self._build()
        self._steps = backward_steps(
            self._ops, self._output, self._values(), self._leaves, self._autograd
        )

    @property
    def output(self) -> str:
        return self._output

    # -- actions ------------------------------------------------------------

    def forward(self) -> GraphView:
        """Build the graph again from the leaves (their .grad is kept)."""
        self._build()
        return self.view()

    def _build(self) -> None:
        tensors: dict[str, torch.Tensor] = dict(self._leaves)
        for op in self._ops:
            args = [tensors[a] if isinstance(a, str) else a.value for a in op.args]
            if op.op == "neg":
                result = -args[0]
            elif op.op in _TORCH_FUNCS:
                result = _TORCH_FUNCS[op.op](args[0])
            else:
                result = _torch_binary(op.op, args[0], args[1])
            if result.requires_grad:
                result.retain_grad()  # keep d(output)/d(node) on non-leaf nodes
            tensors[op.name] = result
        self._tensors = tensors
        self._freed = False
        self._cursor = 0
        self._error = None
        self._note = None
        self._code = f"{self.program.source.strip()}  # forward: a new graph"
        self._autograd = self._autograd_grads()

    def backward(self) -> GraphView:
        """``out.backward(retain_graph=...)``: input .grads ADD the gradient, or PyTorch errors."""
        out = self._tensors[self._output]
        self._code = f"{self._output}.backward(retain_graph={self.retain_graph})"
        freed_before = self._freed
        # PyTorch adds the output's own gradient (1) to its retained .grad before it finds
        # the graph freed; a backward that fails must change nothing, so put every .grad back
        before = {n: None if t.grad is None else t.grad.clone() for n, t in self._tensors.items()}
        try:
            out.backward(retain_graph=self.retain_graph)
        except RuntimeError as exc:
            for name, grad in before.items():
                self._tensors[name].grad = grad
            self._error = str(exc)
            self._note = "f runs forward again: a new graph; .grad keeps what it holds"
            return self.view()
        self._error = None
        self._passes += 1
        self._note = (
            "no error although the graph was used: it saved no tensors, so nothing was freed"
            if freed_before
            else None
        )
        self._freed = self._freed or not self.retain_graph
        return self.view()

    def zero_grad(self) -> GraphView:
        """``x.grad.zero_()`` for every input (and retained node grads)."""
        for tensor in self._tensors.values():
            if tensor.grad is not None:
                tensor.grad.zero_()
        self._passes = 0
        self._error = None
        self._note = None
        self._code = "; ".join(
            f"{n}.grad.zero_()" for n, t in self._leaves.items() if t.requires_grad
        )
        return self.view()

    def set_retain_graph(self, on: bool) -> GraphView:
        self.retain_graph = on
        self._note = f"retain_graph={on} for the next backward"
        return self.view()

    def step_backward(self) -> BackwardStep | None:
        """Walk the chain rule one node further; None once every node is done."""
        if self._cursor >= len(self._steps):
            return None
        self._cursor += 1
        return self._steps[self._cursor - 1]

    def reset_steps(self) -> GraphView:
        self._cursor = 0
        return self.view()

    def steps(self) -> tuple[BackwardStep, ...]:
        """The whole hand-made backward pass, output first."""
        return self._steps

    # -- reading ------------------------------------------------------------

    def view(self) -> GraphView:
        nodes = [self._node_view(name, "input", name, ()) for name in self._leaves]
        values = self._values()
        for op in self._ops:
            local = local_derivatives(op, op_args(op, values), values[op.name])
            edges = tuple(
                EdgeView(arg, formula, value)
                for arg, (formula, value) in zip(op.args, local, strict=True)
                if isinstance(arg, str)
            )
            nodes.append(self._node_view(op.name, op.op, op_formula(op), edges))
        return GraphView(
            source=self.program.source,
            output=self._output,
            output_value=values[self._output],
            dtype=self.dtype,
            nodes=tuple(nodes),
            checks=self._check_rows(),
            steps_done=self._steps[: self._cursor],
            step_total=len(self._steps),
            retain_graph=self.retain_graph,
            backward_passes=self._passes,
            graph_freed=self._freed,
            last_code=self._code,
            error=self._error,
            note=self._note,
            warnings=self._warnings + self._value_warnings(values),
        )

    def _values(self) -> dict[str, float]:
        """Every node's forward value, inputs first."""
        return {name: float(t.detach()) for name, t in self._tensors.items()}

    def _node_view(self, name: str, op: str, formula: str, edges: tuple[EdgeView, ...]) -> NodeView:
        tensor = self._tensors[name]
        grad = None if tensor.grad is None else float(tensor.grad)
        return NodeView(
            name,
            op,
            formula,
            float(tensor.detach()),
            grad,
            tensor.requires_grad,
            edges,
            name == self._output,
        )

    def _value_warnings(self, values: Mapping[str, float]) -> tuple[str, ...]:
        return tuple(
            f"{op.name} = {op_formula(op).split(' = ', 1)[1]} is {values[op.name]} (outside its domain?)"
            for op in self._ops
            if not math.isfinite(values[op.name])
        )

    def _check_rows(self) -> tuple[CheckRow, ...]:
        if self._reference is None:  # values never change, so sympy runs once per explorer
            self._reference = reference_derivatives(self._ops, self._output, self.values)
        grads = {
            name: None if leaf.grad is None else float(leaf.grad)
            for name, leaf in self._leaves.items()
        }
        return check_rows(self.values, grads, self._reference, self._passes)

    def _autograd_grads(self) -> dict[str, float | None]:
        """d(output)/d(node) for every node from ``torch.autograd.grad``: one pass, no .grad touched."""
        out = self._tensors[self._output]
        names = [n for n, t in self._tensors.items() if t.requires_grad]
        if not out.requires_grad or not names:
            return {}
        grads = torch.autograd.grad(
            out, [self._tensors[n] for n in names], retain_graph=True, allow_unused=True
        )
        # autograd.grad also fires retain_grad hooks; undo that so .grad shows only backward()
        for op in self._ops:
            self._tensors[op.name].grad = None
        return {n: None if g is None else float(g) for n, g in zip(names, grads, strict=True)}


def _torch_binary(op: str, a, b):  # noqa: ANN001 - tensors or floats
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / b
    return torch.pow(a, b)


def explore(
    source: str, values: Mapping[str, float] | InputValues, **options
) -> tuple[GradExplorer, GraphView]:
    """Build the graph and run one backward: what ``playground grad`` and Enter do."""
    explorer = GradExplorer(source, values, **options)
    return explorer, explorer.backward()

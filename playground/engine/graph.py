"""A scalar expression as a PyTorch computation graph: values, gradients and checks.

``GradExplorer`` builds one tensor per elementary operation of a parsed expression, names
the nodes a, b, c, ... in creation order (as the course does for sigmoid: a = -x,
b = exp(a), c = 1 + b, s = 1/c), calls ``retain_grad()`` on each so d(output)/d(node) can
be read after ``backward()``, and compares the input gradients with sympy and a central
finite difference. Every public method returns a frozen, tensor-free ``GraphView``: the
torch objects never leave this module, so the UI and the CLI only handle floats and text.
"""

from __future__ import annotations

import importlib.resources
import itertools
import math
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from playground.engine.expr import (
    CONST_FUNCS,
    Binary,
    Call,
    Expr,
    ExpressionError,
    InputValues,
    Num,
    Program,
    Unary,
    Var,
    format_plain,
    parse_expression,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DTYPES = {"float64": torch.float64, "float32": torch.float32}
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
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


# ---------------------------------------------------------------- plain views


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
    """d(output)/d(input) three ways, with each difference from autograd."""

    name: str
    value: float
    autograd: float | None  # the input's .grad as PyTorch holds it now
    symbolic: float | None  # sympy's derivative evaluated at the point
    symbolic_formula: str  # "ds/dx = exp(-x)/(1 + exp(-x))**2"
    finite_diff: float  # central difference in float64
    symbolic_minus_autograd: float | None
    fd_minus_autograd: float | None


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


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class _Op:
    """One elementary operation; each arg is a node name or a constant."""

    name: str
    op: str
    args: tuple[str | Num, ...]


def _names(reserved: frozenset[str]) -> Iterator[str]:
    """a, b, ..., z, a1, b1, ... skipping names the user chose."""
    for round_ in itertools.count():
        for letter in "abcdefghijklmnopqrstuvwxyz":
            name = letter if round_ == 0 else f"{letter}{round_}"
            if name not in reserved:
                yield name


def _plan(program: Program) -> tuple[tuple[_Op, ...], str | Num]:
    """Flatten the statements into operations, children before parents."""
    ops: list[_Op] = []
    env: dict[str, str | Num] = {name: name for name in program.inputs}
    fresh = _names(program.reserved_names)

    def emit(expr: Expr, target: str | None) -> str | Num:
        if isinstance(expr, Num):
            return expr
        if isinstance(expr, Var):
            return env[expr.name]
        if isinstance(expr, Binary):
            args: tuple[str | Num, ...] = (emit(expr.left, None), emit(expr.right, None))
        elif isinstance(expr, Unary):
            args = (emit(expr.operand, None),)
        else:
            args = (emit(expr.arg, None),)
        op = expr.func if isinstance(expr, Call) else expr.op
        name = target or next(fresh)
        ops.append(_Op(name, op, args))
        return name

    result: str | Num = Num(0.0)
    for statement in program.statements:
        result = emit(statement.expr, statement.target)
        if statement.target:
            env[statement.target] = result
    return tuple(ops), result


def _text(arg: str | Num) -> str:
    if isinstance(arg, str):
        return arg
    text = format_plain(arg.value)
    return f"({text})" if arg.value < 0 else text


def _op_formula(op: _Op) -> str:
    texts = [_text(a) for a in op.args]
    if op.op in _SYMBOLS:
        return f"{op.name} = {texts[0]} {_SYMBOLS[op.op]} {texts[1]}"
    if op.op == "neg":
        return f"{op.name} = -{texts[0]}"
    return f"{op.name} = {op.op}({texts[0]})"


def _safe(fn) -> float:  # noqa: ANN001 - a zero-argument lambda
    """Evaluate a local derivative; a pole or a complex result becomes nan, not a crash."""
    try:
        value = fn()
    except (ArithmeticError, ValueError):
        return math.nan
    return float(value) if not isinstance(value, complex) else math.nan


def _local(op: _Op, vals: list[float], out: float) -> list[tuple[str, float]]:
    """d(op)/d(arg) for every arg, as (formula in node names, value)."""
    t = [_text(a) for a in op.args]
    o = op.name
    a = vals[0]
    if op.op == "add":
        return [("1", 1.0), ("1", 1.0)]
    if op.op == "sub":
        return [("1", 1.0), ("-1", -1.0)]
    if op.op == "mul":
        return [(t[1], vals[1]), (t[0], a)]
    if op.op == "div":
        b = vals[1]
        return [
            (f"1/{t[1]}", _safe(lambda: 1 / b)),
            (f"-{t[0]}/{t[1]}**2", _safe(lambda: -a / b**2)),
        ]
    if op.op == "pow":
        b = vals[1]
        if isinstance(op.args[1], Num):
            dbase = (
                "1"
                if b == 1
                else f"{t[1]}*{t[0]}"
                if b == 2
                else f"{t[1]}*{t[0]}**{_text(Num(b - 1))}"
            )
        else:
            dbase = f"{t[1]}*{t[0]}**({t[1]} - 1)"
        return [
            (dbase, _safe(lambda: b * a ** (b - 1))),
            (f"{t[0]}**{t[1]}*log({t[0]})", _safe(lambda: a**b * math.log(a))),
        ]
    table = {
        "neg": ("-1", lambda: -1.0),
        "exp": (f"exp({t[0]})", lambda: math.exp(a)),
        "log": (f"1/{t[0]}", lambda: 1 / a),
        "sin": (f"cos({t[0]})", lambda: math.cos(a)),
        "cos": (f"-sin({t[0]})", lambda: -math.sin(a)),
        "tan": (f"1 + {o}**2", lambda: 1 + out**2),
        "tanh": (f"1 - {o}**2", lambda: 1 - out**2),
        "sigmoid": (f"{o}*(1 - {o})", lambda: out * (1 - out)),
        "relu": (f"1 if {t[0]} > 0 else 0", lambda: 1.0 if a > 0 else 0.0),
        "sqrt": (f"1/(2*{o})", lambda: 1 / (2 * out)),
        "abs": (f"sign({t[0]})", lambda: math.copysign(1.0, a) if a != 0 else 0.0),
    }
    formula, fn = table[op.op]
    return [(formula, _safe(fn))]


def _evaluate(ops: tuple[_Op, ...], output: str | Num, values: Mapping[str, float]) -> float:
    """Plain-float forward pass (no torch): the finite-difference oracle."""
    env: dict[str, float] = dict(values)
    for op in ops:
        args = [env[a] if isinstance(a, str) else a.value for a in op.args]
        env[op.name] = _safe(lambda op=op, args=args: _apply(op.op, args))
    return env[output] if isinstance(output, str) else output.value


def _apply(op: str, args: list[float]) -> float:
    if op == "neg":
        return -args[0]
    if op in CONST_FUNCS:
        return CONST_FUNCS[op](args[0])
    a, b = args
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / b
    return a**b


def _symbolic(ops: tuple[_Op, ...], output: str | Num, inputs: Iterable[str], out: str, point):
    """sympy: d(output)/d(input) as a formula and as a number at ``point``, per input."""
    import sympy as sp  # imported here: it is slow to load and only the checks need it

    syms = {name: sp.Symbol(name, real=True) for name in inputs}
    funcs = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "pow": lambda a, b: a**b,
        "neg": lambda a: -a,
        "exp": sp.exp,
        "log": sp.log,
        "sin": sp.sin,
        "cos": sp.cos,
        "tan": sp.tan,
        "tanh": sp.tanh,
        "sigmoid": lambda a: 1 / (1 + sp.exp(-a)),
        # relu'(0) = 0 in PyTorch; Piecewise with <= gives the same, Heaviside would not
        "relu": lambda a: sp.Piecewise((0, a <= 0), (a, True)),
        "sqrt": sp.sqrt,
        "abs": sp.Abs,
    }

    def number(num: Num):
        if num.exact is not None:
            return sp.Rational(num.exact.numerator, num.exact.denominator)
        return sp.Float(num.value)

    env: dict[str, object] = dict(syms)
    for op in ops:
        env[op.name] = funcs[op.op](*(env[a] if isinstance(a, str) else number(a) for a in op.args))
    expr = env[output] if isinstance(output, str) else number(output)
    subs = {syms[name]: sp.Float(value, 30) for name, value in point.items() if name in syms}
    results: dict[str, tuple[float | None, str]] = {}
    for name, sym in syms.items():
        derivative = sp.diff(expr, sym)
        value: float | None
        try:
            value = float(derivative.evalf(30, subs=subs))
        except (TypeError, ValueError):
            try:
                c = complex(derivative.evalf(30, subs=subs))
                value = c.real if abs(c.imag) < 1e-12 else None
            except (TypeError, ValueError):
                value = None
        results[name] = (value, f"d{out}/d{name} = {sp.sstr(derivative)}")
    return results


def _finite_difference(ops, output, values: Mapping[str, float], name: str) -> float:
    """Central difference (f(v+h) - f(v-h)) / 2h in float64; error ~ h**2."""
    h = 1e-5 * max(1.0, abs(values[name]))
    up = dict(values, **{name: values[name] + h})
    down = dict(values, **{name: values[name] - h})
    return (_evaluate(ops, output, up) - _evaluate(ops, output, down)) / (2 * h)


# ---------------------------------------------------------------- the explorer


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
        if isinstance(values, InputValues):
            requires_grad = values.requires_grad if requires_grad is None else requires_grad
            values = values.as_dict()
        self.program = parse_expression(source)
        self._ops, output = _plan(self.program)
        if isinstance(output, Num):
            raise ExpressionError(
                "the output is a constant; it needs an input such as x", 1, 1, source
            )
        self._output = output
        inputs = self.program.inputs
        missing = [name for name in inputs if name not in values]
        if missing:
            raise ExpressionError(
                f"no value for {', '.join(missing)}; give e.g. {missing[0]}=1", 1, 1, source
            )
        grad_names = set(inputs if requires_grad is None else requires_grad)
        unknown = sorted(grad_names - set(inputs))
        if unknown:
            raise ExpressionError(
                f"requires_grad names {', '.join(unknown)} are not inputs", 1, 1, source
            )
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        self.dtype = dtype
        self.values = {name: float(values[name]) for name in inputs}
        self._warnings = tuple(
            f"'{name}' is not an input; ignored" for name in values if name not in inputs
        )
        self._leaves = {
            name: torch.tensor(v, dtype=DTYPES[dtype], requires_grad=name in grad_names)
            for name, v in self.values.items()
        }
        self.retain_graph = retain_graph
        self._passes = 0
        self._error: str | None = None
        self._note: str | None = None
        self._code = ""
        self._cursor = 0
        self._checks: dict[str, tuple[float | None, str, float]] | None = None
        self._build()
        self._steps = self._walk()

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
        self._reference = self._autograd_reference()

    def backward(self) -> GraphView:
        """``out.backward(retain_graph=...)``: input .grads ADD the gradient, or PyTorch errors."""
        out = self._tensors[self._output]
        self._code = f"{self._output}.backward(retain_graph={self.retain_graph})"
        freed_before = self._freed
        try:
            out.backward(retain_graph=self.retain_graph)
        except RuntimeError as exc:
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
        values = {name: float(t.detach()) for name, t in self._tensors.items()}
        for op in self._ops:
            vals = [values[a] if isinstance(a, str) else a.value for a in op.args]
            local = _local(op, vals, values[op.name])
            edges = tuple(
                EdgeView(arg, formula, value)
                for arg, (formula, value) in zip(op.args, local, strict=True)
                if isinstance(arg, str)
            )
            nodes.append(self._node_view(op.name, op.op, _op_formula(op), edges))
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
            f"{op.name} = {_op_formula(op).split(' = ', 1)[1]} is {values[op.name]} (outside its domain?)"
            for op in self._ops
            if not math.isfinite(values[op.name])
        )

    def _check_rows(self) -> tuple[CheckRow, ...]:
        if self._checks is None:  # values never change, so sympy runs once per explorer
            symbolic = _symbolic(self._ops, self._output, self._leaves, self._output, self.values)
            self._checks = {
                name: (
                    *symbolic[name],
                    _finite_difference(self._ops, self._output, self.values, name),
                )
                for name in self._leaves
            }
        rows = []
        for name, leaf in self._leaves.items():
            sym, formula, fd = self._checks[name]
            auto = None if leaf.grad is None else float(leaf.grad)
            rows.append(
                CheckRow(
                    name=name,
                    value=self.values[name],
                    autograd=auto,
                    symbolic=sym,
                    symbolic_formula=formula,
                    finite_diff=fd,
                    symbolic_minus_autograd=None if auto is None or sym is None else sym - auto,
                    fd_minus_autograd=None if auto is None else fd - auto,
                )
            )
        return tuple(rows)

    def _autograd_reference(self) -> dict[str, float | None]:
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

    def _walk(self) -> tuple[BackwardStep, ...]:
        """The chain rule by hand: d(out)/d(node) = sum over uses of d(out)/d(use) * local."""
        o = self._output
        values = {name: float(t.detach()) for name, t in self._tensors.items()}
        uses: dict[str, list[tuple[str, str, float]]] = {}
        for op in self._ops:
            vals = [values[a] if isinstance(a, str) else a.value for a in op.args]
            for arg, (formula, value) in zip(
                op.args, _local(op, vals, values[op.name]), strict=True
            ):
                if isinstance(arg, str):
                    uses.setdefault(arg, []).append((op.name, formula, value))
        adjoint: dict[str, float] = {o: 1.0}
        steps = [BackwardStep(0, o, f"d{o}/d{o} = 1", "1", 1.0, self._reference.get(o, 1.0))]
        order = [op.name for op in reversed(self._ops)] + list(self._leaves)
        for name in order:
            terms = [u for u in uses.get(name, []) if u[0] in adjoint]
            if name == o or not terms:
                continue  # the output is step 0; unused nodes take no part in backward
            adjoint[name] = sum(adjoint[use] * value for use, _, value in terms)
            formula = " + ".join(f"d{o}/d{use} * {_wrap(f)}" for use, f, _ in terms)
            numbers = " + ".join(f"{_paren(adjoint[use])} * {_paren(v)}" for use, _, v in terms)
            steps.append(
                BackwardStep(
                    len(steps),
                    name,
                    f"d{o}/d{name} = {formula}",
                    numbers,
                    adjoint[name],
                    self._reference.get(name),
                )
            )
        return tuple(steps)


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


def _wrap(formula: str) -> str:
    """Parenthesise a local derivative that is a sum or negative (the seed writes dsda * (-1))."""
    compound = formula.startswith("-") or any(s in formula for s in (" + ", " - ", " if "))
    return f"({formula})" if compound else formula


def _paren(value: float) -> str:
    text = format_number(value)
    return f"({text})" if text.startswith("-") else text


def explore(
    source: str, values: Mapping[str, float] | InputValues, **options
) -> tuple[GradExplorer, GraphView]:
    """Build the graph and run one backward: what ``playground grad`` and Enter do."""
    explorer = GradExplorer(source, values, **options)
    return explorer, explorer.backward()


# ---------------------------------------------------------------- presets


class ExpressionPresetError(ValueError):
    """A malformed entry in presets/expressions.toml; the message names file, preset, field."""


@dataclass(frozen=True)
class ExpressionPreset:
    """A scalar exercise: an expression and the point to evaluate it at."""

    name: str
    title: str
    description: str
    expression: str
    values: InputValues

    @property
    def values_text(self) -> str:
        from playground.engine.expr import format_values

        return format_values(self.values)


def presets_dir() -> Path:
    """presets/ inside an installed wheel, else the repository's top-level presets/."""
    packaged = importlib.resources.files("playground") / "presets"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "presets"


def load_expression_presets(path: Path | None = None) -> tuple[ExpressionPreset, ...]:
    """Read and validate every ``[[preset]]`` of expressions.toml (each must parse)."""
    path = path or presets_dir() / "expressions.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ExpressionPresetError(f"{path}: {exc}") from None
    entries = data.get("preset")
    if not isinstance(entries, list) or not entries:
        raise ExpressionPresetError(f"{path}: expected [[preset]] tables")
    presets: list[ExpressionPreset] = []
    for i, entry in enumerate(entries):
        where = f"{path}: preset #{i + 1} ({entry.get('name', '?')})"
        fields = {}
        for key in ("name", "title", "description", "expression"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ExpressionPresetError(f"{where}: field '{key}' must be a non-empty string")
            fields[key] = entry[key]
        raw = entry.get("values")
        if not isinstance(raw, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw.values()
        ):
            raise ExpressionPresetError(f"{where}: field 'values' must be a table of numbers")
        requires = entry.get("requires_grad")
        if requires is not None and not (
            isinstance(requires, list) and all(isinstance(n, str) for n in requires)
        ):
            raise ExpressionPresetError(f"{where}: field 'requires_grad' must be a list of names")
        values = InputValues(
            tuple((k, float(v)) for k, v in raw.items()),
            None if requires is None else tuple(requires),
        )
        try:
            GradExplorer(fields["expression"], values)
        except ExpressionError as exc:
            raise ExpressionPresetError(f"{where}: field 'expression': {exc}") from None
        if any(p.name == fields["name"] for p in presets):
            raise ExpressionPresetError(f"{where}: duplicate name")
        presets.append(ExpressionPreset(values=values, **fields))
    return tuple(presets)


def find_expression_preset(name: str, path: Path | None = None) -> ExpressionPreset:
    presets = load_expression_presets(path)
    for preset in presets:
        if preset.name == name:
            return preset
    known = ", ".join(p.name for p in presets)
    raise ExpressionPresetError(f"no expression preset named {name!r}; known: {known}")

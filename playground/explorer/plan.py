"""An expression flattened into elementary operations, checked against its input values.

``plan_graph`` turns the user's text and values into a ``GraphPlan``: one ``Op`` per
operation, named a, b, c, ... in creation order (as the course does for sigmoid: a = -x,
b = exp(a), c = 1 + b, s = 1/c), children before parents. ``op_formula`` and
``local_derivatives`` give each operation's text and d(op)/d(arg) in those node names.

No torch here: the explorer builds tensors from a plan, and the preset loader validates
expressions with ``plan_graph`` without loading torch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from playground.explorer.parse import parse_expression
from playground.explorer.tree import Binary, Call, Expr, ExpressionError, Num, Program, Unary, Var
from playground.explorer.values import InputValues, format_plain

_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}


@dataclass(frozen=True)
class Op:
    """One elementary operation; each arg is a node name or a constant."""

    name: str
    op: str
    args: tuple[str | Num, ...]


@dataclass(frozen=True)
class GraphPlan:
    """A checked expression: the operations, the output node and a value for every input."""

    program: Program
    ops: tuple[Op, ...]
    output: str
    values: Mapping[str, float]  # one per input, in the program's input order
    requires_grad: frozenset[str]
    warnings: tuple[str, ...]  # values given for names that are not inputs


def plan_graph(
    source: str,
    values: Mapping[str, float] | InputValues,
    requires_grad: Iterable[str] | None = None,
) -> GraphPlan:
    """Parse and flatten ``source``; raise ``ExpressionError`` if it cannot be evaluated.

    ``requires_grad`` None takes the names an ``InputValues`` carries, failing those every
    input.
    """
    if isinstance(values, InputValues):
        requires_grad = values.requires_grad if requires_grad is None else requires_grad
        values = values.as_dict()
    program = parse_expression(source)
    ops, output = flatten(program)
    if isinstance(output, Num):
        raise ExpressionError("the output is a constant; it needs an input such as x", 1, 1, source)
    inputs = program.inputs
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
    return GraphPlan(
        program=program,
        ops=ops,
        output=output,
        values={name: float(values[name]) for name in inputs},
        requires_grad=frozenset(grad_names),
        warnings=tuple(
            f"'{name}' is not an input; ignored" for name in values if name not in inputs
        ),
    )


def _fresh_names(reserved: frozenset[str]) -> Iterator[str]:
    """a, b, ..., z, a1, b1, ... skipping names the user chose."""
    for round_ in itertools.count():
        for letter in "abcdefghijklmnopqrstuvwxyz":
            name = letter if round_ == 0 else f"{letter}{round_}"
            if name not in reserved:
                yield name


def flatten(program: Program) -> tuple[tuple[Op, ...], str | Num]:
    """Flatten the statements into operations, children before parents."""
    ops: list[Op] = []
    env: dict[str, str | Num] = {name: name for name in program.inputs}
    fresh = _fresh_names(program.reserved_names)

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
        ops.append(Op(name, op, args))
        return name

    result: str | Num = Num(0.0)
    for statement in program.statements:
        result = emit(statement.expr, statement.target)
        if statement.target:
            env[statement.target] = result
    return tuple(ops), result


def arg_text(arg: str | Num) -> str:
    """A node name as is; a constant as plain text, parenthesised if negative."""
    if isinstance(arg, str):
        return arg
    text = format_plain(arg.value)
    return f"({text})" if arg.value < 0 else text


def op_formula(op: Op) -> str:
    """``"c = 1 + b"``: the operation in node names."""
    texts = [arg_text(a) for a in op.args]
    if op.op in _SYMBOLS:
        return f"{op.name} = {texts[0]} {_SYMBOLS[op.op]} {texts[1]}"
    if op.op == "neg":
        return f"{op.name} = -{texts[0]}"
    return f"{op.name} = {op.op}({texts[0]})"


def safe_float(fn: Callable[[], float]) -> float:
    """Evaluate ``fn()``; what is left undefined (a complex result, a domain error) becomes
    nan, not a crash. Poles go through ``div`` and ``power``, which give the IEEE infinity
    that autograd gives too (d log(a)/da at a = 0 is inf, not nan)."""
    try:
        value = fn()
    except OverflowError:  # exp(1000), (1e200)**2: inf in float64, as torch has it
        return math.inf
    except (ArithmeticError, ValueError):
        return math.nan
    return float(value) if not isinstance(value, complex) else math.nan


def div(x: float, y: float) -> float:
    """``x / y`` in IEEE float64, as torch computes it: a nonzero number over 0 is a
    signed inf (the sign of 0 counts), 0/0 is nan."""
    if y != 0:
        return x / y
    if x == 0 or math.isnan(x):
        return math.nan
    return math.copysign(math.inf, x) * math.copysign(1.0, y)


def power(x: float, y: float) -> float:
    """``x ** y`` in IEEE float64: 0 to a negative power is inf (signed for an odd integer
    power of -0), a negative base to a fractional power is nan, overflow is inf."""
    try:
        result = x**y
    except ZeroDivisionError:
        odd = math.isfinite(y) and y.is_integer() and y % 2 == 1
        return math.copysign(math.inf, x) if odd else math.inf
    except OverflowError:
        odd = math.isfinite(y) and y.is_integer() and y % 2 == 1
        return -math.inf if x < 0 and odd else math.inf
    return math.nan if isinstance(result, complex) else float(result)


def _log(x: float) -> float:
    return -math.inf if x == 0 else math.log(x)


def local_derivatives(op: Op, vals: list[float], out: float) -> list[tuple[str, float]]:
    """d(op)/d(arg) for every arg, as (formula in node names, value)."""
    t = [arg_text(a) for a in op.args]
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
            (f"1/{t[1]}", safe_float(lambda: div(1.0, b))),
            (f"-{t[0]}/{t[1]}**2", safe_float(lambda: div(-a, b * b))),
        ]
    if op.op == "pow":
        b = vals[1]
        if isinstance(op.args[1], Num):
            dbase = (
                "1"
                if b == 1
                else f"{t[1]}*{t[0]}"
                if b == 2
                else f"{t[1]}*{t[0]}**{arg_text(Num(b - 1))}"
            )
        else:
            dbase = f"{t[1]}*{t[0]}**({t[1]} - 1)"
        return [
            # torch takes d(a**0)/da as 0, also at a = 0 (not 0 * inf)
            (dbase, 0.0 if b == 0 else safe_float(lambda: b * power(a, b - 1))),
            # torch takes d(a**b)/db as 0 where a = 0 and b >= 0 (not 0 * log(0) = nan)
            (
                f"{t[0]}**{t[1]}*log({t[0]})",
                0.0 if a == 0 and b >= 0 else safe_float(lambda: power(a, b) * _log(a)),
            ),
        ]
    table = {
        "neg": ("-1", lambda: -1.0),
        "exp": (f"exp({t[0]})", lambda: math.exp(a)),
        "log": (f"1/{t[0]}", lambda: div(1.0, a)),
        "sin": (f"cos({t[0]})", lambda: math.cos(a)),
        "cos": (f"-sin({t[0]})", lambda: -math.sin(a)),
        "tan": (f"1 + {o}**2", lambda: 1 + out**2),
        "tanh": (f"1 - {o}**2", lambda: 1 - out**2),
        "sigmoid": (f"{o}*(1 - {o})", lambda: out * (1 - out)),
        "relu": (f"1 if {t[0]} > 0 else 0", lambda: 1.0 if a > 0 else 0.0),
        "sqrt": (f"1/(2*{o})", lambda: div(1.0, 2 * out)),
        "abs": (f"sign({t[0]})", lambda: math.copysign(1.0, a) if a != 0 else 0.0),
    }
    formula, fn = table[op.op]
    return [(formula, safe_float(fn))]


def op_args(op: Op, values: Mapping[str, float]) -> list[float]:
    """The float value of each arg: a node's from ``values``, a constant's own."""
    return [values[a] if isinstance(a, str) else a.value for a in op.args]

"""The two oracles autograd is checked against: sympy and a central finite difference.

Both work from the torch-free ``GraphPlan`` operations: sympy rebuilds the expression
symbolically and differentiates it, the finite difference re-evaluates it in plain float64
on either side of the point. ``check_rows`` lines them up with the autograd gradients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from playground.engine.expr import CONST_FUNCS, Num
from playground.engine.graph_plan import Op, op_args, safe_float
from playground.engine.graph_views import CheckRow


@dataclass(frozen=True)
class ReferenceDerivative:
    """d(output)/d(input) without autograd; fixed for a given expression and point."""

    symbolic: float | None  # None where sympy's value is not a real number
    symbolic_formula: str
    finite_diff: float


def reference_derivatives(
    ops: tuple[Op, ...], output: str, values: Mapping[str, float]
) -> dict[str, ReferenceDerivative]:
    """Both oracles for every input (the keys of ``values``); sympy makes this slow-ish."""
    symbolic = symbolic_derivatives(ops, output, values)
    return {
        name: ReferenceDerivative(*symbolic[name], finite_difference(ops, output, values, name))
        for name in values
    }


def check_rows(
    values: Mapping[str, float],
    autograd: Mapping[str, float | None],
    reference: Mapping[str, ReferenceDerivative],
) -> tuple[CheckRow, ...]:
    """One row per input: autograd's ``.grad`` next to both oracles and the differences."""
    rows = []
    for name, value in values.items():
        ref = reference[name]
        auto = autograd[name]
        sym = ref.symbolic
        rows.append(
            CheckRow(
                name=name,
                value=value,
                autograd=auto,
                symbolic=sym,
                symbolic_formula=ref.symbolic_formula,
                finite_diff=ref.finite_diff,
                symbolic_minus_autograd=None if auto is None or sym is None else sym - auto,
                fd_minus_autograd=None if auto is None else ref.finite_diff - auto,
            )
        )
    return tuple(rows)


def symbolic_derivatives(
    ops: tuple[Op, ...], output: str, point: Mapping[str, float]
) -> dict[str, tuple[float | None, str]]:
    """sympy: d(output)/d(input) as a formula and as a number at ``point``, per input."""
    import sympy as sp  # imported here: it is slow to load and only the checks need it

    syms = {name: sp.Symbol(name, real=True) for name in point}
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
    expr = env[output]
    subs = {syms[name]: sp.Float(value, 30) for name, value in point.items()}
    results: dict[str, tuple[float | None, str]] = {}
    for name, sym in syms.items():
        derivative = sp.diff(expr, sym)
        results[name] = (
            _real(derivative.evalf(30, subs=subs)),
            f"d{output}/d{name} = {sp.sstr(derivative)}",
        )
    return results


def _real(number) -> float | None:  # noqa: ANN001 - a sympy number
    """A sympy value as a float; a complex one only if its imaginary part is negligible."""
    try:
        return float(number)
    except (TypeError, ValueError):
        try:
            c = complex(number)
        except (TypeError, ValueError):
            return None
        return c.real if abs(c.imag) < 1e-12 else None


def finite_difference(
    ops: tuple[Op, ...], output: str, values: Mapping[str, float], name: str
) -> float:
    """Central difference (f(v+h) - f(v-h)) / 2h in float64; error ~ h**2."""
    h = 1e-5 * max(1.0, abs(values[name]))
    up = dict(values, **{name: values[name] + h})
    down = dict(values, **{name: values[name] - h})
    return (_evaluate(ops, output, up) - _evaluate(ops, output, down)) / (2 * h)


def _evaluate(ops: tuple[Op, ...], output: str, values: Mapping[str, float]) -> float:
    """Plain-float forward pass (no torch): the finite-difference oracle."""
    env: dict[str, float] = dict(values)
    for op in ops:
        args = op_args(op, env)
        env[op.name] = safe_float(lambda op=op, args=args: _apply(op.op, args))
    return env[output]


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

"""The two oracles autograd is checked against: sympy and a central finite difference.

Both work from the torch-free ``GraphPlan`` operations: sympy rebuilds the expression
symbolically and differentiates it, the finite difference re-evaluates it in plain float64
on either side of the point. ``check_rows`` lines them up with the autograd gradients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from playground.explorer.parse import CONST_FUNCS
from playground.explorer.plan import Op, op_args
from playground.explorer.tree import Num
from playground.explorer.views import CheckRow


@dataclass(frozen=True)
class ReferenceDerivative:
    """d(output)/d(input) without autograd; fixed for a given expression and point."""

    symbolic: float | None  # None where sympy gives no real number here (see the note)
    symbolic_formula: str
    finite_diff: float
    symbolic_note: str | None = None  # why ``symbolic`` is None


def reference_derivatives(
    ops: tuple[Op, ...], output: str, values: Mapping[str, float]
) -> dict[str, ReferenceDerivative]:
    """Both oracles for every input (the keys of ``values``); sympy makes this slow-ish."""
    symbolic = symbolic_derivatives(ops, output, values)
    return {
        name: ReferenceDerivative(
            symbolic[name].value,
            symbolic[name].formula,
            finite_difference(ops, output, values, name),
            symbolic[name].note,
        )
        for name in values
    }


def check_rows(
    values: Mapping[str, float],
    autograd: Mapping[str, float | None],
    reference: Mapping[str, ReferenceDerivative],
    passes: int = 1,
) -> tuple[CheckRow, ...]:
    """One row per input: autograd's ``.grad`` next to both oracles and the differences.

    ``.grad`` holds the sum of ``passes`` backward passes (each adds the same derivative:
    the point never changes), the oracles one derivative: they are compared with
    ``.grad / passes``. After zero_grad (no pass) there is nothing to compare."""
    rows = []
    for name, value in values.items():
        ref = reference[name]
        auto = autograd[name]
        per_pass = None if auto is None or passes < 1 else auto / passes
        sym = ref.symbolic
        rows.append(
            CheckRow(
                name=name,
                value=value,
                autograd=auto,
                symbolic=sym,
                symbolic_formula=ref.symbolic_formula,
                symbolic_note=ref.symbolic_note,
                finite_diff=ref.finite_diff,
                symbolic_minus_autograd=None if per_pass is None or sym is None else sym - per_pass,
                fd_minus_autograd=None if per_pass is None else ref.finite_diff - per_pass,
                passes=passes,
                per_pass=per_pass,
            )
        )
    return tuple(rows)


# sympy has no timeout, so it is only asked what it can answer quickly. Two static bounds
# on the planned operations: the size of the derivative written out as a tree (a step used
# twice is written twice, as sympy holds it), and the bits of the exact numbers sympy
# could build when inputs cancel (x - x + 3) - it evaluates powers of integers eagerly, and
# nested non-constant powers (x**x**x**x**x) grow those doubly exponentially.
MAX_SYMBOLIC_SIZE = 1000
MAX_SYMBOLIC_BITS = 10_000
TOO_LARGE = "too large for a symbolic derivative"
UNDEFINED = "undefined at this point"
NOT_REAL = "not a real number here"
OVERFLOW = "too large to evaluate here"


@dataclass(frozen=True)
class SymbolicDerivative:
    """sympy's answer for one input: the value at the point, the formula, or why not."""

    value: float | None
    formula: str
    note: str | None = None


def symbolic_limit(ops: tuple[Op, ...], output: str) -> str | None:
    """Why sympy should not differentiate this expression (``TOO_LARGE``), or None.

    Per node, three estimates: its size written out as a tree, the size of its derivative
    (product and chain rules repeat the arguments) and the bits of the exact numbers sympy
    could compute for it.
    """
    cap = MAX_SYMBOLIC_SIZE + 1
    tree: dict[str, int] = {}
    deriv: dict[str, int] = {}
    bits: dict[str, int] = {}

    def size(arg: str | Num) -> tuple[int, int, int]:
        if isinstance(arg, str):  # an input is a symbol - or 0 or 1 where it cancels (x/x)
            return tree.get(arg, 1), deriv.get(arg, 1), bits.get(arg, 1)
        if arg.exact is None:
            return 1, 0, 64  # a sympy Float keeps its precision: it cannot grow
        return 1, 0, arg.exact.numerator.bit_length() + arg.exact.denominator.bit_length()

    for op in ops:
        (ta, da, ba), *rest = (size(a) for a in op.args)
        tb, db, bb = rest[0] if rest else (0, 0, 0)
        if op.op in ("add", "sub"):
            d, n = da + db + 1, max(ba, bb) + 1
        elif op.op == "mul":
            d, n = da + db + ta + tb + 3, ba + bb
        elif op.op == "div":
            d, n = da + db + ta + 2 * tb + 5, ba + bb
        elif op.op == "pow" and isinstance(op.args[1], Num):
            d, n = da + ta + 3, ba * max(1, math.ceil(abs(op.args[1].value)))
        elif op.op == "pow":  # the exponent may itself be an exact number of bb bits
            d, n = da + db + 2 * (ta + tb) + 6, ba << min(bb, 64)
        else:  # f(a)' = f'(a) * a'; sigmoid's derivative holds its argument twice
            d = da + (2 if op.op == "sigmoid" else 1) * ta + 3
            # sympy keeps exp(3), sin(3), ... symbolic: only special values like exp(0) = 1
            # are numbers; sqrt, abs, relu and minus keep a rational's size
            n = ba if op.op in ("neg", "sqrt", "abs", "relu") else 2
        tree[op.name] = min(ta + tb + (4 if op.op == "sigmoid" else 1), cap)  # 1/(1 + exp(-a))
        deriv[op.name] = min(d, cap)
        bits[op.name] = min(n, MAX_SYMBOLIC_BITS + 1)
    if deriv.get(output, 1) > MAX_SYMBOLIC_SIZE or bits.get(output, 1) > MAX_SYMBOLIC_BITS:
        return TOO_LARGE
    return None


def symbolic_derivatives(
    ops: tuple[Op, ...], output: str, point: Mapping[str, float]
) -> dict[str, SymbolicDerivative]:
    """sympy: d(output)/d(input) as a formula and as a number at ``point``, per input.

    Never raises and never runs unbounded: an expression over ``symbolic_limit`` is not
    given to sympy, one whose plain float64 evaluation overflows at the point is
    differentiated but not evaluated there (mpmath would work with astronomically large
    numbers), and a pole (1/x at 0) gives ``UNDEFINED``.
    """
    limit = symbolic_limit(ops, output)
    if limit is not None:
        return {
            name: SymbolicDerivative(None, f"d{output}/d{name}: {limit}", limit) for name in point
        }
    try:
        derivatives = _sympy_derivatives(ops, output, point)
    except (ArithmeticError, TypeError, ValueError, RecursionError):
        note = "sympy could not differentiate it"
        return {
            name: SymbolicDerivative(None, f"d{output}/d{name}: {note}", note) for name in point
        }
    overflow = overflows(ops, point)
    results: dict[str, SymbolicDerivative] = {}
    for name, (derivative, formula) in derivatives.items():
        if overflow:
            results[name] = SymbolicDerivative(None, formula, OVERFLOW)
            continue
        value, note = _evaluate_symbolic(derivative, point)
        results[name] = SymbolicDerivative(value, formula, note)
    return results


def _sympy_derivatives(ops: tuple[Op, ...], output: str, point: Mapping[str, float]) -> dict:
    """Build the expression in sympy and differentiate it: {input: (derivative, formula)}."""
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
    results = {}
    for name, sym in syms.items():
        derivative = sp.diff(expr, sym)
        results[name] = (derivative, f"d{output}/d{name} = {sp.sstr(derivative)}")
    return results


def _evaluate_symbolic(derivative, point: Mapping[str, float]) -> tuple[float | None, str | None]:  # noqa: ANN001 - a sympy expression
    """The derivative at ``point`` as a float (inf allowed), or None and why not."""
    import sympy as sp

    # xreplace, then evalf: much faster than evalf(subs=...) on a long derivative, and a
    # pole turns into zoo or nan (or ZeroDivisionError inside sympy) rather than a value
    subs = {sp.Symbol(name, real=True): sp.Float(value, 30) for name, value in point.items()}
    try:
        number = derivative.xreplace(subs).evalf(30)
    except (ArithmeticError, TypeError, ValueError):
        return None, UNDEFINED
    if number.has(sp.zoo, sp.nan):
        return None, UNDEFINED
    return _real(number)


def _real(number) -> tuple[float | None, str | None]:  # noqa: ANN001 - a sympy number
    """A sympy value as a float; a complex one only if its imaginary part is negligible."""
    try:
        value = float(number)
    except (TypeError, ValueError):
        try:
            c = complex(number)
        except (TypeError, ValueError):
            return None, UNDEFINED
        if math.isnan(c.real) or math.isnan(c.imag):
            return None, UNDEFINED
        return (c.real, None) if abs(c.imag) < 1e-12 else (None, NOT_REAL)
    return (None, UNDEFINED) if math.isnan(value) else (value, None)


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
    return _forward(ops, values)[output]


def overflows(ops: tuple[Op, ...], values: Mapping[str, float]) -> bool:
    """Whether some operation overflows float64 at ``values``: finite arguments, an
    infinite result that is not a pole (x/0, log(0), 0**-1)."""
    env = _forward(ops, values)
    for op in ops:
        args = op_args(op, env)
        if math.isinf(env[op.name]) and all(map(math.isfinite, args)) and not _pole(op.op, args):
            return True
    return False


def _pole(op: str, args: list[float]) -> bool:
    if op == "div":
        return args[1] == 0
    if op == "log":
        return args[0] == 0
    if op == "pow":
        return args[0] == 0 and args[1] < 0
    return False


def _forward(ops: tuple[Op, ...], values: Mapping[str, float]) -> dict[str, float]:
    """Every node's float64 value with IEEE results as torch gives them: overflow is inf,
    x/0 is inf, log(0) is -inf, a real function outside its domain is nan."""
    env: dict[str, float] = dict(values)
    for op in ops:
        env[op.name] = _apply(op.op, op_args(op, env))
    return env


def _apply(op: str, args: list[float]) -> float:
    a = args[0]
    try:
        if op == "neg":
            return -a
        if op in CONST_FUNCS:
            if op == "log" and a == 0:
                return -math.inf
            return float(CONST_FUNCS[op](a))
        b = args[1]
        if op == "add":
            return a + b
        if op == "sub":
            return a - b
        if op == "mul":
            return a * b
        if op == "div":
            return a / b
        result = a**b
        return math.nan if isinstance(result, complex) else float(result)
    except ZeroDivisionError:  # x/0 or 0**-n: signed inf as IEEE (and torch) give it
        if op == "div":
            return (
                math.nan
                if a == 0 or math.isnan(a)
                else math.copysign(math.inf, a) * (math.copysign(1.0, b))
            )
        return math.copysign(math.inf, a) if _odd_integer(b) else math.inf
    except OverflowError:
        if op == "pow" and a < 0 and _odd_integer(b):
            return -math.inf
        return math.inf
    except ValueError:  # log(-1), sqrt(-1), sin(inf)
        return math.nan


def _odd_integer(v: float) -> bool:
    return math.isfinite(v) and v.is_integer() and v % 2 == 1

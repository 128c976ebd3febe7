"""Parse a scalar expression (or a few ``name = expression`` steps) into a small tree.

The user types Python syntax over named scalar inputs: numbers, ``+ - * / **``, unary
minus and the functions in ``FUNCTIONS``. The text goes through ``ast.parse`` and every
node is checked against a whitelist; nothing is ever passed to ``eval`` or ``exec``.
Anything else gets an ``ExpressionError`` that names the column and says what is allowed.

The tree types and the limits live in ``tree`` and the ``x=1 y=2`` values syntax in
``values``: import each name from the module that defines it. None of these modules imports
torch or textual: the CLI and the UI use them to validate input before any tensor exists.
"""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction

from playground.explorer.tree import (
    ALLOWED,
    FUNCTIONS,
    MAX_CONSTANT,
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_OPERATIONS,
    MAX_SOURCE_CHARS,
    OPERATORS,
    RESERVED_NAMES,
    Binary,
    Call,
    Expr,
    ExpressionError,
    Num,
    Program,
    Statement,
    Unary,
    Var,
)

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
_OP_SYMBOLS = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
}
_NOT_ALLOWED = {
    ast.Attribute: "attribute access ('.name')",
    ast.Lambda: "lambda",
    ast.Subscript: "indexing ('[...]')",
    ast.Compare: "comparisons",
    ast.BoolOp: "'and' / 'or'",
    ast.IfExp: "'... if ... else ...'",
    ast.JoinedStr: "f-strings",
    ast.Starred: "'*' unpacking",
    ast.NamedExpr: "':='",
}


class _Parser:
    """One parse: maps ast positions back to the user's columns and counts operations."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.split("\n")
        # Leading blanks are stripped before ast.parse (Python would call them an indent);
        # remember how many, so columns still point into what the user typed.
        self.shifts = [len(line) - len(line.lstrip(" \t")) for line in self.lines]
        self.code = "\n".join(line.lstrip(" \t") for line in self.lines)
        self.operations = 0
        self.inputs: list[str] = []
        self.assigned: set[str] = set()
        # steps whose value is a number ("c = 2"): a later use is that number, so it folds
        # like a literal and no operation ever has only constant arguments
        self.constants: dict[str, Num] = {}

    def error(self, message: str, node: ast.AST | None = None) -> ExpressionError:
        line = getattr(node, "lineno", 1) or 1
        col = (getattr(node, "col_offset", 0) or 0) + self.shifts[min(line, len(self.shifts)) - 1]
        return ExpressionError(message, col + 1, line, self.source)

    def parse(self) -> Program:
        if len(self.source) > MAX_SOURCE_CHARS:
            raise ExpressionError(
                f"expression too long ({len(self.source)} characters, limit {MAX_SOURCE_CHARS})",
                MAX_SOURCE_CHARS + 1,
                1,
                self.source[:MAX_SOURCE_CHARS],
            )
        if not self.source.strip():
            raise ExpressionError(f"empty expression; {ALLOWED}", 1, 1, self.source)
        try:
            tree = ast.parse(self.code, mode="exec")
        except SyntaxError as exc:
            line = exc.lineno or 1
            col = (exc.offset or 1) - 1 + self.shifts[min(line, len(self.shifts)) - 1]
            msg = (exc.msg or "invalid syntax").replace("invalid syntax", "incomplete or invalid")
            raise ExpressionError(
                f"syntax error: {msg}; {ALLOWED}", col + 1, line, self.source
            ) from None
        except (RecursionError, MemoryError, ValueError) as exc:
            raise ExpressionError(f"cannot parse: {exc}", 1, 1, self.source) from None
        if not tree.body:
            raise ExpressionError(f"empty expression; {ALLOWED}", 1, 1, self.source)
        statements = tuple(
            self.statement(stmt, last=i == len(tree.body) - 1) for i, stmt in enumerate(tree.body)
        )
        return Program(self.source, statements, tuple(self.inputs))

    def statement(self, stmt: ast.stmt, *, last: bool) -> Statement:
        if isinstance(stmt, ast.Expr):
            if not last:
                raise self.error(
                    "only the last step may be a bare expression; name it: 'a = ...'", stmt
                )
            return Statement(None, self.expr(stmt.value, 0))
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                raise self.error("assign to one plain name: 'a = ...'", stmt)
            target = stmt.targets[0]
            expr = self.expr(stmt.value, 0)
            name = self.check_name(target)
            if name in self.inputs:
                raise self.error(f"'{name}' is used as an input before it is assigned", target)
            if name in self.assigned:
                raise self.error(f"'{name}' is assigned twice; pick a new name", target)
            self.assigned.add(name)
            if isinstance(expr, Num):
                self.constants[name] = expr
            return Statement(name, expr)
        raise self.error(
            f"'{type(stmt).__name__}' statements are not allowed; only expressions and "
            "'name = expression' steps",
            stmt,
        )

    def check_name(self, node: ast.Name) -> str:
        name = node.id
        if name.startswith("_"):
            raise self.error(f"names starting with '_' are not allowed: '{name}'", node)
        if name in FUNCTIONS:
            raise self.error(f"'{name}' is a function; call it like {name}(x)", node)
        if name in RESERVED_NAMES:
            raise self.error(f"'{name}' is reserved; pick another name", node)
        return name

    def count(self, node: ast.AST) -> None:
        self.operations += 1
        if self.operations > MAX_OPERATIONS:
            raise self.error(f"too many operations (limit {MAX_OPERATIONS})", node)

    def expr(self, node: ast.expr, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise self.error(f"expression nested too deeply (limit {MAX_DEPTH})", node)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            name = self.check_name(node)
            if name in self.constants:
                return self.constants[name]
            if name not in self.assigned and name not in self.inputs:
                self.inputs.append(name)
            return Var(name)
        if isinstance(node, ast.UnaryOp):
            operand = self.expr(node.operand, depth + 1)
            if isinstance(node.op, ast.UAdd):
                return operand
            if not isinstance(node.op, ast.USub):
                raise self.error(f"unary operator not allowed; {ALLOWED}", node)
            if isinstance(operand, Num):  # -2 is a number, not an operation
                return Num(-operand.value, None if operand.exact is None else -operand.exact)
            self.count(node)
            return Unary("neg", operand)
        if isinstance(node, ast.BinOp):
            return self.binop(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        for kind, what in _NOT_ALLOWED.items():
            if isinstance(node, kind):
                raise self.error(f"{what} is not allowed; {ALLOWED}", node)
        raise self.error(f"'{type(node).__name__}' is not allowed; {ALLOWED}", node)

    def constant(self, node: ast.Constant) -> Num:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(
                f"only real numbers are allowed as constants, not {value!r}"[:120], node
            )
        # abs() first: float() of a 400-digit int raises OverflowError, comparing does not
        if abs(value) > MAX_CONSTANT or not math.isfinite(value):
            raise self.error(f"constant too large (limit {MAX_CONSTANT:g})", node)
        segment = ast.get_source_segment(self.code, node) or repr(value)
        exact = _exact_literal(segment.replace("_", ""))
        if exact is None and isinstance(value, int):
            exact = Fraction(value)
        return Num(float(value), exact)

    def binop(self, node: ast.BinOp, depth: int) -> Expr:
        op_type = type(node.op)
        if op_type is ast.BitXor:
            raise self.error("'^' is XOR in Python; use ** for powers (x**2)", node)
        if op_type not in _BINOPS:
            sym = _OP_SYMBOLS.get(op_type, op_type.__name__)
            raise self.error(
                f"operator '{sym}' is not allowed; allowed operators: {OPERATORS}", node
            )
        op = _BINOPS[op_type]
        left = self.expr(node.left, depth + 1)
        right = self.expr(node.right, depth + 1)
        if op == "pow" and isinstance(right, Num) and abs(right.value) > MAX_EXPONENT:
            raise self.error(f"exponent too large (limit {MAX_EXPONENT:g})", node.right)
        if isinstance(left, Num) and isinstance(right, Num):
            return self.fold(node, op, left, right)
        self.count(node)
        return Binary(op, left, right)

    def fold(self, node: ast.AST, op: str, left: Num, right: Num) -> Num:
        """Constant sub-expressions become one number: exact while the fraction stays small
        (``MAX_EXACT_BITS``), in float64 beyond that, so repeated powers cannot grow without
        bound. A result that overflows float64 or underflows it to 0 is an error."""
        try:
            exact = _fold_exact(op, left.exact, right.exact)
            value = float(exact) if exact is not None else _apply_float(op, left.value, right.value)
        except ZeroDivisionError:
            raise self.error("division by zero in a constant", node) from None
        except (OverflowError, ValueError):
            raise self.error("constant too large or undefined", node) from None
        if not math.isfinite(value):
            raise self.error("constant too large or undefined", node)
        if value == 0 and op in ("mul", "div", "pow") and left.value != 0 and right.value != 0:
            raise self.error("constant too small: it underflows to 0 in float64", node)
        return Num(value, exact)

    def call(self, node: ast.Call, depth: int) -> Expr:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                raise self.error(f"attribute access ('.name') is not allowed; {ALLOWED}", node.func)
            raise self.error(f"only the functions {', '.join(FUNCTIONS)} can be called", node)
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.error(f"unknown function '{name}'; allowed: {', '.join(FUNCTIONS)}", node)
        if node.keywords or len(node.args) != 1:
            raise self.error(f"{name}() takes exactly one argument", node)
        arg = self.expr(node.args[0], depth + 1)
        if isinstance(arg, Num):
            try:
                value = CONST_FUNCS[name](arg.value)
            except (OverflowError, ValueError):
                raise self.error(f"{name}({arg.text}) is undefined or too large", node) from None
            return Num(value, None)
        self.count(node)
        return Call(name, arg)


# Exact constants (kept as fractions so sympy shows 1/3, not 0.333...) are bounded: a
# numerator or denominator longer than this falls back to float64. Every exact operation
# then works on numbers of at most this many bits, so folding stays fast.
MAX_EXACT_BITS = 1100
_EXPONENT = re.compile(r"[eE]([-+]?\d+)$")


def _small(exact: Fraction) -> Fraction | None:
    """``exact`` if it fits ``MAX_EXACT_BITS``, else None (the caller uses the float)."""
    if max(exact.numerator.bit_length(), exact.denominator.bit_length()) > MAX_EXACT_BITS:
        return None
    return exact


def _exact_literal(text: str) -> Fraction | None:
    """A decimal literal as an exact fraction; None for hex/octal/binary or a long one.

    The exponent is checked first: ``Fraction("1e-99999999")`` would build 10**99999999.
    """
    match = _EXPONENT.search(text)
    if match and abs(int(match.group(1))) > MAX_EXACT_BITS:
        return None
    try:
        exact = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    return _small(exact)


def _fold_exact(op: str, a: Fraction | None, b: Fraction | None) -> Fraction | None:
    """``a op b`` exactly, or None when an operand is inexact, the result is not rational
    or it would exceed ``MAX_EXACT_BITS`` (checked before an exact power is computed)."""
    if a is None or b is None:
        return None
    if op == "add":
        return _small(a + b)
    if op == "sub":
        return _small(a - b)
    if op == "mul":
        return _small(a * b)
    if op == "div":
        return _small(a / b)
    if b.denominator != 1 or a == 0:
        return None
    size = max(a.numerator.bit_length(), a.denominator.bit_length())
    if size * abs(b.numerator) > MAX_EXACT_BITS:
        return None
    return _small(a**b.numerator)


def _apply_float(op: str, a: float, b: float) -> float:
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / b
    result = a**b
    if isinstance(result, complex):
        raise ValueError("complex result")
    return float(result)


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


CONST_FUNCS = {
    "exp": math.exp,
    "log": math.log,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "tanh": math.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda v: max(v, 0.0),
    "sqrt": math.sqrt,
    "abs": abs,
}


def parse_expression(source: str) -> Program:
    """Parse ``source``; raise ``ExpressionError`` (with a column) if it is not allowed."""
    return _Parser(source.replace("\r\n", "\n").replace("\r", "\n")).parse()

"""Parse a scalar expression (or a few ``name = expression`` steps) into a small tree.

The user types Python syntax over named scalar inputs: numbers, ``+ - * / **``, unary
minus and the functions in ``FUNCTIONS``. The text goes through ``ast.parse`` and every
node is checked against a whitelist; nothing is ever passed to ``eval`` or ``exec``.
Anything else gets an ``ExpressionError`` that names the column and says what is allowed.

This module imports neither torch nor textual: the CLI and the UI use it to validate input
before any tensor exists.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from fractions import Fraction

FUNCTIONS: tuple[str, ...] = (
    "exp",
    "log",
    "sin",
    "cos",
    "tan",
    "tanh",
    "sigmoid",
    "relu",
    "sqrt",
    "abs",
)
OPERATORS = "+ - * / ** and unary -"
ALLOWED = (
    f"allowed: numbers, input names, {OPERATORS}, parentheses, "
    f"the functions {', '.join(FUNCTIONS)}, and 'name = expression' steps separated by ';'"
)

# Limits keep a pasted monster from stalling the parser, torch or sympy.
MAX_SOURCE_CHARS = 2000
MAX_DEPTH = 64  # nesting of operations in one statement
MAX_OPERATIONS = 200  # graph nodes in total; more would not fit any screen anyway
MAX_CONSTANT = 1e15  # largest literal number
MAX_EXPONENT = 100.0  # largest constant exponent in ``**``
RESERVED_NAMES = frozenset({"requires_grad"})  # a keyword of the values syntax


class ExpressionError(ValueError):
    """A bad expression or value list; ``col`` and ``line`` are 1-based."""

    def __init__(self, message: str, col: int = 1, line: int = 1, source: str = "") -> None:
        self.message = message
        self.col = max(1, col)
        self.line = max(1, line)
        self.source = source
        where = f"col {self.col}" if "\n" not in source else f"line {self.line}, col {self.col}"
        super().__init__(f"{message} ({where})")

    def pointer(self) -> str:
        """The offending source line with a caret under the column."""
        lines = self.source.split("\n") if self.source else [""]
        text = lines[min(self.line, len(lines)) - 1]
        return f"{text}\n{' ' * (self.col - 1)}^"


@dataclass(frozen=True)
class Num:
    """A constant; ``exact`` keeps integers and decimals exact for sympy."""

    value: float
    exact: Fraction | None = None

    @property
    def text(self) -> str:
        if self.exact is not None and self.exact.denominator == 1:
            return str(self.exact.numerator)
        return repr(self.value)


@dataclass(frozen=True)
class Var:
    """A name: an input, or the result of an earlier ``name = ...`` step."""

    name: str


@dataclass(frozen=True)
class Unary:
    """Unary minus (``op`` is always ``"neg"``)."""

    op: str
    operand: Expr


@dataclass(frozen=True)
class Binary:
    """``op`` is one of add, sub, mul, div, pow."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call:
    """One of ``FUNCTIONS`` applied to one argument."""

    func: str
    arg: Expr


Expr = Num | Var | Unary | Binary | Call


@dataclass(frozen=True)
class Statement:
    """``target = expr``; ``target`` is None for a bare expression (only the last one)."""

    target: str | None
    expr: Expr


@dataclass(frozen=True)
class Program:
    """A parsed expression: steps in order, the last one is the output."""

    source: str
    statements: tuple[Statement, ...]
    inputs: tuple[str, ...]  # free names, in order of first appearance

    @property
    def output_name(self) -> str | None:
        return self.statements[-1].target

    @property
    def reserved_names(self) -> frozenset[str]:
        """Names the user chose; generated node names must avoid them."""
        targets = {s.target for s in self.statements if s.target}
        return frozenset(self.inputs) | frozenset(targets)


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
        if not math.isfinite(float(value)) or abs(value) > MAX_CONSTANT:
            raise self.error(f"constant too large (limit {MAX_CONSTANT:g})", node)
        segment = ast.get_source_segment(self.code, node) or repr(value)
        try:
            exact: Fraction | None = Fraction(segment.replace("_", ""))
        except (ValueError, ZeroDivisionError):
            exact = Fraction(value) if isinstance(value, int) else None
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
        """Constant sub-expressions become one number (exact where Fraction can be)."""
        try:
            exact: Fraction | None = None
            if left.exact is not None and right.exact is not None:
                if op == "add":
                    exact = left.exact + right.exact
                elif op == "sub":
                    exact = left.exact - right.exact
                elif op == "mul":
                    exact = left.exact * right.exact
                elif op == "div":
                    exact = left.exact / right.exact
                elif right.exact.denominator == 1 and left.exact != 0:
                    exact = left.exact ** int(right.exact)
            if exact is not None:
                value = float(exact)
            else:
                value = _apply_float(op, left.value, right.value)
        except ZeroDivisionError:
            raise self.error("division by zero in a constant", node) from None
        except (OverflowError, ValueError):
            raise self.error("constant too large or undefined", node) from None
        if not math.isfinite(value):
            raise self.error("constant too large or undefined", node)
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


@dataclass(frozen=True)
class InputValues:
    """Values typed as ``x=1 y=2``; ``requires_grad`` None means every input."""

    values: tuple[tuple[str, float], ...]
    requires_grad: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, float]:
        return dict(self.values)


_NAME = re.compile(r"[A-Za-z]\w*")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_NAME_LIST = re.compile(r"[A-Za-z]\w*(?:\s*,\s*[A-Za-z]\w*)*")


def parse_values(text: str) -> InputValues:
    """Parse ``"x=1 y=2, z=-3e-2 requires_grad=w,b"``; columns in errors are 1-based."""
    values: dict[str, float] = {}
    requires: tuple[str, ...] | None = None
    i = 0

    def fail(message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, pos + 1, 1, text)

    while True:
        while i < len(text) and text[i] in " \t\n,;":
            i += 1
        if i >= len(text):
            break
        name_match = _NAME.match(text, i)
        if not name_match:
            raise fail("expected 'name=number', e.g. x=1 y=2", i)
        name = name_match.group()
        i = name_match.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i >= len(text) or text[i] != "=":
            raise fail(f"expected '=' after '{name}'", i)
        i += 1
        while i < len(text) and text[i] in " \t":
            i += 1
        if name == "requires_grad":
            list_match = _NAME_LIST.match(text, i)
            if not list_match:
                raise fail("expected names after requires_grad=, e.g. requires_grad=w,b", i)
            requires = tuple(n.strip() for n in list_match.group().split(","))
            i = list_match.end()
            continue
        num_match = _NUMBER.match(text, i)
        if not num_match:
            raise fail(f"expected a number for '{name}'", i)
        value = float(num_match.group())
        if not math.isfinite(value) or abs(value) > MAX_CONSTANT:
            raise fail(f"value of '{name}' too large (limit {MAX_CONSTANT:g})", i)
        if name in values:
            raise fail(f"'{name}' given twice", name_match.start())
        values[name] = value
        i = num_match.end()
        if i < len(text) and text[i] not in " \t\n,;":
            raise fail(f"unexpected '{text[i]}' after the value of '{name}'", i)
    return InputValues(tuple(values.items()), requires)


def format_values(values: InputValues) -> str:
    """The inverse of ``parse_values``: ``x=1 y=2 requires_grad=w,b``."""
    parts = [f"{name}={format_plain(value)}" for name, value in values.values]
    if values.requires_grad is not None:
        parts.append("requires_grad=" + ",".join(values.requires_grad))
    return " ".join(parts)


def format_plain(value: float) -> str:
    """Shortest exact text for a float: 2.0 -> "2", 0.1 -> "0.1"."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)

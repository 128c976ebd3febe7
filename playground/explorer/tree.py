"""What a parsed expression is: the allowed vocabulary, the limits, the tree and its error.

``parse`` builds these from the user's text; ``values`` shares the error type and the
limits. Plain data only: no torch, no textual.
"""

from __future__ import annotations

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

"""Input values typed as ``x=1 y=2 requires_grad=w,b``: parse them and write them back.

Separate from the expression parser: this is a small hand-written scanner, not ``ast``.
No torch, no textual.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from playground.explorer.tree import MAX_CONSTANT, ExpressionError


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

"""The expression parser: what it accepts, and that hostile input is refused, never run."""

from __future__ import annotations

import builtins

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playground.explorer.parse import parse_expression
from playground.explorer.tree import (
    MAX_SOURCE_CHARS,
    Binary,
    Call,
    ExpressionError,
    Num,
    Unary,
    Var,
)
from playground.explorer.values import InputValues, format_values, parse_values


def test_sigmoid_parses_into_the_seed_operations() -> None:
    program = parse_expression("s = 1/(1 + exp(-x))")
    assert program.inputs == ("x",)
    assert program.output_name == "s"
    expr = program.statements[0].expr
    assert expr == Binary(
        "div", Num(1.0, 1), Binary("add", Num(1.0, 1), Call("exp", Unary("neg", Var("x"))))
    )


def test_multi_statement_system_has_free_inputs_and_named_steps() -> None:
    program = parse_expression("x = 2*a + 3*b; y = 5*a*a + 3*b*b*b\nz = 2*x + 3*y")
    assert program.inputs == ("a", "b")
    assert [s.target for s in program.statements] == ["x", "y", "z"]
    assert program.reserved_names == {"a", "b", "x", "y", "z"}


def test_constants_fold_and_stay_exact() -> None:
    expr = parse_expression("-2*x + 1/3*x").statements[0].expr
    assert isinstance(expr, Binary)
    assert expr.left == Binary("mul", Num(-2.0, -2), Var("x"))
    third = expr.right.left
    assert (
        isinstance(third, Num)
        and third.exact == pytest.approx(1 / 3)
        and third.exact.denominator == 3
    )


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("__import__('os').system('touch /tmp/pwned')", "attribute access"),
        ("__import__('os')", "unknown function '__import__'"),
        ("x.real", "attribute access"),
        ("(lambda: 1)()", "only the functions"),
        ("lambda: x", "lambda is not allowed"),
        ("foo(x)", "unknown function 'foo'"),
        ("exp(x, 2)", "exactly one argument"),
        ("x +", "syntax error"),
        ("x**1000", "exponent too large"),
        ("9**9**9", "exponent too large"),
        ("2**(10**10)", "exponent too large"),
        ("x * 1e300", "constant too large"),
        ("x^2", "use ** for powers"),
        ("x // 2", "operator '//' is not allowed"),
        ("x[0]", "indexing"),
        ("'a' + x", "only real numbers"),
        ("True * x", "only real numbers"),
        ("x if x > 0 else 1", "if ... else"),
        ("import os", "statements are not allowed"),
        ("_secret + 1", "names starting with '_'"),
        ("exp + 1", "is a function"),
        ("x = 1; x = 2", "assigned twice"),
        ("y = x + 1; x = 3", "used as an input before"),
        ("x + 1; y", "only the last step"),
        ("x / 0 + 1/0", "division by zero"),
        ("", "empty expression"),
        ("-(" * 80 + "x" + ")" * 80, "nested too deeply"),
        ("; ".join(f"v{i} = x+x+x+x" for i in range(70)), "too many operations"),
        ("x" * (MAX_SOURCE_CHARS + 1), "expression too long"),
    ],
)
def test_bad_input_is_rejected_with_a_message(
    source: str, fragment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the parser must never evaluate user text")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    with pytest.raises(ExpressionError) as info:
        parse_expression(source)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_errors_point_at_the_column() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression("x +")
    assert info.value.col == 4
    assert "allowed:" in info.value.message
    with pytest.raises(ExpressionError) as info:
        parse_expression("1 + sin(x) + os.getcwd()")
    assert info.value.col == 14
    assert info.value.pointer() == "1 + sin(x) + os.getcwd()\n             ^"


def test_error_columns_count_the_users_leading_blanks() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression("   x + foo(1)")
    assert info.value.col == 8


def test_multiline_errors_name_the_line() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression("a = x*2\nb = a ^ 2")
    assert (info.value.line, info.value.col) == (2, 5)
    assert "line 2" in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_either_parses_or_raises_expression_error(text: str) -> None:
    try:
        parse_expression(text)
    except ExpressionError:
        pass


def test_values_accept_spaces_commas_and_requires_grad() -> None:
    parsed = parse_values("x=1 y = 2, z=-3e-2 requires_grad=w, b")
    assert parsed == InputValues((("x", 1.0), ("y", 2.0), ("z", -0.03)), ("w", "b"))
    assert format_values(parsed) == "x=1 y=2 z=-0.03 requires_grad=w,b"
    assert parse_values("") == InputValues(())


@pytest.mark.parametrize(
    ("text", "col", "fragment"),
    [
        ("x=1 y", 6, "expected '='"),
        ("x=abc", 3, "expected a number"),
        ("x=1 x=2", 5, "given twice"),
        ("x=1e999", 3, "too large"),
        ("x=1) ", 4, "unexpected ')'"),
        ("=1", 1, "expected 'name=number'"),
    ],
)
def test_bad_values_point_at_the_column(text: str, col: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_values(text)
    assert info.value.col == col
    assert fragment in info.value.message

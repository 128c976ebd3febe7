"""Fuzzing the expression box of the autograd explorer: whatever a student types or
pastes, the answer is an ExpressionError with a column (or a graph) - never a crash,
never a hang, never eval.

Each input is tried in a long-lived worker process with a time limit and a memory cap,
so a hang or a memory blow-up is reported as a failure instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.explorer.tree import FUNCTIONS

LIMIT_S = 5.0  # per input; a correct parse takes milliseconds
MEMORY_CAP = 3 << 30

_WORKER = r"""
import builtins, json, resource, sys, traceback
resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
sys.setrecursionlimit(10000)
calls = []
_real = {n: getattr(builtins, n) for n in ("eval", "exec")}
def _spy(name):
    def f(*a, **k):
        caller = sys._getframe(1).f_code.co_filename
        if "playground" in caller.replace("\\", "/").split("/site-packages/")[-1]:
            calls.append(f"{name} from {caller}")
        return _real[name](*a, **k)
    return f
builtins.eval, builtins.exec = _spy("eval"), _spy("exec")
from playground.explorer.parse import parse_expression
from playground.explorer.tree import ExpressionError
explore = None
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    calls.clear()
    try:
        if req["op"] == "parse":
            parse_expression(req["src"])
        else:
            if explore is None:
                from playground.explorer.graph import explore
            explore(req["src"], req["values"])
        out = {"ok": True}
    except ExpressionError as e:
        out = {"ok": False, "expr_error": True, "msg": str(e)}
    except BaseException as e:
        out = {"ok": False, "expr_error": False, "type": type(e).__name__,
               "msg": str(e)[:300], "tb": traceback.format_exc(limit=-3)[-1500:]}
    out["eval"] = list(calls)
    print(json.dumps(out), flush=True)
""".replace("MEMORY_CAP", str(MEMORY_CAP))


class Worker:
    """One python process that parses / explores on request, restarted after a hang."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        first = self._read(60.0)
        assert first == {"ready": True}, first

    def _read(self, timeout: float) -> dict[str, Any] | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        if not line:
            return {"ok": False, "expr_error": False, "type": "worker died", "msg": ""}
        return json.loads(line)

    def ask(self, op: str, src: str, values: dict[str, float] | None = None) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        t0 = time.monotonic()
        self.proc.stdin.write(json.dumps({"op": op, "src": src, "values": values}) + "\n")
        self.proc.stdin.flush()
        out = self._read(LIMIT_S)
        if out is None:
            self.close()
            return {"ok": False, "expr_error": False, "type": "HANG", "msg": f">{LIMIT_S}s"}
        if out.get("type") == "worker died":
            self.close()
        out["seconds"] = time.monotonic() - t0
        return out

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


_worker = Worker()


@pytest.fixture(scope="module", autouse=True)
def _close_worker() -> Iterator[None]:
    yield
    _worker.close()


def check(op: str, src: str, values: dict[str, float] | None = None) -> dict[str, Any]:
    """Only ExpressionError (or success); never another exception, a hang or eval."""
    out = _worker.ask(op, src, values)
    assert not out.get("eval"), f"eval/exec called for {src!r}: {out['eval']}"
    if not out["ok"]:
        assert out["expr_error"], (
            f"{op}({src!r}, {values!r}) raised {out['type']}: {out['msg']}\n{out.get('tb', '')}"
        )
    return out


# --- strategies --------------------------------------------------------------------------

NAMES = st.sampled_from(
    ["x", "y", "w", "b", "a1", "_x", "__class__", "requires_grad", "exp", "eval", "x_y"]
)
NUMBERS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.sampled_from(
        [
            "0",
            "1e15",
            "1e16",
            "1e308",
            "1e309",
            "10" + "0" * 20,
            "1" + "0" * 400,
            "0.1",
            "1_000",
            "0x10",
            "0b1",
            "0o7",
            "1j",
            "2.5e-320",
            ".5",
            "5.",
            "100",
            "101",
            "99.5",
        ]
    ),
)
OTHER_ATOMS = st.sampled_from(
    ["True", "None", "...", '"s"', "b'x'", "f'{x}'", "[x]", "{x}", "{x: 1}", "()", "(x,)"]
)
CALLABLES = st.sampled_from(
    [*FUNCTIONS, "eval", "exec", "open", "__import__", "print", "getattr", "max", "x"]
)
BINOPS = st.sampled_from(
    ["+", "-", "*", "/", "**", "//", "%", "@", "<<", ">>", "^", "&", "|", "<", "==", " and "]
)
UNARY = st.sampled_from(["-", "+", "~", "not "])


def _expressions(max_leaves: int, *, safe: bool = False) -> st.SearchStrategy[str]:
    """Python-looking expressions; ``safe`` keeps to what the explorer allows."""
    if safe:
        leaves = st.one_of(
            st.sampled_from(["x", "y"]),
            st.sampled_from(["0", "1", "2", "0.5", "3", "-1", "10", "1e3"]),
        )
        ops = st.sampled_from(["+", "-", "*", "/", "**"])
        funcs = st.sampled_from(FUNCTIONS)
    else:
        leaves = st.one_of(NAMES, NUMBERS, OTHER_ATOMS)
        ops, funcs = BINOPS, CALLABLES

    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        parts = [
            st.tuples(children, ops, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(funcs, children).map(lambda t: f"{t[0]}({t[1]})"),
        ]
        if safe:
            parts.append(children.map(lambda c: f"-({c})"))
        else:
            parts += [
                st.tuples(UNARY, children).map(lambda t: f"{t[0]}{t[1]}"),
                st.tuples(funcs, children, children).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
                st.tuples(funcs, children).map(lambda t: f"{t[0]}(x={t[1]})"),
                st.tuples(children, NAMES).map(lambda t: f"({t[0]}).{t[1]}"),
                children.map(lambda c: f"(lambda x: {c})"),
                children.map(lambda c: f"[{c} for x in y]"),
                children.map(lambda c: f"{{x: {c} for x in y}}"),
                st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
                st.tuples(children, children).map(lambda t: f"({t[0]} if x else {t[1]})"),
                children.map(lambda c: f"(z := {c})"),
                children.map(lambda c: f"*{c}"),
                st.tuples(children, st.integers(1, 120)).map(
                    lambda t: "(" * t[1] + t[0] + ")" * t[1]
                ),
                st.tuples(children, st.integers(1, 100)).map(lambda t: "-" * t[1] + t[0]),
                st.tuples(
                    children, st.sampled_from(["10", "100", "101", "1e6", "-200", "0.5"])
                ).map(lambda t: f"({t[0]}) ** {t[1]}"),
            ]
        return st.one_of(*parts)

    return st.recursive(leaves, extend, max_leaves=max_leaves)


def _programs(max_leaves: int, *, safe: bool = False) -> st.SearchStrategy[str]:
    """One expression, or ``name = expr`` steps joined by ';' or newlines."""
    expr = _expressions(max_leaves, safe=safe)
    step = st.tuples(st.sampled_from(["a", "b", "c", "x", "_t", "exp"]), expr).map(
        lambda t: f"{t[0]} = {t[1]}"
    )
    statements = st.lists(st.one_of(step, expr), min_size=1, max_size=4)
    sep = st.sampled_from(["; ", "\n", ";\n  ", "\r\n"])
    joined = st.tuples(statements, sep).map(lambda t: t[1].join(t[0]))
    if safe:
        return st.one_of(expr, joined)
    extra = st.sampled_from(
        ["import os", "del x", "x += 1", "for x in y: pass", "a, b = 1, 2", "pass", "if x: y"]
    )
    with_stmt = st.tuples(joined, extra).map(lambda t: f"{t[1]}; {t[0]}")
    return st.one_of(expr, joined, with_stmt)


PY_CHARS = "xyzwab0123456789.eE_+-*/()%^&|<>=!~@,;:[]{}'\"# \t\n\r\\jlambdaforin"
RANDOM_TEXT = st.one_of(
    st.text(alphabet=PY_CHARS, max_size=80),
    st.text(max_size=40),
    st.text(alphabet=PY_CHARS, min_size=1900, max_size=2100),
)

FUZZ = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(RANDOM_TEXT)
def test_random_text_gives_only_expression_errors(src: str) -> None:
    """Any text typed into the expression box: parsed, or ExpressionError."""
    check("parse", src)


@FUZZ
@given(_programs(max_leaves=25))
def test_random_python_gives_only_expression_errors(src: str) -> None:
    """Python syntax of every kind (calls of disallowed functions, attributes, lambdas,
    comprehensions, walrus, huge numbers and exponents, deep nesting): parsed, or an
    ExpressionError - never another exception, a hang or eval."""
    check("parse", src)


VALUES = st.fixed_dictionaries(
    {
        "x": st.one_of(
            st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e15, -1e15, 1e-300]),
            st.floats(-1e6, 1e6, allow_nan=False),
        ),
        "y": st.floats(-100, 100, allow_nan=False),
    }
)


@FUZZ
@given(_programs(max_leaves=6, safe=True), VALUES)
def test_explore_gives_graphs_or_expression_errors(src: str, values: dict[str, float]) -> None:
    """Building the graph and running backward at any point: a graph (values may be
    inf/nan - the explorer shows them with a warning) or an ExpressionError."""
    check("explore", src, values)


# --- known inputs, each on its own ------------------------------------------------------


@pytest.mark.parametrize(
    "src",
    [
        pytest.param("1" + "0" * 400, id="int-literal-401-digits"),  # too large for a float
        pytest.param("x * 1" + "0" * 400, id="x-times-401-digits"),
        "(((0.9**100)**100)**100)**100",  # exact powers of a constant grow without bound
        "((((1.1**100)**0.5)**100)**0.5)**100",
        pytest.param("x" + "**x" * 60, id="power-tower-60"),
        pytest.param("(" * 500 + "x" + ")" * 500, id="parens-500"),
        pytest.param("-" * 1999 + "x", id="minus-1999"),
        pytest.param("x" + "+x" * 999, id="sum-1000"),
        pytest.param("[" * 300 + "]" * 300, id="lists-300"),
        "9**9**9**9",
        "2**-1074",
        "f'{eval(1)}'",
        "__import__('os').system('true')",
        "().__class__.__bases__[0].__subclasses__()",
        "lambda: exp(1)",
        "\x00",
        "x\u2028y",
        "\ufeffx",
    ],
)
def test_known_hard_inputs_parse_or_give_expression_errors(src: str) -> None:
    """Inputs that have broken expression parsers before: each alone, same rules."""
    check("parse", src)


@pytest.mark.parametrize(
    "src, values",
    [
        ("abs(x)**x", {"x": 0.0}),  # 0**0 through abs: sympy divides by zero
        ("x" + "**x" * 8, {"x": 1.5}),  # tower of powers: huge exact numbers in sympy
        ("x**x**x**x**x", {"x": 3.0}),
        ("log(x)", {"x": -1.0}),
        ("x/0", {"x": 1.0}),
        ("sqrt(x)", {"x": -4.0}),
        ("x**0.5", {"x": -1.0}),
        ("exp(exp(exp(x)))", {"x": 10.0}),
        ("1/x", {"x": 0.0}),
        ("relu(x)**-1", {"x": 0.0}),
    ],
)
def test_known_hard_points_explore_or_give_expression_errors(
    src: str, values: dict[str, float]
) -> None:
    """Points where a value or derivative is undefined or enormous: the explorer shows
    inf/nan (documented) or says ExpressionError - it never crashes."""
    check("explore", src, values)

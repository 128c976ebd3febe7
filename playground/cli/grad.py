"""``playground grad``: a scalar expression's computation graph and gradient checks.

    playground grad "tanh(log(1 + z*2*x/sin(y)))" --at x=1 y=2 z=3 [--json]
    playground grad --preset sigmoid
    playground grad --list

Prints one row per node (value, d(output)/d(node) from autograd, local derivative on each
edge), the check of every input gradient against sympy and a finite difference, and the
backward pass done by hand with the chain rule. ``--backward N`` calls backward N times,
showing gradient accumulation with ``--retain-graph`` and PyTorch's error without it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from typing import Any

from playground.explorer.presets import (
    ExpressionPreset,
    find_expression_preset,
    load_expression_presets,
)
from playground.explorer.tree import ExpressionError
from playground.explorer.values import InputValues, parse_values
from playground.explorer.views import BackwardStep, CheckRow, GraphView, format_number

EXIT_USAGE = 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``grad`` subcommand on the main parser's subparsers."""
    parser = subparsers.add_parser(
        "grad",
        help="explore autograd on a scalar expression",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "expression",
        nargs="?",
        help="Python syntax: + - * / ** and exp log sin cos tan tanh sigmoid relu sqrt abs; "
        "steps 'x = ...; y = ...' allowed (the last is the output)",
    )
    parser.add_argument(
        "--at",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="input values, e.g. --at x=1 y=2 z=3 (add requires_grad=w,b to limit grads)",
    )
    parser.add_argument("--preset", metavar="NAME", help="use an expression preset")
    parser.add_argument("--list", action="store_true", help="list the expression presets")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--backward",
        type=int,
        default=1,
        metavar="N",
        help="call backward N times (default 1): grads add up with --retain-graph",
    )
    parser.add_argument("--retain-graph", action="store_true", help="backward(retain_graph=True)")
    parser.add_argument(
        "--float32", action="store_true", help="float32 tensors (default float64, for tight checks)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``playground grad``; 0 on success, 2 on a bad expression, preset or value."""
    try:
        if args.list:
            return _list(load_expression_presets())  # no torch needed for the list
        source, values = _source_and_values(args)
        if args.backward < 1:
            raise ValueError("--backward must be at least 1")
        # torch and sympy load here, not at import: `playground --help` stays fast
        from playground.explorer.graph import GradExplorer

        explorer = GradExplorer(
            source,
            values,
            retain_graph=args.retain_graph,
            dtype="float32" if args.float32 else "float64",
        )
    except ExpressionError as exc:
        print(f"playground grad: error: {exc}", file=sys.stderr)
        print(_indent(exc.pointer()), file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # ExpressionPresetError and bad options
        print(f"playground grad: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    errors: list[str] = []
    for _ in range(args.backward):
        view = explorer.backward()
        if view.error:
            errors.append(view.error)
    steps = explorer.steps()
    if args.json:
        print(json.dumps(_json(view, steps, errors), indent=2, allow_nan=False))
    else:
        print(_text(view, steps, errors))
    return 0


def _source_and_values(args: argparse.Namespace) -> tuple[str, InputValues]:
    given = parse_values(" ".join(args.at))
    if args.preset and args.expression:
        raise ValueError("give an expression or --preset, not both")
    if args.preset:
        preset = find_expression_preset(args.preset)
        merged = dict(preset.values.values) | dict(given.values)
        requires = given.requires_grad or preset.values.requires_grad
        return preset.expression, InputValues(tuple(merged.items()), requires)
    if not args.expression:
        raise ValueError("give an expression, --preset NAME or --list")
    return args.expression, given


def _list(presets: tuple[ExpressionPreset, ...]) -> int:
    width = max(len(p.name) for p in presets)
    for preset in presets:
        print(f"{preset.name:<{width}}  {preset.title}")
        print(f"{'':<{width}}  {preset.expression}   at {preset.values_text}")
    return 0


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.split("\n"))


def _fmt(value: float | None) -> str:
    return format_number(value, 12)


def _text(view: GraphView, steps: tuple[BackwardStep, ...], errors: list[str]) -> str:
    o = view.output
    at = " ".join(f"{c.name}={c.value:g}" for c in view.checks)
    lines = [
        f"expression: {view.source}",
        f"at {at}   {view.dtype}, retain_graph={view.retain_graph}, "
        f"backward passes in .grad: {view.backward_passes}",
        "",
        f"{'node':<6} {'value':<20} {'grad d' + o + '/dnode':<20} formula",
    ]
    for node in view.nodes:
        formula = "input" + ("" if node.requires_grad else " (requires_grad=False)")
        if node.op != "input":
            formula = node.formula
        lines.append(f"{node.name:<6} {_fmt(node.value):<20} {_fmt(node.grad):<20} {formula}")
        for edge in node.edges:
            local = f"d{node.name}/d{edge.parent} = {edge.formula} = {_fmt(edge.value)}"
            lines.append(f"{'':<48} {local}")
    lines += ["", f"checks: d{o}/d(input)"]
    lines.append(
        f"{'input':<6} {'autograd .grad':<20} {'sympy':<20} {'sympy - autograd':<18} "
        f"{'finite diff':<20} fd - autograd"
    )
    for row in view.checks:
        lines.append(
            f"{row.name:<6} {_fmt(row.autograd):<20} {_symbolic(row):<20} "
            f"{_diff(row.symbolic_minus_autograd):<18} {_fmt(row.finite_diff):<20} "
            f"{_diff(row.fd_minus_autograd)}"
        )
    lines += [f"  {row.symbolic_formula}" for row in view.checks]
    lines += ["", "backward by hand (chain rule), output first:"]
    for step in steps:
        check = "" if step.autograd is None else f"   [autograd {_fmt(step.autograd)}]"
        lines.append(f"  {step.formula} = {step.numbers} = {_fmt(step.value)}{check}")
    for i, error in enumerate(errors):
        lines += ["", f"backward failed ({i + 1} of {len(errors)}): RuntimeError: {error}"]
    lines += [f"warning: {w}" for w in view.warnings]
    return "\n".join(lines)


def _symbolic(row: CheckRow) -> str:
    """sympy's value, or why there is none ("undefined at this point", ...)."""
    if row.symbolic is None and row.symbolic_note:
        return row.symbolic_note
    return _fmt(row.symbolic)


def _diff(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2e}"


def _clean(value: Any) -> Any:
    """JSON has no nan/inf: they become null (and the text table shows them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _json(view: GraphView, steps: tuple[BackwardStep, ...], errors: list[str]) -> dict[str, Any]:
    data = dataclasses.asdict(view)
    data.pop("steps_done")
    data["steps"] = [dataclasses.asdict(s) for s in steps]
    data["backward_errors"] = errors
    return _clean(data)

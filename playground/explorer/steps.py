"""The backward pass done by hand with the chain rule, one node per step.

d(out)/d(node) is the sum, over the operations that use the node, of d(out)/d(use) times
the local derivative d(use)/d(node). The steps go output first, then the operations in
reverse creation order, then the inputs; each carries autograd's value to compare with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from playground.explorer.plan import Op, local_derivatives, op_args
from playground.explorer.views import BackwardStep, format_number


def backward_steps(
    ops: tuple[Op, ...],
    output: str,
    values: Mapping[str, float],
    inputs: Iterable[str],
    autograd: Mapping[str, float | None],
) -> tuple[BackwardStep, ...]:
    """Every step of the hand-made backward pass, output first.

    ``values`` holds every node's forward value, ``autograd`` d(output)/d(node) as
    ``torch.autograd.grad`` computed it (a node missing there shows None).
    """
    o = output
    uses = _uses(ops, values)
    adjoint: dict[str, float] = {o: 1.0}
    steps = [BackwardStep(0, o, f"d{o}/d{o} = 1", "1", 1.0, autograd.get(o, 1.0))]
    order = [op.name for op in reversed(ops)] + list(inputs)
    for name in order:
        terms = [u for u in uses.get(name, []) if u[0] in adjoint]
        if name == o or not terms:
            continue  # the output is step 0; unused nodes take no part in backward
        adjoint[name] = sum(adjoint[use] * value for use, _, value in terms)
        formula = " + ".join(f"d{o}/d{use} * {_wrap(f)}" for use, f, _ in terms)
        numbers = " + ".join(f"{_paren(adjoint[use])} * {_paren(v)}" for use, _, v in terms)
        steps.append(
            BackwardStep(
                len(steps),
                name,
                f"d{o}/d{name} = {formula}",
                numbers,
                adjoint[name],
                autograd.get(name),
            )
        )
    return tuple(steps)


def _uses(
    ops: tuple[Op, ...], values: Mapping[str, float]
) -> dict[str, list[tuple[str, str, float]]]:
    """For each node, the operations using it: (use, local formula, local value)."""
    uses: dict[str, list[tuple[str, str, float]]] = {}
    for op in ops:
        local = local_derivatives(op, op_args(op, values), values[op.name])
        for arg, (formula, value) in zip(op.args, local, strict=True):
            if isinstance(arg, str):
                uses.setdefault(arg, []).append((op.name, formula, value))
    return uses


def _wrap(formula: str) -> str:
    """Parenthesise a local derivative that is a sum or negative (the seed writes dsda * (-1))."""
    compound = formula.startswith("-") or any(s in formula for s in (" + ", " - ", " if "))
    return f"({formula})" if compound else formula


def _paren(value: float) -> str:
    text = format_number(value)
    return f"({text})" if text.startswith("-") else text

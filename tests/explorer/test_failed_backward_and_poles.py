"""What the explorer shows must be what PyTorch holds: after a failed backward, at a pole,
and in the check table once .grad holds several passes.

Oracles: PyTorch itself (a plain torch script next to the explorer) and the derivative
worked out by hand.
"""

from __future__ import annotations

import math

import pytest
import torch

from playground.explorer.graph import GradExplorer, explore
from playground.explorer.plan import div, power

SIGMOID_GRAD_AT_2 = 0.1049935854035065  # e^-2 / (1 + e^-2)^2


def grads(explorer: GradExplorer) -> dict[str, float | None]:
    return {n.name: n.grad for n in explorer.view().nodes}


def test_a_failed_second_backward_changes_no_grad_not_even_the_outputs() -> None:
    """`s.backward()` twice without retain_graph: PyTorch raises, and every .grad - the
    output's retained one included - is what one backward left."""
    explorer, view = explore("s = 1/(1 + exp(-x))", {"x": 2.0})
    after_one = grads(explorer)
    assert after_one["s"] == 1.0 and view.backward_passes == 1
    view = explorer.backward()
    assert view.error is not None and "second time" in view.error
    assert grads(explorer) == after_one  # s.grad stays 1, not 2
    assert view.backward_passes == 1


def test_a_failed_backward_then_forward_and_backward_adds_one_pass() -> None:
    explorer, _ = explore("s = sigmoid(x)", {"x": 2.0})
    explorer.backward()  # fails: the graph is freed
    explorer.forward()
    view = explorer.backward()
    assert view.error is None and view.backward_passes == 2
    assert view.node("x").grad == pytest.approx(2 * SIGMOID_GRAD_AT_2)


def test_the_local_derivative_at_a_pole_is_autograds_inf_not_nan() -> None:
    """log(x - 2) at x = 2: d log(a)/da = 1/a = 1/0 = inf, as torch computes it."""
    x = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    a = x - 2
    a.retain_grad()
    torch.log(a).backward()
    assert math.isinf(float(a.grad))

    explorer, view = explore("log(x - 2)", {"x": 2.0})
    log_node = next(n for n in view.nodes if n.op == "log")
    (edge,) = log_node.edges
    assert edge.formula.startswith("1/") and edge.value == math.inf
    # the hand-made backward pass agrees with autograd at every node
    for step in explorer.steps():
        assert step.value == step.autograd, step


@pytest.mark.parametrize(
    ("source", "at"),
    [
        ("1/x", 0.0),
        ("sqrt(x)", 0.0),
        ("x**0.5", 0.0),
        ("x**(-1)", 0.0),
        ("log(x)", 0.0),
        ("x**0", 0.0),
        ("exp(x)", 1000.0),
        ("x/y", 0.0),
    ],
)
def test_the_hand_made_backward_matches_autograd_at_poles_and_overflow(
    source: str, at: float
) -> None:
    values = {"x": at, "y": 0.0} if "y" in source else {"x": at}
    explorer = GradExplorer(source, values)
    for step in explorer.steps():
        if step.autograd is None:
            continue
        both_nan = math.isnan(step.value) and math.isnan(step.autograd)
        assert both_nan or step.value == pytest.approx(step.autograd), (source, step)


def test_ieee_division_and_power_as_torch() -> None:
    assert div(1.0, 0.0) == math.inf and div(-1.0, 0.0) == -math.inf
    assert div(1.0, -0.0) == -math.inf and math.isnan(div(0.0, 0.0))
    assert power(0.0, -1.0) == math.inf and power(-0.0, -1.0) == -math.inf
    assert math.isnan(power(-1.0, 0.5)) and power(1e200, 2.0) == math.inf


def test_the_checks_compare_one_derivative_with_grad_per_pass() -> None:
    """Three passes with retain_graph: .grad is 3 x the derivative; sympy and the finite
    difference are one derivative; the differences are ~0, not -2 x the derivative."""
    explorer, _ = explore("s = 1/(1 + exp(-x))", {"x": 2.0}, retain_graph=True)
    explorer.backward()
    view = explorer.backward()
    (row,) = view.checks
    assert view.backward_passes == 3 and row.passes == 3
    assert row.autograd == pytest.approx(3 * SIGMOID_GRAD_AT_2)
    assert row.per_pass == pytest.approx(SIGMOID_GRAD_AT_2)
    assert abs(row.symbolic_minus_autograd) < 1e-12
    assert abs(row.fd_minus_autograd) < 1e-8

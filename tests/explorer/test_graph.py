"""The computation graph checked against the course's hand-derived numbers."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from playground.explorer.graph import GradExplorer, explore
from playground.explorer.presets import (
    ExpressionPresetError,
    find_expression_preset,
    load_expression_presets,
)
from playground.explorer.tree import ExpressionError
from playground.explorer.views import GraphView
from playground.paths import presets_dir

SEED_SIGMOID_GRAD = 0.1049935854035065  # grad_sigmoid_manual(2.0) in the course
SEED_SIGMOID_AUTOGRAD_F32 = 0.10499356687068939  # x.grad.item() printed in the course


def check(view: GraphView, name: str):
    return next(row for row in view.checks if row.name == name)


def test_sigmoid_at_2_autograd_sympy_and_finite_difference_agree() -> None:
    _, view = explore("s = 1/(1 + exp(-x))", {"x": 2.0})
    row = check(view, "x")
    for value in (row.autograd, row.symbolic, row.finite_diff):
        assert value == pytest.approx(SEED_SIGMOID_GRAD, abs=1e-6)
    assert abs(row.symbolic_minus_autograd) < 1e-12
    assert abs(row.fd_minus_autograd) < 1e-8
    assert row.symbolic_formula == "ds/dx = exp(-x)/(1 + exp(-x))**2"


def test_sigmoid_in_float32_reproduces_the_seed_autograd_number() -> None:
    _, view = explore("s = 1/(1 + exp(-x))", {"x": 2.0}, dtype="float32")
    assert check(view, "x").autograd == SEED_SIGMOID_AUTOGRAD_F32


def test_sigmoid_nodes_match_grad_sigmoid_manual() -> None:
    x = 2.0
    a = -x
    b = math.exp(a)
    c = 1 + b
    s = 1.0 / c
    dsdc = -1.0 / c**2
    dsdb = dsdc * 1
    dsda = dsdb * math.exp(a)
    dsdx = dsda * (-1)

    explorer, view = explore("s = 1/(1 + exp(-x))", {"x": x})
    assert [n.name for n in view.nodes] == ["x", "a", "b", "c", "s"]
    expected = {"a": (a, dsda), "b": (b, dsdb), "c": (c, dsdc), "s": (s, 1.0), "x": (x, dsdx)}
    for name, (value, grad) in expected.items():
        node = view.node(name)
        assert node.value == pytest.approx(value, rel=1e-12)
        assert node.grad == pytest.approx(grad, rel=1e-12)
    assert view.node("s").edges[0].formula == "-1/c**2"
    assert view.node("s").edges[0].value == pytest.approx(dsdc)

    steps = explorer.steps()
    assert [s.formula for s in steps] == [
        "ds/ds = 1",
        "ds/dc = ds/ds * (-1/c**2)",
        "ds/db = ds/dc * 1",
        "ds/da = ds/db * exp(a)",
        "ds/dx = ds/da * (-1)",
    ]
    assert [s.value for s in steps] == pytest.approx([1.0, dsdc, dsdb, dsda, dsdx])


def test_polynomial_at_2_gives_326_three_ways() -> None:
    _, view = explore("8*x**4 + 3*x**3 + 7*x**2 + 6*x + 3", {"x": 2.0})
    row = check(view, "x")
    assert row.autograd == 326.0
    assert row.symbolic == 326.0
    assert row.finite_diff == pytest.approx(326.0, abs=1e-6)
    assert row.symbolic_formula.endswith("= 32*x**3 + 9*x**2 + 14*x + 6")


@pytest.mark.parametrize(("a", "b"), [(1.0, 2.0), (-0.5, 3.0)])
def test_system_dz_da_equals_the_hand_derived_path_sum(a: float, b: float) -> None:
    # z = 2x + 3y, x = 2a + 3b, y = 5a^2 + 3b^3:
    # dz/da = dz/dx*dx/da + dz/dy*dy/da = 2*2 + 3*10a ; dz/db = 2*3 + 3*9b^2
    _, view = explore("x = 2*a + 3*b; y = 5*a*a + 3*b*b*b; z = 2*x + 3*y", {"a": a, "b": b})
    assert view.output == "z"
    for name, hand in (("a", 2 * 2 + 3 * 10 * a), ("b", 2 * 3 + 3 * 9 * b**2)):
        row = check(view, name)
        assert row.autograd == pytest.approx(hand, rel=1e-12)
        assert row.symbolic == pytest.approx(hand, rel=1e-12)
        assert row.finite_diff == pytest.approx(hand, rel=1e-6)
    assert view.node("x").grad == 2.0 and view.node("y").grad == 3.0


@pytest.mark.parametrize(
    "source",
    [
        "a = 2*x; b = sin(y); c = a/b; d = z*c; e = log(1 + d); f = tanh(e)",
        "tanh(log(1 + z*2*x/sin(y)))",
    ],
)
def test_tanh_log_sin_df_dy_matches_the_seed_chain_rule(source: str) -> None:
    x, y, z = 1.0, 2.0, 3.0
    a = 2 * x
    b = math.sin(y)
    d = z * a / b
    e = math.log(1 + d)
    seed_df_dy = (1 - math.tanh(e) ** 2) * 1 / (d + 1) * z * (-a / b**2) * math.cos(y)
    seed_df_dx = (1 - math.tanh(e) ** 2) * 1 / (d + 1) * z * (1 / b) * 2

    _, view = explore(source, {"x": x, "y": y, "z": z})
    for name, hand in (("y", seed_df_dy), ("x", seed_df_dx)):
        row = check(view, name)
        assert row.autograd == pytest.approx(hand, rel=1e-12)
        assert row.symbolic == pytest.approx(hand, rel=1e-10)
        assert row.finite_diff == pytest.approx(hand, rel=1e-6)


def test_every_preset_walks_the_chain_rule_to_autograds_numbers() -> None:
    presets = load_expression_presets()
    for preset in presets:
        explorer, view = explore(preset.expression, preset.values)
        steps = explorer.steps()
        assert steps[0].node == view.output
        for step in steps:
            if step.autograd is not None:
                assert step.value == pytest.approx(step.autograd, rel=1e-9, abs=1e-12), (
                    preset.name,
                    step,
                )
        for row in view.checks:
            if row.autograd is not None:
                assert row.symbolic == pytest.approx(row.autograd, rel=1e-9), preset.name
                assert row.finite_diff == pytest.approx(row.autograd, rel=1e-5, abs=1e-8), (
                    preset.name
                )


def test_step_backward_walks_one_node_at_a_time() -> None:
    explorer = GradExplorer("s = 1/(1 + exp(-x))", {"x": 2.0})
    assert explorer.view().steps_done == ()
    first = explorer.step_backward()
    second = explorer.step_backward()
    assert (first.node, second.node) == ("s", "c")
    assert [s.node for s in explorer.view().steps_done] == ["s", "c"]
    for _ in range(3):
        explorer.step_backward()
    assert explorer.step_backward() is None
    assert explorer.view().step_total == 5
    assert explorer.reset_steps().steps_done == ()


def test_backward_again_without_retain_graph_shows_pytorchs_error() -> None:
    explorer, view = explore("s = 1/(1 + exp(-x))", {"x": 2.0})
    assert view.graph_freed and view.backward_passes == 1
    view = explorer.backward()
    assert view.error is not None
    assert "Trying to backward through the graph a second time" in view.error
    assert "retain_graph=True" in view.error
    assert view.backward_passes == 1
    assert check(view, "x").autograd == pytest.approx(SEED_SIGMOID_GRAD)


def test_the_error_text_is_torchs_own() -> None:
    x = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    s = 1 / (1 + torch.exp(-x))
    s.backward()
    with pytest.raises(RuntimeError) as info:
        s.backward()
    explorer, _ = explore("s = 1/(1 + exp(-x))", {"x": 2.0})
    assert explorer.backward().error == str(info.value)


def test_retain_graph_accumulates_until_zeroed() -> None:
    explorer, _ = explore("s = 1/(1 + exp(-x))", {"x": 2.0}, retain_graph=True)
    for passes in (2, 3):
        view = explorer.backward()
        assert view.error is None and view.backward_passes == passes
        row = check(view, "x")
        assert row.autograd == pytest.approx(passes * SEED_SIGMOID_GRAD)
        # .grad holds `passes` derivatives; the references are one: compared per pass
        assert row.passes == passes and row.per_pass == pytest.approx(SEED_SIGMOID_GRAD)
        assert abs(row.symbolic_minus_autograd) < 1e-12
        assert abs(row.fd_minus_autograd) < 1e-8
    view = explorer.zero_grad()
    assert check(view, "x").autograd == 0.0 and view.backward_passes == 0
    # no pass since zero_grad: nothing to compare
    assert check(view, "x").symbolic_minus_autograd is None
    assert view.last_code == "x.grad.zero_()"
    view = explorer.backward()
    assert check(view, "x").autograd == pytest.approx(SEED_SIGMOID_GRAD)


def test_forward_again_builds_a_new_graph_and_grad_keeps_adding() -> None:
    explorer, _ = explore("s = 1/(1 + exp(-x))", {"x": 2.0})
    assert explorer.backward().error is not None
    assert explorer.forward().graph_freed is False
    view = explorer.backward()
    assert view.error is None and view.backward_passes == 2
    assert check(view, "x").autograd == pytest.approx(2 * SEED_SIGMOID_GRAD)
    assert view.node("c").grad == pytest.approx(-1 / (1 + math.exp(-2)) ** 2)  # new node: one pass


def test_a_graph_that_saved_nothing_backwards_twice_and_says_why() -> None:
    explorer, _ = explore("y = x + 1", {"x": 3.0})
    view = explorer.backward()
    assert view.error is None and check(view, "x").autograd == 2.0
    assert "saved no tensors" in view.note


def test_requires_grad_false_input_keeps_grad_none() -> None:
    preset = find_expression_preset("linear")
    _, view = explore(preset.expression, preset.values)
    assert check(view, "x").autograd is None
    assert check(view, "x").symbolic == pytest.approx(0.3)  # what it would be
    assert check(view, "w").autograd == pytest.approx(1.5)
    assert check(view, "b").autograd == 1.0
    assert view.node("x").requires_grad is False


def test_no_input_requiring_grad_shows_torchs_error() -> None:
    _, view = explore("y = x*w", {"x": 1.0, "w": 2.0}, requires_grad=[])
    assert "does not require grad" in view.error


def test_bad_values_and_domains() -> None:
    with pytest.raises(ExpressionError, match="no value for z"):
        GradExplorer("x*z", {"x": 1.0})
    with pytest.raises(ExpressionError, match="not inputs"):
        GradExplorer("x", {"x": 1.0}, requires_grad=["q"])
    with pytest.raises(ExpressionError, match="constant"):
        GradExplorer("y = 3", {})
    _, view = explore("log(x)", {"x": -1.0})
    assert math.isnan(view.output_value)
    assert any("log(x) is nan" in w for w in view.warnings)


def test_views_hold_plain_data_only() -> None:
    explorer, view = explore("a = 2*x; b = sin(y); c = a/b", {"x": 1.0, "y": 2.0})

    def walk(value: object) -> None:
        assert not isinstance(value, torch.Tensor)
        if dataclasses.is_dataclass(value):
            assert type(value).__dataclass_params__.frozen
            for field in dataclasses.fields(value):
                walk(getattr(value, field.name))
        elif isinstance(value, (tuple, list)):
            for item in value:
                walk(item)
        else:
            assert value is None or isinstance(value, (str, int, float, bool))

    walk(view)
    walk(explorer.steps())


def test_presets_cover_the_seed_exercises() -> None:
    assert presets_dir() == Path(__file__).resolve().parents[2] / "presets"
    names = {p.name for p in load_expression_presets()}
    assert {
        "square",
        "sigmoid",
        "system",
        "exp_poly",
        "polynomial",
        "tanh_log_sin",
        "linear",
    } <= names
    assert check(explore(*_preset("square"))[1], "x").autograd == 4.0
    assert check(explore(*_preset("polynomial"))[1], "x").autograd == 326.0


def _preset(name: str):
    preset = find_expression_preset(name)
    return preset.expression, preset.values


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[preset]]\nname = 'p'\n", "field 'title'"),
        (
            "[[preset]]\nname='p'\ntitle='t'\ndescription='d'\nexpression='x +'\nvalues={x=1}\n",
            "field 'expression': syntax error",
        ),
        (
            "[[preset]]\nname='p'\ntitle='t'\ndescription='d'\nexpression='x'\nvalues={x='a'}\n",
            "field 'values'",
        ),
        ("name = ", "expressions.toml"),
    ],
)
def test_malformed_presets_name_file_and_field(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "expressions.toml"
    path.write_text(text)
    with pytest.raises(ExpressionPresetError, match="expressions.toml") as info:
        load_expression_presets(path)
    assert fragment in str(info.value)
    with pytest.raises(ExpressionPresetError, match="no expression preset named 'nope'"):
        find_expression_preset("nope")

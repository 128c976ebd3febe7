"""Item 9: every field of a session file is validated with limits before it is used:
counters, nesting, settings' types, the optimizer's state and param groups, undo levels,
and a preset that changed since the file was saved is said. Whatever a file holds, the
loader either refuses it (a SessionFileError naming the file and the field) or gives a
session that trains."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.training.persist import SessionFileError, load_session, save_session
from tests.hostile.conftest import doc_of, preset_file, read_arrays, refused, session, write_session


def _edit(saved: Path, tmp_path: Path, name: str, change: Any) -> Path:
    arrays = read_arrays(saved)
    doc = doc_of(arrays)
    change(doc, arrays)
    return write_session(tmp_path / f"{name}.npz", arrays, doc)


@pytest.mark.parametrize("counter", ["step", "cursor", "backward_total", "samples_trained"])
@pytest.mark.parametrize("value", [2**63, 2**62, -1, 1.5, "3", None, True])
def test_counters_out_of_range_or_of_the_wrong_type(
    counter: str, value: Any, saved_sgd: Path, tmp_path: Path
) -> None:
    def change(doc: dict[str, Any], _: Any) -> None:
        doc["progress"][counter] = value

    refused(_edit(saved_sgd, tmp_path, f"{counter}", change), "progress")


@pytest.mark.parametrize("value", [2**63, -1, "1"])
def test_backward_counts_out_of_range(value: Any, saved_sgd: Path, tmp_path: Path) -> None:
    def change(doc: dict[str, Any], _: Any) -> None:
        name = next(iter(doc["counts"]))
        doc["counts"][name] = value

    refused(_edit(saved_sgd, tmp_path, "counts", change), "counts")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr", "0.5"),
        ("lr", -1.0),
        ("lr", None),
        ("betas", ["0.9", "0.999"]),
        ("betas", [0.9]),
        ("momentum", {"a": 1}),
        ("accumulate", 10**9),
        ("code_style", "';import os;'"),
        ("scale_loss", "false"),
    ],
)
def test_live_settings_of_the_wrong_type_or_range(
    field: str, value: Any, saved_adam: Path, tmp_path: Path
) -> None:
    def change(doc: dict[str, Any], _: Any) -> None:
        doc["live"][field] = value

    refused(_edit(saved_adam, tmp_path, field, change), "live settings", field)


@pytest.mark.parametrize(
    ("field", "value"),
    [("lr", "0.5"), ("task", "banana"), ("hidden", [0]), ("device", "cpu\x1b]0;pwned\x07")],
)
def test_config_fields_are_checked(
    field: str, value: Any, saved_adam: Path, tmp_path: Path
) -> None:
    def change(doc: dict[str, Any], _: Any) -> None:
        doc["config"][field] = value

    path = _edit(saved_adam, tmp_path, field, change)
    if field == "task":  # not a setting: ignored, never used
        assert load_session(path).step_count == 2
    else:
        refused(path, "config")


def test_init_values_must_be_name_number_pairs(saved_sgd: Path, tmp_path: Path) -> None:
    def change(doc: dict[str, Any], _: Any) -> None:
        doc["config"]["init_values"] = [["w", "1"], "bb"]

    refused(_edit(saved_sgd, tmp_path, "init", change), "init_values")


def test_negative_adam_state_is_refused(saved_adam: Path, tmp_path: Path) -> None:
    """exp_avg_sq is a running mean of squares: negative, it would make sqrt NaN."""

    def change(doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        key = doc["optimizer"]["state"]["0"]["exp_avg_sq"]["array"]
        arrays[key] = -np.abs(arrays[key]) - 1.0

    refused(_edit(saved_adam, tmp_path, "neg", change), "exp_avg_sq", "negative")


@pytest.mark.parametrize("step", [-1.0, 0.5, float("inf")])
def test_an_adam_step_that_is_not_a_whole_count_is_refused(
    step: float, saved_adam: Path, tmp_path: Path
) -> None:
    def change(doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        key = doc["optimizer"]["state"]["0"]["step"]["array"]
        arrays[key] = np.asarray(step, dtype=np.float32)

    refused(_edit(saved_adam, tmp_path, "step", change), "optimizer step")


def test_adam_state_missing_an_entry_is_refused(saved_adam: Path, tmp_path: Path) -> None:
    def change(doc: dict[str, Any], _: Any) -> None:
        del doc["optimizer"]["state"]["0"]["exp_avg"]

    refused(_edit(saved_adam, tmp_path, "missing", change), "optimizer state 0")


def test_param_groups_disagreeing_with_the_shown_lr_are_refused(
    saved_adam: Path, tmp_path: Path
) -> None:
    """A param_groups lr of 1e30 would silently override the lr the user sees."""

    def change(doc: dict[str, Any], _: Any) -> None:
        doc["optimizer"]["param_groups"] = [{"lr": 1e30, "params": [0, 1, 2, 3, 4, 5]}]

    refused(_edit(saved_adam, tmp_path, "groups", change), "param_groups[0].lr", "disagrees")


def test_param_groups_that_agree_are_fine(saved_adam: Path, tmp_path: Path) -> None:
    def change(doc: dict[str, Any], _: Any) -> None:
        doc["optimizer"]["param_groups"] = [{"lr": doc["live"]["lr"]}]

    s = load_session(_edit(saved_adam, tmp_path, "agree", change))
    assert s.optimizer.param_groups[0]["lr"] == s.cfg.lr


def test_optimizer_state_for_the_by_hand_update_is_refused(tmp_path: Path) -> None:
    s = session()
    s.train_step()
    saved = save_session(s, tmp_path / "gd.npz")

    def change(doc: dict[str, Any], _: Any) -> None:
        doc["optimizer"] = {"state": {}}

    refused(_edit(saved, tmp_path, "gd-opt", change), "optimizer")


@pytest.mark.parametrize(
    "level",
    [
        "not a level",
        {"label": 5},
        {"label": ["step"]},
        {"note": {"x": 1}},
        {"progress": {"step": -4}},
        {"values": {}},
        {"live": {"model": "mlp"}},
    ],
)
def test_malformed_undo_levels_are_refused(level: Any, saved_sgd: Path, tmp_path: Path) -> None:
    def change(doc: dict[str, Any], _: Any) -> None:
        good = doc["undo"][-1]
        doc["undo"][-1] = level if not isinstance(level, dict) else {**good, **level}

    refused(_edit(saved_sgd, tmp_path, "undo", change), "undo" if level == "not a level" else "")


def test_too_many_undo_levels_are_refused(saved_sgd: Path, tmp_path: Path) -> None:
    def change(doc: dict[str, Any], _: Any) -> None:
        doc["undo"] = doc["undo"] * 40

    refused(_edit(saved_sgd, tmp_path, "many", change), "undo", "levels")


def test_labels_and_notes_are_made_safe_for_the_terminal(saved_sgd: Path, tmp_path: Path) -> None:
    def change(doc: dict[str, Any], _: Any) -> None:
        doc["undo"][-1]["label"] = "step\x1b[2J\x1b]0;pwned\x07"
        doc["undo"][-1]["note"] = "\x9b31mred"

    s = load_session(_edit(saved_sgd, tmp_path, "labels", change))
    entry = s.undo_stack.peek()
    assert entry.label.isprintable() and entry.note.isprintable()
    assert "\x1b" not in entry.label and "\x9b" not in entry.note
    assert entry.label.startswith("step")


@pytest.mark.parametrize("depth", [30, 1000, 100_000])
def test_deep_json_anywhere_is_refused(depth: int, saved_sgd: Path, tmp_path: Path) -> None:
    arrays = read_arrays(saved_sgd)
    doc = doc_of(arrays)
    text = json.dumps(doc)
    nested = "[" * depth + "1" + "]" * depth
    text = text.replace('"version": 2', f'"version": 2, "extra": {nested}', 1)
    refused(write_session(tmp_path / "deep.npz", arrays, text), "nested")


def test_nan_in_the_document_is_refused(saved_sgd: Path, tmp_path: Path) -> None:
    arrays = read_arrays(saved_sgd)
    text = json.dumps(doc_of(arrays)).replace('"version": 2', '"version": 2, "x": NaN', 1)
    refused(write_session(tmp_path / "nan.npz", arrays, text), "NaN")


def test_a_preset_changed_since_saving_is_said(tmp_path: Path) -> None:
    """The same preset file with other data: the session resumes, and says so."""
    folder = tmp_path / "course"
    p = preset_file(folder, data={"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]},
                    train={"optimizer": "gd", "lr": 0.01})  # fmt: skip
    from playground.training.presets import load_preset
    from playground.training.session import Session

    s = Session(load_preset(p), device="cpu")
    s.train_step()
    saved = save_session(s, tmp_path / "course.npz")
    notes: list[str] = []
    load_session(saved, notes=notes)
    assert notes == []
    preset_file(folder, data={"x": [1.0, 2.0, 3.0], "y": [5.0, 5.0, 5.0]},
                train={"optimizer": "gd", "lr": 0.01})  # fmt: skip
    resumed = load_session(saved, notes=notes)
    assert resumed.step_count == 1
    assert len(notes) == 1 and "changed since" in notes[0] and "course.npz" in notes[0]
    assert "data" in notes[0]


def test_a_preset_file_edited_without_its_data_changing_is_said_too(tmp_path: Path) -> None:
    folder = tmp_path / "course"
    data = {"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]}
    p = preset_file(folder, data=data, train={"optimizer": "gd", "lr": 0.01})
    from playground.training.presets import load_preset
    from playground.training.session import Session

    saved = save_session(Session(load_preset(p), device="cpu"), tmp_path / "c.npz")
    preset_file(folder, top={"title": "renamed"}, data=data, train={"optimizer": "gd", "lr": 0.01})
    notes: list[str] = []
    load_session(saved, notes=notes)
    assert len(notes) == 1 and "preset file" in notes[0]


# --- anything at all in the fields: refused cleanly, or a session that trains ------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:4]):
            out += _paths(v, (*prefix, i))
    return out


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_value_in_any_field_is_refused_or_trains(
    data: st.DataObject, saved_adam: Path, tmp_path: Path
) -> None:
    arrays = read_arrays(saved_adam)
    doc = doc_of(arrays)
    paths = [p for p in _paths(doc) if p]
    where = data.draw(st.sampled_from(paths))
    value = data.draw(JSON)
    bad = copy.deepcopy(doc)
    target = bad
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    path = write_session(tmp_path / "fuzz.npz", arrays, bad)
    try:
        s = load_session(path)
    except SessionFileError as exc:
        assert "fuzz.npz" in str(exc) and str(exc).isprintable()
        return
    _works(s)  # whatever loaded is a session that works


ARRAYS = st.sampled_from(
    [
        lambda a: a.reshape(-1)[:1] if a.size else np.zeros(3),  # another shape
        lambda a: a.astype(np.int64),
        lambda a: a.astype(bool),
        lambda a: np.full_like(a, np.nan, dtype=np.float32),
        lambda a: np.full_like(a, 1e38, dtype=np.float32),
        lambda a: np.full_like(a, np.inf, dtype=np.float32),
        lambda a: np.full_like(a, -np.inf, dtype=np.float32),
        lambda a: np.zeros((0,), dtype=a.dtype),
        lambda a: np.asarray(7, dtype=a.dtype),
        lambda a: np.full_like(a, -5).astype(a.dtype),
    ]
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_array_replaced_is_refused_or_trains(
    data: st.DataObject, saved_adam: Path, tmp_path: Path
) -> None:
    """Arrays of another shape, dtype or value (NaN, huge, negative, empty, scalar)."""
    arrays = read_arrays(saved_adam)
    key = data.draw(st.sampled_from(sorted(k for k in arrays if k != "meta.json")))
    arrays[key] = data.draw(ARRAYS)(arrays[key])
    path = write_session(tmp_path / "arrays.npz", arrays)
    try:
        s = load_session(path)
    except SessionFileError as exc:
        assert "arrays.npz" in str(exc) and str(exc).isprintable()
        return
    _works(s)
    s.export_loss_csv(tmp_path / "loss.csv")


def _works(s: Any) -> None:
    """A train step works, or fails as an action fails: the session as it was."""
    s.snapshot()  # what was loaded can be shown
    before = {n: p.detach().clone() for n, p in s.model.params.items()}
    try:
        s.train_step()
    except (RuntimeError, ValueError):
        for n, p in s.model.params.items():
            assert p.detach().equal(before[n]) or p.detach().isnan().all(), n
    diverged = not all(bool(p.detach().isfinite().all()) for p in s.model.params.values())
    if not (diverged and s.cfg.loss in ("bce", "bce_sum")):
        # (a BCE model that this very step drove to NaN cannot be shown: torch's
        # binary_cross_entropy raises on NaN input - training's doing, not the file's)
        s.snapshot()
    s.undo()
    s.snapshot()


@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e300])
def test_infinite_parameters_of_a_bce_model_are_refused(
    value: float, saved_adam: Path, tmp_path: Path
) -> None:
    """bce cannot take an infinite weight (sigmoid(inf - inf) is NaN): refused on load,
    not a traceback at the first key (1e300 is infinite in float32)."""
    arrays = read_arrays(saved_adam)
    key = next(k for k in sorted(arrays) if k.startswith("value/") and k.endswith("weight"))
    w = arrays[key].astype(np.float64)
    w.reshape(-1)[0] = value
    arrays[key] = w.astype(np.float32) if abs(value) != 1e300 else w
    refused(write_session(tmp_path / "inf.npz", arrays), "infinity")

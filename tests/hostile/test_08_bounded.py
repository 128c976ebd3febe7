"""Item 8: unbounded reads and allocations. Every read is bounded before parsing (a
regular file only, so many bytes), an archive's sizes are checked before anything is
allocated, and one memory budget is checked before a data set, a model or undo levels
are made - each refusal naming the file and the field."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from playground.training.catalog import PresetError
from playground.training.presets import load_preset
from tests.hostile.conftest import (
    INLINE,
    Watch,
    doc_of,
    preset_file,
    read_arrays,
    refused,
    session,
    write_session,
)
from tests.hostile.test_07_save_target import _in_thread


def test_resume_from_dev_zero_is_refused_at_once() -> None:
    from playground.training.persist import SessionFileError, load_session

    with pytest.raises(SessionFileError, match="not a session file") as info:
        _in_thread(lambda: load_session("/dev/zero"))
    assert "zero" in str(info.value)


def test_resume_from_a_fifo_is_refused_without_blocking(fifo: Path, watch: Any) -> None:
    w: Watch = watch()
    _in_thread(lambda: refused(fifo, "FIFO"))
    w.only()


def test_a_preset_that_is_a_fifo_or_a_device_is_refused(fifo: Path, tmp_path: Path) -> None:
    toml = tmp_path / "pipe.toml"
    os.mkfifo(toml)
    for path in (toml, Path("/dev/zero")):
        with pytest.raises(PresetError, match="not a preset file"):
            _in_thread(lambda path=path: load_preset(path))


def test_a_2_gb_preset_file_is_refused_by_its_size_unread(tmp_path: Path) -> None:
    """A sparse file: refused from its size, without reading (or allocating) 2 GB."""
    big = tmp_path / "huge.toml"
    with open(big, "wb") as fh:
        fh.truncate(2 * 2**30)
    with pytest.raises(PresetError, match="more than a preset file may be") as info:
        _in_thread(lambda: load_preset(big))
    assert "huge.toml" in str(info.value) and "(file)" in str(info.value)


def test_a_csv_in_proc_that_says_size_0_is_still_bounded(tmp_path: Path) -> None:
    """/proc files say size 0: the read stops at the limit (here: it is not in the
    preset's folder, so it is not read at all)."""
    p = preset_file(tmp_path, data={"kind": "csv", "path": "/proc/self/environ",
                                    "x_columns": ["a"], "y_column": "b"})  # fmt: skip
    with pytest.raises(PresetError, match="data.path"):
        load_preset(p)


def test_an_array_header_declaring_a_billion_elements_is_refused_before_allocation(
    saved_sgd: Path, tmp_path: Path
) -> None:
    """np.load allocates what the header declares before it reads; the reader checks
    the header against the bytes there first."""
    arrays = read_arrays(saved_sgd)
    bad = tmp_path / "lying.npz"
    write_session(bad, arrays)
    raw = bad.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "history/loss.npy":
                data = data.replace(b"'shape': (", b"'shape': (1000000000, ", 1)
            out.writestr(info.filename, data)
    bad.write_bytes(buf.getvalue())
    refused(bad, "header declares")


def test_a_deflate_bomb_is_refused_by_its_declared_size(
    saved_sgd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member that inflates far past the budget is refused before it is inflated."""
    monkeypatch.setenv("PLAYGROUND_MEMORY_MB", "8")
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("meta.json.npy", b"\x00" * (64 * 2**20))  # 64 MiB of zeros, ~64 KiB
    assert bomb.stat().st_size < 2**20
    refused(bomb, "more than")


def test_a_session_file_larger_than_the_budget_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_MEMORY_MB", "1")
    big = tmp_path / "big.npz"
    with open(big, "wb") as fh:
        fh.truncate(3 * 2**20)
    refused(big, "more than a session file may be")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "linear_features", "n": 1_000_000, "d": 1000}, "data.n"),
        ({"kind": "noisy_line", "n_train": 1_000_000, "n_val": 1_000_000, "n_test": 1_000_000},
         "data.n_train"),
    ],
)  # fmt: skip
def test_sizes_each_within_their_limit_are_refused_together(
    data: dict[str, Any], field: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_MEMORY_MB", "128")
    p = preset_file(tmp_path, data=data, train={"optimizer": "sgd"})
    with pytest.raises(PresetError) as info:
        load_preset(p)
    assert info.value.field == field and "memory" in info.value.reason
    assert p.name in str(info.value)


def test_a_16_by_4096_mlp_is_refused_before_it_is_built(tmp_path: Path) -> None:
    """The transcript would keep its initial weights as lists: 250 million of them."""
    p = preset_file(
        tmp_path,
        data={"kind": "classification_2d", "shape": "xor", "n": 40},
        model={"kind": "mlp", "hidden": [4096] * 16},
        train={"loss": "bce", "optimizer": "adam"},
    )
    with pytest.raises(PresetError) as info:
        load_preset(p)
    assert info.value.field == "model.hidden" and "memory" in info.value.reason


def test_the_tui_form_cannot_ask_for_such_a_model_either() -> None:
    s = session("two-gaussians")
    with pytest.raises(ValueError, match="hidden: .*memory"):
        s.configure(hidden=(4096,) * 16)
    assert s.cfg.hidden != (4096,) * 16


def test_a_class_label_of_a_billion_is_refused(tmp_path: Path) -> None:
    """A softmax of a billion outputs would be built otherwise."""
    p = preset_file(
        tmp_path,
        data={"x": [1.0, 2.0], "y": [0.0, 1e9], "task": "classification"},
        model={"kind": "softmax"},
        train={"loss": "ce"},
    )
    with pytest.raises(PresetError, match="data.y: class label"):
        load_preset(p)


def test_a_session_file_with_a_huge_model_in_its_config_is_refused(
    saved_adam: Path, tmp_path: Path
) -> None:
    arrays = read_arrays(saved_adam)
    doc = doc_of(arrays)
    doc["config"]["hidden"] = [4096] * 16
    bad = write_session(tmp_path / "huge-config.npz", arrays, doc)
    refused(bad, "config", "hidden", "memory")


def test_undo_levels_are_read_only_as_many_as_the_stack_keeps(
    saved_sgd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The size of a level is known before the levels are read: with room for one,
    only the newest is made."""
    from playground.training import persist
    from playground.training.persist import load_session

    full = load_session(saved_sgd)
    assert full.undo_depth > 2
    one_level = full.state().nbytes
    monkeypatch.setattr(persist, "UNDO_BYTES", one_level)
    s = load_session(saved_sgd)
    assert s.undo_depth == 1
    assert s.undo_stack.peek().label == full.undo_stack.peek().label


def test_the_undo_stack_never_holds_more_than_its_bytes_plus_the_newest() -> None:
    """Undo is bounded by bytes: each level's size is counted as it is pushed and the
    oldest go first; the data of the build is counted once."""
    from playground.training.state import UndoStack

    s = session("two-gaussians")
    s.train_step()  # from now on every level holds Adam's state too
    level = s.state().nbytes
    s.undo_stack = UndoStack(max_bytes=3 * level + s.build.data_nbytes)
    for _ in range(12):
        s.train_step()
        assert s.undo_stack.nbytes <= s.undo_stack.max_bytes + level
    assert len(s.undo_stack) == 3


def test_meta_json_nested_100k_deep_is_refused(saved_sgd: Path, tmp_path: Path) -> None:
    arrays = read_arrays(saved_sgd)
    bad = write_session(tmp_path / "deep.npz", arrays, "[" * 100_000 + "]" * 100_000)
    refused(bad, "meta.json", "nested")


def test_a_csv_larger_than_the_limit_is_refused_by_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.training import data

    monkeypatch.setattr(data, "MAX_CSV_BYTES", 1000)
    (tmp_path / "d.csv").write_text("a,b\n" + "1,2\n" * 400)
    p = preset_file(tmp_path, data={"kind": "csv", "path": "d.csv", "x_columns": ["a"],
                                    "y_column": "b"})  # fmt: skip
    with pytest.raises(PresetError, match="data.csv: d.csv is .* more than a CSV file"):
        load_preset(p)


def test_csv_rows_are_counted_against_the_budget_as_they_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_MEMORY_MB", "1")
    (tmp_path / "d.csv").write_text("a,b\n" + "1,2\n" * 20000)
    p = preset_file(tmp_path, data={"kind": "csv", "path": "d.csv", "x_columns": ["a"],
                                    "y_column": "b"})  # fmt: skip
    with pytest.raises(PresetError, match="data.csv: .*memory"):
        load_preset(p)


def test_inline_data_within_the_budget_still_loads(tmp_path: Path) -> None:
    p = preset_file(tmp_path, data=INLINE)
    assert load_preset(p).build_dataset().n_features == 1
    json.dumps(INLINE)
    np.testing.assert_array_equal(load_preset(p).build_dataset().train.y.numpy(), INLINE["y"])


def test_a_bomb_whose_arrays_fit_but_whose_loading_would_not_is_refused(
    saved_sgd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declared arrays of 6 MiB under an 8 MiB budget: reading them takes the arrays,
    the tensors made of them and a member's bytes at once - refused before inflating."""
    monkeypatch.setenv("PLAYGROUND_MEMORY_MB", "8")
    bomb = tmp_path / "bomb6.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("meta.json.npy", b"\x00" * (6 * 2**20))
    refused(bomb, "while loading")


def test_the_parameter_path_of_a_large_model_stages_at_most_16_mib_on_the_device() -> None:
    """The path of every update keeps points on the device before one transfer: for a
    model of a million parameters 4 points (16 MiB), not 1024 (4 GiB); every point is
    still kept, in order."""
    import torch

    from playground.training.param_path import ParamPath

    w = torch.zeros(1024, 1024)
    path = ParamPath([w])
    write = path.writer([w])
    for step in range(1, 11):
        w.fill_(step)
        write(step)
        assert path._buf is not None and path._buf.numel() * 4 <= 16 * 2**20
    path.flush()
    assert path._n == 11 and [float(path._values[i, 0]) for i in range(11)] == list(range(11))

"""Nothing lost: a saved session comes back exactly, bad session files are refused with a
clear message, and the exports (loss CSV, runnable script) hold what the user saw."""

from __future__ import annotations

import csv
import io
import json
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from playground.training.export import KIND_NAMES, write_loss_csv
from playground.training.persist import SessionFileError, load_session, save_session
from playground.training.presets import find_preset
from playground.training.session import Session

# (preset, overrides): SGD with momentum, Adam on an MLP with mini-batches, the by-hand
# update, and K = 2 accumulation over mini-batches (by hand, with a validation split)
CASES = {
    "sgd-momentum": ("multiple-regression", {"momentum": 0.9}),
    "adam-mlp": ("tfp-two-gaussians", {}),
    "gd-by-hand": ("five-points", {}),
    "gd-accumulate-2": ("softmax", {"accumulate": 2}),
    "sgd-minibatch-val": ("logistic-val", {}),
}


def _session(case: str) -> Session:
    name, overrides = CASES[case]
    return Session(find_preset(name), device="cpu", **overrides)


def _params(s: Session) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in s.model.params.items()}


def _columns(s: Session) -> dict[str, np.ndarray]:
    loss, step, kind = s.history.views()
    val_loss, val_step, _ = s.val_history.views()
    return {
        "loss": loss.copy(),
        "step": step.copy(),
        "kind": kind.copy(),
        "val_loss": val_loss.copy(),
        "val_step": val_step.copy(),
    }


def _assert_same_training(a: Session, b: Session, *, with_val: bool = True) -> None:
    for n, p in a.model.params.items():
        q = b.model.params[n]
        assert torch.equal(p, q), f"parameter {n} differs"
        assert (p.grad is None) == (q.grad is None), f"{n}.grad presence differs"
        if p.grad is not None:
            assert torch.equal(p.grad, q.grad), f"{n}.grad differs"
    assert a.progress == b.progress  # steps, micro-batch cursor, samples, backward counts
    ca, cb = _columns(a), _columns(b)
    keys = ca if with_val else ("loss", "step", "kind")
    for k in keys:
        assert np.array_equal(ca[k], cb[k]), f"history column {k} differs"


def _groups(s: Session) -> list[dict[str, Any]]:
    return [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()}
        for g in s.optimizer.state_dict()["param_groups"]
    ]


def _drive(s: Session, how: str, n: int) -> None:
    if how == "run":
        s.run(n)
    else:
        for _ in range(n):
            s.train_step()


# --- save -> load -> continue ----------------------------------------------------------


@pytest.mark.parametrize(
    "case, how",
    [(case, "run") for case in CASES]
    # the one-step-at-a-time path too (kept to the cheap presets)
    + [("gd-by-hand", "train_step"), ("sgd-momentum", "train_step")],
)
def test_save_load_then_50_more_steps_equals_100_uninterrupted(
    case: str, how: str, tmp_path: Path
) -> None:
    """A student who saves after 50 steps, quits, resumes and trains 50 more ends with the
    very same numbers (bit for bit on the CPU) as one who never stopped."""
    straight = _session(case)
    _drive(straight, how, 100)

    halves = _session(case)  # same call pattern as the resumed one, for the val curve
    _drive(halves, how, 50)
    _drive(halves, how, 50)

    first = _session(case)
    _drive(first, how, 50)
    path = save_session(first, tmp_path / "s.npz")
    resumed = load_session(path, device="cpu")
    _drive(resumed, how, 50)

    assert resumed.step_count == 100
    _assert_same_training(straight, resumed, with_val=how == "train_step")
    _assert_same_training(halves, resumed)
    if halves.optimizer is not None:
        # JSON turns tuples (Adam's betas) into lists; the values are what matter
        assert _groups(resumed) == _groups(halves)
    assert resumed.transcript.lines() == halves.transcript.lines()  # the same code
    assert resumed.transcript.entries == halves.transcript.entries


@pytest.mark.parametrize("case", ["gd-by-hand", "sgd-momentum", "gd-accumulate-2"])
def test_undo_after_loading_returns_to_the_parameters_before_the_run(
    case: str, tmp_path: Path
) -> None:
    """Undo is not lost by saving: after loading, undo goes back to before the last run."""
    s = _session(case)
    before = _params(s)
    s.run(20)
    path = save_session(s, tmp_path / "u.npz")
    loaded = load_session(path)
    assert loaded.undo_depth >= 1
    assert loaded.undo()
    after = _params(loaded)
    for n in before:
        assert torch.equal(before[n], after[n]), n
    assert loaded.step_count == 0
    assert len(loaded.history) == 0


def test_undo_levels_of_single_steps_survive_a_save(tmp_path: Path) -> None:
    """Three train steps saved: three undos after loading walk back through them."""
    s = _session("sgd-momentum")
    seen = [_params(s)]
    for _ in range(3):
        s.train_step()
        seen.append(_params(s))
    loaded = load_session(save_session(s, tmp_path / "u3.npz"))
    for expected in reversed(seen[:-1]):
        assert loaded.undo()
        now = _params(loaded)
        for n in expected:
            assert torch.equal(expected[n], now[n]), n
    assert loaded.step_count == 0


def test_loading_on_cpu_explicitly(tmp_path: Path) -> None:
    """``--device cpu`` on resume puts the whole session on the CPU."""
    s = _session("adam-mlp")
    s.run(5)
    loaded = load_session(save_session(s, tmp_path / "c.npz"), device="cpu")
    assert loaded.device.type == "cpu"
    assert loaded.cfg.device == "cpu"
    assert all(p.device.type == "cpu" for p in loaded.model.params.values())
    for st in loaded.optimizer.state.values():
        for v in st.values():
            if isinstance(v, torch.Tensor):
                assert v.device.type == "cpu"
    loaded.train_step()
    assert loaded.step_count == 6


def test_save_replaces_atomically_and_leaves_no_temp_file(tmp_path: Path) -> None:
    """Saving twice over the same name leaves exactly that one file."""
    s = _session("gd-by-hand")
    save_session(s, tmp_path / "a.npz")
    s.train_step()
    save_session(s, tmp_path / "a.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]
    assert load_session(tmp_path / "a.npz").step_count == 1


# --- refused files ----------------------------------------------------------------------


class _Marker:
    """A pickle whose unpickling would create a file (what an attacker's payload does)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def _refused(path: Path, *words: str) -> SessionFileError:
    with pytest.raises(SessionFileError) as info:
        load_session(path)
    msg = str(info.value)
    assert path.name in msg, f"message does not name the file: {msg}"
    for w in words:
        assert w.lower() in msg.lower(), f"{w!r} not in {msg!r}"
    return info.value


def test_a_pickle_payload_is_refused_and_never_run(tmp_path: Path) -> None:
    """A 'session' that is really a pickle is refused; its payload never runs."""
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.npz"
    evil.write_bytes(pickle.dumps(_Marker(marker)))
    _refused(evil, "pickle")
    assert not marker.exists()


def test_a_torch_save_file_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    """torch.save writes a zip holding a pickle: still refused, payload never run."""
    marker = tmp_path / "PWNED"
    evil = tmp_path / "torchsave.npz"
    torch.save({"x": _Marker(marker)}, evil)
    _refused(evil)
    assert not marker.exists()


def test_an_object_array_in_the_npz_is_refused(tmp_path: Path) -> None:
    """An .npz member holding an object array (a pickle inside) is refused, not loaded."""
    marker = tmp_path / "PWNED"
    good = save_session(_session("gd-by-hand"), tmp_path / "good.npz")
    arrays = _read_npz(good)
    payload = np.empty(1, dtype=object)
    payload[0] = _Marker(marker)
    arrays["history/loss"] = payload
    bad = tmp_path / "object.npz"
    _write_npz(bad, arrays)
    _refused(bad)
    assert not marker.exists()


def test_a_zip_with_raw_members_is_refused_cleanly(tmp_path: Path) -> None:
    """A zip whose members are not .npy arrays (hand-made or another tool's) gets a
    SessionFileError, not an internal error."""
    bad = tmp_path / "raw.npz"
    doc = json.dumps({"format": "playground-session", "version": 1})
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("meta.json", doc)
    _refused(bad)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


def _doc(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return json.loads(arrays["meta.json"].tobytes().decode("utf-8"))


def _with_doc(arrays: dict[str, np.ndarray], doc: dict[str, Any]) -> dict[str, np.ndarray]:
    out = dict(arrays)
    out["meta.json"] = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    return out


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A session with SGD momentum state, grads, history and two undo levels."""
    s = _session("sgd-momentum")
    s.run(5)
    s.backward()
    return save_session(s, tmp_path / "saved.npz")


def test_a_truncated_file_is_refused(saved: Path, tmp_path: Path) -> None:
    """A half-written file (disk full, killed copy) is refused and named."""
    raw = saved.read_bytes()
    for cut in (0, 10, len(raw) // 2, len(raw) - 10):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(raw[:cut])
        _refused(bad)


def test_a_corrupted_file_is_refused(saved: Path, tmp_path: Path) -> None:
    """Flipped bytes anywhere in the file give a SessionFileError naming it, never a crash."""
    raw = bytearray(saved.read_bytes())
    rng = np.random.default_rng(0)
    for i, pos in enumerate(rng.integers(0, len(raw), 40)):
        bad = tmp_path / f"flip{i}.npz"
        data = bytearray(raw)
        data[pos] ^= 0xFF
        bad.write_bytes(bytes(data))
        try:
            load_session(bad)
        except SessionFileError as exc:
            assert bad.name in str(exc)
        # a flip inside a float's bytes can load fine: that is not a crash either


def test_a_zip_needing_a_newer_zip_version_is_refused(saved: Path, tmp_path: Path) -> None:
    """One byte off in the central directory's "version needed to extract" (zipfile raises
    NotImplementedError for it): a SessionFileError naming the file, not a crash."""
    raw = bytearray(saved.read_bytes())
    at = raw.index(b"PK\x01\x02") + 6  # the first member's entry: version needed
    raw[at] = 0xFF
    bad = tmp_path / "newer.npz"
    bad.write_bytes(bytes(raw))
    _refused(bad, "corrupt archive")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    """A session file that is not there: SessionFileError naming it."""
    _refused(tmp_path / "nope.npz", "cannot read")


def test_wrong_version_is_refused(saved: Path, tmp_path: Path) -> None:
    """A file from a newer (or older) format version says which version it is."""
    arrays = _read_npz(saved)
    doc = _doc(arrays)
    for version in (3, 0, "2", None, True):
        doc["version"] = version
        bad = tmp_path / f"v{version}.npz"
        _write_npz(bad, _with_doc(arrays, doc))
        _refused(bad, "version")


def test_wrong_format_is_refused(saved: Path, tmp_path: Path) -> None:
    arrays = _read_npz(saved)
    doc = _doc(arrays)
    doc["format"] = "something-else"
    bad = tmp_path / "fmt.npz"
    _write_npz(bad, _with_doc(arrays, doc))
    _refused(bad, "format")


def test_missing_meta_is_refused(saved: Path, tmp_path: Path) -> None:
    arrays = _read_npz(saved)
    del arrays["meta.json"]
    bad = tmp_path / "nometa.npz"
    _write_npz(bad, arrays)
    _refused(bad, "meta.json")


def test_meta_that_is_not_json_is_refused(saved: Path, tmp_path: Path) -> None:
    arrays = _read_npz(saved)
    arrays["meta.json"] = np.frombuffer(b"{not json", dtype=np.uint8)
    bad = tmp_path / "badjson.npz"
    _write_npz(bad, arrays)
    _refused(bad, "json")


REQUIRED_FIELDS = [
    "preset",
    "config",
    "values",
    "grads",
    "deltas",
    "counts",
    "optimizer",
    "progress",
    "live",
    "lengths",
    "transcript",
    "undo",
]


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_a_missing_field_is_refused(field: str, saved: Path, tmp_path: Path) -> None:
    """Each part of the saved state that is missing is reported, naming the file."""
    arrays = _read_npz(saved)
    doc = _doc(arrays)
    del doc[field]
    bad = tmp_path / f"no-{field}.npz"
    _write_npz(bad, _with_doc(arrays, doc))
    _refused(bad)


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
@pytest.mark.parametrize("value", [None, "x", -5, 1.5, [], {}, [["a"]], {"w": "nope"}])
def test_a_field_of_the_wrong_type_is_refused(
    field: str, value: Any, saved: Path, tmp_path: Path
) -> None:
    """A hand-edited or damaged field gives a SessionFileError (or loads, if the value
    happens to be acceptable) - never an internal error such as TypeError."""
    arrays = _read_npz(saved)
    doc = _doc(arrays)
    doc[field] = value
    bad = tmp_path / "typed.npz"
    _write_npz(bad, _with_doc(arrays, doc))
    try:
        load_session(bad)
    except SessionFileError as exc:
        assert bad.name in str(exc)


@pytest.mark.parametrize(
    "key",
    [
        "value/weight",
        "value/bias",
        "grad/weight",
        "delta/bias",
        "history/loss",
        "opt/0/momentum_buffer",
        "undo0/value/weight",
    ],
)
def test_arrays_of_the_wrong_shape_are_refused(key: str, saved: Path, tmp_path: Path) -> None:
    """Arrays that do not fit the model (another preset's file, a hand edit) are refused
    when loading, not accepted to fail at the next step."""
    arrays = _read_npz(saved)
    assert key in arrays, sorted(arrays)
    arrays[key] = np.zeros((7, 3, 2), dtype=np.float32)
    bad = tmp_path / "shape.npz"
    _write_npz(bad, arrays)
    _refused(bad)


@pytest.mark.parametrize("key", ["value/weight", "grad/bias", "history/loss", "val/step"])
def test_a_missing_array_is_refused(key: str, saved: Path, tmp_path: Path) -> None:
    """An array the document points to but the archive lacks: refused, file named."""
    arrays = _read_npz(saved)
    del arrays[key]
    bad = tmp_path / "noarray.npz"
    _write_npz(bad, arrays)
    _refused(bad)


def test_a_string_array_is_refused(saved: Path, tmp_path: Path) -> None:
    """Arrays of text where numbers belong are refused (dtype named)."""
    arrays = _read_npz(saved)
    key = next(k for k in arrays if k.startswith("value/"))
    arrays[key] = np.array(["a"], dtype="U1")
    bad = tmp_path / "str.npz"
    _write_npz(bad, arrays)
    _refused(bad)


def test_a_file_for_another_preset_shape_is_refused(tmp_path: Path) -> None:
    """Parameters saved from one model pasted into another preset's file are refused."""
    mlp = save_session(_session("adam-mlp"), tmp_path / "mlp.npz")
    lin = save_session(_session("sgd-momentum"), tmp_path / "lin.npz")
    arrays = _read_npz(lin)
    doc = _doc(arrays)
    doc["preset"] = _doc(_read_npz(mlp))["preset"]
    doc["config"] = _doc(_read_npz(mlp))["config"]
    bad = tmp_path / "mixed.npz"
    _write_npz(bad, _with_doc(arrays, doc))
    _refused(bad)


# --- exports ----------------------------------------------------------------------------


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


@pytest.mark.parametrize(
    "case, actions",
    [
        ("gd-by-hand", lambda s: (s.forward(), s.backward(), s.backward(), s.step(), s.run(7))),
        ("sgd-minibatch-val", lambda s: (s.train_step(), s.run(12), s.forward())),
        ("gd-accumulate-2", lambda s: (s.run(9), s.backward())),
    ],
)
def test_loss_csv_has_one_row_per_recorded_loss(
    case: str, actions: Callable[[Session], Any], tmp_path: Path
) -> None:
    """The loss CSV holds exactly the history the loss plot shows: one row per batch
    loss, same values, steps and kinds, with the validation loss where it was measured."""
    s = _session(case)
    actions(s)
    snap = s.snapshot()
    h = snap.history
    path = write_loss_csv(s.history, s.val_history, tmp_path / "sub" / "loss.csv")
    header, rows = _read_csv(path)
    assert header == ["index", "step", "kind", "loss", "val_loss"]
    assert len(rows) == len(h.loss) > 0
    for i, row in enumerate(rows):
        assert int(row[0]) == i
        assert int(row[1]) == int(h.step[i])
        assert row[2] == KIND_NAMES[int(h.kind[i])]
        assert np.float32(float(row[3])) == h.loss[i]
    vals = {int(idx): v for idx, v in zip(h.val_index, h.val_loss, strict=True)}
    for i, row in enumerate(rows):
        if i + 1 in vals:
            assert np.float32(float(row[4])) == vals[i + 1]
        else:
            assert row[4] == ""


def test_cli_run_exports_a_csv_and_a_script_that_runs(tmp_path: Path) -> None:
    """``playground run PRESET --steps 20 --export-script f.py --export-csv f.csv``
    writes both files; the script runs on plain python + torch and ends at the same
    parameters the CLI reported."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "playground",
            "run",
            "five-points",
            "--steps",
            "20",
            "--device",
            "cpu",
            "--json",
            "--export-script",
            "f.py",
            "--export-csv",
            "f.csv",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["type"] == "summary"
    assert summary["steps"] == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv", "f.py"]

    header, rows = _read_csv(tmp_path / "f.csv")
    assert header == ["index", "step", "kind", "loss", "val_loss"]
    assert len(rows) == 20  # full batch: one loss per train step
    assert [int(r[1]) for r in rows] == list(range(20))
    assert {r[2] for r in rows} == {"train"}

    script = subprocess.run(
        [sys.executable, "f.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert script.returncode == 0, script.stderr
    out = script.stdout.strip().splitlines()
    assert out[0] == "final parameters:"
    printed = [np.asarray(json.loads(line), dtype=np.float64) for line in out[1:]]
    final = [np.asarray(v, dtype=np.float64) for v in summary["final"].values()]
    assert len(printed) == len(final)
    for a, b in zip(printed, final, strict=True):
        np.testing.assert_allclose(a.reshape(-1), b.reshape(-1), rtol=1e-6, atol=1e-6)

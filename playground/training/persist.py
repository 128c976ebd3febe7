"""Saving and restoring a session: one ``.npz`` file of plain arrays plus a JSON document.

Saving goes through the one atomic writer (``playground.files.write_atomic``): the old
file or the whole new one, never a part. Loading never unpickles and trusts nothing:
the archive's sizes are checked before anything is allocated (``npz``), and every field
is validated against the session it is loaded into (``session_reader``). A restored
session continues with exactly the numbers it would have produced had it never stopped:
the data and the initial model are rebuilt from the preset and the seed, then the saved
``TrainState`` - parameters, gradients, optimizer state, counters, loss history,
transcript - and the recent undo levels (states of the same shape) are put back. A
preset (or its data) that changed since the file was saved is said in ``notes``. What
the runner was doing (running, paused) is not part of a session: a resumed session is idle.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from playground.files import FileError, read_limited, write_atomic
from playground.training.budget import budget
from playground.training.catalog import MAX_TOML_BYTES, PresetError
from playground.training.config import REBUILD, SETTINGS, TrainConfig, finite_number
from playground.training.export import KIND_NAMES
from playground.training.presets import Preset, check_fit, find_preset, load_preset
from playground.training.session import Session
from playground.training.session_reader import (
    FORMAT,
    LIVE_SETTINGS,
    PROGRESS,
    SERIES,
    VERSION,
    Reader,
    SessionFileError,
    columns,
    read_state,
)
from playground.training.state import UNDO_BYTES, TrainState, UndoEntry
from playground.training.transcript import entry_to_plain

__all__ = ["SERIES", "SessionFileError", "load_session", "save_session"]

SAVED_UNDO = 16  # undo levels kept in a session file
_REBUILD = {n for n, st in SETTINGS.items() if st.effect == REBUILD}


# --- save ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _tensors(
    prefix: str, values: dict[str, Any], arrays: dict[str, np.ndarray]
) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, t in values.items():
        if t is None:
            out[name] = None
        else:
            key = f"{prefix}{name}"
            arrays[key] = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t
            out[name] = key
    return out


def _opt_doc(prefix: str, state: dict[str, Any] | None, arrays: dict[str, np.ndarray]) -> Any:
    if state is None:
        return None
    out: dict[str, Any] = {"state": {}}
    for idx, entry in state["state"].items():
        meta: dict[str, Any] = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                name = f"{prefix}opt/{idx}/{key}"
                arrays[name] = value.detach().cpu().numpy()
                meta[key] = {"array": name}
            else:
                meta[key] = value
        out["state"][str(idx)] = meta
    return out


def _state_doc(prefix: str, st: TrainState, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """A ``TrainState`` as JSON fields plus arrays (the same shape for every level)."""
    p = st.progress
    return {
        "values": _tensors(prefix + "value/", st.values, arrays),
        "grads": _tensors(prefix + "grad/", st.grads, arrays),
        "deltas": _tensors(prefix + "delta/", st.deltas, arrays),
        "analytic": None
        if st.analytic is None
        else _tensors(prefix + "analytic/", st.analytic, arrays),
        "counts": dict(p.backwards_since_zero),
        "optimizer": _opt_doc(prefix, st.optimizer, arrays),
        "progress": {k: getattr(p, k) for k in PROGRESS}
        | {"last_batch": p.last_batch, "grad_step": p.grad_step},
        "live": {k: _plain(getattr(st.config, k)) for k in LIVE_SETTINGS},
        "lengths": {name: mark.length for name, mark in st.marks.items()},
        "best": None
        if st.best is None or not math.isfinite(float(st.best.val_loss))
        else {
            "epoch": int(st.best.epoch),
            "val_loss": float(st.best.val_loss),
            "values": _tensors(prefix + "best/", st.best.values, arrays),
        },
        "transcript": [entry_to_plain(e) for e in st.transcript],
    }


def save_session(session: Session, path: str | Path) -> Path:
    """Write ``session`` to ``path`` (.npz); the file is replaced atomically."""
    s = session
    arrays: dict[str, np.ndarray] = {}
    # mid-run, the run so far is an undo level too (undo after resuming: before the run)
    entries = [*s.undo_stack, *s.run_entries()]
    levels = [e for e in entries if e.state.build is s.build][-SAVED_UNDO:]
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "preset": {"name": s.preset.name, "path": str(s.preset.path)},
        "config": {k: _plain(v) for k, v in asdict(s.cfg).items()},
        "device": str(s.device),
        "fingerprint": _fingerprint(s),
        **_state_doc("", s.state(), arrays),
        "undo": [
            {"label": e.label, "note": e.note, **_state_doc(f"undo{i}/", e.state, arrays)}
            for i, e in enumerate(levels)
        ],
    }
    for name, recorder in s.build.series.items():
        for key, column in zip(columns(name), recorder.views(), strict=True):
            arrays[key] = np.asarray(column)
    arrays["meta.json"] = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    return write_atomic(path, lambda fh: np.savez(fh, **arrays))


# --- load ---------------------------------------------------------------------------------


def load_session(
    path: str | Path, device: str | None = None, notes: list[str] | None = None
) -> Session:
    """Rebuild a saved session (optionally on another ``device``). What the user should
    know (its preset changed since) is appended to ``notes``. Every problem with the
    file is a SessionFileError naming it and the field."""
    r = Reader(Path(path), budget())
    try:
        return _load(r, device, notes if notes is not None else [])
    except SessionFileError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError, OverflowError) as exc:
        from playground.training.recover import is_device_error

        if is_device_error(exc):  # the device failed, not the file
            raise
        # a combination the checks above did not foresee: still the file's problem
        raise r.error(f"does not fit its preset ({type(exc).__name__}: {exc})") from exc


def _load(r: Reader, device: str | None, notes: list[str]) -> Session:
    if r.version == 1:
        from playground.training.session_v1 import from_version_1

        r.doc = from_version_1(r, r.doc)
    doc = r.doc
    cfg = _config(r, r.field(doc, "config", dict), device)
    preset = _preset(r, r.field(doc, "preset", dict))
    if cfg.changes_from(preset.config).keys() & _REBUILD:
        try:  # settings of the file's own: the loss, the model, the memory they need
            check_fit(preset, cfg)
        except PresetError as exc:
            raise r.error(f"config: {exc.field}: {exc.reason}") from exc
    try:
        s = Session(preset, config=cfg)
    except (ValueError, PresetError) as exc:
        raise r.error(f"cannot rebuild the session: {exc}") from exc
    series = {name: _series(r, name) for name in SERIES}
    lengths = {name: len(cols[0]) for name, cols in series.items()}
    current = read_state(r, doc, s, lengths)
    if {n: m.length for n, m in current.marks.items()} != lengths:
        raise r.error(f"lengths {lengths} of the saved history do not match the file's")
    levels = _levels(r, r.field(doc, "undo", list), s, lengths, current)
    for name, cols in series.items():
        s.build.series[name].extend(*cols)
    try:
        s.restore(current)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise r.error(f"the saved state does not fit: {exc}") from exc
    for st, label, note in levels:
        s.undo_stack.push(UndoEntry(label, st, note))
    notes.extend(_changes(r, doc.get("fingerprint"), s))
    return s


def _series(r: Reader, name: str) -> list[np.ndarray]:
    """One recorded series: losses, and steps and tags that are counts (a batch loss's
    tag is the kind of pass that recorded it)."""
    cols = [r.array(k, None, "history") for k in columns(name)]
    what = SERIES[name][0]
    if any(c.ndim != 1 for c in cols) or len({len(c) for c in cols}) != 1:
        raise r.error(f"{what} arrays must be 1-D and of equal length")
    _, step, tag = cols
    counts = all(_counts(c) for c in (step, tag))
    kinds = name != "batch" or set(np.unique(tag).tolist()) <= set(KIND_NAMES)
    if not (counts and kinds):
        raise r.error(f"{what}: steps and tags must be counts (and kinds of pass)")
    return cols


def _counts(a: np.ndarray) -> bool:
    return a.dtype.kind in "iu" and (a.size == 0 or (a.min() >= 0 and a.max() < 2**62))


def _preset(r: Reader, doc: dict[str, Any]) -> Preset:
    """The file's preset: its .toml file when that is there, else the shipped one of
    its name."""
    name, where = doc.get("name", ""), doc.get("path", "")
    if not isinstance(name, str) or not isinstance(where, str):
        raise r.error("preset: name and path must be text")
    try:
        ppath = Path(where)
        found = ppath.suffix == ".toml" and ppath.is_file()
        return load_preset(ppath) if found else find_preset(name)
    except (PresetError, OSError, ValueError) as exc:
        raise r.error(f"its preset cannot be loaded: {exc}") from exc


def _levels(
    r: Reader, docs: list[Any], s: Session, lengths: dict[str, int], current: TrainState
) -> list[tuple[TrainState, str, str]]:
    """The undo levels, oldest first: no more than a file holds, and only the newest
    that the undo stack keeps - their size is known before they are read."""
    if len(docs) > SAVED_UNDO:
        raise r.error(f"undo: {len(docs)} levels, more than the {SAVED_UNDO} a file keeps")
    keep = max(1, UNDO_BYTES // max(1, current.nbytes))
    out = []
    for i, level in enumerate(docs[-keep:]):
        if not isinstance(level, dict):
            raise r.error(f"undo level {i} is malformed")
        note = r.text(level, "note", "")
        out.append((read_state(r, level, s, lengths), r.text(level, "label"), note))
    return out


def _config(r: Reader, cfg_doc: dict[str, Any], device: str | None) -> TrainConfig:
    values = {
        k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg_doc.items() if k in SETTINGS
    }
    if "init_values" in values:
        pairs = values["init_values"]
        if not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and finite_number(p[1])
            for p in pairs
        ):
            raise r.error("config: init_values must be [name, number] pairs")
        values["init_values"] = tuple((str(n), float(v)) for n, v in pairs)
    if device:
        values["device"] = device
    try:
        cfg = TrainConfig(**values)
    except TypeError as exc:
        raise r.error(f"config: {exc}") from exc
    problem = cfg.problem()
    if problem:
        raise r.error(f"config: {problem}")
    return cfg


# --- what changed since the file was saved -------------------------------------------


def _fingerprint(s: Session) -> dict[str, str | None]:
    """Digests of the preset file and of the training data, to notice a change."""
    try:
        preset: str | None = hashlib.sha256(
            read_limited(s.preset.path, MAX_TOML_BYTES, "preset file")
        ).hexdigest()
    except (FileError, OSError):
        preset = None
    return {"preset": preset, "data": _data_digest(s)}


def _data_digest(s: Session) -> str:
    h = hashlib.sha256()
    for t in (s.build.x, s.build.y):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _changes(r: Reader, saved: Any, s: Session) -> list[str]:
    if not isinstance(saved, dict):
        return []  # files written before fingerprints were kept
    now = _fingerprint(s)
    said = []
    if isinstance(saved.get("data"), str) and saved["data"] != now["data"]:
        said.append(
            f"{r.path.name}: the training data of preset {s.preset.name} changed since the "
            "session was saved: it goes on with the parameters it had, on the data as it is now"
        )
    elif isinstance(saved.get("preset"), str) and saved["preset"] != now["preset"]:
        said.append(
            f"{r.path.name}: preset file {s.preset.path.name} changed since the session was "
            "saved (its data is the same)"
        )
    return said

"""Saving and restoring a session: one ``.npz`` file of plain arrays plus a JSON document.

Loading never unpickles: ``np.load(allow_pickle=False)`` refuses object arrays and pickled
files, and everything else is validated field by field. A restored session continues
with exactly the numbers it would have produced had it never stopped: the data and the
initial model are rebuilt from the preset and the seed, then the saved ``TrainState`` -
parameters, gradients, optimizer state, counters, loss history, transcript - and the
recent undo levels (states of the same shape) are put back. What the runner was doing
(running, paused) is not part of a session: a resumed session is idle.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import tempfile
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from playground.training.catalog import PresetError
from playground.training.config import LIVE, SETTINGS, TrainConfig
from playground.training.history import Mark
from playground.training.presets import find_preset, load_preset
from playground.training.session import Session
from playground.training.state import Best, Progress, TrainState, UndoEntry
from playground.training.transcript import Entry, entry_from_plain, entry_to_plain

FORMAT = "playground-session"
VERSION = 2
READABLE = (1, 2)  # version 1: before the one-state format (read, converted on the way in)
SAVED_UNDO = 16  # undo levels kept in a session file
_PROGRESS = (
    "step",
    "cursor",
    "samples_trained",
    "samples_pending",
    "backward_total",
    "epochs_done",
    "epoch_mark",
)
_LIVE = tuple(n for n, s in SETTINGS.items() if s.effect == LIVE)
# each of a build's series as three arrays: {prefix}/loss, {prefix}/step, {prefix}/{tag}
SERIES = {"batch": ("history", "kind"), "val": ("val", "tag"), "val_acc": ("val_acc", "tag")}


def _columns(name: str) -> tuple[str, str, str]:
    prefix, tag = SERIES[name]
    return f"{prefix}/loss", f"{prefix}/step", f"{prefix}/{tag}"


# optimizer state entries shaped like their parameter ("step" is a scalar)
_PARAM_SHAPED = {"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}


class SessionFileError(ValueError):
    """A session file that cannot be loaded: which file, and why."""


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
        "progress": {k: getattr(p, k) for k in _PROGRESS}
        | {"last_batch": p.last_batch, "grad_step": p.grad_step},
        "live": {k: _plain(getattr(st.config, k)) for k in _LIVE},
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
        **_state_doc("", s.state(), arrays),
        "undo": [
            {"label": e.label, "note": e.note, **_state_doc(f"undo{i}/", e.state, arrays)}
            for i, e in enumerate(levels)
        ],
    }
    for name, recorder in s.build.series.items():
        for key, column in zip(_columns(name), recorder.views(), strict=True):
            arrays[key] = np.asarray(column)
    arrays["meta.json"] = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # a temporary name of its own in the same folder: two saves at once never share one
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


# --- load ---------------------------------------------------------------------------------


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise self.error(f"cannot read: {exc.strerror or exc}") from exc
        if not zipfile.is_zipfile(io.BytesIO(raw)):
            hint = " (it looks like a pickle, which is never loaded)" if raw[:1] == b"\x80" else ""
            raise self.error(f"not a playground session file (.npz){hint}")
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                self.arrays = {k: z[k] for k in z.files}
        except ValueError as exc:
            raise self.error(f"refused: {exc} - session files hold plain arrays only") from exc
        except Exception as exc:  # noqa: BLE001 - zipfile/zlib raise many kinds on bad bytes
            raise self.error(f"corrupt archive ({type(exc).__name__}: {exc})") from exc
        odd = [k for k, v in self.arrays.items() if not isinstance(v, np.ndarray)]
        if odd:
            raise self.error(f"member {odd[0]!r} is not a numpy array")
        meta = self.arrays.pop("meta.json", None)
        if meta is None or meta.dtype != np.uint8:
            raise self.error("meta.json is missing")
        try:
            self.doc = json.loads(meta.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise self.error(f"meta.json is not valid JSON: {exc}") from exc
        if not isinstance(self.doc, dict) or self.doc.get("format") != FORMAT:
            raise self.error("not a playground session file (format field)")
        version = self.doc.get("version")
        if type(version) is not int or version not in READABLE:
            raise self.error(f"version {version!r} is not supported (expected {VERSION})")
        if version == 1:
            self.doc = _from_version_1(self, self.doc)

    def error(self, reason: str) -> SessionFileError:
        return SessionFileError(f"{self.path.name}: {reason}")

    def field(self, doc: Any, key: str, kind: type | tuple[type, ...]) -> Any:
        if not isinstance(doc, dict) or key not in doc:
            raise self.error(f"field {key!r} is missing")
        value = doc[key]
        if not isinstance(value, kind) or isinstance(value, bool) and bool not in _kinds(kind):
            raise self.error(f"field {key!r} has the wrong type ({type(value).__name__})")
        return value

    def array(self, key: Any, like: torch.Tensor | None = None, what: str = "") -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise self.error(f"array {key!r} ({what}) is missing")
        a = self.arrays[key]
        if like is not None and tuple(a.shape) != tuple(like.shape):
            raise self.error(
                f"{what}: shape {tuple(a.shape)} does not match the model's {tuple(like.shape)}"
            )
        if a.dtype.kind not in "fiub":
            raise self.error(f"{what}: unsupported dtype {a.dtype}")
        return a

    def tensors(self, doc: Any, s: Session, what: str, allow_none: bool) -> dict[str, Any]:
        params = s.model.params
        if not isinstance(doc, dict) or set(doc) != set(params):
            raise self.error(
                f"{what}: parameter names {sorted(doc) if isinstance(doc, dict) else doc!r}"
                f" do not match the model's {sorted(params)}"
            )
        out: dict[str, torch.Tensor | None] = {}
        for name, key in doc.items():
            if key is None:
                if not allow_none:
                    raise self.error(f"{what}: {name} is missing")
                out[name] = None
                continue
            a = self.array(key, params[name], f"{what} {name}")
            out[name] = torch.tensor(a, dtype=params[name].dtype, device=s.device)
        return out

    def opt_state(self, doc: Any, s: Session, cfg: TrainConfig) -> dict[str, Any] | None:
        """An optimizer state_dict: the per-parameter state from the file, the param
        groups from this session's optimizer with the state's own hyper-parameters."""
        if s.optimizer is None:
            return None
        if not isinstance(doc, dict):
            raise self.error("optimizer state is missing")
        params = list(s.model.params.values())
        state: dict[int, dict[str, Any]] = {}
        for idx, entry in self.field(doc, "state", dict).items():
            if not isinstance(entry, dict) or not str(idx).isdigit() or int(idx) >= len(params):
                raise self.error(f"optimizer state entry {idx!r} does not fit the model")
            restored: dict[str, Any] = {}
            for key, value in entry.items():
                if isinstance(value, dict):
                    like = params[int(idx)] if key in _PARAM_SHAPED else None
                    a = self.array(value.get("array"), like, f"optimizer {key}")
                    if key == "step" and a.ndim != 0:
                        raise self.error("optimizer step must be a scalar")
                    restored[key] = torch.tensor(a, device=s.device)
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    restored[key] = value
                else:
                    raise self.error(f"optimizer {key}: unexpected value {value!r}")
            state[int(idx)] = restored
        groups = copy.deepcopy(s.optimizer.state_dict()["param_groups"])
        for group in groups:
            for name in _LIVE:
                if SETTINGS[name].optimizer_hyper and name in group:
                    group[name] = getattr(cfg, name)
        return {"state": state, "param_groups": groups}


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def load_session(path: str | Path, device: str | None = None) -> Session:
    """Rebuild a saved session (optionally on another ``device``)."""
    r = _Reader(Path(path))
    doc = r.doc
    cfg = _config(r, r.field(doc, "config", dict), device)
    preset_doc = r.field(doc, "preset", dict)
    try:
        ppath = Path(str(preset_doc.get("path", "")))
        preset = (
            load_preset(ppath)
            if ppath.suffix == ".toml" and ppath.exists()
            else find_preset(str(preset_doc.get("name", "")))
        )
    except PresetError as exc:
        raise r.error(f"its preset cannot be loaded: {exc}") from exc
    try:
        s = Session(preset, config=cfg)
    except (ValueError, PresetError) as exc:
        raise r.error(f"cannot rebuild the session: {exc}") from exc
    series = {}
    for name in SERIES:
        cols = [r.array(k, None, "history") for k in _columns(name)]
        if any(c.ndim != 1 for c in cols) or len({len(c) for c in cols}) != 1:
            raise r.error(f"{SERIES[name][0]} arrays must be 1-D and of equal length")
        series[name] = cols
    lengths = {name: len(cols[0]) for name, cols in series.items()}
    current = _read_state(r, doc, s, lengths)
    if {n: m.length for n, m in current.marks.items()} != lengths:
        raise r.error(f"lengths {lengths} of the saved history do not match the file's")
    levels = [
        (
            _read_state(r, level, s, lengths),
            str(r.field(level, "label", str)),
            str(level.get("note", "")) if isinstance(level, dict) else "",
        )
        for level in r.field(doc, "undo", list)
    ]
    for name, cols in series.items():
        s.build.series[name].extend(*cols)
    try:
        s.restore(current)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise r.error(f"the saved state does not fit: {exc}") from exc
    for st, label, note in levels:
        s.undo_stack.push(UndoEntry(label, st, note))
    return s


def _config(r: _Reader, cfg_doc: dict[str, Any], device: str | None) -> TrainConfig:
    try:
        values = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg_doc.items() if k in SETTINGS
        }
        if "init_values" in values:
            values["init_values"] = tuple(tuple(x) for x in values["init_values"])
        if device:
            values["device"] = device
        cfg = TrainConfig(**values)
    except TypeError as exc:
        raise r.error(f"config: {exc}") from exc
    problem = cfg.problem()
    if problem:
        raise r.error(f"config: {problem}")
    return cfg


def _read_state(r: _Reader, doc: Any, s: Session, lengths: dict[str, int]) -> TrainState:
    """One saved state (the current one or an undo level), validated against ``s``."""
    if not isinstance(doc, dict):
        raise r.error("undo level malformed")
    live = r.field(doc, "live", dict)
    try:
        cfg = s.cfg.with_overrides(**{k: _plain_in(v) for k, v in live.items() if k in _LIVE})
    except (ValueError, TypeError) as exc:
        raise r.error(f"live settings: {exc}") from exc
    counts = r.field(doc, "counts", dict)
    if set(counts) != set(s.model.params) or not all(
        type(v) is int and v >= 0 for v in counts.values()
    ):
        raise r.error("counts do not match the model's parameters")
    prog = r.field(doc, "progress", dict)
    numbers = [prog.get(k) for k in _PROGRESS]
    if not all(type(n) is int and n >= 0 for n in numbers):
        raise r.error(f"progress: {', '.join(_PROGRESS)} must be non-negative integers")
    last_batch = prog.get("last_batch")
    if not (last_batch is None or (type(last_batch) is int and last_batch >= 0)):
        raise r.error("progress: last_batch must be a non-negative integer")
    grad_step = prog.get("grad_step")  # absent from files written before it was kept
    if not (grad_step is None or (type(grad_step) is int and 0 <= grad_step <= numbers[0])):
        raise r.error("progress: grad_step must be a step count no later than step")
    length = r.field(doc, "lengths", dict)
    if set(length) != set(lengths) or not all(
        type(n) is int and 0 <= n <= lengths[k] for k, n in length.items()
    ):
        raise r.error(f"lengths {length!r} must be counts within the saved history {lengths}")
    analytic_doc = doc.get("analytic")
    analytic = None
    if analytic_doc is not None:
        found = r.tensors(analytic_doc, s, "analytic", allow_none=False)
        analytic = {n: t.double().cpu().numpy() for n, t in found.items()}
    return TrainState(
        build=s.build,
        config=cfg,
        progress=Progress(
            **dict(zip(_PROGRESS, numbers, strict=True)),
            backwards_since_zero=dict(counts),
            last_batch=last_batch,
            grad_step=grad_step,
        ),
        values=r.tensors(r.field(doc, "values", dict), s, "values", allow_none=False),
        grads=r.tensors(r.field(doc, "grads", dict), s, "grads", allow_none=True),
        deltas=r.tensors(r.field(doc, "deltas", dict), s, "deltas", allow_none=True),
        optimizer=r.opt_state(doc.get("optimizer"), s, cfg),
        analytic=analytic,
        marks={name: Mark(n) for name, n in length.items()},
        transcript=_read_entries(r, doc, s),
        best=_read_best(r, doc.get("best"), s),
    )


def _read_best(r: _Reader, doc: Any, s: Session) -> Best | None:
    if doc is None:
        return None
    epoch, loss = r.field(doc, "epoch", int), r.field(doc, "val_loss", (int, float))
    if isinstance(epoch, bool) or epoch < 1 or not math.isfinite(loss):
        raise r.error("best: epoch must be >= 1 and val_loss finite")
    values = r.tensors(r.field(doc, "values", dict), s, "best", allow_none=False)
    return Best(
        torch.tensor(epoch, device=s.device),
        torch.tensor(float(loss), device=s.device),
        values,  # type: ignore[arg-type]
    )


def _plain_in(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _read_entries(r: _Reader, doc: dict[str, Any], s: Session) -> tuple[Entry, ...]:
    """The transcript as data, every entry validated (no text from a file becomes code).
    A version 1 file kept its transcript as code, which is never loaded: its session
    goes on from its parameters, written as literal values."""
    raw = doc.get("transcript")
    shapes = {n: tuple(p.shape) for n, p in s.model.params.items()}
    if raw == "version 1":
        values = r.tensors(r.field(doc, "values", dict), s, "values", allow_none=False)
        plain = {n: t.cpu().tolist() for n, t in values.items()}  # type: ignore[union-attr]
        return (
            Entry(
                "resumed (the earlier code of an older session file is not kept)",
                "load_values",
                (("values", plain), ("why", "the parameters the session file had")),
                s._ctx(),
            ),
        )
    if not isinstance(raw, list):
        raise r.error("field 'transcript' has the wrong type")
    try:
        return tuple(entry_from_plain(item, shapes) for item in raw)
    except ValueError as exc:
        raise r.error(str(exc)) from exc


def _from_version_1(r: _Reader, doc: dict[str, Any]) -> dict[str, Any]:
    """A version 1 document in today's shape: counters and status lists become the
    progress, the validation index list becomes the ``val/tag`` array."""

    def state(level: Any, lengths: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(level, dict):
            raise r.error("undo level malformed")
        counters = r.field(level, "counters", list)
        if len(counters) != 4:
            raise r.error("counters must be four non-negative integers")
        step, cursor, samples, backwards = counters
        hyper = level.get("hyper", doc.get("config", {}))
        return {
            **level,
            "progress": {
                "step": step,
                "cursor": cursor,
                "samples_trained": samples,
                "samples_pending": 0,
                "backward_total": backwards,
                "epochs_done": 0,
                "epoch_mark": 0,
                "last_batch": None,
            },
            "live": {k: v for k, v in (hyper if isinstance(hyper, dict) else {}).items()},
            "lengths": lengths,
            "transcript": "version 1",  # its code is never loaded (see _read_entries)
            "label": "an earlier step",
        }

    val_index = r.field(doc, "val_index", list)
    if not all(type(i) is int and i >= 0 for i in val_index):
        raise r.error("val_index must be a list of non-negative integers")
    r.arrays["val/tag"] = np.asarray(val_index, dtype=np.int64)
    r.arrays.pop("val/kind", None)
    for column in _columns("val_acc"):  # version 1 had no accuracy curve
        r.arrays[column] = np.zeros(0, dtype=np.float32 if column.endswith("loss") else np.int64)

    def lengths(found: Any) -> dict[str, Any]:
        n = found if isinstance(found, list) and len(found) >= 2 else [None, None]
        return {"batch": n[0], "val": n[1], "val_acc": 0}

    n = [len(r.arrays.get("history/loss", ())), len(val_index)]
    levels = [
        state(level, lengths(level.get("lengths") if isinstance(level, dict) else None))
        for level in r.field(doc, "undo", list)
    ]
    return {**state(doc, lengths(n)), "undo": levels}

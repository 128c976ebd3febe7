"""Saving and restoring a session: one ``.npz`` file of plain arrays plus a JSON document.

Loading never unpickles: ``np.load(allow_pickle=False)`` refuses object arrays and pickled
files, and everything else is validated field by field. A restored session continues
with exactly the numbers it would have produced had it never stopped: the data and the
initial model are rebuilt from the preset and the seed, then parameters, gradients,
optimizer state, counters, loss history, transcript and the recent undo stack are put
back.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from playground.training.presets import PresetError, TrainConfig, find_preset, load_preset
from playground.training.state import Checkpoint
from playground.training.transcript import Entry

FORMAT = "playground-session"
VERSION = 1
SAVED_UNDO = 16  # undo levels kept in a session file


class SessionFileError(ValueError):
    """A session file that cannot be loaded: which file, and why."""


# --- save ---------------------------------------------------------------------------------


def _opt_state(prefix: str, state: dict[str, Any] | None, arrays: dict[str, np.ndarray]) -> Any:
    if state is None:
        return None
    out: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
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


def _tensors(
    prefix: str, values: dict[str, torch.Tensor | None], arrays: dict[str, np.ndarray]
) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, t in values.items():
        if t is None:
            out[name] = None
        else:
            key = f"{prefix}{name}"
            arrays[key] = t.detach().cpu().numpy()
            out[name] = key
    return out


def _entries(entries: list[Entry]) -> list[list[Any]]:
    return [[e.action, e.code, list(e.run) if e.run else None] for e in entries]


def _checkpoint_doc(i: int, c: Checkpoint, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    p = f"undo{i}/"
    hist, n_hist, val_hist, n_val, _, n_val_index = c.history
    return {
        "values": _tensors(p + "value/", c.values, arrays),
        "grads": _tensors(p + "grad/", c.grads, arrays),
        "deltas": _tensors(p + "delta/", c.deltas, arrays),
        "counts": c.counts,
        "optimizer": _opt_state(p, c.optimizer, arrays),
        "counters": [c.step_count, c.cursor, c.samples_seen, c.backward_total],
        "lengths": [n_hist, n_val, n_val_index],
        "entries": _entries(c.transcript[1]),
        "hyper": {k: list(v) if isinstance(v, tuple) else v for k, v in c.hyper.items()},
        "status": list(c.status),
    }


def save_session(session: Any, path: str | Path) -> Path:
    """Write ``session`` to ``path`` (.npz); the file is replaced atomically."""
    s = session
    s.history.flush()
    s.val_history.flush()
    arrays: dict[str, np.ndarray] = {}
    params = s.model.params
    cfg = asdict(s.cfg)
    undo = [c for c in s._undo if isinstance(c, Checkpoint) and c.build[0] is s.model]
    undo = undo[-SAVED_UNDO:]
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "preset": {"name": s.preset.name, "path": str(s.preset.path)},
        "config": cfg,
        "device": str(s.device),
        "values": _tensors("value/", {n: p for n, p in params.items()}, arrays),
        "grads": _tensors("grad/", {n: p.grad for n, p in params.items()}, arrays),
        "deltas": _tensors("delta/", s.deltas, arrays),
        "counts": s.counts,
        "optimizer": _opt_state("", s.optimizer.state_dict() if s.optimizer else None, arrays),
        "counters": [s.step_count, s.cursor, s.samples_seen, s.backward_total],
        "status": [s.status, s.message, s.diverged_at, s.last_loss],
        "val_index": list(s.val_index),
        "transcript": _entries(s.transcript.entries),
        "undo": [_checkpoint_doc(i, c, arrays) for i, c in enumerate(undo)],
    }
    arrays["history/loss"] = np.asarray(s.history.loss.view())
    arrays["history/step"] = np.asarray(s.history.step.view())
    arrays["history/kind"] = np.asarray(s.history.kind.view())
    arrays["val/loss"] = np.asarray(s.val_history.loss.view())
    arrays["val/step"] = np.asarray(s.val_history.step.view())
    arrays["val/kind"] = np.asarray(s.val_history.kind.view())
    arrays["meta.json"] = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, p)
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
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self.error(f"meta.json is not valid JSON: {exc}") from exc
        if not isinstance(self.doc, dict) or self.doc.get("format") != FORMAT:
            raise self.error("not a playground session file (format field)")
        if self.doc.get("version") != VERSION:
            raise self.error(
                f"version {self.doc.get('version')!r} is not supported (expected {VERSION})"
            )

    def error(self, reason: str) -> SessionFileError:
        return SessionFileError(f"{self.path.name}: {reason}")

    def field(self, doc: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
        if not isinstance(doc, dict) or key not in doc:
            raise self.error(f"field {key!r} is missing")
        value = doc[key]
        if not isinstance(value, kind):
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

    def tensors(
        self, doc: Any, session: Any, what: str, allow_none: bool
    ) -> dict[str, torch.Tensor | None]:
        params = session.model.params
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
            out[name] = torch.tensor(a, dtype=params[name].dtype, device=session.device)
        return out

    def opt_state(self, doc: Any, session: Any) -> dict[str, Any] | None:
        if session.optimizer is None:
            return None
        if not isinstance(doc, dict):
            raise self.error("optimizer state is missing")
        params = list(session.model.params.values())
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
                    restored[key] = torch.tensor(a, device=session.device)
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    restored[key] = value
                else:
                    raise self.error(f"optimizer {key}: unexpected value {value!r}")
            state[int(idx)] = restored
        return {"state": state, "param_groups": self.field(doc, "param_groups", list)}


_HISTORY = ("history/loss", "history/step", "history/kind", "val/loss", "val/step", "val/kind")
# optimizer state entries shaped like their parameter ("step" is a scalar)
_PARAM_SHAPED = {"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}


def load_session(path: str | Path, device: str | None = None) -> Any:
    """Rebuild a saved session (optionally on another ``device``)."""
    from playground.training.session import Session

    r = _Reader(Path(path))
    doc = r.doc
    cfg_doc = r.field(doc, "config", dict)
    known = {f.name for f in fields(TrainConfig)}
    try:
        values = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg_doc.items() if k in known
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
    _apply(r, doc, s)
    return s


def _apply(r: _Reader, doc: dict[str, Any], s: Any) -> None:
    from playground.training.state import _hyper, take

    values = r.tensors(r.field(doc, "values", dict), s, "values", allow_none=False)
    grads = r.tensors(r.field(doc, "grads", dict), s, "grads", allow_none=True)
    deltas = r.tensors(r.field(doc, "deltas", dict), s, "deltas", allow_none=True)
    opt = r.opt_state(doc.get("optimizer"), s)
    counters = r.field(doc, "counters", list)
    if len(counters) != 4 or not all(isinstance(c, int) and c >= 0 for c in counters):
        raise r.error("counters must be four non-negative integers")
    counts = r.field(doc, "counts", dict)
    if set(counts) != set(s.model.params) or not all(isinstance(v, int) for v in counts.values()):
        raise r.error("counts do not match the model's parameters")
    status = r.field(doc, "status", list)
    transcript = _read_entries(r, r.field(doc, "transcript", list))
    val_index = r.field(doc, "val_index", list)
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in val_index):
        raise r.error("val_index must be a list of non-negative integers")
    hist = {k: r.array(k, None, "history") for k in _HISTORY}
    for prefix in ("history/", "val/"):
        cols = [hist[k] for k in _HISTORY if k.startswith(prefix)]
        if any(c.ndim != 1 for c in cols) or len({len(c) for c in cols}) != 1:
            raise r.error(f"{prefix.rstrip('/')} arrays must be 1-D and of equal length")
    if len(val_index) != len(hist["val/loss"]):
        raise r.error("val_index does not match the validation history")
    with torch.no_grad():
        for n, p in s.model.params.items():
            p.copy_(values[n])
            p.grad = grads[n]
    if opt is not None:
        try:
            s.optimizer.load_state_dict(opt)
        except (ValueError, KeyError, TypeError) as exc:
            raise r.error(f"optimizer state does not fit: {exc}") from exc
    s.deltas = deltas
    s.counts = dict(counts)
    s.step_count, s.cursor, s.samples_seen, s.backward_total = counters
    if len(status) == 4:
        s.status, s.message, s.diverged_at, s.last_loss = status
    for recorder, prefix in ((s.history, "history/"), (s.val_history, "val/")):
        recorder.loss.extend(hist[prefix + "loss"])
        recorder.step.extend(hist[prefix + "step"])
        recorder.kind.extend(hist[prefix + "kind"])
    s.val_index[:] = [int(i) for i in val_index]
    s.transcript.entries[:] = transcript
    # the undo stack: each level is the current state with its saved parts swapped in
    base = take(s)
    for level in r.field(doc, "undo", list):
        c = _read_checkpoint(r, level, s, base, _hyper)
        s._undo.append(replace(c, undo=tuple(s._undo)))


def _read_entries(r: _Reader, raw: list[Any]) -> list[Entry]:
    entries = []
    for item in raw:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and isinstance(item[1], str)
        ):
            raise r.error("transcript entry malformed")
        run = tuple(item[2]) if isinstance(item[2], list) and len(item[2]) == 2 else None
        entries.append(Entry(item[0], item[1], run))  # type: ignore[arg-type]
    return entries


def _read_checkpoint(r: _Reader, level: Any, s: Any, base: Checkpoint, _hyper: Any) -> Checkpoint:
    from dataclasses import replace

    if not isinstance(level, dict):
        raise r.error("undo level malformed")
    values = r.tensors(level.get("values"), s, "undo values", allow_none=False)
    grads = r.tensors(level.get("grads"), s, "undo grads", allow_none=True)
    deltas = r.tensors(level.get("deltas"), s, "undo deltas", allow_none=True)
    opt = r.opt_state(level.get("optimizer"), s)
    counters = r.field(level, "counters", list)
    lengths = r.field(level, "lengths", list)
    if len(counters) != 4 or len(lengths) != 3:
        raise r.error("undo level counters malformed")
    hyper = r.field(level, "hyper", dict)
    hyper = {k: tuple(v) if isinstance(v, list) else v for k, v in hyper.items()}
    status = r.field(level, "status", list)
    if len(status) != 4 or any(isinstance(x, float) and not math.isfinite(x) for x in status[3:]):
        status = [*status[:3], None][:4] if len(status) >= 3 else list(base.status)
    hist = base.history
    return replace(
        base,
        values=values,
        grads=grads,
        deltas=deltas,
        optimizer=opt,
        counts=dict(r.field(level, "counts", dict)),
        step_count=counters[0],
        cursor=counters[1],
        samples_seen=counters[2],
        backward_total=counters[3],
        analytic_acc=None,
        history=(hist[0], lengths[0], hist[2], lengths[1], hist[4], lengths[2]),
        transcript=(base.transcript[0], _read_entries(r, r.field(level, "entries", list))),
        hyper=hyper,
        status=tuple(status),
    )

"""Reading a session file field by field: nothing in it is trusted.

The archive is read by ``npz.read_npz`` (sizes checked before anything is allocated),
its JSON document by ``files.parse_json`` (bounded in size and depth). Then every field
is checked against the session it is loaded into before it is used: counters are
non-negative integers below 2**62, settings pass ``TrainConfig.problem``, arrays have
the model's shapes and plain numeric dtypes, the optimizer state has the entries its
optimizer keeps (a running mean of squares is never negative, a step count is a whole
number) and hyper-parameters that agree with the session's, undo levels are well formed
and no more than the undo stack can hold, texts are made safe for a terminal. Each
problem is a ``SessionFileError`` naming the file and the field.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from playground.files import JSONRefused, parse_json
from playground.text import clean, shown
from playground.training.config import LIVE, SETTINGS, TrainConfig
from playground.training.history import Mark
from playground.training.npz import NpzError, read_npz
from playground.training.state import Best, Progress, TrainState
from playground.training.transcript import Entry, entry_from_plain

if TYPE_CHECKING:
    from pathlib import Path

    from playground.training.session import Session

FORMAT = "playground-session"
VERSION = 2
READABLE = (1, 2)  # version 1: before the one-state format (read, converted on the way in)
MAX_DEPTH = 24  # a session document nests about 10 deep
MAX_COUNT = 2**62  # counters: far beyond any session, far from int64's end
PROGRESS = (
    "step",
    "cursor",
    "samples_trained",
    "samples_pending",
    "backward_total",
    "epochs_done",
    "epoch_mark",
)
LIVE_SETTINGS = tuple(n for n, s in SETTINGS.items() if s.effect == LIVE)
# each of a build's series as three arrays: {prefix}/loss, {prefix}/step, {prefix}/{tag}
SERIES = {"batch": ("history", "kind"), "val": ("val", "tag"), "val_acc": ("val_acc", "tag")}
# the per-parameter state each optimizer keeps ("step" is a scalar count)
OPTIMIZER_STATE = {"sgd": {"momentum_buffer"}, "adam": {"step", "exp_avg", "exp_avg_sq"}}
REQUIRED_STATE = {"sgd": set(), "adam": {"step", "exp_avg", "exp_avg_sq"}}
NON_NEGATIVE_STATE = {"exp_avg_sq", "step"}
PARAM_SHAPED = {"momentum_buffer", "exp_avg", "exp_avg_sq"}
# torch's binary_cross_entropy raises on NaN input: such a state could not even be shown
NAN_FREE_LOSSES = ("bce", "bce_sum")


def columns(name: str) -> tuple[str, str, str]:
    prefix, tag = SERIES[name]
    return f"{prefix}/loss", f"{prefix}/step", f"{prefix}/{tag}"


class SessionFileError(ValueError):
    """A session file that cannot be loaded: which file, and why."""


def is_count(value: Any) -> bool:
    return type(value) is int and 0 <= value < MAX_COUNT


class Reader:
    """The arrays and the document of one session file, and the checks of its fields."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        try:
            self.arrays = read_npz(path, limit)
        except NpzError as exc:
            raise self.error(str(exc)) from exc
        meta = self.arrays.pop("meta.json", None)
        if meta is None or meta.dtype != np.uint8 or meta.ndim != 1:
            raise self.error("meta.json is missing")
        if meta.nbytes > max(limit // 16, 2**20):
            raise self.error("meta.json is larger than a session's document can be")
        try:
            self.doc = parse_json(meta.tobytes(), MAX_DEPTH)
        except (UnicodeDecodeError, JSONRefused) as exc:
            raise self.error(f"meta.json is not valid JSON: {exc}") from exc
        if not isinstance(self.doc, dict) or self.doc.get("format") != FORMAT:
            raise self.error("not a playground session file (format field)")
        version = self.doc.get("version")
        if type(version) is not int or version not in READABLE:
            raise self.error(f"version {shown(version)} is not supported (expected {VERSION})")
        self.version = version

    def error(self, reason: str) -> SessionFileError:
        return SessionFileError(clean(f"{self.path.name}: {reason}", lines=True))

    def field(self, doc: Any, key: str, kind: type | tuple[type, ...]) -> Any:
        if not isinstance(doc, dict) or key not in doc:
            raise self.error(f"field {key!r} is missing")
        value = doc[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kind) or isinstance(value, bool) and bool not in kinds:
            raise self.error(f"field {key!r} has the wrong type ({type(value).__name__})")
        return value

    def text(self, doc: dict[str, Any], key: str, default: str | None = None) -> str:
        """A text field, safe for a terminal."""
        if default is not None and key not in doc:
            return default
        return clean(self.field(doc, key, str))

    def array(self, key: Any, like: torch.Tensor | None = None, what: str = "") -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise self.error(f"array {shown(key)} ({what}) is missing")
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
            names = sorted(doc)[:8] if isinstance(doc, dict) else shown(doc)
            raise self.error(
                f"{what}: parameter names {names} do not match the model's {sorted(params)}"
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
        """An optimizer state_dict: the per-parameter state from the file, checked for
        its optimizer; the param groups are this session's optimizer's, with the
        settings in force (a file's own groups must agree with them)."""
        if s.optimizer is None:
            if doc is not None:
                raise self.error(f"optimizer: {cfg.optimizer} keeps no optimizer state")
            return None
        if not isinstance(doc, dict):
            raise self.error("optimizer state is missing")
        unknown = sorted(set(doc) - {"state", "param_groups"})
        if unknown:
            raise self.error(f"optimizer: unknown field {shown(unknown[0])}")
        if "param_groups" in doc:
            self._agree(doc["param_groups"], cfg)
        params = list(s.model.params.values())
        allowed, required = OPTIMIZER_STATE[cfg.optimizer], REQUIRED_STATE[cfg.optimizer]
        state: dict[int, dict[str, Any]] = {}
        for idx, entry in self.field(doc, "state", dict).items():
            digits = idx.isascii() and idx.isdigit() and len(idx) < 7
            if not (isinstance(entry, dict) and digits and int(idx) < len(params)):
                raise self.error(f"optimizer state entry {shown(idx)} does not fit the model")
            keys = set(entry)
            if not keys <= allowed or not required <= keys:
                raise self.error(
                    f"optimizer state {idx}: entries {sorted(keys)} are not those {cfg.optimizer} "
                    f"keeps ({', '.join(sorted(allowed))})"
                )
            param = params[int(idx)]
            state[int(idx)] = {k: self._opt_value(k, v, param, s) for k, v in entry.items()}
        groups = copy.deepcopy(s.optimizer.state_dict()["param_groups"])
        for group in groups:
            for name in LIVE_SETTINGS:
                if SETTINGS[name].optimizer_hyper and name in group:
                    group[name] = getattr(cfg, name)
        return {"state": state, "param_groups": groups}

    def _opt_value(self, key: str, value: Any, param: torch.Tensor, s: Session) -> Any:
        what = f"optimizer {key}"
        if value is None and key == "momentum_buffer":
            return None
        if isinstance(value, dict):
            a = self.array(value.get("array"), param if key in PARAM_SHAPED else None, what)
        elif key == "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
            a = np.asarray(float(value))
        else:
            raise self.error(f"{what}: unexpected value {shown(value)}")
        if key == "step":
            step = float(a) if a.ndim == 0 else -1.0
            if not (math.isfinite(step) and step >= 0 and step == int(step) and step < MAX_COUNT):
                raise self.error(f"{what} must be a whole number of steps (a scalar >= 0)")
            return torch.tensor(step, dtype=torch.float32)
        if key in NON_NEGATIVE_STATE and bool((a < 0).any()):
            raise self.error(f"{what}: negative values (a mean of squares is never negative)")
        return torch.tensor(a, dtype=param.dtype, device=s.device)

    def _agree(self, groups: Any, cfg: TrainConfig) -> None:
        """A file's own param_groups: each hyper-parameter equal to the shown setting."""
        if not isinstance(groups, list):
            raise self.error("optimizer param_groups must be a list")
        for i, group in enumerate(groups):
            if not isinstance(group, dict):
                raise self.error(f"optimizer param_groups[{i}] is malformed")
            for name in LIVE_SETTINGS:
                if not SETTINGS[name].optimizer_hyper or name not in group:
                    continue
                value = group[name]
                value = tuple(value) if isinstance(value, list) else value
                if value != getattr(cfg, name):
                    raise self.error(
                        f"optimizer param_groups[{i}].{name} = {shown(value)} disagrees with the "
                        f"session's {name} {getattr(cfg, name)!r}: refused (which is meant?)"
                    )


def read_state(r: Reader, doc: Any, s: Session, lengths: dict[str, int]) -> TrainState:
    """One saved state (the current one or an undo level), validated against ``s``."""
    if not isinstance(doc, dict):
        raise r.error("undo level malformed")
    live = r.field(doc, "live", dict)
    unknown = sorted(set(live) - set(LIVE_SETTINGS))
    if unknown:
        raise r.error(f"live settings: {shown(unknown[0])} is not a setting that changes live")
    # every value as it is (None too: only until_loss may be None)
    cfg = replace(s.cfg, **{k: plain_in(v) for k, v in live.items()})
    problem = cfg.problem()
    if problem:
        raise r.error(f"live settings: {problem}")
    counts = r.field(doc, "counts", dict)
    if set(counts) != set(s.model.params) or not all(is_count(v) for v in counts.values()):
        raise r.error("counts do not match the model's parameters")
    prog = r.field(doc, "progress", dict)
    numbers = [prog.get(k) for k in PROGRESS]
    if not all(is_count(n) for n in numbers):
        raise r.error(f"progress: {', '.join(PROGRESS)} must be integers from 0 to 2**62")
    last_batch = prog.get("last_batch")
    if not (last_batch is None or is_count(last_batch)):
        raise r.error("progress: last_batch must be a non-negative integer")
    grad_step = prog.get("grad_step")  # absent from files written before it was kept
    if not (grad_step is None or (is_count(grad_step) and grad_step <= numbers[0])):
        raise r.error("progress: grad_step must be a step count no later than step")
    length = r.field(doc, "lengths", dict)
    if set(length) != set(lengths) or not all(
        type(n) is int and 0 <= n <= lengths[k] for k, n in length.items()
    ):
        raise r.error(f"lengths {shown(length)} must be counts within the saved history {lengths}")
    analytic_doc = doc.get("analytic")
    analytic = None
    if analytic_doc is not None:
        found = r.tensors(analytic_doc, s, "analytic", allow_none=False)
        analytic = {n: t.double().cpu().numpy() for n, t in found.items()}
    state = TrainState(
        build=s.build,
        config=cfg,
        progress=Progress(
            **dict(zip(PROGRESS, numbers, strict=True)),
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
        transcript=read_entries(r, doc, s),
        best=read_best(r, doc.get("best"), s),
    )
    if cfg.loss in NAN_FREE_LOSSES and not all(bool(t.isfinite().all()) for t in state.tensors()):
        raise r.error(
            f"NaN or infinity in the parameters or the optimizer state: {cfg.loss} refuses "
            "them (training never leaves them so)"
        )
    return state


def read_best(r: Reader, doc: Any, s: Session) -> Best | None:
    if doc is None:
        return None
    epoch, loss = r.field(doc, "epoch", int), r.field(doc, "val_loss", (int, float))
    if not is_count(epoch) or epoch < 1 or not math.isfinite(loss):
        raise r.error("best: epoch must be >= 1 and val_loss finite")
    values = r.tensors(r.field(doc, "values", dict), s, "best", allow_none=False)
    return Best(
        torch.tensor(epoch, device=s.device),
        torch.tensor(float(loss), device=s.device),
        values,  # type: ignore[arg-type]
    )


def plain_in(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def read_entries(r: Reader, doc: dict[str, Any], s: Session) -> tuple[Entry, ...]:
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

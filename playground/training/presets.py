"""TOML preset files -> validated ``Preset`` objects.

A preset is one exercise: where its data comes from, the model, and the training defaults.
Every problem is reported as a ``PresetError`` naming the file, the field and the reason,
so one broken file never stops the others from loading.

Listing presets (``preset_infos``) reads only the TOML headers and never imports torch, so
the TUI can show the picker before torch has loaded.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.paths import EXPRESSIONS_FILE, presets_dir

if TYPE_CHECKING:
    from playground.training.data import Dataset

MODELS = ("scalar", "linear", "logistic", "softmax", "mlp")
LOSSES = ("mse", "sse", "bce", "ce")
OPTIMIZERS = ("gd", "sgd", "adam")
ACTIVATIONS = ("relu", "tanh", "sigmoid")
DATA_KINDS = ("inline", "csv", "noisy_line", "linear_features", "classification_2d")
ZERO_MODES = ("zero", "none")
MAX_WIDTH, MAX_LAYERS = 4096, 16  # MLP hidden layers
INIT_DISTS = ("randn", "rand", "default")


class PresetError(ValueError):
    """A preset that cannot be used: which file, which field, and why."""

    def __init__(self, file: str, field: str, reason: str) -> None:
        super().__init__(f"{file}: {field}: {reason}")
        self.file = file
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class TrainConfig:
    """Everything a user may override: model, loss, optimizer and the training loop."""

    model: str = "linear"
    loss: str = "mse"
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 0  # 0 = the whole training set in one batch
    accumulate: int = 1  # K: backward passes per optimizer step in a train step
    scale_loss: bool = True  # divide each micro-batch loss by K
    zero_grad: str = "zero"  # "zero": p.grad.zero_(); "none": p.grad = None
    hidden: tuple[int, ...] = (8,)
    activation: str = "tanh"
    init: str = "default"  # scalar model: "randn" | "rand"; others: torch's default init
    init_values: tuple[tuple[str, float], ...] = ()  # constant initial values by name
    max_steps: int = 1000
    until_loss: float | None = None
    seed: int = 0
    device: str = "auto"

    def with_overrides(self, **overrides: Any) -> TrainConfig:
        """A copy with the given (non-None) fields replaced, validated."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(clean) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown setting(s): {sorted(unknown)}")
        cfg = replace(self, **clean)
        problem = cfg.problem()
        if problem:
            raise ValueError(problem)
        return cfg

    def problem(self) -> str | None:
        """The first invalid field as 'field: reason', or None when all is well."""
        checks: list[tuple[bool, str]] = [
            (self.model in MODELS, f"model: {self.model!r} is not one of {', '.join(MODELS)}"),
            (self.loss in LOSSES, f"loss: {self.loss!r} is not one of {', '.join(LOSSES)}"),
            (
                self.optimizer in OPTIMIZERS,
                f"optimizer: {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}",
            ),
            (
                self.activation in ACTIVATIONS,
                f"activation: {self.activation!r} is not one of {', '.join(ACTIVATIONS)}",
            ),
            (
                self.zero_grad in ZERO_MODES,
                f"zero_grad: {self.zero_grad!r} is not 'zero' or 'none'",
            ),
            (self.init in INIT_DISTS, f"init: {self.init!r} is not one of {', '.join(INIT_DISTS)}"),
            (_finite(self.lr) and self.lr > 0, f"lr: {self.lr!r} must be a positive number"),
            (
                _finite(self.momentum) and 0 <= self.momentum < 1,
                f"momentum: {self.momentum!r} must be in [0, 1)",
            ),
            (
                _finite(self.weight_decay) and self.weight_decay >= 0,
                f"weight_decay: {self.weight_decay!r} must be >= 0",
            ),
            (not self.nesterov or self.momentum > 0, "nesterov: needs momentum > 0"),
            (
                _is_int(self.batch_size) and self.batch_size >= 0,
                f"batch_size: {self.batch_size!r} must be an integer >= 0 (0 = full batch)",
            ),
            (
                _is_int(self.accumulate) and self.accumulate >= 1,
                f"accumulate: {self.accumulate!r} must be an integer >= 1",
            ),
            (
                _is_int(self.max_steps) and self.max_steps >= 1,
                f"max_steps: {self.max_steps!r} must be an integer >= 1",
            ),
            (
                self.until_loss is None or (_finite(self.until_loss) and self.until_loss >= 0),
                f"until_loss: {self.until_loss!r} must be a number >= 0",
            ),
            (_is_int(self.seed), f"seed: {self.seed!r} must be an integer"),
            (
                all(_is_int(h) and 1 <= h <= MAX_WIDTH for h in self.hidden)
                and 1 <= len(self.hidden) <= MAX_LAYERS,
                f"hidden: {list(self.hidden)!r} must be 1 to {MAX_LAYERS} positive layer "
                f"sizes of at most {MAX_WIDTH}",
            ),
            (isinstance(self.device, str) and bool(self.device), "device: must be a name"),
        ]
        for ok, message in checks:
            if not ok:
                return message
        return None


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class PresetInfo:
    """What the picker shows; read without importing torch."""

    name: str
    title: str
    description: str
    source: str
    path: Path


@dataclass(frozen=True)
class Preset:
    """A validated exercise: data specification, training defaults, expected outcome."""

    name: str
    title: str
    description: str
    source: str
    path: Path
    data: dict[str, Any]
    config: TrainConfig
    expected: dict[str, Any] = field(default_factory=dict)

    def build_dataset(self, seed: int | None = None) -> Dataset:
        """Generate or read the data (deterministic in ``seed``)."""
        from playground.training import data as datamod

        try:
            return _build_dataset(self, self.config.seed if seed is None else seed)
        except datamod.DataError as exc:
            raise PresetError(self.path.name, exc.field, exc.reason) from exc

    @property
    def info(self) -> PresetInfo:
        return PresetInfo(self.name, self.title, self.description, self.source, self.path)


def preset_paths(directory: Path | None = None) -> list[Path]:
    d = directory or presets_dir()
    # expressions.toml holds the autograd explorer's scalar exercises, not training presets
    return sorted(p for p in d.glob("*.toml") if p.name != EXPRESSIONS_FILE)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PresetError(path.name, "(file)", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PresetError(path.name, "(file)", f"not UTF-8 text: {exc.reason}") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(path.name, "(toml)", str(exc)) from exc
    except RecursionError as exc:
        raise PresetError(path.name, "(toml)", "nested too deeply") from exc
    return doc


def _str_field(doc: dict[str, Any], key: str, file: str, default: str | None = None) -> str:
    value = doc.get(key, default)
    if value is None:
        raise PresetError(file, key, "is missing")
    if not isinstance(value, str):
        raise PresetError(file, key, f"must be a string, got {type(value).__name__}")
    return value


def preset_info(path: Path) -> PresetInfo:
    """Name, title and description of a preset file (no validation of the rest)."""
    doc = _read_toml(path)
    file = path.name
    return PresetInfo(
        name=_str_field(doc, "name", file, path.stem),
        title=_str_field(doc, "title", file, path.stem),
        description=_str_field(doc, "description", file, ""),
        source=_str_field(doc, "source", file, ""),
        path=path,
    )


def preset_infos(directory: Path | None = None) -> tuple[list[PresetInfo], list[PresetError]]:
    """All presets' headers, plus the errors of the files that could not be read."""
    infos: list[PresetInfo] = []
    errors: list[PresetError] = []
    for path in preset_paths(directory):
        try:
            infos.append(preset_info(path))
        except PresetError as exc:
            errors.append(exc)
    return infos, errors


_TRAIN_KEYS = {
    "loss",
    "optimizer",
    "lr",
    "momentum",
    "nesterov",
    "weight_decay",
    "betas",
    "batch_size",
    "accumulate",
    "scale_loss",
    "zero_grad",
    "max_steps",
    "until_loss",
    "seed",
    "device",
}
_MODEL_KEYS = {"kind", "hidden", "activation", "init"}


def _table(doc: dict[str, Any], key: str, file: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise PresetError(file, key, f"must be a table ([{key}]), got {type(value).__name__}")
    return value


def _config_from(doc: dict[str, Any], file: str) -> TrainConfig:
    model = _table(doc, "model", file)
    train = _table(doc, "train", file)
    for section, table, allowed in (("model", model, _MODEL_KEYS), ("train", train, _TRAIN_KEYS)):
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise PresetError(
                file,
                f"{section}.{unknown[0]}",
                f"unknown key; allowed: {', '.join(sorted(allowed))}",
            )
    values: dict[str, Any] = {k: v for k, v in train.items()}
    if "kind" in model:
        values["model"] = model["kind"]
    if "hidden" in model:
        hidden = model["hidden"]
        if not isinstance(hidden, list):
            raise PresetError(file, "model.hidden", "must be a list of layer sizes, e.g. [8, 8]")
        values["hidden"] = tuple(hidden)
    if "activation" in model:
        values["activation"] = model["activation"]
    init = model.get("init")
    if isinstance(init, dict):
        bad = [k for k, v in init.items() if not _finite(v)]
        if bad:
            raise PresetError(file, f"model.init.{bad[0]}", "must be a finite number")
        values["init_values"] = tuple((k, float(v)) for k, v in init.items())
    elif init is not None:
        values["init"] = init
    if "betas" in values:
        b = values["betas"]
        if not (isinstance(b, list) and len(b) == 2 and all(_finite(v) and 0 <= v < 1 for v in b)):
            raise PresetError(file, "train.betas", "must be two numbers in [0, 1)")
        values["betas"] = tuple(float(v) for v in b)
    for key in ("lr", "momentum", "weight_decay", "until_loss"):
        if _is_int(values.get(key)):
            values[key] = float(values[key])
    try:
        cfg = replace(TrainConfig(), **values)
    except TypeError as exc:  # pragma: no cover - keys are checked above
        raise PresetError(file, "train", str(exc)) from exc
    problem = cfg.problem()
    if problem:
        name, _, reason = problem.partition(": ")
        section = "model" if name in {"model", "hidden", "activation", "init"} else "train"
        key = "kind" if name == "model" else name
        raise PresetError(file, f"{section}.{key}", reason)
    return cfg


def load_preset(path: Path | str) -> Preset:
    """Read and validate one preset file, data included (this imports torch)."""
    path = Path(path)
    doc = _read_toml(path)
    file = path.name
    unknown = sorted(
        set(doc) - {"name", "title", "description", "source", "data", "model", "train", "expected"}
    )
    if unknown:
        raise PresetError(file, unknown[0], "unknown top-level key")
    info = preset_info(path)
    data = _table(doc, "data", file)
    if not data:
        raise PresetError(file, "data", "is missing: a [data] table is required")
    kind = data.get("kind", "inline")
    if kind not in DATA_KINDS:
        raise PresetError(file, "data.kind", f"{kind!r} is not one of {', '.join(DATA_KINDS)}")
    expected = _table(doc, "expected", file)
    preset = Preset(
        name=info.name,
        title=info.title,
        description=info.description,
        source=info.source,
        path=path,
        data=dict(data),
        config=_config_from(doc, file),
        expected=dict(expected),
    )
    dataset = preset.build_dataset()  # validates the data now, not when a session starts
    _check_model_fits(preset, dataset)
    return preset


def _check_model_fits(preset: Preset, dataset: Dataset) -> None:
    cfg, file = preset.config, preset.path.name
    if cfg.loss in ("bce", "ce") and dataset.task != "classification":
        raise PresetError(
            file, "train.loss", f"{cfg.loss!r} needs class labels; this data is a regression set"
        )
    if cfg.loss == "bce" and dataset.n_classes > 2:
        raise PresetError(
            file, "train.loss", f"'bce' is for 2 classes, data has {dataset.n_classes}"
        )
    if cfg.model == "softmax" and cfg.loss != "ce":
        raise PresetError(file, "train.loss", "the softmax model is trained with 'ce'")
    if cfg.batch_size > len(dataset.train):
        raise PresetError(
            file,
            "train.batch_size",
            f"{cfg.batch_size} is larger than the {len(dataset.train)} training samples",
        )
    # build the model once, so that a bad init name or model/loss pairing is reported
    # with this file's name now, not when a session starts
    import torch

    from playground.training.models import build_model, n_outputs_for

    rng = torch.random.get_rng_state()
    try:
        build_model(
            cfg.model,
            dataset.n_features,
            n_outputs_for(cfg.loss, dataset.n_classes),
            cfg.hidden,
            cfg.activation,
            cfg.init,
            dict(cfg.init_values) or None,
        )
    except ValueError as exc:
        field = "model.init" if "init" in str(exc) else "model.kind"
        raise PresetError(file, field, str(exc).removeprefix("model.init: ")) from exc
    finally:
        torch.random.set_rng_state(rng)


def load_presets(directory: Path | None = None) -> tuple[dict[str, Preset], list[PresetError]]:
    """Every preset that loads, by name, and the errors of those that do not."""
    presets: dict[str, Preset] = {}
    errors: list[PresetError] = []
    for path in preset_paths(directory):
        try:
            p = load_preset(path)
        except PresetError as exc:
            errors.append(exc)
            continue
        if p.name in presets:
            errors.append(
                PresetError(
                    path.name, "name", f"{p.name!r} is already used by {presets[p.name].path.name}"
                )
            )
            continue
        presets[p.name] = p
    return presets, errors


def find_preset(name_or_path: str, directory: Path | None = None) -> Preset:
    """A shipped preset by name (or file stem), or a preset file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" and candidate.exists():
        return load_preset(candidate)
    infos, _ = preset_infos(directory)
    for info in infos:
        if name_or_path in (info.name, info.path.stem):
            return load_preset(info.path)
    names = ", ".join(sorted(i.name for i in infos))
    raise PresetError(name_or_path, "name", f"no such preset; available: {names}")


# --- data -----------------------------------------------------------------------------

_DATA_KEYS: dict[str, set[str]] = {
    "inline": {"x", "y", "task", "val_fraction", "val_x", "val_y", "true_w", "true_b"},
    "csv": {"path", "x_columns", "y_column", "task", "val_fraction"},
    "noisy_line": {"n_train", "n_val", "n_test", "sigma", "w_star", "b_star", "x_range"},
    "linear_features": {"n", "d", "w_scale", "b_scale", "threshold"},
    "classification_2d": {"shape", "n", "noise", "val_fraction"},
}
_DATA_TYPES: dict[str, tuple[type, ...]] = {
    "n_train": (int,),
    "n_val": (int,),
    "n_test": (int,),
    "n": (int,),
    "d": (int,),
    "sigma": (int, float),
    "w_star": (int, float),
    "b_star": (int, float),
    "w_scale": (int, float),
    "b_scale": (int, float),
    "noise": (int, float),
    "val_fraction": (int, float),
    "threshold": (bool,),
    "shape": (str,),
    "task": (str,),
    "path": (str,),
    "y_column": (str,),
    "x_range": (list,),
    "x_columns": (list,),
}

# upper bounds: a playground data set fits comfortably in memory and on a plot
MAX_SAMPLES = 1_000_000
_DATA_MAX: dict[str, float] = {
    "n_train": MAX_SAMPLES,
    "n": MAX_SAMPLES,
    "n_val": MAX_SAMPLES,
    "n_test": MAX_SAMPLES,
    "d": 1000,
    "sigma": 1e6,
    "noise": 1e6,
    "w_star": 1e6,
    "b_star": 1e6,
    "w_scale": 1e6,
    "b_scale": 1e6,
}
# lower bounds of the numeric data fields
_DATA_MIN: dict[str, float] = {
    "n_train": 1,
    "n": 2,
    "d": 1,
    "n_val": 0,
    "n_test": 0,
    "sigma": 0.0,
    "noise": 0.0,
    "val_fraction": 0.0,
}


def _build_dataset(preset: Preset, seed: int) -> Dataset:
    import torch

    from playground.training import data as d

    spec = dict(preset.data)
    kind = spec.pop("kind", "inline")
    unknown = sorted(set(spec) - _DATA_KEYS[kind])
    if unknown:
        raise d.DataError(
            f"data.{unknown[0]}",
            f"unknown key for kind {kind!r}; allowed: {', '.join(sorted(_DATA_KEYS[kind]))}",
        )
    for key, value in spec.items():
        types = _DATA_TYPES.get(key)
        if types and (
            not isinstance(value, types) or (bool not in types and isinstance(value, bool))
        ):
            raise d.DataError(
                f"data.{key}", f"must be {' or '.join(t.__name__ for t in types)}, got {value!r}"
            )
        low = _DATA_MIN.get(key)
        if low is not None and not (_finite(value) and value >= low):
            raise d.DataError(f"data.{key}", f"{value!r} must be a number >= {low}")
        high = _DATA_MAX.get(key)
        if high is not None and value > high:
            raise d.DataError(f"data.{key}", f"{value!r} is too large (at most {high:g})")
    vf = spec.get("val_fraction", 0.0)
    if not 0 <= vf < 1:
        raise d.DataError("data.val_fraction", f"{vf!r} must be in [0, 1)")
    torch.manual_seed(seed)
    if kind == "noisy_line":
        xr = spec.pop("x_range", [-2.0, 2.0])
        if len(xr) != 2 or not all(_finite(v) for v in xr) or xr[0] >= xr[1]:
            raise d.DataError("data.x_range", f"{xr!r} must be [low, high] with low < high")
        return d.noisy_line(**spec, x_range=(float(xr[0]), float(xr[1])), seed=seed)
    if kind == "linear_features":
        return d.linear_features(**spec, seed=seed)
    if kind == "classification_2d":
        if "shape" not in spec:
            raise d.DataError("data.shape", f"is missing; one of {sorted(d.CLASSIFICATION_SETS)}")
        return d.classification_2d(**spec, seed=seed)
    if kind == "csv":
        for key in ("path", "x_columns", "y_column"):
            if key not in spec:
                raise d.DataError(f"data.{key}", "is missing")
        if not spec["x_columns"] or not all(isinstance(c, str) for c in spec["x_columns"]):
            raise d.DataError("data.x_columns", "must be a non-empty list of column names")
        try:
            csv_path = (preset.path.parent / spec["path"]).resolve()
        except (OSError, ValueError) as exc:  # e.g. a NUL byte in the path
            raise d.DataError(
                "data.path", f"{spec['path']!r} is not a usable path ({exc})"
            ) from exc
        x, y = d.read_csv(csv_path, list(spec["x_columns"]), spec["y_column"])
        train = d.inline_split(x.tolist(), y.tolist(), "data")
    else:
        for key in ("x", "y"):
            if key not in spec:
                raise d.DataError(f"data.{key}", "is missing")
        train = d.inline_split(spec["x"], spec["y"], "data")
    task, n_classes = d.infer_task(train.y, spec.get("task"))
    val = None
    if "val_x" in spec or "val_y" in spec:
        val = d.inline_split(spec.get("val_x", []), spec.get("val_y", []), "data.val")
        if val.x.shape[1] != train.x.shape[1]:
            raise d.DataError(
                "data.val_x", f"has {val.x.shape[1]} features, x has {train.x.shape[1]}"
            )
    elif vf:
        train, val = d.split_fraction(train, vf, seed)
    true_params = None
    if "true_w" in spec:
        w = spec["true_w"]
        w = [w] if _finite(w) else w
        if not (isinstance(w, list) and w and all(_finite(v) for v in w)):
            raise d.DataError("data.true_w", f"{spec['true_w']!r} must be a list of numbers")
        if len(w) != train.x.shape[1]:
            raise d.DataError("data.true_w", f"has {len(w)} values for {train.x.shape[1]} features")
        b = spec.get("true_b", 0.0)
        if not _finite(b):
            raise d.DataError("data.true_b", f"{b!r} must be a number")
        true_params = {
            "w": torch.tensor(w, dtype=torch.float32).numpy(),
            "b": torch.tensor([b], dtype=torch.float32).numpy(),
        }
    return d.Dataset(
        train=train, val=val, test=None, task=task, n_classes=n_classes, true_params=true_params
    )

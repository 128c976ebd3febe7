"""TOML preset files -> validated ``Preset`` objects.

A preset is one exercise: where its data comes from, the model, and the training defaults.
Every problem is reported as a ``PresetError`` naming the file, the field and the reason,
so one broken file never stops the others from loading. Listing presets without loading
them (and without torch) is ``catalog.preset_infos``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.text import shown
from playground.training.catalog import (
    PresetError,
    PresetInfo,
    preset_info,
    preset_infos,
    preset_paths,
    read_toml,
)
from playground.training.claims import Claim, parse_claims
from playground.training.config import (
    CLASSIFICATION_LOSSES,
    KINDS,
    SETTINGS,
    TrainConfig,
    finite_number,
    is_int,
    section_keys,
    unused_settings,
)
from playground.training.lessons import Lesson, parse_lessons

if TYPE_CHECKING:
    from playground.training.data import Dataset

DATA_KINDS = ("inline", "csv", "noisy_line", "linear_features", "classification_2d")


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
    lessons: tuple[Lesson, ...] = ()  # guided lessons ([[lessons]]), validated

    def lesson(self, name: str = "") -> Lesson:
        """The lesson ``name`` ("" = the first); a ValueError names those there are."""
        for lesson in self.lessons:
            if not name or lesson.name == name:
                return lesson
        have = ", ".join(x.name for x in self.lessons) or "none"
        raise ValueError(f"{self.name} has no lesson {name!r} (lessons: {have})")

    @property
    def claims(self) -> tuple[Claim, ...]:
        """What the description promises, as checks (``[[expected.claims]]``)."""
        return parse_claims(self.expected, self.path.name)

    @property
    def predict_at(self) -> tuple[float, ...] | None:
        """The input the exercise asks a prediction for (seed 001: X1 = 3, X2 = 2)."""
        at = self.expected.get("predict_at")
        return None if at is None else tuple(float(v) for v in at)

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


def _table(doc: dict[str, Any], key: str, file: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise PresetError(file, key, f"must be a table ([{key}]), got {type(value).__name__}")
    return value


def _config_from(doc: dict[str, Any], file: str) -> TrainConfig:
    """The ``[model]`` and ``[train]`` tables as a validated config: every key and its
    place come from ``config.SETTINGS``."""
    values: dict[str, Any] = {}
    for section in ("model", "train"):
        table = _table(doc, section, file)
        allowed = section_keys(section)
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise PresetError(
                file,
                f"{section}.{unknown[0]}",
                f"unknown key; allowed: {', '.join(sorted(allowed))}",
            )
        by_key = {s.key: name for name, s in SETTINGS.items() if s.section == section}
        for key, value in table.items():
            name = by_key[key]
            if key == "init" and isinstance(value, dict):  # constant values by name
                bad = [k for k, v in value.items() if not finite_number(v)]
                if bad:
                    raise PresetError(file, f"model.init.{bad[0]}", "must be a finite number")
                name, value = "init_values", tuple((k, float(v)) for k, v in value.items())
            elif key == "init":
                name = "init"
            values[name] = _typed(name, value, file)
    try:
        cfg = replace(TrainConfig(), **values)
    except TypeError as exc:  # pragma: no cover - keys are checked above
        raise PresetError(file, "train", str(exc)) from exc
    problem = cfg.problem()
    if problem:
        name, _, reason = problem.partition(": ")
        setting = SETTINGS[name]
        raise PresetError(file, f"{setting.section}.{setting.key}", reason)
    unused = unused_settings(cfg.optimizer, list(values))
    if unused:
        raise PresetError(
            file,
            f"train.{SETTINGS[unused[0]].key}",
            f"the {cfg.optimizer} optimizer does not use it",
        )
    return cfg


def _typed(name: str, value: Any, file: str) -> Any:
    """A TOML value as the config holds it: lists as tuples, integers as floats where
    the setting is a number (``lr = 1`` means 1.0)."""
    kind = KINDS[name]
    if isinstance(value, list):
        if not str(kind).startswith("tuple"):
            setting = SETTINGS[name]
            raise PresetError(file, f"{setting.section}.{setting.key}", "must not be a list")
        return tuple(float(v) if name == "betas" and finite_number(v) else v for v in value)
    if is_int(value) and kind in (float, float | None):
        return float(value)
    return value


def load_preset(path: Path | str) -> Preset:
    """Read and validate one preset file, data included (this imports torch)."""
    path = Path(path)
    doc = read_toml(path)
    file = path.name
    known = {"name", "title", "description", "source", "data", "model", "train", "expected"}
    unknown = sorted(set(doc) - known - {"lessons"})
    if unknown:
        raise PresetError(file, unknown[0], "unknown top-level key")
    info = preset_info(path)
    data = _table(doc, "data", file)
    if not data:
        raise PresetError(file, "data", "is missing: a [data] table is required")
    kind = data.get("kind", "inline")
    if kind not in DATA_KINDS:
        raise PresetError(file, "data.kind", f"{shown(kind)} is not one of {', '.join(DATA_KINDS)}")
    expected = _table(doc, "expected", file)
    at = expected.get("predict_at")
    if at is not None and not (isinstance(at, list) and at and all(finite_number(v) for v in at)):
        raise PresetError(file, "expected.predict_at", f"{at!r} must be a list of numbers")
    base = _config_from(doc, file)
    for i, claim in enumerate(parse_claims(expected, file)):
        try:
            base.with_overrides(**claim.settings)
        except (ValueError, TypeError) as exc:
            raise PresetError(file, f"expected.claims[{i}].settings", str(exc)) from exc
    preset = Preset(
        name=info.name,
        title=info.title,
        description=info.description,
        source=info.source,
        path=path,
        data=dict(data),
        config=_config_from(doc, file),
        expected=dict(expected),
        lessons=parse_lessons(doc.get("lessons"), file, lambda d: base.with_overrides(**d)),
    )
    dataset = preset.build_dataset()  # validates the data now, not when a session starts
    _check_model_fits(preset, preset.config, dataset)
    return preset


def check_fit(preset: Preset, cfg: TrainConfig) -> None:
    """PresetError (naming the setting's field) unless ``cfg`` - the preset's settings
    with overrides, or a session file's - fits the preset's data: the loss and the
    labels, the model and the loss, the batch size, the memory budget."""
    _check_model_fits(preset, cfg, preset.build_dataset(cfg.seed))


def _check_model_fits(preset: Preset, cfg: TrainConfig, dataset: Dataset) -> None:
    from playground.training.budget import BudgetError, check_model

    file = preset.path.name
    at = preset.predict_at
    if at is not None and len(at) != dataset.n_features:
        raise PresetError(
            file,
            "expected.predict_at",
            f"has {len(at)} values for {dataset.n_features} input feature(s)",
        )
    if cfg.loss in CLASSIFICATION_LOSSES and dataset.task != "classification":
        raise PresetError(
            file, "train.loss", f"{cfg.loss!r} needs class labels; this data is a regression set"
        )
    if cfg.loss in ("bce", "bce_sum") and dataset.n_classes > 2:
        raise PresetError(
            file, "train.loss", f"{cfg.loss!r} is for 2 classes, data has {dataset.n_classes}"
        )
    if cfg.model == "softmax" and cfg.loss != "ce":
        raise PresetError(file, "train.loss", "the softmax model is trained with 'ce'")
    if cfg.batch_size > len(dataset.train):
        raise PresetError(
            file,
            "train.batch_size",
            f"{cfg.batch_size} is larger than the {len(dataset.train)} training samples",
        )
    outputs = dataset.n_classes if cfg.loss == "ce" else 1
    try:
        field = "model.hidden" if cfg.model == "mlp" else "model.kind"
        check_model(field, cfg.model, dataset.n_features, cfg.hidden, outputs)
    except BudgetError as exc:
        raise PresetError(file, exc.field, exc.reason) from exc
    # build the model once, so that a bad init name or model/loss pairing is reported
    # with this file's name now, not when a session starts
    import torch

    from playground.training.models import model_for

    rng = torch.random.get_rng_state()
    try:
        model_for(cfg, dataset)
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


def csv_in_folder(preset_path: Path, name: str) -> Path:
    """A preset's ``data.path``: a file in the preset's folder (or below it), never an
    absolute path, a ``..`` or a link out of it - a preset from elsewhere must not make
    us read the user's other files."""
    from playground.training.data import DataError

    try:
        folder = preset_path.parent.resolve()
        path = (folder / name).resolve()
    except (OSError, ValueError) as exc:  # e.g. a NUL byte in the path
        raise DataError("data.path", f"{shown(name)} is not a usable path") from exc
    if not path.is_relative_to(folder):
        raise DataError(
            "data.path",
            f"{shown(name)} is outside the preset's folder {folder}: a preset reads only "
            "files next to it (copy the CSV file there)",
        )
    return path


def _check_data_memory(kind: str, spec: dict[str, Any]) -> None:
    """The generated data's size against the memory budget, before it is made."""
    from playground.training.budget import BudgetError, check_data
    from playground.training.data import DataError

    if kind == "noisy_line":
        rows, features = sum(spec.get(k, 20) for k in ("n_train", "n_val", "n_test")), 1
    elif kind == "linear_features":
        rows, features = spec.get("n", 10), spec.get("d", 3)
    elif kind == "classification_2d":
        rows, features = spec.get("n", 200), 2
    else:  # inline data is within the file's size; CSV rows are counted as read
        return
    try:
        check_data("data.n" if kind != "noisy_line" else "data.n_train", rows, features)
    except BudgetError as exc:
        raise DataError(exc.field, exc.reason) from exc


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
                f"data.{key}",
                f"must be {' or '.join(t.__name__ for t in types)}, got {shown(value)}",
            )
        if float in (types or ()) and not finite_number(value):  # TOML has nan and inf
            raise d.DataError(f"data.{key}", f"{value!r} must be a finite number")
        low = _DATA_MIN.get(key)
        if low is not None and not (finite_number(value) and value >= low):
            raise d.DataError(f"data.{key}", f"{value!r} must be a number >= {low}")
        high = _DATA_MAX.get(key)
        if high is not None and value > high:
            raise d.DataError(f"data.{key}", f"{value!r} is too large (at most {high:g})")
    vf = spec.get("val_fraction", 0.0)
    if not 0 <= vf < 1:
        raise d.DataError("data.val_fraction", f"{vf!r} must be in [0, 1)")
    _check_data_memory(kind, spec)
    torch.manual_seed(seed)
    if kind == "noisy_line":
        xr = spec.pop("x_range", [-2.0, 2.0])
        if len(xr) != 2 or not all(finite_number(v) for v in xr) or xr[0] >= xr[1]:
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
        x, y = d.read_csv(
            csv_in_folder(preset.path, spec["path"]), list(spec["x_columns"]), spec["y_column"]
        )
        train = d.Split(x, y)  # float32, rectangular, finite: read_csv saw to it
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
        w = [w] if finite_number(w) else w
        if not (isinstance(w, list) and w and all(finite_number(v) for v in w)):
            raise d.DataError("data.true_w", f"{spec['true_w']!r} must be a list of numbers")
        if len(w) != train.x.shape[1]:
            raise d.DataError("data.true_w", f"has {len(w)} values for {train.x.shape[1]} features")
        b = spec.get("true_b", 0.0)
        if not finite_number(b):
            raise d.DataError("data.true_b", f"{b!r} must be a number")
        true_params = {
            "w": torch.tensor(w, dtype=torch.float32).numpy(),
            "b": torch.tensor([b], dtype=torch.float32).numpy(),
        }
    return d.Dataset(
        train=train, val=val, test=None, task=task, n_classes=n_classes, true_params=true_params
    )

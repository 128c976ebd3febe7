"""The settings of a training session, each declared once.

``TrainConfig`` is everything a user may choose: model, loss, optimizer, the training loop.
Each field carries a ``Setting`` in its metadata saying where it lives in a preset file
(``[model] kind``, ``[train] lr``), what changing it mid-training does (``LIVE``: applied
to the running session; ``REBUILD``: the session starts again from the seed; ``MOVE``: the
state moves to another device) and, for the settings a user changes most, the label of
its field in the TUI form and the ``playground run`` option. The preset reader, the
session, the form and the CLI all derive their lists from ``SETTINGS``.

Torch-free: the TUI imports this before its first frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, get_type_hints

from playground.training.budget import BudgetError, check_model

MODELS = ("scalar", "linear", "logistic", "softmax", "mlp")
LOSSES = ("mse", "sse", "bce", "bce_sum", "ce")
CLASSIFICATION_LOSSES = ("bce", "bce_sum", "ce")  # they need class labels
SUM_LOSSES = ("sse", "bce_sum")  # they add over the samples (the others are means)
OPTIMIZERS = ("gd", "sgd", "adam")
ACTIVATIONS = ("relu", "tanh", "sigmoid")
ZERO_MODES = ("zero", "none")
INIT_DISTS = ("randn", "rand", "default")
MAX_WIDTH, MAX_LAYERS = 4096, 16  # MLP hidden layers (and the memory budget: budget.py)
MAX_ACCUMULATE = 1024  # backward passes per step: one train step must stay short
MAX_STEPS = 10**9
SEED_RANGE = (0, 2**63 - 1)  # what torch.manual_seed and numpy both take

CODE_STYLES = ("plain", "class", "module")  # playground.training.code writes each

LIVE = "live"  # applied to the running session; the training state is kept
REBUILD = "rebuild"  # data, model and optimizer are made again from the seed
MOVE = "move"  # the whole training state moves to another device


@dataclass(frozen=True)
class Setting:
    """Where a ``TrainConfig`` field lives and what changing it does."""

    section: str  # the preset file's table: "model" or "train"
    key: str  # the key in that table
    effect: str  # LIVE | REBUILD | MOVE
    label: str = ""  # the TUI form's label and a `playground run` option; "" = neither
    choices: tuple[str, ...] = ()
    optimizer_hyper: bool = False  # an entry of torch.optim's param_groups
    name: str = ""  # the TrainConfig field (filled in by _settings)

    @property
    def option(self) -> str:
        """The command-line option: ``--batch-size`` for ``batch_size``."""
        return "--" + self.name.replace("_", "-")


def _s(
    section: str,
    effect: str,
    *,
    key: str = "",
    label: str = "",
    choices: tuple[str, ...] = (),
    hyper: bool = False,
) -> dict[str, Setting]:
    return {"setting": Setting(section, key, effect, label, choices, hyper)}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a user may override: model, loss, optimizer and the training loop."""

    model: str = field(
        default="linear", metadata=_s("model", REBUILD, key="kind", label="model", choices=MODELS)
    )
    loss: str = field(default="mse", metadata=_s("train", REBUILD, label="loss", choices=LOSSES))
    optimizer: str = field(
        default="sgd", metadata=_s("train", REBUILD, label="optimizer", choices=OPTIMIZERS)
    )
    lr: float = field(default=0.01, metadata=_s("train", LIVE, label="lr", hyper=True))
    momentum: float = field(default=0.0, metadata=_s("train", LIVE, label="momentum", hyper=True))
    nesterov: bool = field(default=False, metadata=_s("train", LIVE, hyper=True))
    weight_decay: float = field(default=0.0, metadata=_s("train", LIVE, hyper=True))
    betas: tuple[float, float] = field(default=(0.9, 0.999), metadata=_s("train", LIVE, hyper=True))
    # 0 = the whole training set in one batch
    batch_size: int = field(default=0, metadata=_s("train", LIVE, label="batch (0=all)"))
    # K: backward passes per optimizer step in a train step
    accumulate: int = field(default=1, metadata=_s("train", LIVE, label="accum. K"))
    scale_loss: bool = field(default=True, metadata=_s("train", LIVE))  # each loss / K
    # a new order of the training samples each epoch, as DataLoader(shuffle=True) with a
    # generator seeded with ``seed``
    shuffle: bool = field(default=False, metadata=_s("train", LIVE, label="shuffle"))
    # backward(retain_graph=True): keep the graph's saved tensors, so that backward can go
    # through the same graph again (seed 002)
    retain_graph: bool = field(default=False, metadata=_s("train", LIVE, label="retain graph"))
    # how the code panel and the exports write the session (training.code): plain tensors
    # and the configured model, seed 001's RegressionModel class, or nn.Module + DataLoader
    code_style: str = field(
        default="plain", metadata=_s("train", LIVE, label="code style", choices=CODE_STYLES)
    )
    # "zero": p.grad.zero_(); "none": p.grad = None
    zero_grad: str = field(default="zero", metadata=_s("train", LIVE, choices=ZERO_MODES))
    hidden: tuple[int, ...] = field(default=(8,), metadata=_s("model", REBUILD, label="hidden"))
    activation: str = field(
        default="tanh", metadata=_s("model", REBUILD, label="activation", choices=ACTIVATIONS)
    )
    # scalar model: "randn" | "rand"; others: torch's default init
    init: str = field(default="default", metadata=_s("model", REBUILD, choices=INIT_DISTS))
    # constant initial values by name ([model] init = {w = 1.0, b = 1.0})
    init_values: tuple[tuple[str, float], ...] = field(
        default=(), metadata=_s("model", REBUILD, key="init")
    )
    max_steps: int = field(default=1000, metadata=_s("train", LIVE))
    until_loss: float | None = field(default=None, metadata=_s("train", LIVE))
    seed: int = field(default=0, metadata=_s("train", REBUILD, label="seed"))
    device: str = field(default="auto", metadata=_s("train", MOVE, label="device"))

    def with_overrides(self, **overrides: Any) -> TrainConfig:
        """A copy with the given (non-None) fields replaced, validated (ValueError)."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(clean) - set(SETTINGS)
        if unknown:
            raise ValueError(
                f"unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(SETTINGS)}"
            )
        cfg = replace(self, **clean)
        problem = cfg.problem()
        if problem:
            raise ValueError(problem)
        return cfg

    def problem(self) -> str | None:
        """The first invalid field as 'field: reason', or None when all is well."""
        for name, setting in SETTINGS.items():
            if setting.choices and getattr(self, name) not in setting.choices:
                return f"{name}: {getattr(self, name)!r} is not one of {', '.join(setting.choices)}"
        checks: list[tuple[bool, str]] = [
            (finite_number(self.lr) and self.lr > 0, f"lr: {self.lr!r} must be a positive number"),
            (
                finite_number(self.momentum) and 0 <= self.momentum < 1,
                f"momentum: {self.momentum!r} must be in [0, 1)",
            ),
            (
                finite_number(self.weight_decay) and self.weight_decay >= 0,
                f"weight_decay: {self.weight_decay!r} must be >= 0",
            ),
            (isinstance(self.nesterov, bool), "nesterov: must be true or false"),
            (not self.nesterov or self.momentum > 0, "nesterov: needs momentum > 0"),
            (
                isinstance(self.betas, tuple)
                and len(self.betas) == 2
                and all(finite_number(b) and 0 <= b < 1 for b in self.betas),
                f"betas: {_shown(self.betas)} must be two numbers in [0, 1)",
            ),
            (
                is_int(self.batch_size) and self.batch_size >= 0,
                f"batch_size: {self.batch_size!r} must be an integer >= 0 (0 = full batch)",
            ),
            (
                is_int(self.accumulate) and 1 <= self.accumulate <= MAX_ACCUMULATE,
                f"accumulate: {self.accumulate!r} must be an integer >= 1 (at most {MAX_ACCUMULATE})",
            ),
            (isinstance(self.scale_loss, bool), "scale_loss: must be true or false"),
            (isinstance(self.shuffle, bool), "shuffle: must be true or false"),
            (isinstance(self.retain_graph, bool), "retain_graph: must be true or false"),
            (
                is_int(self.max_steps) and 1 <= self.max_steps <= MAX_STEPS,
                f"max_steps: {self.max_steps!r} must be an integer >= 1 (at most {MAX_STEPS:g})",
            ),
            (
                self.until_loss is None
                or (finite_number(self.until_loss) and self.until_loss >= 0),
                f"until_loss: {self.until_loss!r} must be a number >= 0",
            ),
            (
                is_int(self.seed) and SEED_RANGE[0] <= self.seed <= SEED_RANGE[1],
                f"seed: {self.seed!r} must be an integer from {SEED_RANGE[0]} to {SEED_RANGE[1]}",
            ),
            (
                isinstance(self.hidden, tuple)
                and all(is_int(h) and 1 <= h <= MAX_WIDTH for h in self.hidden)
                and 1 <= len(self.hidden) <= MAX_LAYERS,
                f"hidden: {_shown(self.hidden)} must be 1 to {MAX_LAYERS} positive layer "
                f"sizes of at most {MAX_WIDTH}",
            ),
            (
                isinstance(self.device, str) and bool(self.device) and self.device.isprintable(),
                "device: must be a name",
            ),
        ]
        for ok, message in checks:
            if not ok:
                return message
        return self._memory_problem()

    def _memory_problem(self) -> str | None:
        """The hidden layers alone above the memory budget (the data's own sizes are
        checked with the data: ``presets.check_fit``)."""
        if self.model != "mlp":
            return None
        try:
            check_model("hidden", "mlp", 1, self.hidden, 1)
        except BudgetError as exc:
            return str(exc)
        return None

    def changes_from(self, other: TrainConfig) -> dict[str, Any]:
        """The fields whose values differ from ``other``'s, with this config's values."""
        return {n: getattr(self, n) for n in SETTINGS if getattr(self, n) != getattr(other, n)}


def finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _shown(value: Any) -> str:
    """A value as the preset file spells it (``[8, 0]``, not ``(8, 0)``)."""
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _settings() -> dict[str, Setting]:
    out = {}
    for f in fields(TrainConfig):
        s: Setting = f.metadata["setting"]
        out[f.name] = replace(s, name=f.name, key=s.key or f.name)
    return out


SETTINGS: dict[str, Setting] = _settings()
"""Every setting by ``TrainConfig`` field name, in the order of the fields."""

KINDS: dict[str, Any] = get_type_hints(TrainConfig)
"""Each setting's type (``float``, ``int``, ``str``, ``tuple[float, float]`` ...)."""

USER_SETTINGS = tuple(n for n, s in SETTINGS.items() if s.label)
"""The settings in the TUI form and among ``playground run``'s options, in form order."""


def parse_setting(name: str, text: str) -> Any:
    """The value of setting ``name`` typed as ``text`` (a form field, a command-line
    option); ValueError with the reason ("needs a value", "'abc' is not a number",
    "-1.0 must be a positive number") when it is not a valid value."""
    text = text.strip()
    if not text:
        raise ValueError("needs a value")
    kind = KINDS[name]
    if kind is bool:
        words = {"true": True, "yes": True, "on": True, "1": True}
        words |= {"false": False, "no": False, "off": False, "0": False}
        if text.lower() not in words:
            raise ValueError(f"{text!r} is not yes or no")
        return words[text.lower()]
    if str(kind).startswith("tuple"):  # layer sizes: "8, 8" or "8 8"
        parts = text.replace(",", " ").split()
        if not all(p.isdigit() for p in parts):
            raise ValueError(f"{text!r} is not a list of layer sizes such as 8, 8")
        value: Any = tuple(int(p) for p in parts)
        problem = TrainConfig(**{name: value}).problem()
        if problem:
            raise ValueError(problem.partition(": ")[2] or problem)
        return value
    number = float if kind == float | None else kind  # until_loss: a number (or None)
    try:
        value = number(text) if number in (int, float) else text
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{text!r} is not {what}") from None
    problem = TrainConfig(**{name: value}).problem()
    if problem:
        raise ValueError(problem.partition(": ")[2] or problem)
    return value


# the settings each optimizer does not use: given explicitly, they are refused
UNUSED_BY = {
    "gd": ("momentum", "nesterov", "weight_decay", "betas"),
    "sgd": ("betas",),
    "adam": ("momentum", "nesterov"),
}


def unused_settings(optimizer: str, names: Sequence[str]) -> list[str]:
    """Those of ``names`` that ``optimizer`` does not use (``--momentum`` with gd)."""
    return [n for n in names if n in UNUSED_BY.get(optimizer, ())]


def effect_of(changes: dict[str, Any] | set[str] | tuple[str, ...]) -> str:
    """What a change of these settings does: REBUILD if any rebuilds, else MOVE if the
    device changes, else LIVE."""
    effects = {SETTINGS[name].effect for name in changes if name in SETTINGS}
    for effect in (REBUILD, MOVE):
        if effect in effects:
            return effect
    return LIVE


def section_keys(section: str) -> set[str]:
    """The keys a preset file's ``[model]`` or ``[train]`` table may hold."""
    return {s.key for s in SETTINGS.values() if s.section == section}

"""The model registry: by-hand scalar tensors, nn.Linear, logistic, softmax, MLP.

A ``Model`` is callable on a (N, d) input and returns (N,) for one output or (N, C) for
C class scores. Its parameters are kept by name, in a fixed order, so the UI, the
transcript and the analytic gradients all speak about the same ``w``, ``b``, ``weight``...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from playground.training.config import TrainConfig
    from playground.training.data import Dataset

ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


class SoftmaxRegression(nn.Module):
    """h = XW + b with W: d x C and b: 1 x C, as in the SGD / logistic regression tutorial."""

    def __init__(self, d: int, n_classes: int = 2) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(d, n_classes))
        self.b = nn.Parameter(torch.randn(1, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.W) + self.b


@dataclass
class Model:
    """A model and its named parameters (leaf tensors with requires_grad)."""

    kind: str
    module: nn.Module | None  # None for the by-hand scalar model
    params: dict[str, torch.Tensor]
    n_outputs: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.module is None:
            return x @ self.params["w"] + self.params["b"]
        out = self.module(x)
        return out.squeeze(-1) if self.n_outputs == 1 else out

    def to(self, device: torch.device) -> Model:
        """Move in place: the parameter objects (and so the optimizer's references to them)
        stay the same, their data and .grad change device."""
        if self.module is not None:
            self.module.to(device)
            self.params = dict(self.module.named_parameters())
            return self
        for p in self.params.values():
            grad = p.grad
            p.grad = None
            p.data = p.data.to(device)
            if grad is not None:
                p.grad = grad.to(device)
        return self

    @property
    def is_linear(self) -> bool:
        """Output is affine in the input (analytic gradients and closed form apply)."""
        return self.kind in ("scalar", "linear", "logistic", "softmax")


# the by-hand scalar model's parameters and nn.Linear's that play the same part
SAME_PARAMETER = {"w": "weight", "b": "bias", "weight": "w", "bias": "b"}


def n_outputs_for(loss: str, n_classes: int) -> int:
    return max(2, n_classes) if loss == "ce" else 1


def build_model(
    kind: str,
    n_features: int,
    n_outputs: int,
    hidden: tuple[int, ...] = (8,),
    activation: str = "tanh",
    init: str = "default",
    init_values: dict[str, float] | None = None,
) -> Model:
    """Create a model drawing its initial values from torch's global RNG."""
    module: nn.Module | None
    if kind == "scalar":
        if n_outputs != 1:
            raise ValueError(
                "the scalar w, b model has one output; use 'softmax' or 'mlp' for 'ce'"
            )
        draw = torch.rand if init == "rand" else torch.randn
        params = {"w": draw(n_features), "b": draw(1)}
        for p in params.values():
            p.requires_grad_(True)
        module = None
    elif kind in ("linear", "logistic"):
        module = nn.Linear(n_features, n_outputs)
    elif kind == "softmax":
        module = SoftmaxRegression(n_features, n_outputs if n_outputs > 1 else 2)
        n_outputs = max(2, n_outputs)
    elif kind == "mlp":
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATION_MODULES[activation]()]
            width = h
        layers.append(nn.Linear(width, n_outputs))
        module = nn.Sequential(*layers)
    else:
        raise ValueError(f"unknown model {kind!r}")
    if module is not None:
        params = dict(module.named_parameters())
    if init_values:
        # the exercises' w, b are nn.Linear's weight, bias (and back): one preset, both models
        init_values = {
            name if name in params else SAME_PARAMETER.get(name, name): value
            for name, value in init_values.items()
        }
        unknown = set(init_values) - set(params)
        if unknown:
            raise ValueError(
                f"model.init: no parameter(s) {sorted(unknown)} in a {kind} model; "
                f"it has {list(params)}"
            )
        with torch.no_grad():
            for name, value in init_values.items():
                params[name].fill_(value)
    return Model(kind=kind, module=module, params=params, n_outputs=n_outputs)


def model_for(cfg: TrainConfig, dataset: Dataset) -> Model:
    """The model ``cfg`` asks for, shaped for ``dataset`` (drawn from the global RNG)."""
    return build_model(
        cfg.model,
        dataset.n_features,
        n_outputs_for(cfg.loss, dataset.n_classes),
        cfg.hidden,
        cfg.activation,
        cfg.init,
        dict(cfg.init_values) or None,
    )


def compute_loss(name: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss as the exercises write it: MSE (mean), SSE (sum), sigmoid + BCE (mean, or
    summed over the samples: seed 000's losses are sums), CE."""
    if name == "mse":
        return F.mse_loss(out, y)
    if name == "sse":
        return ((out - y) ** 2).sum()
    if name == "bce":
        return F.binary_cross_entropy(torch.sigmoid(out), y)
    if name == "bce_sum":
        return F.binary_cross_entropy(torch.sigmoid(out), y, reduction="sum")
    if name == "ce":
        return F.cross_entropy(out, y.long())
    raise ValueError(f"unknown loss {name!r}")


def predict_labels(loss: str, out: torch.Tensor) -> torch.Tensor:
    """Class predictions for accuracy: threshold the logit at 0, or argmax the scores."""
    if loss == "ce":
        return out.argmax(dim=-1).float()
    return (out > 0).float()

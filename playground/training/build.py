"""What one build of a session makes from its preset and settings.

A ``Build`` holds the objects that a rebuild (a new model, loss, optimizer, seed or
preset, or a reset) replaces: the data on the device, the model, the optimizer, the loss
histories, the transcript and the snapshot caches. Training states refer to their build,
so undoing a rebuild puts the old objects back; a device move moves a build in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from playground.training.code import Ctx, Setup
from playground.training.config import CLASSIFICATION_LOSSES, TrainConfig
from playground.training.data import Dataset, EpochOrder
from playground.training.history import Recorder
from playground.training.models import Model, model_for
from playground.training.presets import Preset
from playground.training.transcript import Transcript


@dataclass
class Caches:
    """What a snapshot needs that depends only on the build (filled in by ``capture``)."""

    data_np: dict[str, Any] | None = None  # the data as numpy (sampled), for the fit view
    line_x: torch.Tensor | None = None  # fit-view sample points, on the device
    fit_x: torch.Tensor | None = None  # the training inputs the fit view draws, on the device
    grid: torch.Tensor | None = None  # decision-boundary lattice, on the device
    closed: tuple[Any, Any] | None = None  # (true parameters, least-squares optimum)
    device_label: str | None = None  # "cuda:0 NVIDIA H100 (80 GiB)": asked once
    test: tuple[torch.Tensor, torch.Tensor] | None = None  # the test split, on the device
    perm: tuple[int, torch.Tensor] | None = None  # (epoch, its sample order on the device)
    evaluated: Any = None  # capture's last evaluation and the parameters it was made at


@dataclass(eq=False)
class Build:
    """The data, model and optimizer of one build, and the records that belong to them."""

    preset: Preset
    dataset: Dataset
    model: Model
    optimizer: torch.optim.Optimizer | None
    device: torch.device
    x: torch.Tensor
    y: torch.Tensor
    val: tuple[torch.Tensor, torch.Tensor] | None
    # the recorded series, by name: "batch" every batch loss (tag: KIND_*); "val" the
    # validation loss of each epoch's validation phase (tag: batch losses recorded by
    # then); "val_acc" its accuracy (tag: the epoch)
    series: dict[str, Recorder]
    transcript: Transcript
    order: EpochOrder  # each epoch's order of the samples when shuffling (seeded)
    caches: Caches = field(default_factory=Caches)

    def epoch_perm(self, epoch: int) -> torch.Tensor:
        """Epoch ``epoch``'s order of the training samples, on the device."""
        cached = self.caches.perm
        if cached is None or cached[0] != epoch:
            cached = self.caches.perm = (epoch, self.order.perm(epoch).to(self.device))
        return cached[1]

    @property
    def history(self) -> Recorder:
        return self.series["batch"]

    @property
    def val_history(self) -> Recorder:
        return self.series["val"]

    @property
    def n_train(self) -> int:
        return int(self.x.shape[0])

    @property
    def data_nbytes(self) -> int:
        tensors = [self.x, self.y, *(self.val or ())]
        return sum(t.element_size() * t.nelement() for t in tensors)

    def to(self, device: torch.device) -> None:
        """Move everything to ``device`` in place: the parameter objects (and so the
        optimizer's references to them) stay the same."""
        self.model.to(device)
        if self.optimizer is not None:
            # load_state_dict casts the optimizer state to the parameters' device
            self.optimizer.load_state_dict(self.optimizer.state_dict())
        self.x, self.y = self.x.to(device), self.y.to(device)
        self.val = (self.val[0].to(device), self.val[1].to(device)) if self.val else None
        for recorder in self.series.values():
            recorder.to(device)
        self.device = device
        self.caches.line_x = self.caches.grid = self.caches.device_label = None
        self.caches.fit_x = None
        self.caches.test = self.caches.perm = self.caches.evaluated = None


def make_build(preset: Preset, cfg: TrainConfig, device: torch.device) -> Build:
    """Data, then the model, both from ``cfg.seed`` - in the order the exercises draw them."""
    torch.manual_seed(cfg.seed)
    ds = preset.build_dataset(cfg.seed)
    if cfg.loss in CLASSIFICATION_LOSSES and ds.task != "classification":
        raise ValueError(f"loss: {cfg.loss!r} needs class labels; {preset.name} is regression")
    if cfg.batch_size > len(ds.train):
        raise ValueError(f"batch_size: {cfg.batch_size} > {len(ds.train)} training samples")
    # the model draws its initial values from the global RNG right after the data,
    # exactly as the exercises do
    model = model_for(cfg, ds).to(device)
    x, y = ds.train.x.to(device), ds.train.y.to(device)
    return Build(
        preset=preset,
        dataset=ds,
        model=model,
        optimizer=make_optimizer(model, cfg),
        device=device,
        x=x,
        y=y,
        val=(ds.val.x.to(device), ds.val.y.to(device)) if ds.val is not None else None,
        series={
            "batch": Recorder(device, np.int8),
            "val": Recorder(device, np.int32),  # widened past 2**31 - 1
            "val_acc": Recorder(device, np.int32),
        },
        transcript=Transcript(_setup(preset, cfg, model, ds, x, y, device)),
        order=EpochOrder(len(x), cfg.seed),
    )


def make_optimizer(
    model: Model, cfg: TrainConfig, foreach: bool | None = True
) -> torch.optim.Optimizer | None:
    """torch's own SGD and Adam with ``foreach=True`` (torch's default on CUDA): one
    multi-tensor kernel per update instead of one Python-level call per parameter - on
    the CPU half the time of a small MLP's train step goes to Adam's per-parameter loop.
    The numbers are those of the default loop (tests/training/test_fast_optimizers.py);
    ``foreach=None`` makes torch's default, as the course writes it."""
    params = list(model.params.values())
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
            foreach=foreach,
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, foreach=foreach
        )
    return None  # "gd": p -= lr * p.grad by hand


def module_code(model: Model, n_features: int) -> str | None:
    """The model as the exported script builds it (None for the by-hand scalar model)."""
    if model.kind in ("linear", "logistic"):
        return f"nn.Linear({n_features}, {model.n_outputs})"
    if model.kind == "softmax":
        return f"SoftmaxRegression({n_features}, {model.n_outputs})"
    if model.kind == "mlp":
        assert model.module is not None
        layers = ", ".join(
            f"nn.Linear({mod.in_features}, {mod.out_features})"
            if isinstance(mod, torch.nn.Linear)
            else f"nn.{type(mod).__name__}()"
            for mod in model.module
        )
        return f"nn.Sequential({layers})"
    return None


def ctx_of(cfg: TrainConfig, n_train: int) -> Ctx:
    """The settings an action's code depends on, now."""
    size = cfg.batch_size or n_train
    n_batches = -(-n_train // size)
    return Ctx(
        optimizer=cfg.optimizer,
        full_batch=n_batches == 1 and not cfg.shuffle,
        k=cfg.accumulate,
        scale=cfg.scale_loss,
        retain=cfg.retain_graph,
        zero_none=cfg.zero_grad == "none",
        shuffle=cfg.shuffle,
        seed=cfg.seed,
        batch_size=size,
        n_batches=n_batches,
    )


def _setup(
    preset: Preset,
    cfg: TrainConfig,
    model: Model,
    ds: Dataset,
    x: torch.Tensor,
    y: torch.Tensor,
    device: torch.device,
) -> Setup:
    return Setup(
        title=preset.title,
        device=str(device),
        x=x.cpu(),  # the code is written from it on export, not at every build
        y=y.cpu(),
        model_kind=model.kind,
        module_code=module_code(model, ds.n_features),
        init={n: p.detach().cpu().tolist() for n, p in model.params.items()},
        n_outputs=model.n_outputs,
        loss=cfg.loss,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
        betas=cfg.betas,
        ctx=ctx_of(cfg, len(x)),
    )

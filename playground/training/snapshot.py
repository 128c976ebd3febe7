"""Frozen, tensor-free views of a training session.

Everything here crosses the runner thread -> UI thread boundary, so it holds only plain
Python numbers, strings, tuples and numpy arrays (copied, never shared with torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from playground.training.config import TrainConfig

if TYPE_CHECKING:  # numpy only for annotations: the UI imports this before its first frame
    import numpy as np

    from playground.training.transcript import Entry

# Kinds of loss evaluations recorded in the history (``LossHistory.kind``).
KIND_FORWARD = 0  # forward only: loss seen, no gradient
KIND_BACKWARD = 1  # backward without a step (gradient accumulates)
KIND_TRAIN = 2  # a full train step (zero_grad, forward, backward, step)


@dataclass(frozen=True)
class ParamView:
    """One parameter as the user sees it: value, ``.grad`` and how it got there."""

    name: str
    shape: tuple[int, ...]
    value: np.ndarray
    grad: np.ndarray | None  # None when ``p.grad is None`` (never backwarded or zeroed to None)
    backwards_since_zero: int  # backward passes accumulated in .grad since the last zero_grad
    last_delta: np.ndarray | None  # value change made by the last optimizer step
    analytic_grad: np.ndarray | None = None  # closed-form gradient of the accumulated loss


@dataclass(frozen=True)
class OptimizerView:
    """Optimizer name, hyper-parameters and per-parameter state (momentum, Adam moments)."""

    name: str
    hyper: dict[str, float | bool]
    state: dict[str, dict[str, np.ndarray | float]] = field(default_factory=dict)


@dataclass(frozen=True)
class LossHistory:
    """Every batch loss the session has computed, in order.

    ``step`` is the optimizer step count at the time of the evaluation, ``kind`` one of
    the ``KIND_*`` constants. ``val_loss`` holds the validation loss of each epoch's
    validation phase (the mean over the validation mini-batches; empty when the preset
    has no validation split); ``val_step`` is the step that ended the epoch and
    ``val_index`` the number of batch losses recorded by then, so both curves can share
    an x axis; ``val_accuracy`` the phase's accuracy (classifiers; else empty).
    """

    loss: np.ndarray
    step: np.ndarray
    kind: np.ndarray
    val_loss: np.ndarray
    val_step: np.ndarray
    val_index: np.ndarray
    val_accuracy: np.ndarray

    def __len__(self) -> int:
        return int(self.loss.shape[0])


@dataclass(frozen=True)
class FitView:
    """The data and what the model makes of it, ready to draw.

    ``pred`` is the model's output on the training inputs (a value for regression, the
    probability of class 1 for classifiers). For one-feature regression ``line_x`` holds
    sample points with the model (``line_y``), the true line and the least-squares line
    evaluated on them; for two-feature classifiers ``grid_p`` holds P(class 1) on the
    ``grid_x`` x ``grid_y`` lattice (rows follow ``grid_y``).

    A training set of more than ``FIT_POINTS`` samples is drawn from an even sample of
    its points (every ``stride``-th, in order): ``x``, ``y`` and ``pred`` are that
    sample's, ``n_points`` counts the whole set and ``n_wrong`` the samples of the whole
    set a two-class model gets wrong (None where it is not counted: regression, small
    sets, whose wrong points are all drawn).
    """

    x: np.ndarray
    y: np.ndarray
    pred: np.ndarray
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    line_x: np.ndarray | None = None
    line_y: np.ndarray | None = None
    true_y: np.ndarray | None = None
    closed_y: np.ndarray | None = None
    grid_x: np.ndarray | None = None
    grid_y: np.ndarray | None = None
    grid_p: np.ndarray | None = None
    n_points: int = 0
    stride: int = 1
    n_wrong: int | None = None


FIT_POINTS = 4096
"""Training points a fit view holds at most: a scatter of more is a solid block on any
terminal, and each snapshot would copy (and the screen compare) them all."""


@dataclass(frozen=True)
class Prediction:
    """The model's output at one input, next to the least-squares line's when there is
    one (a value for regression, the probability of class 1 for classifiers)."""

    at: tuple[float, ...]
    model: float
    least_squares: float | None = None

    def said(self) -> str:
        """ "ŷ(3, 2) = 6.30 (least squares 6.30)" """
        at = ", ".join(f"{v:g}" for v in self.at)
        ls = "" if self.least_squares is None else f" (least squares {self.least_squares:#.4g})"
        return f"ŷ({at}) = {self.model:#.4g}{ls}"


@dataclass(frozen=True)
class BestView:
    """The best state by validation loss so far: its epoch, loss and parameters."""

    epoch: int
    val_loss: float
    values: dict[str, np.ndarray]


@dataclass(frozen=True)
class Snapshot:
    """The whole visible state of a session at one moment.

    Each loss has one meaning: ``batch_loss`` is the loss on the micro-batch the last
    forward or backward used (the last point of the loss curve); ``train_loss`` and
    ``val_loss`` are the loss on the whole training / validation set at the current
    parameters; the accuracies likewise.
    """

    preset: str
    title: str
    description: str
    task: str  # "regression" or "classification"
    device: str  # described: "cpu", "cuda:0 NVIDIA H100 (80 GiB)"
    model: str
    loss_name: str
    config: TrainConfig  # the settings in force
    step: int  # optimizer steps taken
    epoch: float  # passes over the training data by the training loop (steps' samples / N)
    epochs_done: int  # epochs the loop has finished (each with its validation phase)
    backward_total: int
    cursor: int  # the next micro-batch, counted over all epochs
    # (1-based index, micro-batches per epoch) of the batch the last forward/backward took
    batch: tuple[int, int] | None
    params: tuple[ParamView, ...]
    optimizer: OptimizerView
    batch_loss: float | None
    train_loss: float | None
    val_loss: float | None
    train_accuracy: float | None  # classifiers only
    val_accuracy: float | None
    history: LossHistory
    true_params: dict[str, np.ndarray] | None  # the generating parameters, when known
    closed_form: dict[str, np.ndarray] | None  # least-squares optimum (linear regression)
    log: tuple[str, ...]  # the action log, one PyTorch statement block per action
    transcript: tuple[Entry, ...]  # the same actions as data (plain values)
    undo_depth: int = 0
    redo_depth: int = 0
    undo_label: str | None = None  # what u would take back ("step", "run (3000 train steps)")
    redo_label: str | None = None  # what ctrl+y would apply again
    fit: FitView | None = None
    best: BestView | None = None  # presets with a validation split, after the first epoch
    test_loss: float | None = None  # the held-out test split, when the preset has one
    prediction: Prediction | None = None  # at the input the preset asks about (predict_at)
    # the step count when the oldest gradient in .grad was computed (None: no gradient
    # since the last zero_grad); below ``step``, a step now would use a stale gradient
    grad_step: int | None = None
    lessons: tuple[tuple[str, str], ...] = ()  # the preset's guided lessons: (name, title)
    source: str = ""  # where the exercise comes from ("seed 001: ...")

    def param(self, name: str) -> ParamView:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

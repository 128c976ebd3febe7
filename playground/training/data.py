"""Data sets for the presets: inline arrays, seeded generators and CSV files.

Every generator is deterministic in its seed and draws from torch's RNG where the course
exercise does (so the numbers match the exercise), otherwise from a local torch.Generator.
All data is float32 on the CPU; the session moves it to the chosen device.
"""

from __future__ import annotations

import csv
import io
import math
import os
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from playground.text import clean, shown

MAX_CSV_BYTES = 64 * 2**20
TASKS = ("regression", "classification")


class DataError(ValueError):
    """A data specification that cannot produce a data set (field, value, reason)."""

    def __init__(self, field: str, reason: str) -> None:
        field, reason = clean(field), clean(reason, lines=True, limit=600)
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` (N, d) and targets ``y`` (N,) of one split."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test splits plus what the generator knows about the truth."""

    train: Split
    val: Split | None
    test: Split | None
    task: str  # "regression" | "classification"
    n_classes: int  # 0 for regression
    true_params: dict[str, np.ndarray] | None = None

    @property
    def n_features(self) -> int:
        return int(self.train.x.shape[1])


def _as_2d(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, 1) if x.dim() == 1 else x


def create_dataset(
    sample_size: int = 10,
    sigma: float = 0.1,
    w_star: float = 1.0,
    b_star: float = 1.0,
    x_range: tuple[float, float] = (-1.0, 1.0),
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The noisy line of the linear regression lab, draw for draw.

    ``torch.manual_seed(seed)``, uniform x rescaled into ``x_range``, then
    ``y = w* x + b* + N(0, sigma)``: the same calls in the same order as the exercise, so
    the same seed gives the same points.
    """
    torch.manual_seed(seed)
    x_min, x_max = x_range
    x = torch.rand(sample_size)
    x = x * (x_max - x_min) + x_min
    y_hat = x * w_star + b_star
    y = y_hat + torch.normal(torch.zeros(sample_size), sigma * torch.ones(sample_size))
    return x, y


def noisy_line(
    n_train: int = 160,
    n_val: int = 20,
    n_test: int = 20,
    sigma: float = 1.3,
    w_star: float = 3.0,
    b_star: float = 2.0,
    x_range: tuple[float, float] = (-2.0, 2.0),
    seed: int = 0,
) -> Dataset:
    """Train / validation / test noisy lines seeded ``seed``, ``seed + 1``, ``seed + 2``.

    With seed 0 these are the lab's three splits. Like the lab, it leaves torch's global
    RNG where the last ``create_dataset`` call left it, so a model initialised right after
    starts from the lab's initial weights.
    """
    splits: list[Split | None] = []
    for offset, n in enumerate((n_train, n_val, n_test)):
        if n <= 0:
            splits.append(None)
            continue
        x, y = create_dataset(n, sigma, w_star, b_star, (x_range[0], x_range[1]), seed + offset)
        splits.append(Split(x.reshape(-1, 1), y))
    assert splits[0] is not None
    return Dataset(
        train=splits[0],
        val=splits[1],
        test=splits[2],
        task="regression",
        n_classes=0,
        true_params={
            "w": np.array([w_star], dtype=np.float32),
            "b": np.array([b_star], dtype=np.float32),
        },
    )


def linear_features(
    n: int = 10,
    d: int = 3,
    w_scale: float = 5.0,
    b_scale: float = -2.0,
    seed: int = 0,
    threshold: bool = False,
) -> Dataset:
    """The shallow-networks tutorial problem: x ~ randn(n, d), w_true = 5 randn(d),
    b_true = -2 randn(1), y = x @ w_true + b_true; with ``threshold`` the logistic version
    ``y = (y > 0)`` as floats."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w_true = w_scale * torch.randn(d, generator=g)
    b_true = b_scale * torch.randn(1, generator=g)
    y = x @ w_true + b_true
    task, n_classes = "regression", 0
    if threshold:
        y = (y > 0).float()
        task, n_classes = "classification", 2
    return Dataset(
        train=Split(x, y),
        val=None,
        test=None,
        task=task,
        n_classes=n_classes,
        true_params={"w": w_true.numpy(), "b": b_true.numpy()},
    )


def _two_gaussians(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    half = n // 2
    spread = 0.5 + 2.0 * noise
    a = torch.randn(half, 2, generator=g) * spread + torch.tensor([2.0, 2.0])
    b = torch.randn(n - half, 2, generator=g) * spread + torch.tensor([-2.0, -2.0])
    y = torch.cat([torch.ones(half), torch.zeros(n - half)])
    return torch.cat([a, b]), y


def _circle(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    # TensorFlow Playground: inner disc (r < 2) is class 1, ring 3..5 is class 0.
    half = n // 2
    r_in = 2.0 * torch.rand(half, generator=g)
    r_out = 3.0 + 2.0 * torch.rand(n - half, generator=g)
    r = torch.cat([r_in, r_out])
    angle = 2 * math.pi * torch.rand(n, generator=g)
    x = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)
    x = x + noise * 2.5 * torch.randn(n, 2, generator=g)
    y = torch.cat([torch.ones(half), torch.zeros(n - half)])
    return x, y


def _xor(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(n, 2, generator=g) * 10 - 5
    # keep points off the axes so the quadrants are clear, as the playground does
    x = x + torch.sign(x) * 0.3
    y = ((x[:, 0] * x[:, 1]) > 0).float()
    x = x + noise * 2.5 * torch.randn(n, 2, generator=g)
    return x, y


def _spiral(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    half = n // 2
    xs, ys = [], []
    for label, delta, count in ((1.0, 0.0, half), (0.0, math.pi, n - half)):
        i = torch.arange(count, dtype=torch.float32)
        r = i / count * 5
        t = 1.75 * i / count * 2 * math.pi + delta
        pts = torch.stack([r * torch.sin(t), r * torch.cos(t)], dim=1)
        pts = pts + noise * torch.randn(count, 2, generator=g)
        xs.append(pts)
        ys.append(torch.full((count,), label))
    return torch.cat(xs), torch.cat(ys)


def _blobs(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    # Two overlapping unit Gaussians with means +-m (1, 1)/sqrt(2): the best possible
    # accuracy is Phi(m); noise=0.8 gives about 0.79, like the SGD logistic exercise.
    half = n // 2
    shift = noise / math.sqrt(2.0) * torch.ones(2)
    a = torch.randn(half, 2, generator=g) + shift
    b = torch.randn(n - half, 2, generator=g) - shift
    return torch.cat([a, b]), torch.cat([torch.ones(half), torch.zeros(n - half)])


CLASSIFICATION_SETS: dict[
    str, Callable[[int, float, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
] = {
    "two_gaussians": _two_gaussians,
    "circle": _circle,
    "xor": _xor,
    "spiral": _spiral,
    "blobs": _blobs,
}


def classification_2d(
    shape: str, n: int = 200, noise: float = 0.1, val_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """A 2-D two-class set of the TensorFlow Playground, shuffled and split."""
    if shape not in CLASSIFICATION_SETS:
        raise DataError(
            "data.shape", f"unknown shape {shape!r}; choose one of {sorted(CLASSIFICATION_SETS)}"
        )
    g = torch.Generator().manual_seed(seed)
    x, y = CLASSIFICATION_SETS[shape](n, noise, g)
    perm = torch.randperm(n, generator=g)
    x, y = x[perm], y[perm]
    n_val = int(round(n * val_fraction))
    if n_val >= n:
        raise DataError(
            "data.val_fraction", f"{val_fraction} leaves no training samples out of {n}"
        )
    train = Split(x[n_val:], y[n_val:])
    val = Split(x[:n_val], y[:n_val]) if n_val else None
    return Dataset(train=train, val=val, test=None, task="classification", n_classes=2)


def read_csv(path: Path, x_columns: list[str], y_column: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read numeric columns from a CSV file with a header row: a regular file of at
    most ``MAX_CSV_BYTES`` (a preset must not make us read a device, a FIFO or a huge
    file), its values finite numbers, its size within the memory budget. Errors name
    the file, the row and the column, and never quote the file's contents.

    A well-formed table is parsed by numpy's C reader (``numpy.loadtxt``: 1e6 rows in a
    second or two); anything it refuses is read again row by row, which finds the row
    and column at fault."""
    global _last_csv
    from playground.files import FileError, open_regular
    from playground.training.budget import BudgetError

    where = path.name
    try:
        with open_regular(path, MAX_CSV_BYTES, "CSV file") as raw:
            st = os.fstat(raw.fileno())
            key = (str(path), st.st_ino, st.st_mtime_ns, st.st_size, tuple(x_columns), y_column)
            if _last_csv is not None and _last_csv[0] == key:  # loading a preset, then its
                return _last_csv[1].clone(), _last_csv[2].clone()  # session: read once
            content = raw.read(MAX_CSV_BYTES + 1)
            fast = _read_csv_fast(content, x_columns, y_column, _reopenable(raw.fileno()))
        if fast is None:
            fast = _read_csv_rows(content.decode("utf-8"), where, x_columns, y_column)
        xs, ys = fast
    except FileError as exc:
        raise DataError("data.csv", f"{where} {exc.reason}") from exc
    except BudgetError as exc:
        raise DataError(exc.field, exc.reason) from exc
    except OSError as exc:
        raise DataError("data.csv", f"cannot read {where}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError("data.csv", f"{where} is not UTF-8 text") from exc
    except csv.Error as exc:  # its message names the problem, not the text
        raise DataError("data.csv", f"{where}: not a CSV table ({exc})") from exc
    if not len(ys):
        raise DataError("data.csv", f"{where} has a header but no rows")
    _last_csv = (key, xs, ys)
    return xs.clone(), ys.clone()


# the last table read, by file identity (path, inode, mtime, size) and columns
_last_csv: tuple[tuple[Any, ...], torch.Tensor, torch.Tensor] | None = None


def _reopenable(fd: int) -> str | None:
    """A name that opens the very file behind ``fd`` again, where the system has one
    (Linux's /proc/self/fd: the same inode, whatever its path names by now)."""
    name = f"/proc/self/fd/{fd}"
    return name if os.path.exists(name) else None


def _read_csv_fast(
    content: bytes, x_columns: list[str], y_column: str, reopen: str | None = None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The table through ``numpy.loadtxt``; None when it is not plainly well-formed (the
    row-by-row reader then says what is wrong).

    ``content`` is the file's bytes, checked here (header, row count for the memory
    budget). numpy reads a file it opens by name in large blocks, a tenth faster than
    the lines of an in-memory buffer, so the values are parsed from ``reopen`` (the
    same open file, by name) when there is one; a table longer than ``content`` (the
    file grew meanwhile) is refused and read from ``content``."""
    import warnings

    from playground.training.budget import check_data

    end = content.find(b"\n")
    head = content if end < 0 else content[:end]
    try:
        first = head.decode("utf-8").removesuffix("\r")
    except UnicodeDecodeError:
        return None
    if '"' in first:  # a quoted header may hold anything: the csv module reads it
        return None
    header = next(csv.reader([first]), [])
    if any(c not in header for c in [*x_columns, y_column]):
        return None
    cols = [header.index(c) for c in [*x_columns, y_column]]
    rows = 0 if end < 0 else content.count(b"\n", end + 1) + 1
    check_data("data.csv", rows, len(x_columns))  # before allocating
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": said below
            # numpy parses each value as a double and rounds it to float32, as the rows
            # reader does (float(text) into a float32 array)
            table = np.loadtxt(
                reopen or io.BytesIO(content),  # BytesIO shares the bytes: no copy
                skiprows=1,
                delimiter=",",
                usecols=cols,
                dtype=np.float32,
                ndmin=2,
                comments=None,
                quotechar='"',
                encoding="utf-8",
            )
    except ValueError:  # UnicodeDecodeError included
        return None
    except OSError:  # the name did not open: parse the bytes read
        return None if reopen is None else _read_csv_fast(content, x_columns, y_column)
    if table.shape[0] > rows:  # not the table that was read and counted
        return _read_csv_fast(content, x_columns, y_column) if reopen else None
    if table.shape[0] == 0 or not np.isfinite(table).all():
        return None
    values = torch.from_numpy(table)
    return values[:, :-1].contiguous(), values[:, -1].contiguous()


def _read_csv_rows(
    text: str, where: str, x_columns: list[str], y_column: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The table row by row with the csv module: slower, and it names the row and the
    column of the first value that is wrong."""
    from playground.training.budget import check_data

    xs, ys = array("f"), array("f")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None) or []
    missing = [c for c in [*x_columns, y_column] if c not in header]
    if missing:
        raise DataError("data.csv", f"{where} has no column(s) {_names(missing)} in its header row")
    cols = [header.index(c) for c in x_columns]
    target = header.index(y_column)
    for row_no, row in enumerate(reader, 2):
        if row_no % 4096 == 0:
            check_data("data.csv", row_no, len(cols))
        if not row:
            continue
        if len(row) <= max(*cols, target):
            raise DataError("data.csv", f"{where} row {row_no}: fewer columns than the header")
        try:
            values = [float(row[i]) for i in cols]
            y = float(row[target])
        except ValueError:
            named = zip([*x_columns, y_column], [*cols, target], strict=True)
            bad = next(c for c, i in named if not _is_number(row[i]))
            raise DataError(
                "data.csv",
                f"{where} row {row_no}, column {shown(bad, 40)}: a non-numeric value",
            ) from None
        if not all(math.isfinite(v) for v in values) or not math.isfinite(y):
            raise DataError("data.csv", f"{where} row {row_no}: NaN or infinity")
        xs.extend(values)
        ys.append(y)
    if not ys:
        return torch.zeros(0, len(cols)), torch.zeros(0)
    x = torch.frombuffer(xs, dtype=torch.float32).clone().reshape(len(ys), len(x_columns))
    return x, torch.frombuffer(ys, dtype=torch.float32).clone()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _names(columns: list[str]) -> str:
    return ", ".join(shown(c, 40) for c in columns)


def inline_split(x: Any, y: Any, field: str) -> Split:
    """Validate inline arrays from a preset: rectangular, non-empty, finite, same length."""
    try:
        xt = torch.tensor(x, dtype=torch.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{field}.x", f"not a rectangular array of numbers ({exc})") from exc
    try:
        yt = torch.tensor(y, dtype=torch.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{field}.y", f"not a list of numbers ({exc})") from exc
    if xt.numel() == 0:
        raise DataError(f"{field}.x", "is empty")
    if xt.dim() not in (1, 2):
        raise DataError(
            f"{field}.x", f"must be a list of numbers or of rows, got {xt.dim()} levels"
        )
    if yt.dim() != 1:
        raise DataError(f"{field}.y", "must be a flat list of numbers")
    xt = _as_2d(xt)
    if xt.shape[0] != yt.shape[0]:
        raise DataError(f"{field}.y", f"has {yt.shape[0]} values but x has {xt.shape[0]} rows")
    for name, t in (("x", xt), ("y", yt)):
        if not torch.isfinite(t).all():
            raise DataError(f"{field}.{name}", "contains NaN or infinity")
    return Split(xt, yt)


def infer_task(y: torch.Tensor, declared: str | None) -> tuple[str, int]:
    """The task and its number of classes: "regression" unless ``declared``
    "classification", whose targets must be labels 0 .. MAX_CLASSES - 1."""
    from playground.training.budget import MAX_CLASSES

    if declared is not None and declared not in TASKS:
        raise DataError("data.task", f"{shown(declared)} is not one of {', '.join(TASKS)}")
    if declared != "classification":
        return "regression", 0
    values = torch.unique(y)
    is_labels = bool(((values == values.round()) & (values >= 0)).all())
    if not is_labels:
        raise DataError("data.y", "classification targets must be class labels 0, 1, ...")
    top = int(values.max().item())
    if top >= MAX_CLASSES:
        raise DataError("data.y", f"class label {top} is too large (at most {MAX_CLASSES - 1})")
    return "classification", max(2, top + 1)


def split_fraction(split: Split, val_fraction: float, seed: int) -> tuple[Split, Split | None]:
    """Carve a seeded validation split off ``split``."""
    n = len(split)
    n_val = int(round(n * val_fraction))
    if n_val <= 0:
        return split, None
    if n_val >= n:
        raise DataError(
            "data.val_fraction", f"{val_fraction} leaves no training samples out of {n}"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    return Split(split.x[train_idx], split.y[train_idx]), Split(split.x[val_idx], split.y[val_idx])


def as_mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DataError(field, f"must be a table, got {type(value).__name__}")
    return value


class EpochOrder:
    """The order of the training samples in each epoch, as ``DataLoader(shuffle=True,
    generator=torch.Generator().manual_seed(seed))`` walks them - taken from a real
    DataLoader, so it is PyTorch's own order whatever its version does with the
    generator. ``perm(e)`` is epoch ``e``'s permutation (drawn in order once and kept:
    the generator's state before each epoch, and the last few permutations)."""

    KEEP = 4  # permutations kept at once

    def __init__(self, n: int, seed: int) -> None:
        from torch.utils.data import DataLoader, TensorDataset

        self._generator = torch.Generator().manual_seed(seed)
        self._loader = DataLoader(
            TensorDataset(torch.arange(n)), batch_size=n, shuffle=True, generator=self._generator
        )
        self._states: list[torch.Tensor] = []  # the generator before epoch e
        self._perms: dict[int, torch.Tensor] = {}

    def perm(self, epoch: int) -> torch.Tensor:
        if epoch in self._perms:
            return self._perms[epoch]
        if epoch < len(self._states):  # drawn before and dropped: draw it again
            live = self._generator.get_state()
            self._generator.set_state(self._states[epoch])
            perm = self._draw()
            self._generator.set_state(live)
        else:
            while len(self._states) <= epoch:
                self._states.append(self._generator.get_state())
                perm = self._draw()
        self._perms[epoch] = perm
        while len(self._perms) > self.KEEP:  # the oldest kept goes first
            self._perms.pop(next(iter(self._perms)))
        return perm

    def _draw(self) -> torch.Tensor:
        # one batch of the whole set: iterating to the end, as a training loop does,
        # lets the sampler draw everything it draws per epoch
        ((indices,),) = list(self._loader)
        return indices

"""The planes of the loss landscape: two directions through parameter space and the
point they start from - two parameter entries, two random filter-normalised directions,
or the path's first two principal directions (``landscape_view`` says what each shows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from playground.training.flat_params import entries_of, flat_values
from playground.training.landscape_view import LandscapeRequest
from playground.training.models import Model
from playground.training.param_path import path_of

if TYPE_CHECKING:
    from playground.training.session import Session


@dataclass(frozen=True)
class Plane:
    """origin + u d1 + v d2 in flat parameter space; (u, v) are the axes' coordinates."""

    mode: str
    x_label: str
    y_label: str
    origin: np.ndarray  # (P,) float64
    d1: np.ndarray
    d2: np.ndarray
    whole: bool  # the model has just these two parameters
    note: str = ""

    def project(self, points: np.ndarray) -> np.ndarray:
        """(n, P) parameter vectors -> (n, 2) coordinates on the plane (least squares:
        exact for points on it)."""
        basis = np.column_stack([self.d1, self.d2])
        pinv = np.linalg.pinv(basis)  # (2, P)
        return (np.asarray(points, dtype=np.float64) - self.origin) @ pinv.T

    def at(self, u: float, v: float) -> np.ndarray:
        return self.origin + u * self.d1 + v * self.d2


def default_axes(model: Model) -> tuple[int, int]:
    """The first number of the first parameter and of the last one (w and b, weight and
    bias, an MLP's first weight and its output bias)."""
    sizes = [p.numel() for p in model.params.values()]
    if sum(sizes) < 2:
        raise ValueError("the loss landscape needs at least two parameter entries")
    return 0, sum(sizes[:-1]) if len(sizes) > 1 else 1


def make_plane(session: Session, request: LandscapeRequest) -> Plane:
    """The plane ``request`` asks for, through the session's current parameters."""
    model = session.model
    entries = entries_of(model)
    current = flat_values(model).double().cpu().numpy()
    p = len(current)
    if request.mode == "params":
        i, j = default_axes(model)
        i = _entry(entries, request.x, i, "x")
        j = _entry(entries, request.y, j, "y")
        if i == j:
            raise ValueError(f"the two axes are the same parameter entry {entries[i]!r}")
        d1, d2 = np.zeros(p), np.zeros(p)
        d1[i] = d2[j] = 1.0
        origin = current.copy()
        origin[[i, j]] = 0.0
        whole = p == 2
        note = "" if whole else "a slice through the current point; the path is projected onto it"
        return Plane("params", entries[i], entries[j], origin, d1, d2, whole, note)
    if request.mode == "pca":
        _, _, values = path_of(session.build).points()
        plane = _pca_plane(values.astype(np.float64), current)
        if plane is not None:
            return plane
        note = "the path is too short for principal directions: random ones meanwhile; "
    else:
        note = ""
    d1, d2 = _random_directions(session, request.seed)
    note += "a slice through the current point along two random filter-normalised directions"
    return Plane("random", "d1", "d2", current, d1, d2, False, note)


def _entry(entries: tuple[str, ...], name: str, default: int, axis: str) -> int:
    if not name:
        return default
    if name not in entries:
        shown = ", ".join(entries[:8]) + (" ..." if len(entries) > 8 else "")
        raise ValueError(f"{axis}: no parameter entry {name!r}; there are {shown}")
    return entries.index(name)


def _random_directions(session: Session, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian directions, filter-normalised (Li et al. 2018): each row of a weight
    matrix, and each vector as a whole, scaled to the norm of the parameter's own."""
    gen = torch.Generator().manual_seed(int(session.cfg.seed) * 7919 + int(seed))
    out = []
    for _ in range(2):
        parts = []
        for p in session.model.params.values():
            value = p.detach().double().cpu()
            d = torch.randn(value.shape, generator=gen, dtype=torch.float64)
            rows_d = d.reshape(d.shape[0], -1) if d.dim() >= 2 else d.reshape(1, -1)
            rows_p = value.reshape(rows_d.shape)
            norm_p = rows_p.norm(dim=1, keepdim=True)
            norm_d = rows_d.norm(dim=1, keepdim=True).clamp_min(1e-12)
            scale = torch.where(norm_p > 0, norm_p / norm_d, 1.0 / norm_d)
            parts.append((rows_d * scale).reshape(-1))
        out.append(torch.cat(parts).numpy())
    d1, d2 = out
    # a small model's filters are single numbers: their directions differ only in sign
    # and can coincide; then d2 keeps its length but turns at right angles to d1
    cos = float(d1 @ d2) / max(float(np.linalg.norm(d1) * np.linalg.norm(d2)), 1e-300)
    if abs(cos) > 0.9:
        ortho = d2 - (float(d2 @ d1) / float(d1 @ d1)) * d1
        if np.linalg.norm(ortho) < 1e-12 * np.linalg.norm(d2):  # exactly parallel
            ortho = np.roll(d1, 1) * np.where(np.arange(len(d1)) % 2, -1.0, 1.0)
            ortho -= (float(ortho @ d1) / float(d1 @ d1)) * d1
        d2 = ortho * (np.linalg.norm(d2) / max(np.linalg.norm(ortho), 1e-300))
    return d1, d2


def _pca_plane(values: np.ndarray, current: np.ndarray) -> Plane | None:
    finite = values[np.isfinite(values).all(axis=1)]
    if len(finite) < 3:
        return None
    centred = finite - finite.mean(axis=0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    if len(sv) < 2 or not sv[1] > 1e-12 * max(sv[0], 1e-300):
        return None
    share = sv**2 / float(np.sum(sv**2))
    d1, d2 = vt[0], vt[1]
    # the sign of each direction: the way the path went along it
    for d in (d1, d2):
        if float((finite[-1] - finite[0]) @ d) < 0:
            d *= -1
    return Plane(
        "pca",
        f"pc1 ({share[0]:.0%})",
        f"pc2 ({share[1]:.0%})",
        current,
        d1,
        d2,
        False,
        "a slice through the current point along the path's first two principal directions",
    )

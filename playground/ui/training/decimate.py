"""Min/max-per-column decimation of long series before they reach plotext.

plotext is linear in the points it draws and a loss history can hold millions of them,
while a terminal plot is at most a few hundred columns wide. Keeping, per column, the
smallest and the largest value draws the same picture (every spike survives) from at most
``2 * columns + 2`` points. All of it is vectorised numpy: a million points take a few
milliseconds.

Non-finite values (a diverged loss) are kept out of the min/max, because one ``inf``
would flatten the whole curve; ``nonfinite_x`` reports where they were so the plot can
mark them instead of letting them vanish.
"""

from __future__ import annotations

import numpy as np

__all__ = ["decimate_minmax", "nonfinite_x", "positive_only"]


def _first_in_segment(hits: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """For sorted hit indices, the first hit at or after each segment start.

    Every segment is known to hold at least one hit (its own min or max), so the first hit
    at or after the start lies inside the segment.
    """
    return hits[np.searchsorted(hits, starts)]


def _binned_extremes(x: np.ndarray, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the min and of the max of ``y`` in each non-empty equal-width x-bin."""
    n = len(y)
    x0, x1 = float(x[0]), float(x[-1])
    if x1 > x0:
        bounds = x0 + (x1 - x0) * (np.arange(columns) / columns)
        if np.issubdtype(x.dtype, np.integer):
            # same dtype as x, or searchsorted would cast (copy) all of x to float;
            # for integers, x >= b exactly when x >= ceil(b)
            bounds = np.ceil(bounds).astype(x.dtype)
        edges = np.searchsorted(x, bounds, side="left")
    else:  # all x equal: split by position so the series still shrinks
        edges = (np.arange(columns) * n) // columns
    starts = edges[np.r_[True, edges[1:] != edges[:-1]]]  # drop empty bins
    starts = starts[starts < n]
    counts = np.diff(np.r_[starts, n])
    lo = np.minimum.reduceat(y, starts)
    hi = np.maximum.reduceat(y, starts)
    # reduceat gives values; the positions come from where y equals its bin's extreme.
    i_lo = _first_in_segment(np.flatnonzero(y == np.repeat(lo, counts)), starts)
    i_hi = _first_in_segment(np.flatnonzero(y == np.repeat(hi, counts)), starts)
    return i_lo, i_hi


def _index_extremes(y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Same as ``_binned_extremes`` for x = 0, 1, 2 ...: bins of ``k`` points (the last
    one takes the remainder), found by a reshape instead of a search and a repeat."""
    n = len(y)
    k = n // columns
    tail = k * (columns - 1)
    body = y[:tail].reshape(columns - 1, k)
    offsets = np.arange(columns - 1) * k
    i_lo = np.r_[body.argmin(axis=1) + offsets, tail + int(y[tail:].argmin())]
    i_hi = np.r_[body.argmax(axis=1) + offsets, tail + int(y[tail:].argmax())]
    return i_lo, i_hi


def decimate_minmax(
    x: np.ndarray | None, y: np.ndarray, columns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce ``(x, y)`` to the min and max ``y`` of each of ``columns`` equal x-bins.

    ``x`` must be non-decreasing (a history index, a time); None means 0, 1, 2 ... (the
    fast path for a whole history: no index array of a million entries to build). Points
    whose ``y`` is not finite are dropped first (see ``nonfinite_x`` to mark them). A
    series of at most ``2 * columns`` finite points comes back unchanged; a longer one
    keeps, per non-empty bin, the point holding the minimum and the one holding the
    maximum, in x order, plus the first and last points, so the curve starts and ends
    where the data does. Returns new or read-only arrays (x as int64 when it was None).
    """
    y = np.asarray(y)
    if y.ndim != 1 or (x is not None and np.shape(x) != y.shape):
        raise ValueError(
            f"x and y must be 1-D and the same length, got {np.shape(x)} and {y.shape}"
        )
    finite = np.isfinite(y)
    if not finite.all():
        x = np.flatnonzero(finite) if x is None else np.asarray(x)[finite]
        y = y[finite]
    n = len(y)
    columns = max(int(columns), 1)
    if n <= 2 * columns:
        return (np.arange(n) if x is None else np.asarray(x)), y

    if x is None:
        i_lo, i_hi = _index_extremes(y, columns)
    else:
        # Equal widths in x, not equal counts, so gaps in x (the evaluations of another
        # kind between train steps, say) keep their place on the axis.
        x = np.asarray(x)
        i_lo, i_hi = _binned_extremes(x, y, columns)

    idx = np.empty(2 * len(i_lo) + 2, dtype=np.int64)
    idx[0] = 0
    idx[1:-1:2] = np.minimum(i_lo, i_hi)  # min and max in x order within each bin
    idx[2:-1:2] = np.maximum(i_lo, i_hi)
    idx[-1] = n - 1
    idx = idx[np.r_[True, idx[1:] != idx[:-1]]]  # a flat bin gives the same point twice
    return (idx if x is None else x[idx]), y[idx]


def nonfinite_x(x: np.ndarray | None, y: np.ndarray, columns: int | None = None) -> np.ndarray:
    """The x positions (indices when ``x`` is None) where ``y`` is NaN or +-inf.

    A run that diverges can leave many ``inf``; the plot only needs to know where they
    start and roughly where they are, so beyond ``columns`` of them they are thinned
    evenly (the first and last always kept).
    """
    bad = np.flatnonzero(~np.isfinite(np.asarray(y)))
    if columns is not None and len(bad) > max(int(columns), 2):
        pick = np.linspace(0, len(bad) - 1, max(int(columns), 2)).round().astype(np.int64)
        bad = bad[np.unique(pick)]
    return bad if x is None else np.asarray(x)[bad]


def positive_only(x: np.ndarray | None, y: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """``x, y`` without the points a log axis cannot show (``y <= 0``, NaN, inf).

    ``x`` None means 0, 1, 2 ...; it stays None when nothing is dropped.
    """
    y = np.asarray(y)
    keep = np.isfinite(y) & (y > 0)
    if keep.all():
        return x, y
    return (np.flatnonzero(keep) if x is None else np.asarray(x)[keep]), y[keep]

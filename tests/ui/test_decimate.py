"""Min/max decimation: what survives when a long series is squeezed into a few columns."""

from __future__ import annotations

import numpy as np
import pytest

from playground.ui.training.decimate import decimate_minmax, nonfinite_x, positive_only


def _bins(x: np.ndarray, columns: int) -> np.ndarray:
    """The equal-width bin of each x, as decimate_minmax cuts them."""
    x0, x1 = float(x[0]), float(x[-1])
    return np.minimum(((x - x0) / (x1 - x0) * columns).astype(int), columns - 1)


def test_short_series_comes_back_unchanged() -> None:
    x = np.arange(40)
    y = np.sin(x).astype(np.float32)
    dx, dy = decimate_minmax(x, y, columns=20)
    np.testing.assert_array_equal(dx, x)
    np.testing.assert_array_equal(dy, y)


@pytest.mark.parametrize("use_index", [True, False])
def test_keeps_min_and_max_of_every_bin_and_the_ends(use_index: bool) -> None:
    rng = np.random.default_rng(0)
    n, columns = 10_007, 50  # not a multiple of columns: the last bin is uneven
    x = np.arange(n)
    y = rng.normal(size=n).astype(np.float32)
    dx, dy = decimate_minmax(None if use_index else x, y, columns)

    assert len(dx) <= 2 * columns + 2
    assert np.all(np.diff(dx) > 0), "points stay in x order, without duplicates"
    np.testing.assert_array_equal(dy, y[dx])  # every kept point is a real sample
    assert dx[0] == 0 and dx[-1] == n - 1
    # Equal-width bins over x = 0..n-1; allow the index path's bins to be cut at
    # multiples of n // columns instead: check each kept extreme against its own bin.
    for b in range(columns):
        lo, hi = b * (n // columns), (b + 1) * (n // columns) if b < columns - 1 else n
        if not use_index:
            members = np.flatnonzero(_bins(x.astype(float), columns) == b)
            lo, hi = members[0], members[-1] + 1
        assert y[lo:hi].min() in dy[(dx >= lo) & (dx < hi)]
        assert y[lo:hi].max() in dy[(dx >= lo) & (dx < hi)]


def test_a_single_spike_survives() -> None:
    y = np.ones(1_000_000, dtype=np.float32)
    y[123_456] = 50.0
    y[654_321] = -3.0
    dx, dy = decimate_minmax(None, y, columns=80)
    assert 123_456 in dx and dy[list(dx).index(123_456)] == 50.0
    assert 654_321 in dx and dy[list(dx).index(654_321)] == -3.0
    assert len(dx) <= 2 * 80 + 2


def test_equal_width_bins_follow_gaps_in_x() -> None:
    # two clusters of points far apart in x: bins are cut by x, not by count
    x = np.r_[np.arange(0, 5000), np.arange(95_000, 100_000)]
    y = np.r_[np.zeros(5000), np.ones(5000)].astype(np.float32)
    y[4999] = 9.0  # the max of the first cluster's last bin
    dx, dy = decimate_minmax(x, y, columns=100)
    assert 4999 in dx
    assert dx[0] == 0 and dx[-1] == 99_999
    assert len(dx) <= 2 * 100 + 2


def test_nan_and_inf_stay_out_of_min_max_but_are_reported() -> None:
    y = np.linspace(1.0, 0.1, 5000).astype(np.float32)
    y[100] = np.nan
    y[4000:] = np.inf  # a run that diverged
    dx, dy = decimate_minmax(None, y, columns=20)
    assert np.isfinite(dy).all()
    assert dy.max() == y[0] and dy.min() == y[3999]
    assert 100 not in dx and dx.max() == 3999

    bad = nonfinite_x(None, y, columns=20)
    assert bad[0] == 100 and bad[-1] == 4999
    assert len(bad) <= 20
    # short series: nothing to decimate, but the non-finite points still go
    sx, sy = decimate_minmax(np.arange(4), np.array([1.0, np.nan, 2.0, np.inf]), 20)
    np.testing.assert_array_equal(sx, [0, 2])
    np.testing.assert_array_equal(sy, [1.0, 2.0])


def test_positive_only_drops_what_a_log_axis_cannot_show() -> None:
    y = np.array([1.0, 0.0, -2.0, 0.5, np.nan, 3.0])
    x, kept = positive_only(None, y)
    np.testing.assert_array_equal(x, [0, 3, 5])
    np.testing.assert_array_equal(kept, [1.0, 0.5, 3.0])
    x2, _ = positive_only(np.arange(6) * 10, y)
    np.testing.assert_array_equal(x2, [0, 30, 50])
    assert positive_only(None, np.array([1.0, 2.0]))[0] is None  # nothing dropped


def test_mismatched_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match="same length"):
        decimate_minmax(np.arange(3), np.arange(4.0), 10)

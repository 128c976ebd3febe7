"""The least-squares line of a large table (normal equations of the centred data) is
numpy's lstsq on the whole design matrix."""

from __future__ import annotations

import numpy as np
import pytest

from playground.training import analytic


@pytest.mark.parametrize("features", [1, 3])
def test_a_large_tables_least_squares_line_is_lstsqs(features: int) -> None:
    rng = np.random.default_rng(3)
    n = analytic.LSTSQ_ROWS * 2
    # far from the origin and of mixed scales: what centring has to cope with
    x = (rng.normal(size=(n, features)) * [10.0, 0.01, 1.0][:features] + 500.0).astype(np.float32)
    y = (x @ np.arange(1, features + 1) - 7.0 + rng.normal(0, 0.5, n)).astype(np.float32)
    w, b = analytic.least_squares(x, y)
    design = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    theta, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    np.testing.assert_allclose(w, theta[:-1], rtol=1e-8, atol=1e-8)
    assert b == pytest.approx(theta[-1], rel=1e-8, abs=1e-7)

"""Closed-form answers to compare autograd and gradient descent against.

For affine models (out = x W + b) the gradient of MSE / SSE / sigmoid+BCE / softmax+CE is
X^T g and sum(g) with g = dLoss/dout, derived by hand below; least squares has a closed-form
optimum. Everything is computed in float64 numpy, independently of torch's autograd.
"""

from __future__ import annotations

import numpy as np


def dloss_dout(loss: str, out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dLoss/dout for a batch, by hand."""
    n = out.shape[0]
    if loss == "mse":
        return 2.0 * (out - y) / n
    if loss == "sse":
        return 2.0 * (out - y)
    if loss == "bce_sum":
        return 1.0 / (1.0 + np.exp(-out)) - y
    if loss == "bce":
        return (1.0 / (1.0 + np.exp(-out)) - y) / n
    if loss == "ce":
        z = out - out.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        onehot = np.zeros_like(p)
        onehot[np.arange(n), y.astype(int)] = 1.0
        return (p - onehot) / n
    raise ValueError(f"no analytic gradient for loss {loss!r}")


def affine_gradient(
    kind: str, loss: str, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradient of ``loss`` w.r.t. each parameter of an affine model, shaped like it.

    ``kind`` is the model kind: "scalar" (w: (d,), b: (1,)), "linear"/"logistic"
    (weight: (1, d), bias: (1,)) or "softmax" (W: (d, C), b: (1, C)).
    """
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    if kind == "scalar":
        w, b = params["w"].astype(np.float64), params["b"].astype(np.float64)
        g = dloss_dout(loss, x @ w + b, y)
        return {"w": x.T @ g, "b": np.array([g.sum()])}
    if kind in ("linear", "logistic"):
        w, b = params["weight"].astype(np.float64), params["bias"].astype(np.float64)
        out = x @ w.T + b  # (N, out)
        if w.shape[0] == 1:
            g = dloss_dout(loss, out[:, 0], y)[:, None]
        else:
            g = dloss_dout(loss, out, y)
        return {"weight": g.T @ x, "bias": g.sum(axis=0)}
    if kind == "softmax":
        w, b = params["W"].astype(np.float64), params["b"].astype(np.float64)
        g = dloss_dout(loss, x @ w + b, y)
        return {"W": x.T @ g, "b": g.sum(axis=0, keepdims=True)}
    raise ValueError(f"no analytic gradient for model {kind!r}")


LSTSQ_ROWS = 65_536
"""Up to this many rows the least-squares line is numpy's lstsq on the whole design
matrix; above it, the normal equations of the centred data (a d x d system)."""


def least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The (w, b) minimising sum (x w + b - y)^2.

    By numpy's lstsq on [x, 1] for data of up to ``LSTSQ_ROWS`` rows. A larger table
    (a CSV of 1e6 rows) would spend longer in that SVD than in building its session, so
    the data are centred in float64 and the d x d normal equations solved instead:
    the same optimum (centring keeps them well conditioned for a few features), in a
    few passes over the data."""
    if x.shape[0] <= LSTSQ_ROWS:
        design = np.hstack([x.astype(np.float64), np.ones((x.shape[0], 1))])
        theta, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
        return theta[:-1], float(theta[-1])
    mx, my = x.mean(axis=0, dtype=np.float64), float(y.mean(dtype=np.float64))
    xc, yc = x.astype(np.float64), y.astype(np.float64)  # one copy each, centred in place
    xc -= mx
    yc -= my
    w, *_ = np.linalg.lstsq(xc.T @ xc, xc.T @ yc, rcond=None)
    return w, my - float(mx @ w)


def as_model_params(kind: str, w: np.ndarray, b: float | np.ndarray) -> dict[str, np.ndarray]:
    """Shape a (w, b) pair like the parameters of a linear model of ``kind``."""
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if kind == "scalar":
        return {"w": w, "b": b}
    if kind in ("linear", "logistic"):
        return {"weight": w.reshape(1, -1), "bias": b}
    raise ValueError(kind)

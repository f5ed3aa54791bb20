"""Closed-form ridge regression with leave-one-out selection of the penalty."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RidgeFit", "fit_ridge_loo", "stack_weight"]

_QR_MIN_ROWS = 200  # rows beyond which a tall design is reduced by QR before its SVD


@dataclass(frozen=True)
class RidgeFit:
    """A fitted ridge model on standardised features (intercept unpenalised).

    ``loo_residuals`` are the exact leave-one-out residuals ``y - y_loo`` of the chosen penalty
    (None in fits stored before they were kept).
    """

    coef: np.ndarray
    intercept: float
    x_mean: np.ndarray
    x_scale: np.ndarray
    alpha: float
    loo_rmse: float
    loo_residuals: np.ndarray | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for rows of ``x``."""
        xs = (np.asarray(x, np.float64) - self.x_mean) / self.x_scale
        return np.asarray(xs @ self.coef + self.intercept, dtype=np.float64)


def fit_ridge_loo(
    x: np.ndarray, y: np.ndarray, alphas: Sequence[float] = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)
) -> RidgeFit:
    """Ridge on standardised columns; the penalty minimising the exact LOO error wins.

    Args:
        x: ``(n, d)`` features.
        y: ``(n,)`` targets.
        alphas: Candidate penalties.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError("`x` must be (n, d) with n >= 2 rows matching `y`.")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    xs = (x - mean) / scale
    ym = float(y.mean())
    yc = y - ym
    n = x.shape[0]
    u, s, vt = _thin_svd(xs)
    uty = u.T @ yc
    best: RidgeFit | None = None
    for alpha in alphas:
        d = s / (s**2 + alpha)
        coef = vt.T @ (d * uty)
        hat = (u**2) @ (s**2 / (s**2 + alpha)) + 1.0 / n
        resid = yc - xs @ coef
        loo = resid / np.maximum(1.0 - hat, 1e-6)
        rmse = float(np.sqrt(np.mean(loo**2)))
        if best is None or rmse < best.loo_rmse:
            best = RidgeFit(coef, ym, mean, scale, float(alpha), rmse, loo)
    assert best is not None  # alphas is non-empty by construction of the default
    return best


def _thin_svd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD; a tall matrix is first reduced by QR (``x = QR``, SVD of the small ``R``).

    LAPACK's divide-and-conquer SVD of a tall, ill-conditioned matrix (e.g. 3,000 x 8
    critical-path features) took 50 ms where QR + SVD takes 1 ms. Few-shot fits (up to
    :data:`_QR_MIN_ROWS` rows) keep the direct SVD, so their results are bit-for-bit unchanged.
    """
    if x.shape[0] <= max(_QR_MIN_ROWS, 2 * x.shape[1]):
        u, s, vt = np.linalg.svd(x, full_matrices=False)
        return u, s, vt
    q, r = np.linalg.qr(x)
    ur, s, vt = np.linalg.svd(r)
    return q @ ur, s, vt


def stack_weight(
    a: np.ndarray, b: np.ndarray, y: np.ndarray, grid: int = 21
) -> tuple[float, float]:
    """Convex weight ``w`` of ``w * a + (1 - w) * b`` minimising the squared error to ``y``.

    Stacked generalisation (Wolpert, 1992; Breiman, 1996) of two models from their out-of-sample
    (leave-one-out) predictions ``a`` and ``b``; the weight is searched on a grid of ``grid``
    points of [0, 1], ties favouring ``a``.

    Returns:
        ``(w, rmse)``, the chosen weight and the stacked out-of-sample RMSE.
    """
    a, b, y = (np.asarray(v, np.float64) for v in (a, b, y))
    if not a.shape == b.shape == y.shape or a.ndim != 1:
        raise ValueError("`a`, `b` and `y` must be 1-d arrays of one length.")
    if grid < 2:
        raise ValueError("`grid` must be greater than or equal to 2.")
    weights = np.linspace(1.0, 0.0, grid)
    mse = [float(np.mean((w * a + (1.0 - w) * b - y) ** 2)) for w in weights]
    best = int(np.argmin(mse))
    return float(weights[best]), float(np.sqrt(mse[best]))

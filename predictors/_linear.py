"""Closed-form ridge regression with leave-one-out selection of the penalty."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RidgeFit", "fit_ridge_loo"]


@dataclass(frozen=True)
class RidgeFit:
    """A fitted ridge model on standardised features (intercept unpenalised)."""

    coef: np.ndarray
    intercept: float
    x_mean: np.ndarray
    x_scale: np.ndarray
    alpha: float
    loo_rmse: float

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
    u, s, vt = np.linalg.svd(xs, full_matrices=False)
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
            best = RidgeFit(coef, ym, mean, scale, float(alpha), rmse)
    assert best is not None  # alphas is non-empty by construction of the default
    return best

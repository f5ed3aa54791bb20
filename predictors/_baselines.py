"""Baseline latency predictors on the common contract.

* ``flops``: log-latency linear in log MACs and log params (the FLOPs proxy of the HELP paper's
  Table 2), fitted on the device's measurements.
* ``scratch``: a per-device ridge model trained from scratch on the K measurements.
* ``transfer``: stacked transfer: gradient boosting (Friedman, 2001) per source device on its
  training pool, then ridge on the target's measurements over those predictions plus the
  architecture encoding.

Features of the target device (MACs, the encoding) are computed under the workload it was
measured at (``adapt(..., workload=...)``); the source models read the encoding under the
meta-training workload.
"""

from __future__ import annotations

import numpy as np

from predictors._base import (
    DeviceTask,
    LatencyPredictor,
    check_int,
    check_seed,
    register_predictor,
)
from predictors._features import analytic_cost, encode
from predictors._linear import RidgeFit, fit_ridge_loo

__all__ = ["FlopsPredictor", "ScratchPredictor", "TransferPredictor"]


def _log_gauss(pred_log: np.ndarray, rmse: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std in ms of a log-normal prediction with log-space error ``rmse``."""
    mean = np.exp(pred_log)
    return mean, mean * np.sqrt(np.expm1(rmse**2))


class _RidgeOnFeatures(LatencyPredictor):
    """Shared adapt/predict: ridge of log-latency over ``_features(archs)``."""

    min_support = 2  # a ridge with its leave-one-out error

    def _features(self, archs: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _adapt(self, archs: list[str], latency_ms: np.ndarray, emb: np.ndarray | None) -> None:
        self.ridge_: RidgeFit = fit_ridge_loo(self._features(archs), np.log(latency_ms))

    def _predict(self, archs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return _log_gauss(self.ridge_.predict(self._features(archs)), self.ridge_.loo_rmse)


@register_predictor("flops")
class FlopsPredictor(_RidgeOnFeatures):
    """Latency regression on FLOPs (MACs) and parameter count; no meta-training."""

    def __init__(self) -> None:
        pass

    def _fit(self, tasks: list[DeviceTask], *, progress: bool) -> None:
        pass

    def _features(self, archs: list[str]) -> np.ndarray:
        cost = analytic_cost(self.space_, archs, self.workload_)
        return np.asarray(np.log(cost), dtype=np.float64)


@register_predictor("scratch")
class ScratchPredictor(_RidgeOnFeatures):
    """A ridge model on the architecture encoding, trained only on the device's K samples."""

    def __init__(self) -> None:
        pass

    def _fit(self, tasks: list[DeviceTask], *, progress: bool) -> None:
        pass

    def _features(self, archs: list[str]) -> np.ndarray:
        return encode(self.space_, archs, self.workload_).astype(np.float64)


@register_predictor("transfer")
class TransferPredictor(_RidgeOnFeatures):
    """Stacked transfer: per-source-device gradient boosting, ridge on the target.

    Args:
        max_iter: Boosting iterations per source device.
        seed: Seed of the boosting models.

    Attributes:
        source_devices_: The source devices, in the order of ``source_models_`` (the first
            features of the target's ridge).
    """

    def __init__(self, *, max_iter: int = 200, seed: int | None = 0) -> None:
        self.max_iter = max_iter
        self.seed = seed

    def _check_params(self) -> None:
        check_int("max_iter", self.max_iter, 1)
        check_seed(self.seed)

    def _fit(self, tasks: list[DeviceTask], *, progress: bool) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        from predictors._progress import progress_bar

        self.source_models_ = []
        self.source_devices_ = [t.device for t in tasks]
        with progress_bar(progress, "fitting source devices", len(tasks)) as advance:
            for t in tasks:
                model = HistGradientBoostingRegressor(
                    max_iter=self.max_iter, random_state=self.seed
                )
                model.fit(encode(self.space_, t.archs, self.fit_workload_), np.log(t.latency_ms))
                self.source_models_.append(model)
                advance()

    def _features(self, archs: list[str]) -> np.ndarray:
        x = encode(self.space_, archs, self.fit_workload_)
        src = np.stack([m.predict(x) for m in self.source_models_], axis=1)
        return np.concatenate([src, encode(self.space_, archs, self.workload_)], axis=1)

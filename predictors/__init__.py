"""Latency predictors: meta-learned HELP, baselines and the improved default predictor."""

from __future__ import annotations

from predictors._errors import NotEnoughDataError, NotFittedError, PredictorError

__all__ = ["NotEnoughDataError", "NotFittedError", "PredictorError"]

"""Exceptions of the :mod:`predictors` package."""

from __future__ import annotations

__all__ = ["NotEnoughDataError", "NotFittedError", "PredictorError"]


class PredictorError(Exception):
    """Root of every error raised by :mod:`predictors`."""


class NotFittedError(PredictorError):
    """``predict``/``adapt`` called before ``fit``."""


class NotEnoughDataError(PredictorError):
    """Too few devices or measurements to train, adapt or evaluate."""

"""Exceptions of the :mod:`predictors` package."""

from __future__ import annotations

__all__ = [
    "NoSourceDevicesError",
    "NotEnoughDataError",
    "NotFittedError",
    "NotTrainedError",
    "PredictorError",
    "TrainingBusy",
    "TrainingCancelled",
]


class PredictorError(Exception):
    """Root of every error raised by :mod:`predictors`."""


class NotFittedError(PredictorError):
    """``predict``/``adapt`` called before ``fit``."""


class NotEnoughDataError(PredictorError):
    """Too few devices or measurements to train, adapt or evaluate."""


class NoSourceDevicesError(NotEnoughDataError):
    """No device of the space has enough measurements to meta-train on: a property of the
    space's data, not of the target device (the API reports it at ``space``)."""


class NotTrainedError(PredictorError):
    """The predictor would have to be meta-trained first, and the caller asked for a stored
    one only (``train=False``: the REST service's anonymous requests)."""


class TrainingCancelled(PredictorError):
    """A long fit (meta-training, tracing) stopped because the caller's ``should_stop`` said
    so (:func:`predictors.stop_when`); nothing it would have stored is stored."""


class TrainingBusy(PredictorError):
    """Too many threads of this process already wait for a meta-training (a server answers
    503 and asks the client to retry)."""

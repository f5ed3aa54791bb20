"""Latency predictors: meta-learned HELP, baselines and the improved default predictor.

Every predictor follows one contract (:class:`LatencyPredictor`): ``fit`` meta-trains on source
devices, ``adapt`` returns a copy adapted to one device from a few measurements, ``predict``
returns mean and standard deviation in milliseconds. The service layer
(:func:`get_adapted_predictor`, :func:`predict_latency`) serves them over :mod:`hwdb`.
"""

from __future__ import annotations

from predictors._base import (
    FORMAT_VERSION,
    DeviceTask,
    LatencyPredictor,
    get_predictor,
    list_predictors,
    load_predictor,
    register_predictor,
)
from predictors._baselines import FlopsPredictor, ScratchPredictor, TransferPredictor
from predictors._data import (
    HELP_DEVICES,
    HELP_REFERENCE_INDICES,
    DeviceSplit,
    device_split,
    device_workload,
    latency_metric,
    make_tasks,
    reference_archs,
    sample_support,
)
from predictors._errors import (
    NoSourceDevicesError,
    NotEnoughDataError,
    NotFittedError,
    NotTrainedError,
    PredictorError,
    TrainingBusy,
    TrainingCancelled,
)
from predictors._evaluate import evaluate_adapted, latency_metrics, meta_train_for, source_devices
from predictors._help import HELPPredictor, MAMLPredictor
from predictors._helpplus import HELPPlusPredictor
from predictors._progress import stop_when
from predictors._service import (
    DEFAULT_PREDICTOR,
    MIN_ADAPT_MEASUREMENTS,
    AdaptedLatencyModel,
    LatencyPrediction,
    catalog_only,
    datasheet_model,
    device_datasheet,
    get_adapted_predictor,
    get_default_predictor,
    latency_model,
    predict_latency,
)

__all__ = [
    "DEFAULT_PREDICTOR",
    "FORMAT_VERSION",
    "HELP_DEVICES",
    "HELP_REFERENCE_INDICES",
    "MIN_ADAPT_MEASUREMENTS",
    "AdaptedLatencyModel",
    "DeviceSplit",
    "DeviceTask",
    "FlopsPredictor",
    "HELPPlusPredictor",
    "HELPPredictor",
    "LatencyPrediction",
    "LatencyPredictor",
    "MAMLPredictor",
    "NoSourceDevicesError",
    "NotEnoughDataError",
    "NotFittedError",
    "NotTrainedError",
    "PredictorError",
    "TrainingBusy",
    "TrainingCancelled",
    "ScratchPredictor",
    "TransferPredictor",
    "catalog_only",
    "datasheet_model",
    "device_datasheet",
    "device_split",
    "device_workload",
    "latency_metric",
    "evaluate_adapted",
    "get_adapted_predictor",
    "get_default_predictor",
    "get_predictor",
    "latency_metrics",
    "latency_model",
    "list_predictors",
    "load_predictor",
    "make_tasks",
    "meta_train_for",
    "predict_latency",
    "reference_archs",
    "register_predictor",
    "sample_support",
    "source_devices",
    "stop_when",
]

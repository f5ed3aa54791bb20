"""Latency for devices nobody has measured: datasheet roofline, zero-shot meta-prediction,
and active-learning onboarding.

* :func:`op_table` / :func:`roofline_latency_ms`: per-operator FLOPs and bytes traced from the
  real torch module, priced by a roofline with device-class constants (Williams et al., 2009).
* :func:`zero_shot_model`: the meta-learned predictor given roofline estimates of the 10
  reference archs as hardware embedding; labelled ``"zero-shot (datasheet)"``.
* :func:`evaluate_zero_shot`: ``nas predictor evaluate --shots 0``.
* :func:`onboard_device`: measure, adapt, propose by uncertainty until a target error.
"""

from __future__ import annotations

from predictors.zeroshot._classes import DEVICE_CLASSES, DeviceClass, device_model
from predictors.zeroshot._evaluate import (
    evaluate_zero_shot,
    simulated_device_models,
    simulated_tasks,
)
from predictors.zeroshot._onboard import OnboardResult, OnboardRound, onboard_device
from predictors.zeroshot._roofline import (
    KNOWN_RUNTIMES,
    RUNTIME_MODE_TEXT,
    RUNTIME_MODES,
    DeviceModel,
    estimate_latency_ms,
    is_known_runtime,
    op_table,
    op_tables,
    roofline_latency_ms,
    runtime_mode,
)
from predictors.zeroshot._trace import TRACE_MODES, OpRecord, OpTable, trace_module
from predictors.zeroshot._tracecache import (
    TraceStoreInfo,
    clear_trace_store,
    persistent_traces,
    trace_store_info,
)
from predictors.zeroshot._zeroshot import (
    DATASHEET_LOG_SIGMA,
    DATASHEET_SCALE,
    DATASHEET_SHAPE_LOG_SIGMA,
    ROOFLINE_SOURCE,
    ZERO_SHOT_SOURCE,
    RooflineLatencyModel,
    ZeroShotLatencyModel,
    resolve_catalog_device,
    scaled_log_sigma,
    zero_shot_model,
)

__all__ = [
    "KNOWN_RUNTIMES",
    "RUNTIME_MODE_TEXT",
    "RUNTIME_MODES",
    "TRACE_MODES",
    "DATASHEET_LOG_SIGMA",
    "DATASHEET_SCALE",
    "DATASHEET_SHAPE_LOG_SIGMA",
    "DEVICE_CLASSES",
    "ROOFLINE_SOURCE",
    "ZERO_SHOT_SOURCE",
    "DeviceClass",
    "DeviceModel",
    "OnboardResult",
    "OnboardRound",
    "OpRecord",
    "OpTable",
    "RooflineLatencyModel",
    "TraceStoreInfo",
    "ZeroShotLatencyModel",
    "clear_trace_store",
    "device_model",
    "estimate_latency_ms",
    "is_known_runtime",
    "evaluate_zero_shot",
    "onboard_device",
    "op_table",
    "op_tables",
    "persistent_traces",
    "resolve_catalog_device",
    "scaled_log_sigma",
    "roofline_latency_ms",
    "runtime_mode",
    "simulated_device_models",
    "simulated_tasks",
    "trace_module",
    "trace_store_info",
    "zero_shot_model",
]

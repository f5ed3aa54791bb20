"""Trustworthy latency measurement: interleaved timing protocol, robust statistics, runtimes.

``measure_architectures`` times architectures of a search space on this machine and commits
them to the hardware database group by group (resumable); ``retest`` measures twice and
reports the test-retest agreement. ``nas measure`` and the API call these functions.
"""

from __future__ import annotations

from nas.measure._config import LM_MEASURE_WORKLOAD, MeasureConfig, ResolvedConfig
from nas.measure._environment import cpu_model, environment
from nas.measure._runner import (
    DriftAnchor,
    MeasureReport,
    ProgressCallback,
    RetestResult,
    device_conflict,
    measure_architectures,
    measure_pass,
    recorded_cpu,
    retest,
)
from nas.measure._runtimes import LanguageModelSampler, OnnxSampler, TorchSampler, export_onnx
from nas.measure._select import read_archs_file, select_architectures
from nas.measure._stats import SampleStats, mape, reject_outliers, spearman, summarize
from nas.measure._timing import Sampler, TimingProtocol, round_robin_schedule, run_protocol

__all__ = [
    "LM_MEASURE_WORKLOAD",
    "DriftAnchor",
    "LanguageModelSampler",
    "MeasureConfig",
    "MeasureReport",
    "OnnxSampler",
    "ProgressCallback",
    "ResolvedConfig",
    "RetestResult",
    "SampleStats",
    "Sampler",
    "TimingProtocol",
    "TorchSampler",
    "cpu_model",
    "device_conflict",
    "environment",
    "export_onnx",
    "mape",
    "measure_architectures",
    "measure_pass",
    "read_archs_file",
    "recorded_cpu",
    "reject_outliers",
    "retest",
    "round_robin_schedule",
    "run_protocol",
    "select_architectures",
    "spearman",
    "summarize",
]

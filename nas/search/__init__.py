"""Hardware-aware NSGA-II architecture search (``nas search``) and model export (``nas export``).

Names are imported lazily, so that e.g. the zero-cost proxies load without optuna.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.search._confidence import CONTENDER_P, front_probability
    from nas.search._devices import (
        ZERO_SHOT_RESOLVERS,
        DeviceMatch,
        resolve_device,
        resolve_devices,
    )
    from nas.search._errors import DeviceResolutionError, SearchError, StudyMismatchError
    from nas.search._export import EXPORT_FORMATS, export_model, load_exported
    from nas.search._hypervolume import hypervolume, normalized_hypervolume
    from nas.search._latency import (
        MeasuredFirstModel,
        MeasuredLatencyModel,
        MeasuredPrediction,
        load_latency_models,
        measured_first,
    )
    from nas.search._local import LOCAL_SEARCH_DEFAULT, neighbour_params
    from nas.search._objectives import (
        PROXY_BUDGET,
        TABLE_BUDGET,
        EvaluationCancelled,
        ProxyAccuracy,
        ShortTrainAccuracy,
        TableAccuracy,
        UserFunctionAccuracy,
        default_budget,
        has_accuracy_table,
        is_language_model_space,
        make_accuracy_objective,
    )
    from nas.search._pareto import front_table, pareto_mask, to_measure, wrap_arch, write_outputs
    from nas.search._proxies import PROXIES, compute_proxies, make_batch, rank_ensemble
    from nas.search._runner import collect_study, run_search
    from nas.search._storage import BatchedJournalFileBackend, open_storage
    from nas.search._types import (
        AccuracyObjective,
        LatencyModel,
        SearchResult,
        SearchWarning,
        latency_upper_bound,
    )

_LAZY = {
    "ZERO_SHOT_RESOLVERS": "nas.search._devices",
    "DeviceMatch": "nas.search._devices",
    "resolve_device": "nas.search._devices",
    "resolve_devices": "nas.search._devices",
    "DeviceResolutionError": "nas.search._errors",
    "SearchError": "nas.search._errors",
    "StudyMismatchError": "nas.search._errors",
    "EXPORT_FORMATS": "nas.search._export",
    "export_model": "nas.search._export",
    "load_exported": "nas.search._export",
    "hypervolume": "nas.search._hypervolume",
    "normalized_hypervolume": "nas.search._hypervolume",
    "MeasuredFirstModel": "nas.search._latency",
    "MeasuredLatencyModel": "nas.search._latency",
    "MeasuredPrediction": "nas.search._latency",
    "load_latency_models": "nas.search._latency",
    "measured_first": "nas.search._latency",
    "LOCAL_SEARCH_DEFAULT": "nas.search._local",
    "neighbour_params": "nas.search._local",
    "PROXY_BUDGET": "nas.search._objectives",
    "TABLE_BUDGET": "nas.search._objectives",
    "EvaluationCancelled": "nas.search._objectives",
    "default_budget": "nas.search._objectives",
    "is_language_model_space": "nas.search._objectives",
    "ProxyAccuracy": "nas.search._objectives",
    "ShortTrainAccuracy": "nas.search._objectives",
    "TableAccuracy": "nas.search._objectives",
    "UserFunctionAccuracy": "nas.search._objectives",
    "has_accuracy_table": "nas.search._objectives",
    "make_accuracy_objective": "nas.search._objectives",
    "CONTENDER_P": "nas.search._confidence",
    "front_probability": "nas.search._confidence",
    "front_table": "nas.search._pareto",
    "to_measure": "nas.search._pareto",
    "wrap_arch": "nas.search._pareto",
    "pareto_mask": "nas.search._pareto",
    "write_outputs": "nas.search._pareto",
    "PROXIES": "nas.search._proxies",
    "compute_proxies": "nas.search._proxies",
    "make_batch": "nas.search._proxies",
    "rank_ensemble": "nas.search._proxies",
    "collect_study": "nas.search._runner",
    "run_search": "nas.search._runner",
    "BatchedJournalFileBackend": "nas.search._storage",
    "open_storage": "nas.search._storage",
    "AccuracyObjective": "nas.search._types",
    "LatencyModel": "nas.search._types",
    "SearchResult": "nas.search._types",
    "SearchWarning": "nas.search._types",
    "latency_upper_bound": "nas.search._types",
}

__all__ = [
    "CONTENDER_P",
    "EXPORT_FORMATS",
    "LOCAL_SEARCH_DEFAULT",
    "PROXIES",
    "PROXY_BUDGET",
    "TABLE_BUDGET",
    "ZERO_SHOT_RESOLVERS",
    "AccuracyObjective",
    "BatchedJournalFileBackend",
    "DeviceMatch",
    "DeviceResolutionError",
    "EvaluationCancelled",
    "LatencyModel",
    "MeasuredFirstModel",
    "MeasuredLatencyModel",
    "MeasuredPrediction",
    "ProxyAccuracy",
    "SearchError",
    "SearchResult",
    "SearchWarning",
    "ShortTrainAccuracy",
    "StudyMismatchError",
    "TableAccuracy",
    "UserFunctionAccuracy",
    "collect_study",
    "compute_proxies",
    "default_budget",
    "export_model",
    "front_probability",
    "front_table",
    "has_accuracy_table",
    "hypervolume",
    "latency_upper_bound",
    "is_language_model_space",
    "load_exported",
    "load_latency_models",
    "measured_first",
    "make_accuracy_objective",
    "make_batch",
    "neighbour_params",
    "normalized_hypervolume",
    "open_storage",
    "pareto_mask",
    "rank_ensemble",
    "resolve_device",
    "resolve_devices",
    "run_search",
    "to_measure",
    "wrap_arch",
    "write_outputs",
]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nas.search' has no attribute {name!r}")

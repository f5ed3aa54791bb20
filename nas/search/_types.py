"""Protocols and result types of the search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "AccuracyObjective",
    "LatencyModel",
    "LatencyPredictionLike",
    "SearchResult",
    "SearchWarning",
    "latency_upper_bound",
]


@runtime_checkable
class LatencyPredictionLike(Protocol):
    """What the search reads from a prediction (``predictors.LatencyPrediction`` fits)."""

    mean_ms: np.ndarray
    std_ms: np.ndarray


@runtime_checkable
class LatencyModel(Protocol):
    """A latency model adapted to one device (``predictors.AdaptedLatencyModel`` fits)."""

    def predict(self, archs: Sequence[str]) -> Any:
        """Predict latencies of canonical architecture strings (returns mean_ms/std_ms)."""


@runtime_checkable
class AccuracyObjective(Protocol):
    """An accuracy (or accuracy proxy) to maximise, evaluated on a batch of architectures.

    ``evaluate`` returns one finite float per architecture, or NaN where the architecture
    cannot be scored (that trial is then recorded as failed).
    """

    name: str

    def evaluate(self, archs: Sequence[str]) -> np.ndarray:
        """Score canonical architecture strings (higher is better)."""


def latency_upper_bound(mean: float, std: float, z: float) -> float:
    """The latency ``z`` standard deviations above the prediction, as a log-normal quantile.

    Latencies are positive and their errors multiplicative, so the predictors report a
    log-normal: ``mean`` is its median and ``std = mean * sqrt(exp(s**2) - 1)`` for a log-space
    standard deviation ``s``. The bound is ``mean * exp(z * s)``, so ``z = 1.645`` is the 95 %
    quantile however wide the prediction (``mean + z * std`` is that only when ``std`` is small:
    for a zero-shot estimate, ``s = 0.46``, it would be the 90 % quantile). ``z == 0`` or
    ``std == 0`` (a measurement) give ``mean``.
    """
    if z == 0 or std <= 0 or mean <= 0:
        return float(mean)
    s = float(np.sqrt(np.log1p((std / mean) ** 2)))
    return float(mean * np.exp(z * s))


class SearchWarning(UserWarning):
    """A search finished but its result needs a look (e.g. its front is empty)."""


@dataclass
class SearchResult:
    """Outcome of :func:`nas.search.run_search`.

    Attributes:
        study_name: Optuna study name.
        storage: Where the study lives (URL or journal file path; ``None`` in memory).
        space: Search-space name.
        devices: Device names, in objective order.
        accuracy: Name of the accuracy objective.
        budget_ms: Latency budget per device (empty: unconstrained).
        budget_quantile_z: The budget constrains the upper quantile ``z`` standard deviations
            out (:func:`latency_upper_bound`; 0: the predicted latency itself).
        front: Pareto-optimal architectures (dicts with ``arch``, ``accuracy``,
            ``latency_ms``, ``latency_std_ms``, ``measured_on`` (devices whose latency is a
            measurement), ``params``, ``macs``, ``feasible``, ``trial``, ``p_front``: the
            probability that the architecture is non-dominated among the evaluated ones given
            the latency predictions' spread, :func:`nas.search._confidence.front_probability`;
            ``None`` when a device is priced zero-shot, whose spread is mostly one scale shared
            by every architecture, which moves the front without reordering it).
        contenders: Architectures off the front whose ``p_front`` is at least 0.1 (same
            fields), most probable first: the ones to measure (``nas measure --archs``) before
            trusting the front; rerunning the search then uses their measurements.
        trials: Every finished trial as ``{"arch", "accuracy", "latency_ms", "feasible"}``.
        history: Per generation ``{"generation", "trials", "hypervolume"}``.
        hypervolume_convention: How ``history`` was normalised.
        n_trials: Finished trials in the study.
        n_new_trials: Trials finished by this call.
        n_evaluated: Distinct architectures this call evaluated (cache misses).
        elapsed_s: Wall time of the search loop.
        out_dir: Folder with the output files, if written.
    """

    study_name: str
    storage: str | None
    space: str
    devices: list[str]
    accuracy: str
    budget_ms: dict[str, float]
    front: list[dict[str, Any]] = field(repr=False)
    trials: list[dict[str, Any]] = field(repr=False)  # thousands of dicts: kept out of repr
    history: list[dict[str, Any]] = field(repr=False)
    hypervolume_convention: str
    n_trials: int
    n_new_trials: int
    n_evaluated: int
    elapsed_s: float
    out_dir: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    budget_quantile_z: float = 0.0
    contenders: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def trials_per_s(self) -> float:
        """Trials finished by this call per second of search loop."""
        return self.n_new_trials / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def warnings(self) -> list[str]:
        """Why the front is empty, if it is (one sentence each; :func:`run_search` also
        issues them as :class:`SearchWarning`): no trial got a score, or no scored
        architecture met the latency budget."""
        if self.front:
            return []
        if not self.trials:
            if self.n_trials == 0:
                return []
            return [
                f"none of the {self.n_trials} trials got a score from {self.accuracy!r} (every "
                "architecture failed or scored NaN); the front is empty"
            ]
        if not self.budget_ms:
            return []
        return [self._budget_warning()]

    def _bound(self, trial: dict[str, Any], device: str) -> float:
        """The latency the budget of ``device`` was applied to (:func:`latency_upper_bound`)."""
        std = trial.get("latency_std_ms", {}).get(device, 0.0)
        return latency_upper_bound(trial["latency_ms"][device], std, self.budget_quantile_z)

    def _budget_warning(self) -> str:
        """Why no trial met the budgets: the quantity constrained, and the trial that came
        closest to meeting every budget at once (smallest worst ratio to its budget)."""
        z = self.budget_quantile_z
        what = f"upper (+{z:g} std, log-normal) quantile of the" if z else "predicted"
        budget = ", ".join(f"{d} {b:.3g} ms" for d, b in self.budget_ms.items())
        closest = min(
            self.trials,
            key=lambda t: max(self._bound(t, d) / b for d, b in self.budget_ms.items()),
        )
        values = []
        for d in self.budget_ms:
            mean, std = closest["latency_ms"][d], closest.get("latency_std_ms", {}).get(d, 0.0)
            bound = self._bound(closest, d)
            shown = f"{mean:.3g} (std {std:.3g}) -> {bound:.3g}" if z else f"{mean:.3g}"
            values.append(f"{d} {shown} ms")
        return (
            f"no architecture met the latency budget ({budget}, applied to the {what} "
            f"latency) in {len(self.trials)} evaluated trials; closest to meeting "
            f"{'all budgets' if len(self.budget_ms) > 1 else 'it'}: {closest['arch']} "
            f"({', '.join(values)}); the front is empty"
        )

    def to_dict(self, *, include_trials: bool = False) -> dict[str, Any]:
        """JSON-ready dict (``trials`` left out unless asked for)."""
        data = asdict(self)
        if not include_trials:
            data.pop("trials")
        data["trials_per_s"] = self.trials_per_s
        data["warnings"] = self.warnings
        return data

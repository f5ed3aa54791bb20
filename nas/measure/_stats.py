"""Robust summary statistics of latency samples and test-retest agreement.

Outliers are rejected with the MAD-based modified z-score of Iglewicz & Hoaglin, *How to Detect
and Handle Outliers* (ASQC Basic References in Quality Control, vol. 16, 1993): a sample ``x`` is
an outlier when ``0.6745 * |x - median| / MAD > threshold`` (3.5 recommended).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

__all__ = [
    "SampleStats",
    "mape",
    "reject_outliers",
    "spearman",
    "summarize",
]

_MAD_TO_SIGMA = 0.6745  # Phi^-1(0.75): the MAD of a standard normal distribution
_MEAN_AD_TO_SIGMA = 0.7979  # sqrt(2 / pi): the mean absolute deviation of a standard normal


@dataclass(frozen=True)
class SampleStats:
    """Summary of one model's latency samples after outlier rejection (milliseconds).

    Attributes:
        median: Median of the kept samples (the headline latency).
        mean: Mean of the kept samples.
        std: Sample standard deviation (``ddof=1``; 0 for a single sample).
        min: Smallest kept sample.
        p90: 90th percentile (linear interpolation) of the kept samples.
        n_runs: Number of kept samples.
        n_rejected: Number of samples rejected as outliers.
        drift_factor: How much slower the machine ran this model's group than the reference
            group, by the drift anchor; the times above are already divided by it (1.0: no
            anchor, or no drift).
    """

    median: float
    mean: float
    std: float
    min: float
    p90: float
    n_runs: int
    n_rejected: int
    drift_factor: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def corrected(self, factor: float) -> SampleStats:
        """These statistics with every time divided by ``factor`` (> 0), recorded as the drift.

        Raises:
            ValueError: If ``factor`` is not a positive finite number.
        """
        if not (np.isfinite(factor) and factor > 0):
            raise ValueError(f"`factor` must be a positive finite number, got {factor!r}.")
        return replace(
            self,
            median=self.median / factor,
            mean=self.mean / factor,
            std=self.std / factor,
            min=self.min / factor,
            p90=self.p90 / factor,
            drift_factor=self.drift_factor * factor,
        )


def _as_samples(samples: Sequence[float] | np.ndarray, name: str = "samples") -> np.ndarray:
    arr = np.asarray(samples, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"`{name}` must contain at least one value.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must contain only finite values.")
    return arr


def reject_outliers(
    samples: Sequence[float] | np.ndarray, *, threshold: float = 3.5
) -> tuple[np.ndarray, np.ndarray]:
    """Split samples into kept values and outliers by the modified z-score.

    When the MAD is zero (more than half of the samples are equal), the mean absolute
    deviation scaled by ``sqrt(pi / 2)`` replaces it; when that is zero too, all samples
    are identical and none is rejected.

    Args:
        samples: Finite latency samples.
        threshold: Modified z-score above which a sample is an outlier (> 0; 3.5 as
            recommended by Iglewicz & Hoaglin).

    Returns:
        ``(kept, rejected)`` arrays, each in the original order.

    Raises:
        ValueError: If ``samples`` is empty or not finite, or ``threshold`` is not positive.
    """
    if not threshold > 0:
        raise ValueError(f"`threshold` must be greater than 0, got {threshold!r}.")
    arr = _as_samples(samples)
    med = float(np.median(arr))
    dev = np.abs(arr - med)
    mad = float(np.median(dev))
    if mad > 0:
        z = _MAD_TO_SIGMA * dev / mad
    else:
        mean_ad = float(np.mean(dev))
        if mean_ad == 0:
            return arr, arr[:0]
        z = _MEAN_AD_TO_SIGMA * dev / mean_ad
    keep = z <= threshold
    return arr[keep], arr[~keep]


def summarize(samples: Sequence[float] | np.ndarray, *, threshold: float = 3.5) -> SampleStats:
    """Reject outliers (:func:`reject_outliers`) and summarise the remaining samples.

    Args:
        samples: Finite latency samples in milliseconds.
        threshold: Modified z-score threshold of the outlier rejection.

    Returns:
        The robust :class:`SampleStats`.
    """
    kept, rejected = reject_outliers(samples, threshold=threshold)
    return SampleStats(
        median=float(np.median(kept)),
        mean=float(np.mean(kept)),
        std=float(np.std(kept, ddof=1)) if kept.size > 1 else 0.0,
        min=float(np.min(kept)),
        p90=float(np.percentile(kept, 90)),
        n_runs=int(kept.size),
        n_rejected=int(rejected.size),
    )


def spearman(first: Sequence[float] | np.ndarray, second: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation of two paired latency vectors (ties get average ranks).

    Raises:
        ValueError: If the vectors differ in length or have fewer than 2 entries.
    """
    a, b = _paired(first, second)
    if a.size < 2:
        raise ValueError("`first` must contain at least 2 values.")
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if np.std(ra) == 0 or np.std(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def mape(reference: Sequence[float] | np.ndarray, other: Sequence[float] | np.ndarray) -> float:
    """Mean absolute percentage difference of ``other`` from ``reference`` (in percent).

    Raises:
        ValueError: If the vectors differ in length, are empty, or ``reference`` has a
            non-positive value.
    """
    a, b = _paired(reference, other)
    if np.any(a <= 0):
        raise ValueError("`reference` must contain only positive values.")
    return float(100.0 * np.mean(np.abs(b - a) / a))


def _paired(
    first: Sequence[float] | np.ndarray, second: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    a = _as_samples(first, "first")
    b = _as_samples(second, "second")
    if a.shape != b.shape:
        raise ValueError(
            f"`first` and `second` must have the same length, got {a.size} and {b.size}."
        )
    return a, b

"""How sure a search's front is: each architecture's probability of being Pareto-optimal.

A latency prediction is a log-normal: ``latency_ms`` is its median and ``latency_std_ms``
gives its log-space spread (:func:`nas.search.latency_upper_bound`); a measured latency and the
accuracy objective are taken as exact. Drawing every evaluated architecture's latency from its
prediction, independently, and taking the front of each draw gives the probability that the
architecture is non-dominated among those evaluated: probabilistic Pareto dominance under
uncertain objectives (Hughes, "Evolutionary multi-objective ranking with uncertainty and
noise", EMO 2001; Teich, "Pareto-front exploration with uncertain objectives", EMO 2001),
estimated by Monte Carlo.

Architectures that a wide margin (``band_z`` spreads on both sides) puts behind another one are
left out of the draws: their probability is taken as 0, and they are too slow in every
plausible draw to push a candidate off the front that the candidates' own front would not.
"""

from __future__ import annotations

import numpy as np

from nas.search._pareto import pareto_mask

__all__ = ["CONTENDER_P", "front_probability"]

#: An architecture off the front that is non-dominated in at least this share of the draws is a
#: *contender*: worth measuring before trusting the front.
CONTENDER_P = 0.1
_CHUNK = 512  # rows per block of the pairwise margin test (multi-device)


def front_probability(
    accuracy: np.ndarray,
    latency_ms: np.ndarray,
    latency_std_ms: np.ndarray,
    *,
    samples: int = 256,
    seed: int = 0,
    band_z: float = 3.0,
) -> np.ndarray:
    """Probability of each architecture being non-dominated (accuracy up, latencies down).

    Args:
        accuracy: Shape ``(n,)``; exact.
        latency_ms: Shape ``(n, d)``, predicted medians (or measurements), all > 0.
        latency_std_ms: Shape ``(n, d)``; 0 where the latency is exact.
        samples: Monte Carlo draws (the estimate's standard error is at most
            ``0.5 / sqrt(samples)``).
        seed: Seed of the draws (the same inputs give the same probabilities).
        band_z: Margin, in log-space spreads, of the pre-filter described in the module doc.

    Returns:
        Shape ``(n,)``, each in [0, 1]; with no spread anywhere, 1 on the front and 0 elsewhere.

    Raises:
        ValueError: naming the argument whose shape or values are wrong.
    """
    acc, mean, sigma = _checked(accuracy, latency_ms, latency_std_ms)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"`samples` must be an integer >= 1, got {samples!r}.")
    p = np.zeros(len(acc))
    if not len(acc):
        return p
    log = np.log(mean)
    keep = ~_behind(acc, log - band_z * sigma, log + band_z * sigma)
    idx = np.flatnonzero(keep)
    if not (sigma[idx] > 0).any():  # nothing uncertain: the front itself
        p[idx] = pareto_mask(np.column_stack([-acc[idx], mean[idx]]))
        return p
    rng = np.random.default_rng(seed)
    draws = log[idx] + sigma[idx] * rng.standard_normal((samples, len(idx), log.shape[1]))
    if log.shape[1] == 1:
        p[idx] = _nondominated_1d(acc[idx], draws[:, :, 0]).mean(axis=0)
    else:
        count = np.zeros(len(idx))
        for s in range(samples):
            count += pareto_mask(np.column_stack([-acc[idx], draws[s]]))
        p[idx] = count / samples
    return p


def _checked(
    accuracy: np.ndarray, latency_ms: np.ndarray, latency_std_ms: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    acc = np.asarray(accuracy, dtype=float).reshape(-1)
    mean = np.asarray(latency_ms, dtype=float)
    std = np.asarray(latency_std_ms, dtype=float)
    mean = mean.reshape(len(acc), -1) if mean.ndim == 1 else mean
    std = std.reshape(len(acc), -1) if std.ndim == 1 else std
    if mean.ndim != 2 or mean.shape[0] != len(acc):
        raise ValueError(f"`latency_ms` must have shape ({len(acc)}, d), got {mean.shape}.")
    if std.shape != mean.shape:
        raise ValueError(f"`latency_std_ms` must have shape {mean.shape}, got {std.shape}.")
    if not np.isfinite(acc).all():
        raise ValueError("`accuracy` must be finite.")
    if not (np.isfinite(mean).all() and (mean > 0).all()):
        raise ValueError("`latency_ms` must be finite and > 0.")
    if not (np.isfinite(std).all() and (std >= 0).all()):
        raise ValueError("`latency_std_ms` must be finite and >= 0.")
    # the log-normal's spread: std = median * sqrt(exp(s^2) - 1)  =>  s = sqrt(log1p((std/m)^2))
    return acc, mean, np.sqrt(np.log1p((std / mean) ** 2))


def _behind(acc: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Rows that another row beats by the margin: at least as accurate, and slower on every
    device even at their own lowest plausible latency than it is at its highest."""
    n, d = low.shape
    if d == 1:  # sort by accuracy: the fastest upper bound among rows at least as accurate
        order = np.argsort(-acc, kind="stable")
        groups, start = np.unique(-acc[order], return_index=True)
        best = np.minimum.accumulate(np.minimum.reduceat(high[order, 0], start))
        gid = np.searchsorted(groups, -acc)
        return best[gid] < low[:, 0]
    out = np.zeros(n, dtype=bool)
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        ahead = acc[None, :] >= acc[sl, None]  # (chunk, n): j at least as accurate as i
        faster = (high[None, :, :] < low[sl, None, :]).all(axis=2)
        out[sl] = (ahead & faster).any(axis=1)
    return out


def _nondominated_1d(acc: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Non-dominated masks of many draws at once, one device: ``lat`` has shape
    ``(samples, n)``. A row is dominated by a more accurate one that is no slower, or by an
    equally accurate one that is faster."""
    order = np.argsort(-acc, kind="stable")
    groups, start, gid = np.unique(-acc[order], return_index=True, return_inverse=True)
    lat_sorted = lat[:, order]
    group_min = np.minimum.reduceat(lat_sorted, start, axis=1)  # (samples, groups)
    before = np.minimum.accumulate(group_min, axis=1)
    before = np.concatenate([np.full((lat.shape[0], 1), np.inf), before[:, :-1]], axis=1)
    dominated = (before[:, gid] <= lat_sorted) | (group_min[:, gid] < lat_sorted)
    out = np.empty_like(dominated)
    out[:, order] = ~dominated
    return out

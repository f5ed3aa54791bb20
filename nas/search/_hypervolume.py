"""Exact hypervolume of a set of points under minimisation.

The indicator is the Lebesgue measure of the region dominated by the points and bounded by a
reference point (Zitzler & Thiele, "Multiobjective optimization using evolutionary algorithms -
a comparative case study", PPSN 1998). Two objectives use the O(n log n) sweep; more use the
"hypervolume by slicing objectives" recursion (While et al., IEEE TEVC 2006), which is exact and
fast enough for the fronts of a NAS search (tens of points).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["hypervolume", "normalized_hypervolume"]


def _nondominated(points: np.ndarray) -> np.ndarray:
    keep = np.ones(len(points), dtype=bool)
    for i in range(len(points)):
        if not keep[i]:
            continue
        dominated = np.all(points[i] <= points, axis=1) & np.any(points[i] < points, axis=1)
        keep &= ~dominated
    return points[keep]


def _hv2d(points: np.ndarray, ref: np.ndarray) -> float:
    order = np.argsort(points[:, 0], kind="stable")
    volume, best_y = 0.0, float(ref[1])
    for x, y in points[order]:
        if y < best_y:
            volume += (float(ref[0]) - float(x)) * (best_y - float(y))
            best_y = float(y)
    return volume


def _hv_slicing(points: np.ndarray, ref: np.ndarray) -> float:
    if points.shape[1] == 2:
        return _hv2d(points, ref)
    order = np.argsort(points[:, -1], kind="stable")
    points = points[order]
    volume = 0.0
    for i in range(len(points)):
        upper = float(ref[-1]) if i + 1 == len(points) else float(points[i + 1, -1])
        depth = upper - float(points[i, -1])
        if depth <= 0.0:
            continue
        layer = _nondominated(points[: i + 1, :-1])
        volume += depth * _hv_slicing(layer, ref[:-1])
    return volume


def hypervolume(
    points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float]
) -> float:
    """Hypervolume dominated by ``points`` (all objectives minimised) up to ``reference``.

    Points that do not strictly dominate the reference point contribute nothing.

    Args:
        points: Array of shape ``(n, d)``, ``d >= 1``.
        reference: Reference point of length ``d``.

    Returns:
        The hypervolume (0.0 for an empty set).

    Raises:
        ValueError: If shapes disagree or values are not finite.
    """
    ref = np.asarray(reference, dtype=float)
    pts = np.asarray(points, dtype=float).reshape(-1, ref.shape[0]) if len(points) else None
    if ref.ndim != 1 or ref.size == 0 or not np.all(np.isfinite(ref)):
        raise ValueError("`reference` must be a finite 1-d point.")
    if pts is None:
        return 0.0
    if not np.all(np.isfinite(pts)):
        raise ValueError("`points` must be finite.")
    pts = pts[np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    if ref.size == 1:
        return float(ref[0] - pts[:, 0].min())
    return float(_hv_slicing(_nondominated(np.unique(pts, axis=0)), ref))


def normalized_hypervolume(
    points: Sequence[Sequence[float]] | np.ndarray,
    *,
    ideal: Sequence[float] | np.ndarray,
    nadir: Sequence[float] | np.ndarray,
    reference: float = 1.1,
) -> float:
    """Hypervolume after mapping ``ideal -> 0`` and ``nadir -> 1`` on every objective.

    This is the project's convention for comparing fronts: objectives minimised (test error in
    %, latency in ms), normalised by the *true* front's ideal-to-nadir range, reference point
    ``(1.1, ..., 1.1)``.

    Args:
        points: Objective vectors, shape ``(n, d)``.
        ideal: Per-objective best value of the reference front.
        nadir: Per-objective worst value of the reference front.
        reference: Reference coordinate used on every normalised axis.

    Raises:
        ValueError: If ``nadir <= ideal`` on some objective or ``reference <= 1``.
    """
    lo, hi = np.asarray(ideal, dtype=float), np.asarray(nadir, dtype=float)
    if lo.shape != hi.shape or np.any(hi <= lo):
        raise ValueError("`nadir` must be greater than `ideal` on every objective.")
    if not reference > 1.0:
        raise ValueError("`reference` must be greater than 1.")
    pts = np.asarray(points, dtype=float).reshape(-1, lo.size)
    return hypervolume((pts - lo) / (hi - lo), [reference] * lo.size)

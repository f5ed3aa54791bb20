"""Device onboarding: measure the reference set plus K archs, adapt, then measure where the
predictor is least certain until a target error is reached (active learning).

Each round proposes the ``batch`` candidate archs with the largest predictive uncertainty, the
spread of log-latency predictions over ``n_bootstrap`` copies of the predictor adapted to
bootstrap resamples of the measurements (a bagging ensemble; Breiman 1996). *Before* measuring
them, their latencies are predicted; the MAPE of those predictions is an honest, prospective
error estimate (the archs were not in the adaptation set), and the loop stops when it is at
most ``target_mape``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from predictors._base import LatencyPredictor
from predictors.zeroshot._roofline import DeviceModel

if TYPE_CHECKING:
    from search_spaces import Workload

__all__ = ["OnboardResult", "OnboardRound", "onboard_device"]

MeasureFn = Callable[[Sequence[str]], Sequence[float]]


@dataclass(frozen=True)
class OnboardRound:
    """One active-learning round."""

    round: int
    n_measured: int
    proposed: list[str]
    prospective_mape: float


@dataclass
class OnboardResult:
    """Outcome of :func:`onboard_device`."""

    device: str
    measured: dict[str, float]
    rounds: list[OnboardRound] = field(default_factory=list)
    converged: bool = False
    model: LatencyPredictor | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "device": self.device,
            "n_measured": len(self.measured),
            "converged": self.converged,
            "rounds": [vars(r) for r in self.rounds],
        }


def _measure(fn: MeasureFn, archs: Sequence[str]) -> list[float]:
    values = [float(v) for v in fn(list(archs))]
    if len(values) != len(archs) or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError("`measure_fn` must return one finite, positive latency per arch.")
    return values


def _ensemble(
    model: LatencyPredictor,
    measured: dict[str, float],
    refs: list[str],
    n: int,
    rng: np.random.Generator,
    datasheet: DeviceModel | None,
    workload: Workload | None,
) -> list[LatencyPredictor]:
    archs = list(measured)
    lat = np.array([measured[a] for a in archs])
    emb = np.array([measured[r] for r in refs])

    def adapt(idx: np.ndarray) -> LatencyPredictor:
        sub, ms = [archs[i] for i in idx], lat[idx]
        return model.adapt(sub, ms, hw_embedding_ms=emb, datasheet=datasheet, workload=workload)

    members = [adapt(np.arange(len(archs)))]
    for _ in range(n - 1):
        members.append(adapt(np.unique(rng.integers(0, len(archs), len(archs)))))
    return members


def onboard_device(
    model: LatencyPredictor,
    *,
    space: str,
    device: str,
    measure_fn: MeasureFn,
    candidates: Sequence[str],
    k: int = 10,
    batch: int = 5,
    target_mape: float = 0.10,
    max_rounds: int = 5,
    n_bootstrap: int = 5,
    seed: int | None = 0,
    datasheet: DeviceModel | None = None,
    workload: Workload | None = None,
) -> OnboardResult:
    """Onboard a device with a meta-trained ``model`` and a measurement callback.

    Args:
        model: Meta-trained predictor (never the target device as a source).
        space: Search-space name (its 10 reference archs are measured first).
        device: Device name (labels the result).
        measure_fn: ``archs -> latencies_ms`` (measures on the device, may store them).
        candidates: Canonical archs the loop may propose (e.g. a random sample of the space).
        k: Random candidate archs measured with the reference set.
        batch: Archs proposed (and measured) per round.
        target_mape: Stop when the prospective MAPE of a round is at most this.
        max_rounds: Maximum active-learning rounds.
        n_bootstrap: Ensemble size of the uncertainty estimate.
        seed: Seed of the initial draw and the bootstrap.
        datasheet: The device's datasheet roofline, a prior of every adaptation.
        workload: The input ``measure_fn`` measures under (None: the space's default).

    Raises:
        ValueError: for bad arguments or a bad ``measure_fn`` result.
    """
    from predictors.zeroshot._zeroshot import reference_strings

    for name, value, low in (("k", k, 0), ("batch", batch, 1), ("max_rounds", max_rounds, 0)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"`{name}` must be an integer greater than or equal to {low}.")
    if not target_mape > 0:
        raise ValueError("`target_mape` must be greater than 0.")
    if n_bootstrap < 2:
        raise ValueError("`n_bootstrap` must be greater than or equal to 2.")
    rng = np.random.default_rng(seed)
    refs = reference_strings(space)
    pool = [c for c in dict.fromkeys(candidates) if c not in set(refs)]
    if len(pool) < k + batch:
        raise ValueError(f"`candidates` must hold at least k + batch = {k + batch} new archs.")
    first = refs + [pool[i] for i in rng.choice(len(pool), size=k, replace=False)]
    measured = dict(zip(first, _measure(measure_fn, first), strict=True))
    result = OnboardResult(device=device, measured=measured)
    for r in range(1, max_rounds + 1):
        members = _ensemble(model, measured, refs, n_bootstrap, rng, datasheet, workload)
        left = [c for c in pool if c not in measured]
        if len(left) < batch:
            break
        logs = np.log(np.stack([m.predict(left)[0] for m in members]))
        proposed = [left[i] for i in np.argsort(-logs.std(axis=0), kind="stable")[:batch]]
        predicted = np.exp(logs[0][[left.index(p) for p in proposed]])
        values = _measure(measure_fn, proposed)
        measured.update(zip(proposed, values, strict=True))
        mape = float(np.mean(np.abs(predicted / np.array(values) - 1.0)))
        result.rounds.append(OnboardRound(r, len(measured), proposed, mape))
        if mape <= target_mape:
            result.converged = True
            break
    final = _ensemble(model, measured, refs, 2, rng, datasheet, workload)[0]
    result.model = final
    return result

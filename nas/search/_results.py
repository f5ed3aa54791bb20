"""Turning a finished study into a :class:`SearchResult` (front, trials, hypervolume history)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from nas.search._confidence import CONTENDER_P, front_probability
from nas.search._hypervolume import normalized_hypervolume
from nas.search._pareto import pareto_mask, write_outputs
from nas.search._types import SearchResult, latency_upper_bound

if TYPE_CHECKING:
    import optuna

    from search_spaces import SearchSpace

__all__ = ["HV_CONVENTION", "collect_result"]

HV_CONVENTION = (
    "objectives (-accuracy, latency_ms per device) minimised, normalised by the final "
    "front's ideal->nadir range, reference point 1.1 on every axis; cumulative per generation"
)


def _row(t: FrozenTrial, devices: list[str]) -> dict[str, Any]:
    values = t.values or []
    feasible = all(v <= 0.0 for v in t.constraints.values())
    return {
        "arch": t.user_attrs["arch"],
        "accuracy": float(values[0]),
        "latency_ms": dict(zip(devices, map(float, values[1:]), strict=True)),
        "latency_std_ms": {
            d: float(t.user_attrs.get("latency_std_ms", {}).get(d, 0.0)) for d in devices
        },
        "measured_on": [d for d in devices if d in t.user_attrs.get("measured_on", ())],
        "feasible": feasible,
        "trial": t.number,
    }


def _relatency(
    row: dict[str, Any],
    latency: Mapping[str, float],
    spread: Mapping[str, float],
    budget: Mapping[str, float],
    z: float,
    **extra: Any,
) -> dict[str, Any]:
    """``row`` with the devices' ``latency`` and ``spread`` (ms) put in (and ``extra``
    fields); its feasibility follows."""
    lat = {**row["latency_ms"], **latency}
    std = {**row["latency_std_ms"], **spread}
    feasible = all(latency_upper_bound(lat[d], std[d], z) <= b for d, b in budget.items())
    return {**row, "latency_ms": lat, "latency_std_ms": std, "feasible": feasible, **extra}


def _remeasured(
    row: dict[str, Any],
    measured: Mapping[str, Mapping[str, float]],
    budget: Mapping[str, float],
    z: float,
) -> dict[str, Any]:
    """``row`` with the device's current measured median of its architecture wherever that
    differs from what the trial recorded (a prediction then, or an older measurement); its
    feasibility follows."""
    arch = row["arch"]
    new = [
        d for d, ms in measured.items()
        if arch in ms and (d not in row["measured_on"] or ms[arch] != row["latency_ms"][d])
    ]  # fmt: skip
    if not new:
        return row
    on = [d for d in row["latency_ms"] if d in new or d in row["measured_on"]]
    medians = {d: float(measured[d][arch]) for d in new}
    return _relatency(row, medians, dict.fromkeys(new, 0.0), budget, z, measured_on=on)


def _repredicted(
    rows: list[dict[str, Any]],
    device: str,
    predict: Callable[[list[str]], tuple[np.ndarray, np.ndarray]],
    budget: Mapping[str, float],
    z: float,
) -> list[dict[str, Any]]:
    """``rows`` with ``device``'s latency and spread predicted again by ``predict`` (except
    where the trial measured it); feasibility follows."""
    todo = [r["arch"] for r in rows if device not in r["measured_on"]]
    if not todo:
        return rows
    mean, std = predict(todo)
    preds = iter(zip(np.asarray(mean).tolist(), np.asarray(std).tolist(), strict=True))
    out = []
    for r in rows:
        if device in r["measured_on"]:
            out.append(r)
            continue
        m, s = next(preds)
        out.append(_relatency(r, {device: float(m)}, {device: float(s)}, budget, z))
    return out


def _confidence(
    rows: list[dict[str, Any]], devices: list[str], front: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``front`` with each point's ``p_front`` (:func:`~nas.search._confidence.front_probability`
    among the feasible rows), and the contenders: rows off the front with ``p_front`` of at
    least :data:`~nas.search._confidence.CONTENDER_P`, most probable first."""
    unique = _feasible_archs(rows)
    if not unique:
        return front, []
    p = front_probability(
        np.array([r["accuracy"] for r in unique]),
        np.array([[r["latency_ms"][d] for d in devices] for r in unique]),
        np.array([[r["latency_std_ms"][d] for d in devices] for r in unique]),
    )
    p_of = {r["arch"]: round(float(x), 3) for r, x in zip(unique, p, strict=True)}
    on_front = {e["arch"] for e in front}
    contenders = [
        {**r, "p_front": p_of[r["arch"]]}
        for r in unique
        if r["arch"] not in on_front and p_of[r["arch"]] >= CONTENDER_P
    ]
    contenders.sort(key=lambda r: (-r["p_front"], r["latency_ms"][devices[0]]))
    return [{**e, "p_front": p_of[e["arch"]]} for e in front], contenders


def _feasible_archs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The feasible rows, one per architecture (its last trial's)."""
    return list({r["arch"]: r for r in rows if r["feasible"]}.values())


def _objectives(rows: list[dict[str, Any]], devices: list[str]) -> np.ndarray:
    return np.array(
        [[-r["accuracy"]] + [r["latency_ms"][d] for d in devices] for r in rows]
    ).reshape(len(rows), 1 + len(devices))


def front_of(rows: list[dict[str, Any]], devices: list[str]) -> list[dict[str, Any]]:
    """Non-dominated feasible rows, one per architecture, sorted by first-device latency."""
    unique = _feasible_archs(rows)
    if not unique:
        return []
    mask = pareto_mask(_objectives(unique, devices))
    front = [r for r, keep in zip(unique, mask, strict=True) if keep]
    return sorted(front, key=lambda r: (r["latency_ms"][devices[0]], -r["accuracy"]))


def _history(
    rows: list[dict[str, Any]], devices: list[str], front: list[dict[str, Any]], population: int
) -> list[dict[str, Any]]:
    if not front or not rows:
        return []
    f = _objectives(front, devices)
    ideal, nadir = f.min(axis=0), f.max(axis=0)
    nadir = np.where(nadir > ideal, nadir, ideal + 1.0)
    ordered = sorted(rows, key=lambda r: r["trial"])
    out = []
    for g, end in enumerate(range(population, len(ordered) + population, population)):
        seen = ordered[: min(end, len(ordered))]
        gen_front = front_of(seen, devices)
        hv = (
            normalized_hypervolume(_objectives(gen_front, devices), ideal=ideal, nadir=nadir)
            if gen_front
            else 0.0
        )
        out.append(
            {"generation": g, "trials": len(seen), "hypervolume": hv, "front_size": len(gen_front)}
        )
    return out


def _add_profile(space: SearchSpace[Any], entry: dict[str, Any]) -> dict[str, Any]:
    try:
        prof = space.profile(space.from_string(entry["arch"]))
        params, macs = int(prof.params), int(prof.macs)
    except Exception:  # noqa: BLE001 - a profile failure must not lose the front
        params, macs = None, None
    return {**entry, "params": params, "macs": macs}


def collect_result(
    study: optuna.Study,
    space: SearchSpace[Any],
    devices: list[str],
    accuracy: str,
    budget: dict[str, float],
    *,
    budget_quantile_z: float = 0.0,
    measured: Mapping[str, Mapping[str, float]] | None = None,
    repredict: Mapping[str, Callable[[list[str]], tuple[np.ndarray, np.ndarray]]] | None = None,
    confidence: bool = True,
    population: int,
    storage: str | None,
    n_new: int,
    n_evaluated: int,
    elapsed_s: float,
    out_dir: str | os.PathLike[str] | None,
) -> SearchResult:
    """Build the result of ``study`` and write the output files when ``out_dir`` is given.

    ``repredict`` (device -> ``f(archs) -> (mean_ms, std_ms)``) replaces every trial's
    prediction for that device (its trials were priced by another model: a zero-shot device
    measured since); ``measured`` (device -> architecture -> measured median ms) then
    replaces the predictions of architectures measured since their trial; ``confidence``
    adds each front point's ``p_front`` and the contenders (off: ``p_front`` is ``None`` and
    there are none).
    """
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    rows = [_row(t, devices) for t in trials if "arch" in t.user_attrs]
    for device, predict in (repredict or {}).items():
        rows = _repredicted(rows, device, predict, budget, budget_quantile_z)
    if measured:
        rows = [_remeasured(r, measured, budget, budget_quantile_z) for r in rows]
    # the objective's name travels with each point: "accuracy" may be a proxy score
    front = [{**_add_profile(space, e), "objective": accuracy} for e in front_of(rows, devices)]
    contenders: list[dict[str, Any]] = []
    if confidence:
        front, contenders = _confidence(rows, devices, front)
        contenders = [{**_add_profile(space, e), "objective": accuracy} for e in contenders]
    else:
        front = [{**e, "p_front": None} for e in front]
    n_finished = len(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
    )
    result = SearchResult(
        study_name=study.study_name,
        storage=storage,
        space=space.name,
        devices=list(devices),
        accuracy=accuracy,
        budget_ms=dict(budget),
        budget_quantile_z=float(budget_quantile_z),
        front=front,
        contenders=contenders,
        trials=rows,
        history=_history(rows, devices, front, population),
        hypervolume_convention=HV_CONVENTION,
        n_trials=n_finished,
        n_new_trials=n_new,
        n_evaluated=n_evaluated,
        elapsed_s=elapsed_s if math.isfinite(elapsed_s) else 0.0,
        out_dir=None if out_dir is None else os.fspath(out_dir),
    )
    if out_dir is not None:
        result.files = {k: os.fspath(v) for k, v in write_outputs(result, out_dir).items()}
    return result

"""Few-shot evaluation on the HELP protocol (or the seeded random split) for any device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr

from predictors._base import LatencyPredictor, get_predictor, str_list
from predictors._data import (
    HELP_DEVICES,
    device_split,
    device_workload,
    make_tasks,
    sample_support,
)
from predictors._errors import NoSourceDevicesError

if TYPE_CHECKING:
    from predictors.zeroshot import DeviceModel

__all__ = ["evaluate_adapted", "latency_metrics", "meta_train_for", "source_devices"]


#: ``z`` of a two-sided 90 % interval (and of a one-sided 95 % bound: ``--budget-z 1.645``).
_Z90 = 1.6448536269514722


def latency_metrics(
    pred_ms: np.ndarray, true_ms: np.ndarray, std_ms: np.ndarray | None = None
) -> dict[str, float]:
    """Spearman, Kendall tau, mean absolute percentage error and share within +-10%; with
    ``std_ms``, also ``coverage_90``: the share of measurements inside the predictions'
    90 % interval, read as the log-normal the predictors report (median ``pred_ms``,
    ``std = pred * sqrt(exp(s**2) - 1)``; the interval is ``pred * exp(+-1.645 s)``, whose
    upper end is what ``nas search --budget-z 1.645`` keeps under a budget). A calibrated
    predictor holds 0.90; less means its uncertainty is too narrow on this device."""
    pred, true = np.asarray(pred_ms, float), np.asarray(true_ms, float)
    rel = np.abs(pred / true - 1.0)
    out = {
        "spearman": float(spearmanr(pred, true)[0]),
        "kendall": float(kendalltau(pred, true)[0]),
        "mape": float(rel.mean()),
        "within_10pct": float((rel <= 0.10).mean()),
    }
    if std_ms is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.sqrt(np.log1p((np.asarray(std_ms, float) / pred) ** 2))
            inside = np.abs(np.log(true / pred)) <= _Z90 * s
        # a prediction <= 0 has no log-normal interval: it holds nothing
        out["coverage_90"] = float((inside & (pred > 0) & np.isfinite(s)).mean())
    return out


def source_devices(table: pd.DataFrame, space: str, device: str) -> tuple[list[str], list[str]]:
    """(meta-train, meta-valid) devices for a target: HELP's lists when the target is one of
    HELP's valid/test devices, else every other device of the table (no validation).

    Either way only devices usable as meta-training sources are kept (those with the
    reference archs and enough pool measurements, as the default meta-training of
    ``train``/``adapt``/``predict`` picks them): one sparse device (a few imported rows, a
    catalog device with one or two measured archs) must not break every evaluation.

    Raises:
        NoSourceDevicesError: when no other device has enough measurements.
    """
    from predictors._service import usable_sources

    usable = usable_sources(table, space, device)
    help_split = HELP_DEVICES.get(space)
    if help_split and device not in help_split["train"]:
        train = [d for d in help_split["train"] if d in usable]
        valid = [d for d in help_split["valid"] if d in usable]
        if train:
            return train, valid
    if not usable:
        raise NoSourceDevicesError(
            f"no other device with enough measurements in {space!r} to meta-train on; import "
            "some with `nas hwdb import help DIR`"
        )
    return usable, []


def meta_train_for(
    name: str,
    table: pd.DataFrame,
    space: str,
    train: Sequence[str],
    valid: Sequence[str] = (),
    *,
    params: dict[str, Any] | None = None,
    progress: bool = False,
) -> LatencyPredictor:
    """Meta-train predictor ``name`` on ``train`` (+ ``valid`` for checkpoint selection).

    Raises:
        ValueError: naming ``train`` or ``valid`` when it is one string.
    """
    train = str_list(train, "train", "device names", "device")
    valid = str_list(valid, "valid", "device names", "device")
    kwargs = dict(params or {})
    if name in ("help", "maml") and valid:
        kwargs.setdefault("validation_devices", list(valid))
    devices = train + valid  # other predictors use them as plain sources
    model = get_predictor(name, **kwargs)
    return model.fit(make_tasks(table, space, devices), progress=progress)


def evaluate_adapted(
    model: LatencyPredictor,
    table: pd.DataFrame,
    space: str,
    device: str,
    *,
    shots: int = 10,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    datasheet: DeviceModel | None = None,
) -> dict[str, Any]:
    """Adapt ``model`` on ``shots`` training-pool archs + the 10 reference archs of ``device``
    (one draw per seed; ``shots == 0``: the reference archs alone) and score it on the
    device's trimmed query pool. ``datasheet`` (the device's catalog roofline) is passed to
    :meth:`LatencyPredictor.adapt` as a prior, and so is the workload the device was measured
    under (:func:`~predictors.device_workload`).

    Returns:
        ``{"spearman", "kendall", "mape", "within_10pct", "coverage_90"}`` means (see
        :func:`latency_metrics`) and ``"per_seed"`` dicts.

    Raises:
        ValueError: If ``shots`` is not an integer >= 0 or ``seeds`` is empty.
    """
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 0:
        raise ValueError(f"`shots` must be an integer greater than or equal to 0, got {shots!r}.")
    seeds = list(seeds)
    if not seeds:  # as evaluate_zero_shot: no draw has no mean
        raise ValueError("`seeds` must hold at least one seed.")
    split = device_split(table, space, device)
    col = table[device]
    true = col.loc[split.query].to_numpy(float)
    emb = col.loc[split.reference].to_numpy(float)
    workload = device_workload(table, space, device)
    per_seed = []
    for seed in seeds:
        support = sample_support(split, shots, seed) + list(split.reference)
        adapted = model.adapt(
            support, col.loc[support].to_numpy(float), hw_embedding_ms=emb, datasheet=datasheet,
            workload=workload,
        )  # fmt: skip
        mean, std = adapted.predict(split.query)
        per_seed.append({"seed": int(seed), **latency_metrics(mean, true, std)})
    out: dict[str, Any] = {
        k: float(np.mean([r[k] for r in per_seed]))
        for k in ("spearman", "kendall", "mape", "within_10pct", "coverage_90")
    }
    out["per_seed"] = per_seed
    return out

"""From a latency table to meta-training tasks and HELP-protocol evaluation splits.

A *latency table* is what :meth:`hwdb.HardwareDB.latency_table` returns: a DataFrame indexed by
canonical arch strings, one column per device, median milliseconds, NaN where not measured, and
``df.attrs["benchmark_index"]`` mapping arch -> benchmark index (or None).

HELP protocol (Lee et al., NeurIPS 2021, arXiv 2106.08630): the training pool is the first 900
(NAS-Bench-201) / 4000 (FBNet, OFA) archs by benchmark index, the query pool the next 1000;
both lose their lowest and highest 10% of latencies *per device*. A target device is adapted on
``k`` random training-pool archs plus the 10 hardware-embedding reference archs, and scored on
its query pool.

Spaces without benchmark indices use a documented seeded random split instead: the measured
archs, sorted, are permuted with ``numpy.random.default_rng(split_seed)``; the first half (at most
4000) is the training pool, the next (at most 1000) the query pool, both trimmed the same way.
Reference archs are the space's ``hardware_embedding_archs()`` when measured, else the first 10
archs of the permuted training pool measured on every device.

Each device's column was measured under one workload (``df.attrs["workload"]``, see
:func:`device_workload`); its task carries it, so features describe what was measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from predictors._base import DeviceTask, str_list
from predictors._errors import NotEnoughDataError, PredictorError

if TYPE_CHECKING:
    from search_spaces import Workload

__all__ = [
    "HELP_DEVICES",
    "HELP_REFERENCE_INDICES",
    "DeviceSplit",
    "device_split",
    "device_workload",
    "latency_metric",
    "make_tasks",
    "reference_archs",
    "sample_support",
    "trim",
]

HELP_REFERENCE_INDICES: dict[str, tuple[int, ...]] = {
    "nasbench201": (11982, 431, 55, 9, 14451, 8636, 9881, 13479, 6196, 1462),
    "fbnet": (3328, 3790, 3313, 890, 3052, 2538, 1640, 2514, 457, 2100),
    "ofa": (1316, 1587, 1621, 1636, 1980, 2329, 2487, 3355, 3740, 4948),
}
HELP_TRAIN_POOL = {"nasbench201": 900, "fbnet": 4000, "ofa": 4000}
_NB_TRAIN = ["silver_4114", "silver_4210r", "samsung_a50", "pixel3", "essential_ph_1", "samsung_s7"]
HELP_DEVICES: dict[str, dict[str, list[str]]] = {
    "nasbench201": {
        "train": ["1080ti_1", "1080ti_32", "1080ti_256", *_NB_TRAIN],
        "valid": ["titanx_1", "titanx_32", "titanx_256", "gold_6240"],
        "test": ["titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss"],
    },
    "fbnet": {
        "train": ["1080ti_1", "1080ti_32", "1080ti_64", *_NB_TRAIN],
        "valid": ["titanx_1", "titanx_32", "titanx_64", "gold_6240"],
        "test": ["fpga", "raspi4", "eyeriss"],
    },
    "ofa": {
        "train": [f"{g}_{b}" for g in ("2080ti", "titan_xp", "v100") for b in (1, 32, 64)],
        "valid": ["titan_rtx_1", "titan_rtx_32"],
        "test": ["titan_rtx_64"],
    },
}
TRIM = 0.1
QUERY_POOL = 1000


def trim(archs: Sequence[str], latency: np.ndarray, fraction: float = TRIM) -> list[str]:
    """Drop the ``fraction`` lowest and highest latencies (HELP's outlier removal)."""
    n = len(archs)
    order = np.argsort(latency, kind="stable")
    keep = order[int(n * fraction) : int(n * (1.0 - fraction))]
    return [archs[i] for i in sorted(keep)]


def _bench_index(table: pd.DataFrame) -> dict[str, int]:
    raw: dict[str, Any] = dict(table.attrs.get("benchmark_index", {}) or {})
    return {str(a): int(i) for a, i in raw.items() if i is not None and not pd.isna(i)}


def _ordered_pools(table: pd.DataFrame, space: str, split_seed: int) -> tuple[list[str], list[str]]:
    """(training pool, query pool) before per-device trimming."""
    bidx = _bench_index(table)
    archs = [str(a) for a in table.index]
    if bidx and all(a in bidx for a in archs):
        n_train = HELP_TRAIN_POOL.get(space, min(4000, len(archs) // 2))
        by_idx = sorted(archs, key=lambda a: bidx[a])
        train = [a for a in by_idx if bidx[a] < n_train]
        query = [a for a in by_idx if n_train <= bidx[a] < n_train + QUERY_POOL]
        return train, query
    rng = np.random.default_rng(split_seed)
    ordered = sorted(archs)
    perm = [ordered[i] for i in rng.permutation(len(ordered))]
    n_train = min(4000, len(perm) // 2)
    return perm[:n_train], perm[n_train : n_train + QUERY_POOL]


def latency_metric(space: str) -> str:
    """The hwdb metric that is ``space``'s latency (``SearchSpace.latency_metric``:
    ``"e2e_ms"`` for language models, else ``"latency_ms"``, also for unregistered spaces);
    :func:`hwdb.space_latency_metric`, which ``HardwareDB.latency_table`` defaults to."""
    from hwdb import space_latency_metric

    return space_latency_metric(space)


def device_workload(table: pd.DataFrame, space: str, device: str) -> Workload | None:
    """The workload ``device``'s column of ``table`` was measured under, or None for the
    space's default (nothing stored, an unregistered space, or the default itself).

    Stored fields override the space's default workload; the others keep it.

    Raises:
        PredictorError: when the stored workload has unknown or invalid fields.
    """
    stored = dict((table.attrs.get("workload") or {}).get(device) or {})
    if not stored:
        return None
    from search_spaces import UnknownSpaceError, get_space

    try:
        sp = get_space(space)
    except UnknownSpaceError:  # unregistered space: no featurizer reads a workload
        return None
    default = sp.default_workload()
    try:
        workload = sp.workload_with(stored)
    except ValueError as exc:
        raise PredictorError(f"device {device!r}: bad stored workload {stored}: {exc}") from exc
    return None if workload == default else workload


def reference_archs(table: pd.DataFrame, space: str, *, split_seed: int = 0) -> list[str]:
    """The 10 hardware-embedding reference archs of ``space`` present in ``table``.

    HELP's reference archs where ``table`` carries HELP's benchmark indices, else the
    registered space's ``hardware_embedding_archs`` when ``table`` measures them all, else
    (an unregistered space, or references not measured) the first 10 training-pool archs
    measured on every device.

    Raises:
        NotEnoughDataError: when fewer than 10 archs are measured on every device.
    """
    bidx = _bench_index(table)
    if space in HELP_REFERENCE_INDICES and bidx:
        inv = {i: a for a, i in bidx.items()}
        refs = [inv.get(i) for i in HELP_REFERENCE_INDICES[space]]
        if all(r is not None for r in refs):
            return [str(r) for r in refs]
    from search_spaces import UnknownSpaceError, get_space

    try:
        obj = get_space(space)
    except UnknownSpaceError:  # unregistered space (HELP's ofa): fall back to a seeded choice
        obj = None
    if obj is not None:  # a registered space's errors are bugs to report, not to paper over
        refs2 = [obj.to_string(a) for a in obj.hardware_embedding_archs()]
        if refs2 and all(r in table.index for r in refs2):
            return refs2
    train, _ = _ordered_pools(table, space, split_seed)
    complete = table.loc[train].dropna(axis=0, how="any")
    if len(complete) < 10:
        raise NotEnoughDataError(
            f"space {space!r} needs 10 archs measured on every device to form the hardware "
            "embedding; measure more with `nas measure`"
        )
    return [str(a) for a in complete.index[:10]]


@dataclass(frozen=True)
class DeviceSplit:
    """One device's HELP-protocol split (pools already trimmed on this device)."""

    device: str
    train_pool: list[str]
    query: list[str]
    reference: list[str]


def device_split(
    table: pd.DataFrame, space: str, device: str, *, split_seed: int = 0
) -> DeviceSplit:
    """Training pool, query pool (both trimmed on ``device``) and reference archs.

    Raises:
        NotEnoughDataError: when the device lacks reference or enough pool measurements.
    """
    if device not in table.columns:
        raise NotEnoughDataError(f"device {device!r} has no measurements in space {space!r}")
    train, query = _ordered_pools(table, space, split_seed)
    refs = reference_archs(table, space, split_seed=split_seed)
    return _device_split(table, space, device, train, query, refs)


def device_splits(
    table: pd.DataFrame, space: str, *, split_seed: int = 0
) -> dict[str, DeviceSplit | NotEnoughDataError]:
    """:func:`device_split` of every device of ``table`` (the pools and reference archs,
    which depend on the table alone, computed once): the split, or why there is none."""
    train, query = _ordered_pools(table, space, split_seed)
    try:
        refs = reference_archs(table, space, split_seed=split_seed)
    except NotEnoughDataError as exc:  # no 10 archs every device has: no device has a split
        return {str(d): exc for d in table.columns}
    out: dict[str, DeviceSplit | NotEnoughDataError] = {}
    for device in map(str, table.columns):
        try:
            out[device] = _device_split(table, space, device, train, query, refs)
        except NotEnoughDataError as exc:
            out[device] = exc
    return out


def _device_split(
    table: pd.DataFrame, space: str, device: str, train: list[str], query: list[str],
    refs: list[str],
) -> DeviceSplit:  # fmt: skip
    """:func:`device_split` given the table's pools and reference archs."""
    col = table[device]
    train = [a for a, ok in zip(train, col.reindex(train).notna(), strict=True) if ok]
    query = [a for a, ok in zip(query, col.reindex(query).notna(), strict=True) if ok]
    missing = [r for r in refs if pd.isna(col.get(r))]
    if missing:
        raise NotEnoughDataError(
            f"device {device!r} lacks {len(missing)} of the 10 reference archs of {space!r}; "
            f"measure them with "
            f"`nas measure --space {space} --device-name {device} --reference-set`"
        )
    if len(train) < 20 or len(query) < 10:
        raise NotEnoughDataError(
            f"device {device!r} has {len(train)} training-pool and {len(query)} query-pool "
            f"measurements in {space!r}; need at least 20 and 10"
        )
    train_t = trim(train, col.loc[train].to_numpy(float))
    query_t = trim(query, col.loc[query].to_numpy(float))
    return DeviceSplit(device, train_t, query_t, refs)


def sample_support(split: DeviceSplit, k: int, seed: int | None) -> list[str]:
    """``k`` random training-pool archs (not reference archs, never query archs); none for
    ``k == 0`` (adaptation on the reference archs alone)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"`k` must be an integer greater than or equal to 0, got {k!r}.")
    if k == 0:
        return []
    pool = [a for a in split.train_pool if a not in set(split.reference)]
    if k > len(pool):
        raise NotEnoughDataError(f"need {k} support archs, the training pool has {len(pool)}")
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.choice(len(pool), size=k, replace=False)]


def make_tasks(
    table: pd.DataFrame, space: str, devices: Sequence[str], *, split_seed: int = 0
) -> list[DeviceTask]:
    """One meta-training :class:`DeviceTask` per device: its trimmed training pool and its
    reference latencies. Query-pool archs never enter meta-training.

    Raises:
        ValueError: naming ``devices`` when it is one string.
        NotEnoughDataError: when a device lacks reference or enough pool measurements.
    """
    tasks = []
    for dev in str_list(devices, "devices", "device names", "device"):
        split = device_split(table, space, dev, split_seed=split_seed)
        col = table[dev]
        tasks.append(
            DeviceTask(
                space=space,
                device=dev,
                archs=tuple(split.train_pool),
                latency_ms=col.loc[split.train_pool].to_numpy(float),
                reference_ms=col.loc[split.reference].to_numpy(float),
                workload=device_workload(table, space, dev),
            )
        )
    return tasks

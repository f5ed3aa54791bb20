"""Zero-shot evaluation (``nas predictor evaluate --shots 0``) and simulated source devices.

Zero-shot uses none of the target device's measurements: the meta-trained predictor learns from
the other devices of the database only, the target's hardware embedding is the datasheet
roofline, and the target's measurements serve only as ground truth on its HELP query pool (the
same pool :func:`predictors.evaluate_adapted` scores).

Simulated devices (an idea from the HW-NAS literature's synthetic-device augmentation) are
roofline latencies of the training pool under randomised device models: random peak FLOP/s,
bandwidth, per-op overhead and fixed cost spanning embedded to datacenter parts. They can be
added to the real source devices during meta-training (``simulated=N``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from predictors._base import DeviceTask, get_predictor
from predictors._data import device_split, device_workload, latency_metric, make_tasks
from predictors._evaluate import latency_metrics, source_devices
from predictors._progress import progress_bar
from predictors._service import DEFAULT_PREDICTOR
from predictors.zeroshot._classes import device_model
from predictors.zeroshot._roofline import DeviceModel, roofline_latency_ms
from predictors.zeroshot._tracecache import persistent_traces
from predictors.zeroshot._zeroshot import (
    DATASHEET_SCALE,
    ZERO_SHOT_SOURCE,
    adapt_zero_shot,
    datasheet_std,
    reference_strings,
)

if TYPE_CHECKING:
    from hwdb import HardwareDB
    from hwdb.catalog import CatalogEntry

__all__ = ["evaluate_zero_shot", "simulated_device_models", "simulated_tasks"]

_METRICS = ("spearman", "kendall", "mape", "within_10pct", "coverage_90")


def simulated_device_models(n: int, seed: int | None = 0) -> list[DeviceModel]:
    """``n`` random roofline devices (log-uniform peak, bandwidth and overheads)."""
    if n < 0:
        raise ValueError("`n` must be greater than or equal to 0.")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        peak = 10 ** rng.uniform(10.5, 13.5)
        out.append(
            DeviceModel(
                name=f"simulated-{i}",
                peak_flops=peak,
                bandwidth=10 ** rng.uniform(9.5, 12.0),
                lanes=float(2 ** rng.integers(4, 13)),
                bytes_per_element=float(rng.choice([1.0, 2.0, 4.0])),
                compute_eff=float(rng.uniform(0.1, 0.7)),
                window_flops=float(10 ** rng.uniform(9.0, 11.0)),
                memory_eff=float(rng.uniform(0.3, 0.8)),
                op_overhead_s=float(10 ** rng.uniform(-6.5, -4.0)),
                fixed_overhead_s=float(10 ** rng.uniform(-5.0, -3.0)),
            )
        )
    return out


def simulated_tasks(
    space: str, archs: Sequence[str], n: int, *, seed: int | None = 0
) -> list[DeviceTask]:
    """Meta-training tasks of ``n`` simulated devices over ``archs`` (reference archs added)."""
    refs = reference_strings(space)
    tasks = []
    for dm in simulated_device_models(n, seed):
        with persistent_traces():  # a fixed set, traced again by every process
            lat = roofline_latency_ms(space, list(archs), dm)
            ref = roofline_latency_ms(space, refs, dm)
        tasks.append(DeviceTask(space, dm.name, tuple(archs), lat, ref))
    return tasks


def evaluate_zero_shot(
    db: HardwareDB,
    *,
    space: str,
    device: str,
    catalog_entry: str | CatalogEntry,
    seeds: Sequence[int] = (0, 1, 2),
    predictor: str | None = None,
    precision: str | None = None,
    simulated: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Score zero-shot predictions for ``device`` against its measurements in ``db``.

    One meta-training per seed (the predictor's ``seed``); the target device is never a
    source. The roofline prices the device's measured workload
    (:func:`~predictors.device_workload`).

    Args:
        db: Hardware database holding the target's measurements (ground truth only) and the
            source devices.
        space: Search-space name.
        device: The measured target device.
        catalog_entry: The target's catalog entry (or its name).
        seeds: Meta-training seeds.
        predictor: Registered predictor (default: the service default).
        precision: Precision of the roofline (default: the device's).
        simulated: Simulated devices added to meta-training.
        progress: Progress bars on stderr (tracing the query pool, meta-training).

    Returns:
        ``{"spearman", "kendall", "mape", "within_10pct", "per_seed", "roofline", "source",
        "n_query"}``: means over seeds, per-seed metrics, the roofline baseline's metrics.
    """
    from hwdb.catalog import CatalogEntry, get_entry

    if not seeds:
        raise ValueError("`seeds` must not be empty.")
    entry = catalog_entry if isinstance(catalog_entry, CatalogEntry) else get_entry(catalog_entry)
    target = db.get_device(device)
    dm = device_model(entry, precision=precision or target.precision, runtime=target.runtime)
    table = db.latency_table(space, metric=latency_metric(space))
    split = device_split(table, space, device)
    true = table[device].loc[split.query].to_numpy(float)
    workload = device_workload(table, space, device)
    query = list(split.query)
    with (
        persistent_traces(),  # the device's fixed query pool
        progress_bar(progress, "roofline of the query pool", len(query)) as advance,
    ):
        roofline = np.empty(len(query))
        for i, arch in enumerate(query):
            roofline[i] = (
                DATASHEET_SCALE * roofline_latency_ms(space, [arch], dm, workload=workload)[0]
            )
            advance()
    train, valid = source_devices(table, space, device)
    tasks = make_tasks(table, space, [d for d in (*train, *valid) if d != device])
    name = predictor or DEFAULT_PREDICTOR
    # deterministic baselines (FLOPs regression, from scratch) take no seed
    seeded = "seed" in inspect.signature(type(get_predictor(name))).parameters
    per_seed = []
    for seed in seeds:
        extra = simulated_tasks(space, tasks[0].archs, simulated, seed=seed) if simulated else []
        params = {"seed": int(seed)} if seeded else {}
        model = get_predictor(name, **params).fit([*tasks, *extra], progress=progress)
        adapted, _ = adapt_zero_shot(model, space, dm, workload)
        mean, std = adapted.predict(split.query)
        std = np.maximum(std, datasheet_std(mean))  # as ZeroShotLatencyModel serves it
        per_seed.append({"seed": int(seed), **latency_metrics(mean, true, std)})
    out: dict[str, Any] = {k: float(np.mean([r[k] for r in per_seed])) for k in _METRICS}
    out["per_seed"] = per_seed
    out["roofline"] = latency_metrics(roofline, true, datasheet_std(roofline))
    out["source"] = ZERO_SHOT_SOURCE
    out["catalog_entry"] = entry.name
    out["n_query"] = len(split.query)
    return out

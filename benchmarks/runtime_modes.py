"""How well each runtime mode of the datasheet roofline ranks real latencies.

For every measured device that has a catalog entry for its chip, the roofline prices the
device's archs with that entry under each operator list of :mod:`predictors.zeroshot._trace`
(``graph``: fused and pruned; ``eager``: every operator; ``pruned``: pruned, nothing fused) and
under the ways an unknown runtime could average them (``eager+graph``, the rule before session
22; ``eager+pruned``, the current one; ``all``, the mean of the three). It prints the Spearman
rank correlation of each with the measurements, per device and as means: over the NAS-Bench-201
devices (HELP / LatBench, each device's trimmed HELP query pool) and over the project's own
measured spaces (the bundled CPU and H200 rows, every measured arch). Nothing is fitted on any
device. This is the evidence for what the ``unknown`` runtime averages (README, issue 8).

Usage (import the data first; ``hwdb init`` adds the bundled measurements; a device missing
from the database is listed under ``skipped``)::

    nas --db sqlite:///bench.sqlite hwdb import help ../shared/data/help/data
    nas --db sqlite:///bench.sqlite hwdb import latbench ../shared/data/latbench/*.pickle
    nas --db sqlite:///bench.sqlite hwdb init
    python benchmarks/runtime_modes.py --db sqlite:///bench.sqlite
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from hwdb import HardwareDB
from hwdb.catalog import get_entry
from predictors import device_split, device_workload, latency_metric
from predictors.zeroshot import TRACE_MODES, device_model, estimate_latency_ms, op_tables
from predictors.zeroshot._tracecache import persistent_traces

#: (space, measured device, its catalog entry). NAS-Bench-201: every HELP / LatBench device
#: with an entry for its chip (HELP's batch-1 and batch-32 GPUs, its server and phone CPUs;
#: LatBench's). Own spaces: the bundled rows, this project's CPU (nearest entry: a Xeon) and
#: its H200 (nearest entry: the H100).
PAIRS = (
    ("nasbench201", "embedded-gpu-jetson-nano-fp32", "jetson-nano"),
    ("nasbench201", "desktop-gpu-gtx-1080ti-fp32", "gtx-1080-ti"),
    ("nasbench201", "desktop-cpu-core-i7-7820x-fp32", "core-i7-7820x"),
    ("nasbench201", "mobile-cpu-snapdragon-855-kryo-485-int8", "snapdragon-855-kryo-485"),
    ("nasbench201", "raspi4", "raspberry-pi-4"),
    ("nasbench201", "pixel3", "snapdragon-845-kryo-385"),
    ("nasbench201", "gold_6226", "xeon-gold-6226"),
    ("nasbench201", "gold_6240", "xeon-gold-6226"),
    ("nasbench201", "1080ti_1", "gtx-1080-ti"),
    ("nasbench201", "1080ti_32", "gtx-1080-ti"),
    ("nasbench201", "titan_rtx_1", "titan-rtx"),
    ("nasbench201", "titan_rtx_32", "titan-rtx"),
    ("nasbench201", "titanx_1", "titan-rtx"),
    ("mnasnet", "cpu-torch-fp32-t1", "xeon-gold-6226"),
    ("mnasnet", "cpu-ort-fp32-t1", "xeon-gold-6226"),
    ("mobilevig", "cpu-torch-fp32-t1", "xeon-gold-6226"),
    ("mobilevig", "cpu-ort-fp32-t1", "xeon-gold-6226"),
    ("mnasnet", "h200-torch-fp32-b1", "h100-sxm"),
    ("mnasnet", "h200-torch-fp16-b1", "h100-sxm"),
)
#: Estimates compared: one mode, or the mean of several (an unknown runtime).
COLUMNS = {
    "graph": ("graph",),
    "eager": ("eager",),
    "pruned": ("pruned",),
    "eager+graph": ("eager", "graph"),
    "eager+pruned": ("eager", "pruned"),
    "all": TRACE_MODES,
}


def score_pair(table: Any, db: HardwareDB, space: str, device: str, entry: str) -> dict[str, float]:
    """Spearman of every column of :data:`COLUMNS` on ``device``'s archs of ``space``."""
    if space == "nasbench201":
        archs = list(device_split(table, space, device).query)
    else:
        archs = list(table[device].dropna().index)
    true = table[device].loc[archs].to_numpy(float)
    workload = device_workload(table, space, device)
    dm = device_model(get_entry(entry), precision=db.get_device(device).precision)
    tables = [op_tables(space, a, workload, modes=TRACE_MODES) for a in archs]
    ms = {m: np.array([estimate_latency_ms(t[i], dm) for t in tables])
          for i, m in enumerate(TRACE_MODES)}  # fmt: skip
    out = {"n": float(len(archs))}
    for name, modes in COLUMNS.items():
        est = np.mean([ms[m] for m in modes], axis=0)
        out[name] = round(float(spearmanr(est, true)[0]), 4)
    return out


def measured_pairs(db: HardwareDB) -> Iterator[tuple[Any, str, str, str | None]]:
    """``(table, space, device, entry)`` for every pair of :data:`PAIRS`, one latency table per
    space; ``entry`` is None for a device the database does not hold (a skipped pair)."""
    for space in dict.fromkeys(s for s, _, _ in PAIRS):
        table = db.latency_table(space, metric=latency_metric(space))
        for sp, device, entry in PAIRS:
            if sp == space:
                yield table, space, device, entry if device in table.columns else None


def _means(rows: list[dict[str, float]]) -> dict[str, float]:
    return {c: round(float(np.mean([r[c] for r in rows])), 4) for c in COLUMNS} if rows else {}


def main() -> None:
    """Run the benchmark and print JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True, help="database with HELP, LatBench, bundled rows")
    args = p.parse_args()
    results: dict[str, Any] = {"pairs": {}, "skipped": []}
    with HardwareDB(args.db, create=False) as db, persistent_traces():
        for table, space, device, entry in measured_pairs(db):
            if entry is None:
                results["skipped"].append(f"{space}/{device}")
            else:
                results["pairs"][f"{space}/{device}"] = score_pair(table, db, space, device, entry)
    rows = results["pairs"]
    nb201 = [r for k, r in rows.items() if k.startswith("nasbench201/")]
    own = [r for k, r in rows.items() if not k.startswith("nasbench201/")]
    results["mean_nasbench201"] = _means(nb201)
    results["mean_own_spaces"] = _means(own)
    results["mean_all"] = _means(list(rows.values()))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

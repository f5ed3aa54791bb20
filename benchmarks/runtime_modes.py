"""How well each runtime mode of the datasheet roofline ranks real NAS-Bench-201 latencies.

For every measured device that has a catalog entry, the roofline prices the device's trimmed
HELP query pool with its catalog entry under each operator list of
:mod:`predictors.zeroshot._trace` (``graph``: fused and pruned; ``eager``: every operator;
``pruned``: pruned, nothing fused) and under the two ways an unknown runtime can average them
(``eager+graph``, the choice before session 22, and ``eager+pruned``, the current one).
It prints the Spearman rank correlation of each with the device's measurements, per device
and as a mean. Nothing is fitted on any device: this is the zero-shot roofline row of
``zero_shot.py`` for many devices at once, the evidence for what the ``unknown`` runtime
averages (README, issue 8).

Usage (import the data first)::

    nas --db sqlite:///bench.sqlite hwdb import help ../shared/data/help/data
    nas --db sqlite:///bench.sqlite hwdb import latbench ../shared/data/latbench/*.pickle
    python benchmarks/runtime_modes.py --db sqlite:///bench.sqlite
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from hwdb import HardwareDB
from hwdb.catalog import get_entry
from predictors import device_split, device_workload, latency_metric
from predictors.zeroshot import TRACE_MODES, device_model, estimate_latency_ms, op_table
from predictors.zeroshot._tracecache import persistent_traces

SPACE = "nasbench201"
#: (measured device, its catalog entry): every HELP / LatBench NB201 device with an entry for
#: its chip (HELP's batch-1 and batch-32 GPUs, its server and phone CPUs; LatBench's devices).
DEVICES = (
    ("embedded-gpu-jetson-nano-fp32", "jetson-nano"),
    ("desktop-gpu-gtx-1080ti-fp32", "gtx-1080-ti"),
    ("desktop-cpu-core-i7-7820x-fp32", "core-i7-7820x"),
    ("mobile-cpu-snapdragon-855-kryo-485-int8", "snapdragon-855-kryo-485"),
    ("raspi4", "raspberry-pi-4"),
    ("pixel3", "snapdragon-845-kryo-385"),
    ("gold_6226", "xeon-gold-6226"),
    ("gold_6240", "xeon-gold-6226"),
    ("1080ti_1", "gtx-1080-ti"),
    ("1080ti_32", "gtx-1080-ti"),
    ("titan_rtx_1", "titan-rtx"),
    ("titan_rtx_32", "titan-rtx"),
    ("titanx_1", "titan-rtx"),
)
#: Estimates compared: one mode, or the mean of two (an unknown runtime).
COLUMNS = {
    "graph": ("graph",),
    "eager": ("eager",),
    "pruned": ("pruned",),
    "eager+graph": ("eager", "graph"),
    "eager+pruned": ("eager", "pruned"),
}


def score_device(db_table: Any, db: HardwareDB, device: str, entry: str) -> dict[str, float]:
    """Spearman of every column of :data:`COLUMNS` on ``device``'s query pool."""
    split = device_split(db_table, SPACE, device)
    query = list(split.query)
    true = db_table[device].loc[query].to_numpy(float)
    workload = device_workload(db_table, SPACE, device)
    dm = device_model(get_entry(entry), precision=db.get_device(device).precision)
    ms = {
        mode: np.array([estimate_latency_ms(op_table(SPACE, a, workload, mode=mode), dm)
                        for a in query])
        for mode in TRACE_MODES
    }  # fmt: skip
    out = {"n_query": float(len(query))}
    for name, modes in COLUMNS.items():
        est = np.mean([ms[m] for m in modes], axis=0)
        out[name] = round(float(spearmanr(est, true)[0]), 4)
    return out


def main() -> None:
    """Run the benchmark and print JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True, help="database URL with LatBench + HELP imported")
    p.add_argument("--devices", nargs="*", default=[d for d, _ in DEVICES])
    args = p.parse_args()
    entries = dict(DEVICES)
    unknown = [d for d in args.devices if d not in entries]
    if unknown:
        p.error(f"--devices: no catalog entry known for {unknown[0]!r}")
    results: dict[str, Any] = {"space": SPACE, "devices": {}}
    with HardwareDB(args.db, create=False) as db, persistent_traces():
        table = db.latency_table(SPACE, metric=latency_metric(SPACE))
        for device in args.devices:
            if device in table.columns:
                results["devices"][device] = score_device(table, db, device, entries[device])
    scored = list(results["devices"].values())
    results["mean"] = {c: round(float(np.mean([r[c] for r in scored])), 4) for c in COLUMNS}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

"""Few-shot prediction on devices unlike every source device (prints JSON).

help+ is meta-trained on HELP's NAS-Bench-201 devices only (PyTorch-era GPUs, server CPUs,
phones, Raspberry Pi, an ASIC and an FPGA, on HELP's network) and adapted with 10 random
training-pool archs + the 10 reference archs (HELP protocol, 5 seeds) to each LatBench device,
which was measured with another runtime (TensorFlow / TFLite) on another network configuration.
Each ``--sim-devices`` value is one meta-training of help+ (0: no roofline prior), evaluated with
each ``--additive`` setting (1: stack the additive per-operator ridge) and, with it, each
``--source-luts`` setting (the source lookup tables as a candidate) and ``--parallel``
setting (the critical-path model of runtimes that run a cell's branches concurrently).
Usage (import first)::

    nas --db sqlite:///bench.sqlite hwdb import latbench ../shared/data/latbench/*.pickle
    nas --db sqlite:///bench.sqlite hwdb import help ../shared/data/help/data
    python benchmarks/unseen_devices.py --db sqlite:///bench.sqlite --sim-devices 0 8 --additive 0 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

SPACE = "nasbench201"
LATBENCH_PREFIXES = ("embedded-", "desktop-", "mobile-")


def run(
    table: Any,
    targets: list[str],
    sources: list[str],
    sim: int,
    additive: list[int],
    seeds: int,
    luts: Sequence[int] = (1,),
    parallel: Sequence[int] = (1,),
) -> list[dict[str, Any]]:
    """Meta-train once on ``sources``; evaluate every target with each ``additive`` setting."""
    from predictors import evaluate_adapted, meta_train_for

    t0 = time.perf_counter()
    model = meta_train_for("help+", table, SPACE, sources, params={"sim_devices": sim})
    fit_s = time.perf_counter() - t0
    runs = []
    combos = [(0, 0, 0)] * (0 in additive)
    combos += [(1, t, p) for t in luts for p in parallel] * (1 in additive)
    for add, tables, par in combos:
        model.additive = bool(add)  # type: ignore[attr-defined] # adaptation-time switches
        model.source_luts = bool(tables)  # type: ignore[attr-defined]
        model.parallel = bool(par)  # type: ignore[attr-defined]
        per_device = {}
        for device in targets:
            res = evaluate_adapted(model, table, SPACE, device, shots=10, seeds=range(seeds))
            per_device[device] = {
                k: round(float(res[k]), 4) for k in ("spearman", "within_10pct", "coverage_90")
            }
        runs.append(
            {
                "sim_devices": sim,
                "additive": bool(add),
                "source_luts": bool(tables),
                "parallel": bool(par),
                "meta_train_s": round(fit_s, 1),
                "mean_spearman": round(
                    float(np.mean([v["spearman"] for v in per_device.values()])), 4
                ),
                "mean_coverage_90": round(
                    float(np.mean([v["coverage_90"] for v in per_device.values()])), 4
                ),
                "devices": per_device,
            }
        )
    return runs


def main(argv: list[str] | None = None) -> int:
    """Run and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="hwdb URL with HELP + LatBench imported")
    parser.add_argument("--sim-devices", type=int, nargs="+", default=[0, 8])
    parser.add_argument("--additive", type=int, nargs="+", choices=[0, 1], default=[0, 1])
    parser.add_argument(
        "--source-luts",
        type=int,
        nargs="+",
        choices=[0, 1],
        default=[1],
        help="with --additive 1: offer the source lookup tables to the stack (1) or not (0)",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        nargs="+",
        choices=[0, 1],
        default=[1],
        help="with --additive 1: offer the critical-path (concurrent branches) model (1) or not",
    )
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)

    from hwdb import HardwareDB
    from predictors._data import HELP_DEVICES

    with HardwareDB(args.db, create=False) as db:
        table = db.latency_table(SPACE)
    targets = [d for d in table.columns if d.startswith(LATBENCH_PREFIXES)]
    split = HELP_DEVICES[SPACE]
    sources = [d for d in [*split["train"], *split["valid"]] if d in table.columns]
    if not targets or not sources:
        parser.error("the database needs both HELP's and LatBench's NAS-Bench-201 devices")
    table = table[sources + targets]
    switches = (args.source_luts, args.parallel)
    out = {
        "space": SPACE,
        "sources": sources,
        "runs": [
            r
            for sim in args.sim_devices
            for r in run(table, targets, sources, sim, args.additive, args.seeds, *switches)
        ],
    }
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

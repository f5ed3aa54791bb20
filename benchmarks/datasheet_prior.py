"""Few-shot adaptation with and without the device's datasheet roofline as a prior.

help+ is meta-trained once on HELP's NAS-Bench-201 training and validation devices minus every
target (pixel3 is one of HELP's training devices) and adapted
with K measured archs + the 10 measured reference archs (5 draws per K) to every device that has
an entry in the device catalog: LatBench's Jetson Nano, desktop CPU and GPU and Snapdragon 855
CPU, HELP's raspi4, pixel3 and gold_6226. With ``datasheet`` the adaptation also gets the
device's catalog roofline (``LatencyPredictor.adapt(..., datasheet=...)``, what a device added
with ``nas device add NAME --catalog ENTRY`` gets). Spearman on each device's trimmed query pool.

Usage (import the data first)::

    nas --db sqlite:///bench.sqlite hwdb import latbench ../shared/data/latbench/*.pickle
    nas --db sqlite:///bench.sqlite hwdb import help ../shared/data/help/data
    python benchmarks/datasheet_prior.py --db sqlite:///bench.sqlite
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from hwdb import HardwareDB
from hwdb.catalog import get_entry
from predictors import HELP_DEVICES, evaluate_adapted, meta_train_for
from predictors.zeroshot import device_model

SPACE = "nasbench201"
#: device -> (catalog entry, precision); every catalogued device of HELP + LatBench not used
#: in meta-training.
TARGETS = {
    "embedded-gpu-jetson-nano-fp32": ("jetson-nano", "fp32"),
    "raspi4": ("raspberry-pi-4", "fp32"),
    "pixel3": ("snapdragon-845-kryo-385", "fp32"),
    "desktop-cpu-core-i7-7820x-fp32": ("core-i7-7820x", "fp32"),
    "desktop-gpu-gtx-1080ti-fp32": ("gtx-1080-ti", "fp32"),
    "mobile-cpu-snapdragon-855-kryo-485-int8": ("snapdragon-855-kryo-485", "int8"),
    "gold_6226": ("xeon-gold-6226", "fp32"),
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Spearman per device, shots and variant, and the means over devices."""
    with HardwareDB(args.db, create=False) as db:
        table = db.latency_table(SPACE)
    dev = HELP_DEVICES[SPACE]
    t0 = time.perf_counter()
    train = [d for d in dev["train"] if d not in TARGETS]
    valid = [d for d in dev["valid"] if d not in TARGETS]
    model = meta_train_for("help+", table, SPACE, train, valid)
    out: dict[str, Any] = {
        "fit_s": round(time.perf_counter() - t0, 1), "sources": train + valid, "devices": {}
    }  # fmt: skip
    seeds = range(args.seeds)
    for device, (entry, precision) in TARGETS.items():
        ds = device_model(get_entry(entry), precision=precision, runtime="unknown")
        row: dict[str, Any] = {}
        for k in args.shots:
            for label, prior in (("plain", None), ("datasheet", ds)):
                res = evaluate_adapted(model, table, SPACE, device, shots=k, seeds=seeds,
                                       datasheet=prior)  # fmt: skip
                row[f"{label}_{k}"] = round(res["spearman"], 4)
        out["devices"][device] = row
        print(f"# {device}: {row}", file=sys.stderr, flush=True)
    for key in next(iter(out["devices"].values())):
        out[f"mean_{key}"] = round(float(np.mean([r[key] for r in out["devices"].values()])), 4)
    return out


def main() -> None:
    """Run the benchmark and print JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True, help="database URL with LatBench + HELP imported")
    p.add_argument("--shots", type=int, nargs="*", default=[5, 10, 20])
    p.add_argument("--seeds", type=int, default=5)
    print(json.dumps(run(p.parse_args()), indent=2))


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

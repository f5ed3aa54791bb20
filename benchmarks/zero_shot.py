"""Zero-shot latency prediction on NAS-Bench-201 for devices known only by their datasheet.

For each target (LatBench Jetson Nano fp32, HELP raspi4 and pixel3) it reports Spearman / Kendall
/ MAPE on the device's trimmed HELP query pool of:

* ``roofline``: the datasheet roofline alone (no data at all);
* ``zero_shot``: the meta-learned predictor (trained on every *other* device) adapted to roofline
  estimates of the 10 reference archs; ``zero_shot_simulated``: the same with simulated devices
  added to meta-training;
* ``shots_K``: the predictor adapted to K measured archs + the 10 measured reference archs.

Nothing is fitted on a target device's measurements except in the ``shots_K`` rows.

Usage (import the data first)::

    nas --db sqlite:///bench.sqlite hwdb import latbench ../shared/data/latbench/*.pickle
    nas --db sqlite:///bench.sqlite hwdb import help ../shared/data/help/data
    python benchmarks/zero_shot.py --db sqlite:///bench.sqlite --seeds 3
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from hwdb import HardwareDB
from predictors import DEFAULT_PREDICTOR, evaluate_adapted, meta_train_for, source_devices
from predictors.zeroshot import evaluate_zero_shot

TARGETS = (
    ("embedded-gpu-jetson-nano-fp32", "jetson-nano"),
    ("raspi4", "raspberry-pi-4"),
    ("pixel3", "snapdragon-845-kryo-385"),
)
SPACE = "nasbench201"


def _brief(m: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(m[k]), 4) for k in ("spearman", "kendall", "mape", "within_10pct")}


def run_target(db: HardwareDB, device: str, entry: str, args: argparse.Namespace) -> dict[str, Any]:
    """All rows of one target device."""
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    zs = evaluate_zero_shot(db, space=SPACE, device=device, catalog_entry=entry, seeds=seeds)
    out: dict[str, Any] = {
        "catalog_entry": entry,
        "n_query": zs["n_query"],
        "roofline": _brief(zs["roofline"]),
        "zero_shot": _brief(zs),
        "zero_shot_seconds": round(time.perf_counter() - t0, 1),
    }
    if args.simulated:
        sim = evaluate_zero_shot(
            db, space=SPACE, device=device, catalog_entry=entry, seeds=seeds,
            simulated=args.simulated,
        )  # fmt: skip
        out["zero_shot_simulated"] = _brief(sim)
    table = db.latency_table(SPACE)
    train, valid = source_devices(table, SPACE, device)
    model = meta_train_for(DEFAULT_PREDICTOR, table, SPACE, [*train, *valid])
    for k in args.shots:
        res = evaluate_adapted(model, table, SPACE, device, shots=k, seeds=range(args.shots_seeds))
        out[f"shots_{k}"] = _brief(res)
    return out


def main() -> None:
    """Run the benchmark and print JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True, help="database URL with LatBench + HELP imported")
    p.add_argument("--seeds", type=int, default=3, help="meta-training seeds of zero-shot")
    p.add_argument("--simulated", type=int, default=0, help="simulated devices (0: skip)")
    p.add_argument("--shots", type=int, nargs="*", default=[5, 10, 20])
    p.add_argument("--shots-seeds", type=int, default=5)
    p.add_argument("--targets", nargs="*", default=[t[0] for t in TARGETS])
    args = p.parse_args()
    results: dict[str, Any] = {"space": SPACE, "predictor": DEFAULT_PREDICTOR, "devices": {}}
    with HardwareDB(args.db, create=False) as db:
        for device, entry in TARGETS:
            if device in args.targets:
                results["devices"][device] = run_target(db, device, entry, args)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

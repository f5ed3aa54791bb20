"""Leave-one-device-out evaluation on the project's own measured dataset (prints JSON).

For each space of the bundled dataset (``nas hwdb init``: mnasnet, mobilevig, nemotron_flash on
this machine's CPU configurations and, where measured, an H200) and each of its devices: help+
is meta-trained on the *other* devices of the space, adapted with ``--shots`` random
training-pool archs + the 10 hardware-embedding archs of the held-out device (seeded random
split of the space's archs, documented in ``predictors._data``), and scored on the held-out
device's trimmed query pool; FLOPs regression and the from-scratch ridge on the same
measurements are reported beside it. The held-out device's measurements never reach
meta-training.

    python benchmarks/own_spaces.py --seeds 5                 # bundled dataset, fresh SQLite
    python benchmarks/own_spaces.py --db sqlite:///my.sqlite --spaces mnasnet
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import Any

import numpy as np

SPACES = ("mnasnet", "mobilevig", "nemotron_flash")
BASELINES = ("flops", "scratch")
METRIC = {"nemotron_flash": "e2e_ms"}  # prefill + decode of the workload; others: latency_ms


def _table(db_url: str, space: str, metric: str | None) -> Any:
    from hwdb import HardwareDB

    with HardwareDB(db_url, create=False) as db:
        return db.latency_table(space, metric=metric or METRIC.get(space, "latency_ms"))


#: help+ variants: (label, additive stack, source lookup tables among its candidates).
VARIANTS = (
    ("help+", True, True),
    ("help+ no source tables", True, False),
    ("help+ basis only", False, False),
)


def evaluate_space(table: Any, space: str, shots: int, seeds: int) -> dict[str, Any]:
    """Leave-one-device-out scores of help+ (with and without its additive model) and the
    baselines, per held-out device, plus their means."""
    from predictors import NotEnoughDataError, device_split, evaluate_adapted, meta_train_for

    usable = []
    for device in table.columns:
        try:
            device_split(table, space, device)
            usable.append(device)
        except NotEnoughDataError as exc:  # e.g. a configuration still being measured
            print(f"# {space}: skipping {device}: {exc}", file=sys.stderr)
    per_device: dict[str, dict[str, Any]] = {}
    for device in usable:
        sources = [d for d in usable if d != device]
        t0 = time.perf_counter()
        model = meta_train_for("help+", table, space, sources)
        row: dict[str, Any] = {"meta_train_s": round(time.perf_counter() - t0, 1)}
        for label, additive, tables in VARIANTS:
            model.additive = additive  # type: ignore[attr-defined] # adaptation-time switches
            model.source_luts = tables  # type: ignore[attr-defined]
            res = evaluate_adapted(model, table, space, device, shots=shots, seeds=range(seeds))
            row[label] = {
                k: round(float(res[k]), 4) for k in ("spearman", "within_10pct", "coverage_90")
            }
        for name in BASELINES:
            baseline = meta_train_for(name, table, space, sources)
            res = evaluate_adapted(baseline, table, space, device, shots=shots, seeds=range(seeds))
            row[name] = {
                k: round(float(res[k]), 4) for k in ("spearman", "within_10pct", "coverage_90")
            }
        per_device[device] = row
        print(f"# {space} {device}: {row}", file=sys.stderr, flush=True)
    labels = [v[0] for v in VARIANTS] + list(BASELINES)
    mean = {
        k: round(float(np.mean([r[k]["spearman"] for r in per_device.values()])), 4) for k in labels
    }
    return {"devices": per_device, "mean_spearman": mean}


def main(argv: list[str] | None = None) -> int:
    """Run and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="hwdb URL (default: bundled dataset)")
    parser.add_argument("--spaces", nargs="+", default=list(SPACES))
    parser.add_argument("--metric", default=None, help="latency metric (default: the table's)")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)

    db_url = args.db
    if db_url is None:
        from hwdb import HardwareDB, import_parquet
        from hwdb.importers.parquet import bundled_datasets

        db_url = f"sqlite:///{tempfile.mkdtemp()}/bundled.sqlite"
        with HardwareDB(db_url) as db:
            for path in bundled_datasets():
                import_parquet(db, path)
    out: dict[str, Any] = {"shots": args.shots, "seeds": args.seeds, "spaces": {}}
    for space in args.spaces:
        table = _table(db_url, space, args.metric)
        out["spaces"][space] = evaluate_space(table, space, args.shots, args.seeds)
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

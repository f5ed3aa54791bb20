"""HELP-protocol benchmark of every registered latency predictor.

Lee et al., "HELP", NeurIPS 2021 (arXiv 2106.08630): meta-train on the HELP source devices,
adapt on 10 training-pool archs + the 10 reference archs of each test device, score on the
trimmed query pool. Reads the latency table through ``hwdb`` when ``--db`` is given (import with
``nas hwdb import help DIR``), else straight from the shared HELP files.

Example::

    python benchmarks/help_protocol.py --spaces nasbench201 fbnet ofa --seeds 5 \
        --predictors help maml flops scratch transfer help+ --cache /tmp/help-cache

Prints one JSON document on stdout; progress lines and a markdown table (mean +- std over seeds
of the per-seed mean over test devices) go to stderr. Also reports adaptation and prediction
timings of each predictor.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictors import (
    HELP_DEVICES,
    LatencyPredictor,
    PredictorError,
    evaluate_adapted,
    load_predictor,
    meta_train_for,
)

ALL = ["help", "maml", "flops", "scratch", "transfer", "help+"]
EPISODES = {"nasbench201": 2000, "fbnet": 4000, "ofa": 2000}


def _table(space: str, db_url: str | None) -> pd.DataFrame:
    if db_url:
        from hwdb import HardwareDB

        with HardwareDB(db_url, create=False) as db:
            return db.latency_table(space)
    from predictors._testing import help_latency_table

    return help_latency_table(space)


def _train(
    name: str, space: str, table: pd.DataFrame, args: argparse.Namespace
) -> tuple[LatencyPredictor, float]:
    params: dict[str, Any] = {}
    if name in ("help", "maml"):
        params["episodes"] = args.episodes or EPISODES[space]
    if args.meta_seed is not None and name not in ("flops", "scratch"):  # those have no seed
        params["seed"] = args.meta_seed
    key = f"{space}-{name}-{params.get('episodes', 0)}-s{params.get('seed', 'default')}.bin"
    if args.cache:
        path = Path(args.cache) / key
        if path.exists():
            try:
                return load_predictor(path.read_bytes()), float("nan")
            except PredictorError as exc:  # saved by another revision: meta-train again
                print(f"# {path.name}: {exc}; meta-training again", file=sys.stderr)
    dev = HELP_DEVICES[space]
    t0 = time.perf_counter()
    model = meta_train_for(
        name, table, space, dev["train"], dev["valid"], params=params, progress=args.progress
    )
    elapsed = time.perf_counter() - t0
    if args.cache:
        Path(args.cache).mkdir(parents=True, exist_ok=True)
        (Path(args.cache) / key).write_bytes(model.to_bytes())
    return model, elapsed


def _timings(model: LatencyPredictor, table: pd.DataFrame, space: str) -> dict[str, float]:
    from predictors import device_split, sample_support

    dev = HELP_DEVICES[space]["test"][0]
    split = device_split(table, space, dev)
    sup = sample_support(split, 10, 0) + split.reference
    col = table[dev]
    emb = col.loc[split.reference].to_numpy(float)
    t0 = time.perf_counter()
    adapted = model.adapt(sup, col.loc[sup].to_numpy(float), hw_embedding_ms=emb)
    t1 = time.perf_counter()
    archs = list(table.index)
    adapted.predict(archs[:50])  # warm caches
    t2 = time.perf_counter()
    adapted.predict(archs)
    t3 = time.perf_counter()
    adapted.predict(archs)  # arch strings parsed and encoded once, then memoised
    t4 = time.perf_counter()
    n = len(archs)
    return {"adapt_s": t1 - t0, f"predict_all_{n}_s": t3 - t2, f"predict_all_{n}_again_s": t4 - t3}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate every requested predictor on every requested space."""
    out: dict[str, Any] = {}
    seeds = list(range(args.seeds))
    for space in args.spaces:
        table = _table(space, args.db)
        out[space] = {}
        for name in args.predictors:
            model, fit_s = _train(name, space, table, args)
            per_dev = {
                d: evaluate_adapted(model, table, space, d, shots=args.shots, seeds=seeds)
                for d in HELP_DEVICES[space]["test"]
            }
            summary: dict[str, Any] = {"fit_s": fit_s, **_timings(model, table, space)}
            for metric in ("spearman", "kendall", "mape", "within_10pct", "coverage_90"):
                by_seed = [
                    float(np.mean([per_dev[d]["per_seed"][i][metric] for d in per_dev]))
                    for i in range(len(seeds))
                ]
                summary[metric] = {"mean": float(np.mean(by_seed)), "std": float(np.std(by_seed))}
            summary["devices"] = {d: round(r["spearman"], 4) for d, r in per_dev.items()}
            out[space][name] = summary
            print(f"# {space} {name}: {summary['spearman']}", file=sys.stderr, flush=True)
    return out


def markdown(results: dict[str, Any]) -> str:
    """Markdown table: Spearman / within-10% per space and predictor, mean +- std."""
    lines = [
        "| space | predictor | Spearman | within ±10% | MAPE | per-device Spearman |",
        "|---|---|---|---|---|---|",
    ]
    for space, preds in results.items():
        for name, s in preds.items():
            devs = ", ".join(f"{d} {v:.3f}" for d, v in s["devices"].items())
            lines.append(
                f"| {space} | {name} | {s['spearman']['mean']:.3f} ± {s['spearman']['std']:.3f} "
                f"| {s['within_10pct']['mean']:.2f} ± {s['within_10pct']['std']:.2f} "
                f"| {s['mape']['mean']:.3f} | {devs} |"
            )
    return "\n".join(lines)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=["nasbench201", "fbnet", "ofa"])
    parser.add_argument("--predictors", nargs="+", default=ALL)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=None, help="HELP/MAML episodes")
    parser.add_argument("--db", default=None, help="hwdb URL (default: shared HELP files)")
    parser.add_argument("--cache", default=None, help="folder caching meta-trained models")
    parser.add_argument(
        "--meta-seed",
        type=int,
        default=None,
        help="seed of meta-training (default: each predictor's own); the spread over a few of "
        "them is the meta-training noise, which the adaptation seeds' std does not show",
    )
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    results = run(args)
    print(json.dumps(results, indent=2))
    print(markdown(results), file=sys.stderr)


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

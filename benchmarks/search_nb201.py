"""Search quality on nasbench201: HV ratio of the found front vs the true Pareto front (JSON).

Device: LatBench Jetson Nano fp32; only its 10 hardware-embedding (reference) archs + 10 random
archs are visible to the latency model, everything else is predicted. Accuracy: NATS-Bench
CIFAR-10 test accuracy. The front found in ``--trials`` trials is re-scored with the device's
true latencies; HV convention: (test error %, latency ms) minimised, normalised by the true
front's ideal->nadir range, reference point (1.1, 1.1). Random search with the same number of
trials is reported beside it.

Usage: python benchmarks/search_nb201.py [--seeds 5] [--trials 1000] [--latency knn|adapted|oracle]
       [--device LATBENCH_DEVICE] [--keep-revisits] [--prune-dead-ops] [--catalog ENTRY]
       [--local-search SHARE] [--confirm]

``--device`` picks another LatBench column (a check that search settings were not tuned to the
Jetson); ``--keep-revisits`` turns duplicate elimination off (revisits count as trials);
``--prune-dead-ops`` evaluates a child with dead operations as its pruned twin;
``--local-search`` gives that share of each generation to neighbours of the front;
``--confirm`` then stores the device's true latencies of each seed's ``to_measure.txt`` (the
front's unmeasured archs and its contenders, ``p_front >= 0.1``), reruns the same command (the
study resumes, adapted again and re-scored with those measurements) and reports that front too
(``hv_ratio_confirmed``, ``confirm_measured``); the extra measurements are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from nas.search import LatencyModel

DEVICE = "embedded-gpu-jetson-nano-fp32"


def _data(shared: Path, device: str) -> tuple[pd.Series, pd.Series]:
    from search_spaces import get_space

    sp = get_space("nasbench201")
    acc = pd.read_csv(shared / "nb201-accuracy" / "nats_bench.csv")
    lat = pd.read_csv(shared / "latbench" / "latbench_nb201_ms.csv")
    if f"{device}_ms" not in lat.columns:
        names = sorted(c.removesuffix("_ms") for c in lat.columns if c.endswith("_ms"))
        raise SystemExit(f"error: --device must be one of {', '.join(names)}")
    archs = [sp.canonicalize(a) for a in acc["ArchitectureString"]]
    return (
        pd.Series(acc["CIFAR10TestAccuracy200Epochs"].to_numpy(), index=archs),
        pd.Series(lat[f"{device}_ms"].to_numpy(), index=archs).dropna(),
    )


def _front_hv(
    archs: list[str], acc: pd.Series, lat: pd.Series, ideal: np.ndarray, nadir: np.ndarray
) -> float:
    from nas.search import normalized_hypervolume

    archs = [a for a in dict.fromkeys(archs) if a in lat.index]
    pts = np.array([[100.0 - acc[a], lat[a]] for a in archs]).reshape(-1, 2)
    return normalized_hypervolume(pts, ideal=ideal, nadir=nadir)


def _measured(db: Any, device: str) -> set[str]:
    """Archs of ``device`` measured in the database (none for an unknown device)."""
    if device not in {d.name for d in db.list_devices()}:
        return set()
    table = db.latency_table("nasbench201", devices=[device])
    return set(table[device].dropna().index) if device in table.columns else set()


def _latency_model(kind: str, db_url: str, device: str) -> LatencyModel:
    from hwdb import HardwareDB
    from nas.search import MeasuredLatencyModel, measured_first
    from search_spaces import get_space

    space = get_space("nasbench201")
    with HardwareDB(db_url) as db:
        if kind == "knn":
            return MeasuredLatencyModel.from_db(db, space=space, device=device)
        from predictors import get_adapted_predictor

        adapted = get_adapted_predictor(db, space="nasbench201", device=device)
        return measured_first(db, space=space, device=device, model=adapted)  # as `nas search`


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--population", type=int, default=50)
    ap.add_argument("--budget", type=float, default=None, help="latency budget (ms)")
    ap.add_argument(
        "--latency",
        choices=("knn", "adapted", "oracle"),
        default="adapted",
        help="oracle: the device's true latencies (the search's own ceiling)",
    )
    ap.add_argument("--device", default=DEVICE, help="LatBench device (column) to search for")
    ap.add_argument(
        "--keep-revisits", action="store_true", help="no duplicate elimination in the search"
    )
    ap.add_argument(
        "--prune-dead-ops", action="store_true", help="prune dead operations of children"
    )
    ap.add_argument(
        "--local-search",
        type=float,
        default=0.0,
        help="share of each generation given to neighbours of the front (0: plain NSGA-II)",
    )
    ap.add_argument(
        "--db",
        default=None,
        help="hwdb URL with source devices (adapted); the target's 10 + 10 visible measurements "
        "are stored there as a device of that name (search_ceiling.py reads them back)",
    )
    ap.add_argument(
        "--catalog",
        default=None,
        help="register the device with this catalog entry (its datasheet is then a prior of "
        "the adapted predictor, as for `nas device add NAME --catalog ENTRY`)",
    )
    ap.add_argument(
        "--keep-measured",
        action="store_true",
        help="allow a --db that already holds the device's measurements (e.g. the LatBench "
        "import: all of them); the model then sees those too, which is not this benchmark",
    )
    ap.add_argument(
        "--confirm",
        action="store_true",
        help="measure each seed's to_measure.txt (front + contenders), rerun, report both fronts",
    )
    ap.add_argument("--shared-data", default=os.environ.get("NAS_SHARED_DATA", "../shared/data"))
    args = ap.parse_args(argv)

    from hwdb import DeviceSpec, HardwareDB, MeasurementIn
    from nas.search import TableAccuracy, pareto_mask, run_search
    from search_spaces import get_space

    sp = get_space("nasbench201")
    dev = args.device
    acc, lat = _data(Path(args.shared_data), dev)
    both = lat.index.intersection(acc.index)
    pts = np.column_stack([100.0 - acc[both].to_numpy(), lat[both].to_numpy()])
    true_front = pts[pareto_mask(pts)]
    ideal, nadir = true_front.min(axis=0), true_front.max(axis=0)
    tmp = tempfile.mkdtemp()
    db_url = args.db or f"sqlite:///{tmp}/hwdb.sqlite"
    rng = np.random.default_rng(12345)
    visible = [sp.to_string(a) for a in sp.hardware_embedding_archs()]
    visible += [str(a) for a in rng.choice(np.asarray(both), 10, replace=False)]
    with HardwareDB(db_url, create=args.db is None) as db:  # --db must exist
        held = _measured(db, dev) - set(visible)  # a rerun on the same --db holds the 20
        if held and not args.keep_measured:
            raise SystemExit(
                f"error: --db already holds {len(held)} other measurements of {dev} (a LatBench "
                "import?); the benchmark shows the model only 20: use a database without them "
                "(`nas hwdb import help` only) or pass --keep-measured"
            )
        db.upsert_device(
            DeviceSpec(
                name=dev,
                family="jetson" if dev == DEVICE else dev.split("-")[1],
                hardware="NVIDIA Jetson Nano" if dev == DEVICE else dev,
                provenance="imported",
                attributes={"catalog": args.catalog} if args.catalog else {},
            )
        )
        db.add_measurements(
            [
                MeasurementIn(
                    device=dev,
                    space="nasbench201",
                    arch=a,
                    median=float(lat[a]),
                    source="LatBench",
                )
                for a in visible
                if a in lat.index
            ]
        )
    if args.latency == "oracle":
        from nas.search import MeasuredLatencyModel

        model: LatencyModel = MeasuredLatencyModel(sp, dev, lat.to_dict())
    else:
        model = _latency_model(args.latency, db_url, dev)
    table = TableAccuracy(acc, name="table:cifar10")
    runs = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()

        def search(latency: LatencyModel, seed: int = seed) -> Any:
            return run_search(
                space=sp,
                devices=[dev],
                accuracy=table,
                latency_models={dev: latency},
                trials=args.trials,
                population=args.population,
                seed=seed,
                budget_ms=args.budget,
                out_dir=f"{tmp}/s{seed}",
                eliminate_duplicates=not args.keep_revisits,
                prune_dead_ops=args.prune_dead_ops,
                local_search=args.local_search,
            )

        res = search(model)
        front = [e["arch"] for e in res.front]
        rgen = np.random.default_rng(10_000 + seed)
        rs = [sp.to_string(sp.random(rgen)) for _ in range(args.trials)]
        row: dict[str, float | None] = {
            "seed": seed,
            "front_size": len(front),
            "distinct_archs": res.n_evaluated,
            "trials_per_s": res.trials_per_s,
            "wall_s": time.perf_counter() - t0,
        }
        true_hv = _front_hv_true(true_front, ideal, nadir)
        row["hv_ratio"] = _front_hv(front, acc, lat, ideal, nadir) / true_hv
        row["random_hv_ratio"] = _front_hv(rs, acc, lat, ideal, nadir) / true_hv
        if args.budget is not None:
            row["share_front_meeting_budget"] = (
                float(np.mean([lat[a] <= args.budget for a in front if a in lat.index]))
                if front
                else None
            )
        if args.confirm:
            row.update(
                _confirm(res, search, model, args, db_url, dev, lat, acc, ideal, nadir, true_hv)
            )
        runs.append(row)
    out = {
        "benchmark": "search_nb201",
        "device": dev,
        "eliminate_duplicates": not args.keep_revisits,
        "prune_dead_ops": args.prune_dead_ops,
        "local_search": args.local_search,
        "latency_model": args.latency,
        "catalog": args.catalog,
        "visible_archs": len(visible),
        "keep_measured": args.keep_measured,
        "trials": args.trials,
        "population": args.population,
        "budget_ms": args.budget,
        "hv_ratio_mean": float(np.mean([r["hv_ratio"] for r in runs])),
        "random_hv_ratio_mean": float(np.mean([r["random_hv_ratio"] for r in runs])),
        **(
            {
                "hv_ratio_confirmed_mean": float(np.mean([r["hv_ratio_confirmed"] for r in runs])),
                "confirm_measured_mean": float(np.mean([r["confirm_measured"] for r in runs])),
            }
            if args.confirm
            else {}
        ),
        "trials_per_s_mean": float(np.mean([r["trials_per_s"] for r in runs])),
        "runs": runs,
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _confirm(
    res: Any,
    search: Any,
    model: LatencyModel,
    args: argparse.Namespace,
    db_url: str,
    dev: str,
    lat: pd.Series,
    acc: pd.Series,
    ideal: np.ndarray,
    nadir: np.ndarray,
    true_hv: float,
) -> dict[str, float]:
    """Measure ``res``'s ``to_measure`` archs (true latencies, protocol ``confirm``), rerun the
    search on the model adapted to them, then delete them again."""
    from hwdb import HardwareDB, MeasurementIn
    from nas.search import to_measure

    pending = [a for a in to_measure(res) if a in lat.index]
    with HardwareDB(db_url) as db:
        db.add_measurements(
            [
                MeasurementIn(device=dev, space="nasbench201", arch=a, median=float(lat[a]),
                              source="LatBench", protocol="confirm")
                for a in pending
            ]
        )  # fmt: skip
    try:
        # the oracle knows every latency already; the others load the device's rows again
        oracle = args.latency == "oracle"
        again = search(model if oracle else _latency_model(args.latency, db_url, dev))
    finally:
        with HardwareDB(db_url) as db:
            db.delete_measurements(device=dev, space="nasbench201", protocol="confirm")
    front = [e["arch"] for e in again.front]
    return {
        "confirm_measured": len(pending),
        "contenders": len(res.contenders),
        "hv_ratio_confirmed": _front_hv(front, acc, lat, ideal, nadir) / true_hv,
    }


def _front_hv_true(front: np.ndarray, ideal: np.ndarray, nadir: np.ndarray) -> float:
    from nas.search import normalized_hypervolume

    return normalized_hypervolume(front, ideal=ideal, nadir=nadir)


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

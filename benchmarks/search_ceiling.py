"""How much hypervolume a latency *model class* can reach on nasbench201, given all the data.

The search benchmark (``search_nb201.py``) re-scores the front found on *predicted* latencies
with the device's true latencies. Its ceiling is set by the latency model, not by the search:
this script fits each model class to **every** measurement of the device (no few-shot limit),
takes the exhaustive Pareto front of (test error, predicted latency) over all archs, re-scores
it with the true latencies and prints its HV ratio (same convention as ``search_nb201.py``).
Random multiplicative noise on the true latencies is shown for comparison: structured errors
(a model that is wrong about particular archs) cost far more than random ones of the same size.

With ``--db URL`` (a database that ``search_nb201.py --latency adapted --db URL`` has already
filled with the device's 20 visible measurements) the predictor that search adapts is scored the
same way: its exhaustive front over all archs, re-scored with true latencies. The gap between that
and the search's own HV is what the search loses in its trial budget.

Usage: python benchmarks/search_ceiling.py [--device LATBENCH_DEVICE] [--shared-data DIR] [--db URL]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_nb201 import DEVICE, _data  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Print one JSON object: per model class, Spearman, MAPE and the exhaustive front's HV."""
    from nas.search import normalized_hypervolume, pareto_mask
    from predictors._features import additive_features, lut_features
    from predictors._linear import fit_ridge_loo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=DEVICE, help="LatBench device (column)")
    parser.add_argument(
        "--shared-data", default=os.environ.get("NAS_SHARED_DATA", "../shared/data")
    )
    parser.add_argument("--db", default=None, help="hwdb URL filled by search_nb201.py")
    args = parser.parse_args(argv)
    acc, lat = _data(Path(args.shared_data), args.device)
    archs = [a for a in acc.index if a in lat.index]
    err = 100.0 - acc[archs].to_numpy(float)
    true = lat[archs].to_numpy(float)
    pts = np.column_stack([err, true])
    true_front = pts[pareto_mask(pts)]
    ideal, nadir = true_front.min(axis=0), true_front.max(axis=0)
    best = normalized_hypervolume(true_front, ideal=ideal, nadir=nadir)

    def ratio(pred: np.ndarray) -> float:
        mask = pareto_mask(np.column_stack([err, pred]))
        return normalized_hypervolume(pts[mask], ideal=ideal, nadir=nadir) / best

    live = additive_features("nasbench201", archs, "pruned")
    every = additive_features("nasbench201", archs, "eager")
    features = {
        "live-op counts": live,
        "every-op counts": every,
        "live + every-op counts": np.concatenate([live, every], axis=1),
        "per-edge lookup table (every + live op)": lut_features("nasbench201", archs),
    }
    out: dict[str, object] = {"device": args.device, "archs": len(archs), "models": {}}
    for name, x in features.items():
        pred = fit_ridge_loo(x, true).predict(x)
        out["models"][name] = {  # type: ignore[index]
            "features": int(x.shape[1]),
            "spearman": round(float(spearmanr(pred, true)[0]), 4),
            "mape": round(float(np.mean(np.abs(pred / true - 1.0))), 4),
            "hv_ratio": round(ratio(pred), 4),
        }
    if args.db:
        from hwdb import HardwareDB
        from predictors import get_adapted_predictor

        with HardwareDB(args.db, create=False) as db:
            model = get_adapted_predictor(db, space="nasbench201", device=args.device)
        pred = np.asarray(model.predict(archs).mean_ms, dtype=float)
        out["adapted_predictor"] = {
            "measurements": model.n_measurements,
            "spearman": round(float(spearmanr(pred, true)[0]), 4),
            "mape": round(float(np.mean(np.abs(pred / true - 1.0))), 4),
            "hv_ratio": round(ratio(pred), 4),
        }
    rng = np.random.default_rng(0)
    out["random_noise"] = {
        f"{sigma:.0%}": round(
            float(
                np.mean([ratio(true * np.exp(rng.normal(0, sigma, true.size))) for _ in range(5)])
            ),
            4,
        )
        for sigma in (0.01, 0.02, 0.04)
    }
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

"""How well the additive features explain each measured device, each feature left out in turn.

For every device of a space in the database (default: the bundled dataset, as ``nas hwdb
init`` loads it), a linear model of latency (ms) on help+'s additive features
(:func:`predictors._features.additive_features` under the device's measured workload: MACs,
parameters, peak layer memory and the numeric ``Profile.extra`` entries) is cross-validated
over all of the device's measurements (5 interleaved folds, no shrinkage). The score is the
Spearman rank correlation of the out-of-fold predictions: the ceiling of the additive
candidate with full data, not a few-shot number. ``without`` repeats it with each feature
dropped, which shows what each feature is worth. Prints one JSON object.

    python benchmarks/additive_ceiling.py                      # mnasnet and mobilevig
    python benchmarks/additive_ceiling.py --spaces mnasnet --db sqlite:///my.sqlite
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from typing import Any

import numpy as np

_MIN_ARCHS = 50
_FOLDS = 5


def _bundled_db() -> str:
    from hwdb import HardwareDB, import_parquet
    from hwdb.importers.parquet import bundled_datasets

    url = f"sqlite:///{tempfile.mkdtemp()}/bundled.sqlite"
    with HardwareDB(url) as db:
        for path in bundled_datasets():
            import_parquet(db, path)
    return url


def feature_names(space: str, arch: str, workload: Any) -> list[str]:
    """Names of the columns of ``additive_features`` for ``space`` (non-cell spaces)."""
    from search_spaces import get_space

    sp = get_space(space)
    prof = sp.profile(sp.from_string(arch), workload)
    extras = [k for k, v in sorted(prof.extra.items()) if isinstance(v, int | float)]
    return ["macs", "params", "memory_bytes", *extras]


def cv_spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman of out-of-fold least-squares predictions (interleaved folds)."""
    from scipy.stats import spearmanr

    pred = np.empty_like(y)
    design = np.column_stack([x, np.ones(len(y))])
    for k in range(_FOLDS):
        held = np.arange(k, len(y), _FOLDS)
        keep = np.setdiff1d(np.arange(len(y)), held)
        coef, *_ = np.linalg.lstsq(design[keep], y[keep], rcond=None)
        pred[held] = design[held] @ coef
    return float(spearmanr(pred, y)[0])


def evaluate_device(table: Any, space: str, device: str) -> dict[str, Any] | None:
    """Cross-validated Spearman with all features and with each one left out."""
    from predictors import device_workload
    from predictors._features import additive_features

    col = table[device].dropna()
    if len(col) < _MIN_ARCHS:
        return None
    archs, y = list(col.index), col.to_numpy(np.float64)
    workload = device_workload(table, space, device)
    x = additive_features(space, archs, "eager", workload)
    names = feature_names(space, archs[0], workload)
    without = {
        name: round(cv_spearman(np.delete(x, j, axis=1), y), 4) for j, name in enumerate(names)
    }
    return {"archs": len(archs), "all": round(cv_spearman(x, y), 4), "without": without}


def main(argv: list[str] | None = None) -> int:
    """Run and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="hwdb URL (default: bundled dataset)")
    parser.add_argument("--spaces", nargs="+", default=["mnasnet", "mobilevig"])
    args = parser.parse_args(argv)
    from hwdb import HardwareDB
    from predictors import latency_metric

    url = args.db or _bundled_db()
    out: dict[str, Any] = {}
    for space in args.spaces:
        with HardwareDB(url, create=False) as db:
            table = db.latency_table(space, metric=latency_metric(space))
        rows = {d: evaluate_device(table, space, d) for d in table.columns}
        out[space] = {d: r for d, r in rows.items() if r is not None}
        print(f"# {space}: {len(out[space])} devices", file=sys.stderr, flush=True)
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

"""How well help+'s meta-learned basis predicts archs it was not trained on (prints JSON).

help+ adapts to a device by a ridge on its basis (predicted latencies of the source devices)
and weighs that ridge against its additive models by leave-one-out error on the device's
measured archs. Those archs are mostly training archs of the basis, while the archs it is asked
to predict are not, so the leave-one-out error stands for the error on new archs only when the
basis does not memorise its training archs. This script fits the basis alone (no roofline
prior, no source lookup tables) on the source devices of each space under several weight
decays and reports, per weight decay, the mean over source devices of its log-latency RMSE on
their training pools and on their held-out query pools; only source devices' data are used,
so the choice of the default does not look at any target device.

    python benchmarks/basis_weight_decay.py                       # shared HELP files + bundled data
    python benchmarks/basis_weight_decay.py --spaces nasbench201 --decays 1e-5 1e-2

Sources: HELP's meta-training + meta-validation devices for nasbench201 and fbnet (read from
``$NAS_SHARED_DATA``); every device of the bundled dataset for the project's own spaces.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd

HELP_SPACES = ("nasbench201", "fbnet")
OWN_SPACES = ("mnasnet", "mobilevig", "nemotron_flash")
DECAYS = (1e-5, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def _tables(spaces: list[str]) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """Per space, its latency table and the source devices to fit."""
    from predictors import HELP_DEVICES, latency_metric

    out: dict[str, tuple[pd.DataFrame, list[str]]] = {}
    own = [s for s in spaces if s not in HELP_SPACES]
    if own:
        from hwdb import HardwareDB, import_parquet
        from hwdb.importers.parquet import bundled_datasets

        url = f"sqlite:///{tempfile.mkdtemp()}/bundled.sqlite"
        with HardwareDB(url) as db:
            for path in bundled_datasets():
                import_parquet(db, path)
            for space in own:
                table = db.latency_table(space, metric=latency_metric(space))
                out[space] = (table, list(table.columns))
    for space in spaces:
        if space in HELP_SPACES:
            from predictors._testing import help_latency_table

            split = HELP_DEVICES[space]
            sources = [*split["train"], *split["valid"]]
            out[space] = (help_latency_table(space, sources), sources)
    return out


def basis_errors(
    table: pd.DataFrame, space: str, sources: list[str], decay: float
) -> dict[str, Any]:
    """Mean log-RMSE of the basis over ``sources``: on their training pools and query pools."""
    from predictors import device_split, make_tasks, meta_train_for

    t0 = time.perf_counter()
    params = {"weight_decay": decay, "sim_devices": 0, "source_luts": False}
    model = meta_train_for("help+", table, space, sources, params=params)
    fit_s = time.perf_counter() - t0
    train: list[float] = []
    query: list[float] = []
    tasks = {t.device: t for t in make_tasks(table, space, sources)}
    for j, device in enumerate(sources):
        split = device_split(table, space, device)
        for errors, archs in ((train, list(tasks[device].archs)), (query, list(split.query))):
            pred = model.basis(archs)[:, j]  # type: ignore[attr-defined]
            true = np.log(table.loc[archs, device].to_numpy(float))
            errors.append(float(np.sqrt(np.mean((pred - true) ** 2))))
    return {
        "weight_decay": decay,
        "train_rmse_log": round(float(np.mean(train)), 4),
        "query_rmse_log": round(float(np.mean(query)), 4),
        "fit_s": round(fit_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=[*HELP_SPACES, *OWN_SPACES])
    parser.add_argument("--decays", nargs="+", type=float, default=list(DECAYS))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.spaces) - {*HELP_SPACES, *OWN_SPACES})
    if unknown:
        parser.error(f"--spaces: unknown {', '.join(unknown)}")
    if any(d < 0 for d in args.decays):
        parser.error("--decays must be >= 0")
    out: dict[str, Any] = {}
    for space, (table, sources) in _tables(args.spaces).items():
        rows = []
        for decay in args.decays:
            rows.append(basis_errors(table, space, sources, decay))
            print(f"# {space}: {rows[-1]}", file=sys.stderr, flush=True)
        best = min(rows, key=lambda r: r["query_rmse_log"])
        out[space] = {"sources": sources, "rows": rows, "best_weight_decay": best["weight_decay"]}
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

"""Machine-state drift between measurement groups in the project's GPU rows (prints JSON).

``benchmarks/gpu_dataset.py measure`` times each configuration in groups of 25 archs, one group
after another. The interleaved protocol evens out speed changes *within* a group, not between
groups. This script estimates each group's offset as its mean log latency minus the median of
all groups' means (archs are drawn at random, so without drift every group has about the same
mean), and reports:

- per series (source, device, space): the group offsets (1.0 = no drift);
- the retest: the 375 mobilevig fp32 batch-1 archs that the session-13 H200 run timed twice,
  five minutes apart, compared raw, within groups and with the group offsets divided out.

Sources: ``bundled`` (``hwdb/data/gpu_h200.parquet``, session 1, no drift anchor) and
``session13`` (``benchmarks/data/h200-2026-11-27-call{1,2}.jsonl.gz``, two calls of
``gpu_dataset.py measure`` without the anchor). ``--rows SOURCE --out FILE`` writes that
source's rows for ``gpu_dataset.py load`` (session 13: call 2's mobilevig rows, not call 1's
retest pass); with ``--demean``, with the group offsets divided out (protocol suffix ``-dm``).
Loaded into a ``nas hwdb init`` database they supersede the bundled rows (newest row wins)::

    python benchmarks/gpu_drift.py
    python benchmarks/gpu_drift.py --rows bundled --demean --out dm.jsonl
    nas --db sqlite:///dm.sqlite hwdb init
    python benchmarks/gpu_dataset.py load dm.jsonl --db sqlite:///dm.sqlite
    python benchmarks/own_spaces.py --db sqlite:///dm.sqlite --spaces mnasnet mobilevig --seeds 5
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SESSION13 = [ROOT / "benchmarks" / "data" / f"h200-2026-11-27-call{i}.jsonl.gz" for i in (1, 2)]
BUNDLED = ROOT / "hwdb" / "data" / "gpu_h200.parquet"
GROUP = 25  # gpu_dataset.py's chunk size
_STATS = ("median", "mean", "std", "min", "p90")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of ``gpu_dataset.py measure`` (``.jsonl`` or ``.jsonl.gz``), in measurement order."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def bundled_rows() -> list[dict[str, Any]]:
    """The bundled H200 rows in the same format (Parquet keeps the insertion order)."""
    import pandas as pd

    frame = pd.read_parquet(BUNDLED)
    if "row_kind" in frame:  # exports since session 24 may hold accuracy and device rows
        frame = frame[frame["row_kind"].fillna("measurement") == "measurement"]
    return [
        {
            "device": r.device,
            "space": r.space,
            "arch": r.arch,
            "metric": r.metric,
            "stats": {**{k: float(getattr(r, k)) for k in _STATS}, "n_runs": int(r.n_runs)},
            "protocol": r.protocol,
            "environment": json.loads(r.environment),
            "workload": json.loads(r.workload),
            "precision": r.device_precision,
            "batch_size": int(r.device_batch_size),
            "hardware": r.device_hardware,
            "warmup": int(r.warmup),
        }  # fmt: skip
        for r in frame.itertuples()
    ]


def session13_rows() -> list[dict[str, Any]]:
    """Both session-13 calls; call 2 re-measured mobilevig, so call 1 keeps only mnasnet."""
    first, second = (read_rows(p) for p in SESSION13)
    return [r for r in first if r["space"] == "mnasnet"] + second


def series(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows grouped by (device, space), each in measurement order."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r["device"], r["space"]), []).append(r)
    return out


def group_offsets(medians: Iterable[float], size: int = GROUP) -> np.ndarray:
    """Per row, its group's latency offset: exp(group mean log - median of the group means)."""
    y = np.log(np.asarray(list(medians), dtype=float))
    group = np.arange(y.size) // size
    means = np.array([y[group == g].mean() for g in range(int(group.max()) + 1)])
    return np.asarray(np.exp(means - np.median(means))[group])


def demeaned(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with every time divided by its group's offset; protocol gets ``-dm``."""
    out = []
    for run in series(rows).values():
        offsets = group_offsets(r["stats"]["median"] for r in run)
        for r, f in zip(run, offsets, strict=True):
            stats = {**r["stats"], **{k: r["stats"][k] / float(f) for k in _STATS}}
            protocol = r["protocol"].replace("@", "-dm@", 1)
            out.append({**r, "stats": stats, "protocol": protocol})
    return out


def _spearman(a: Iterable[float], b: Iterable[float]) -> float:
    from scipy.stats import spearmanr

    return round(float(spearmanr(list(a), list(b))[0]), 3)


def retest_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Medians (ms) of the 375 twice-measured mobilevig fp32 batch-1 archs: pass 1, pass 2."""
    key = ("h200-torch-fp32-b1", "mobilevig")
    first = series(read_rows(SESSION13[0]))[key]
    second = series(read_rows(SESSION13[1]))[key][: len(first)]
    if [r["arch"] for r in first] != [r["arch"] for r in second]:
        raise ValueError("the two passes of the retest time different archs")
    a = np.array([r["stats"]["median"] for r in first])
    b = np.array([r["stats"]["median"] for r in second])
    return a, b


def retest() -> dict[str, Any]:
    """The 375 twice-measured mobilevig archs: raw, within groups, group offsets divided out."""
    a, b = retest_pairs()
    group = np.arange(a.size) // GROUP
    within = [_spearman(a[group == g], b[group == g]) for g in np.unique(group)]
    ratio = np.log(a / b)
    return {
        "n": int(a.size),
        "spearman_raw": _spearman(a, b),
        "median_abs_log_ratio_raw": round(float(np.median(np.abs(ratio))), 3),
        "spearman_within_groups_median": round(float(np.median(within)), 3),
        "group_mean_log_ratio": [round(float(ratio[group == g].mean()), 2) for g in set(group)],
        "spearman_demeaned": _spearman(a / group_offsets(a), b / group_offsets(b)),
    }


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per series: length and group offsets."""
    out = []
    for (device, space), run in series(rows).items():
        offsets = group_offsets(r["stats"]["median"] for r in run)[::GROUP]
        out.append({
            "device": device, "space": space, "archs": len(run),
            "offset_min": round(float(offsets.min()), 2),
            "offset_max": round(float(offsets.max()), 2),
            "offsets": [round(float(x), 2) for x in offsets],
        })  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the drift report, or write one source's rows (de-meaned with ``--demean``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", choices=("bundled", "session13"), default=None)
    parser.add_argument("--demean", action="store_true", help="divide out the group offsets")
    parser.add_argument("--out", type=Path, default=None, help="JSONL written by --rows")
    args = parser.parse_args(argv)
    sources = {"bundled": bundled_rows, "session13": session13_rows}
    if (args.rows is None) != (args.out is None) or (args.demean and args.rows is None):
        parser.error("--rows and --out go together; --demean needs them")
    if args.rows is not None:
        rows = sources[args.rows]()
        rows = demeaned(rows) if args.demean else rows
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        sys.stdout.write(json.dumps({"rows": len(rows), "out": str(args.out)}) + "\n")
        return 0
    report: dict[str, Any] = {name: summary(load()) for name, load in sources.items()}
    report["retest_mobilevig_fp32_b1"] = retest()
    sys.stdout.write(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

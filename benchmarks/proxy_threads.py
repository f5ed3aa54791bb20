"""Seconds per architecture of the search's default proxy on 1 vs N torch threads (JSON).

Scores ``--archs`` seeded random architectures of ``--space`` with the objective a fresh
``nas search`` uses (``make_accuracy_objective("auto", ...)``: SynFlow at reduced resolution),
once per thread count, alternating the counts over ``--repeats`` rounds, and prints the median
seconds per architecture of each. ``--busy K`` starts K processes that spin on the CPU during
the timing, standing in for whatever else shares a developer's machine or a CI runner: that
is where extra OpenMP threads, waiting for a busy core, slow every operator down.

Usage: python benchmarks/proxy_threads.py [--space mnasnet] [--archs 8] [--threads 1 2]
[--repeats 2] [--busy 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from typing import Any


def _spin(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        x = (x * 31 + 7) % 1_000_003


def _seconds_per_arch(space: Any, archs: list[str], threads: int) -> float:
    from nas.search import make_accuracy_objective

    objective = make_accuracy_objective("auto", space=space, threads=threads)
    objective.evaluate(archs[:1])  # warm-up (first allocations)
    t0 = time.perf_counter()
    objective.evaluate(archs)
    return (time.perf_counter() - t0) / len(archs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="mnasnet")
    ap.add_argument("--archs", type=int, default=8)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--busy", type=int, default=0, help="CPU-spinning processes meanwhile")
    args = ap.parse_args(argv)
    for name in ("archs", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1")
    if args.busy < 0 or any(t < 1 for t in args.threads):
        ap.error("--busy must be >= 0 and every --threads >= 1")
    import numpy as np

    from search_spaces import get_space

    space = get_space(args.space)
    rng = np.random.default_rng(0)
    archs = [space.to_string(space.random(rng)) for _ in range(args.archs)]
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    times: dict[int, list[float]] = {t: [] for t in args.threads}
    try:
        for _ in range(args.repeats):
            for t in args.threads:
                times[t].append(_seconds_per_arch(space, archs, t))
    finally:
        stop.set()
        for p in spinners:
            p.join(timeout=5)
    out = {
        "space": args.space,
        "archs": args.archs,
        "busy_processes": args.busy,
        "seconds_per_arch": {str(t): statistics.median(v) for t, v in times.items()},
        "runs": {str(t): v for t, v in times.items()},
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

"""Test-retest agreement of the timing protocols (prints JSON).

Three protocols measure the same random architectures twice (independent passes, models
rebuilt) with the same number of timed samples per model: sequential, interleaved with the
system allocator's defaults, and interleaved with the retained heap (the default of
``nas measure``). The output gives Spearman and MAPE (percent) of pass 2 against pass 1 for
each. Example::

    python benchmarks/measure_retest.py --space mnasnet --n 30 --threads 1

With ``--chunk-size`` below ``--n`` the archs are timed in several groups, and the default
protocol is also run without its drift anchor (``interleaved_no_anchor``). ``--neighbour-period
S`` adds a noisy neighbour: a process on the measuring CPU that spins for S seconds and then
sleeps for S seconds, so whole groups run at two machine speeds, as seen on the lent H200::

    python benchmarks/measure_retest.py --n 30 --chunk-size 5 --neighbour-period 15
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

_SPIN = """
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
while True:
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        pass
    time.sleep(float(sys.argv[2]))
"""


@contextmanager
def _noisy_neighbour(period: float | None) -> Iterator[None]:
    """Pin this process to one CPU and run a spin/sleep process of ``period`` seconds beside it."""
    if not period:
        yield
        return
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    proc = subprocess.Popen([sys.executable, "-c", _SPIN, str(cpu), str(period)])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()
        os.sched_setaffinity(0, before)


def _run(
    args: argparse.Namespace,
    kind: Literal["interleaved", "sequential"],
    *,
    retain_heap: bool = True,
    anchor: bool = True,
) -> dict[str, Any]:
    from dataclasses import replace

    from nas.measure import MeasureConfig, TimingProtocol, retest, select_architectures
    from search_spaces import get_space

    space = get_space(args.space)
    archs = select_architectures(space, n=args.n, seed=args.seed)
    protocol = TimingProtocol(
        kind=kind,
        rounds=args.rounds,
        repeats=args.repeats,
        warmup=5,
        retain_heap=retain_heap,
        anchor=anchor,
    )
    config = MeasureConfig(threads=args.threads, protocol=protocol, chunk_size=args.chunk_size)
    if args.resolution:
        config = replace(
            config, workload=replace(config.resolve(space).workload, resolution=args.resolution)
        )
    start = time.perf_counter()
    with _noisy_neighbour(args.neighbour_period):
        result = retest(space=args.space, archs=archs, config=config)
    out = {"protocol": protocol.name, **result.summary()}
    if result.relevelled != (1.0, 1.0):  # the same passes at their first groups' level
        from nas.measure import mape

        first = [x * result.relevelled[0] for x in result.first]
        second = [x * result.relevelled[1] for x in result.second]
        out["mape_first_group_level"] = round(mape(first, second), 3)
        out["relevelled"] = [round(f, 4) for f in result.relevelled]
    return {**out, "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> int:
    """Run both protocols and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mnasnet")
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=30)
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--neighbour-period", type=float, default=None, metavar="S")
    parser.add_argument(
        "--protocols", nargs="+", default=None, help="subset of the output's protocol keys"
    )
    args = parser.parse_args(argv)
    if args.neighbour_period is not None and not args.neighbour_period > 0:
        parser.error("--neighbour-period must be greater than 0")
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        # first: the retained heap is process-wide and cannot be undone
        "interleaved_system_heap": lambda: _run(args, "interleaved", retain_heap=False),
        "sequential": lambda: _run(args, "sequential"),
        "interleaved": lambda: _run(args, "interleaved"),
    }
    if args.chunk_size < args.n:
        runs["interleaved_no_anchor"] = lambda: _run(args, "interleaved", anchor=False)
    unknown = set(args.protocols or ()) - set(runs)
    if unknown:
        parser.error(f"--protocols: unknown {sorted(unknown)}; choose from {sorted(runs)}")
    out: dict[str, Any] = {
        "space": args.space,
        "n": args.n,
        "threads": args.threads,
        "chunk_size": args.chunk_size,
        "neighbour_period": args.neighbour_period,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    for key, run in runs.items():
        if args.protocols is None or key in args.protocols:
            out[key] = run()
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

"""Test-retest agreement of the timing protocols (prints JSON).

Three protocols measure the same random architectures twice (independent passes, models
rebuilt) with the same number of timed samples per model: sequential, interleaved with the
system allocator's defaults, and interleaved with the retained heap (the default of
``nas measure``). The output gives Spearman and MAPE (percent) of pass 2 against pass 1 for
each. Example::

    python benchmarks/measure_retest.py --space mnasnet --n 30 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Literal


def _run(
    args: argparse.Namespace,
    kind: Literal["interleaved", "sequential"],
    *,
    retain_heap: bool = True,
) -> dict[str, Any]:
    from dataclasses import replace

    from nas.measure import MeasureConfig, TimingProtocol, retest, select_architectures
    from search_spaces import get_space

    space = get_space(args.space)
    archs = select_architectures(space, n=args.n, seed=args.seed)
    protocol = TimingProtocol(
        kind=kind, rounds=args.rounds, repeats=args.repeats, warmup=5, retain_heap=retain_heap
    )
    config = MeasureConfig(threads=args.threads, protocol=protocol, chunk_size=args.chunk_size)
    if args.resolution:
        config = replace(
            config, workload=replace(config.resolve(space).workload, resolution=args.resolution)
        )
    start = time.perf_counter()
    result = retest(space=args.space, archs=archs, config=config)
    return {
        "protocol": protocol.name,
        **result.summary(),
        "seconds": round(time.perf_counter() - start, 1),
    }


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
    args = parser.parse_args(argv)
    import os

    out = {
        "space": args.space,
        "n": args.n,
        "threads": args.threads,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        # first: the retained heap is process-wide and cannot be undone
        "interleaved_system_heap": _run(args, "interleaved", retain_heap=False),
        "sequential": _run(args, "sequential"),
        "interleaved": _run(args, "interleaved"),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

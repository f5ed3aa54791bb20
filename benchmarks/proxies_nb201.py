"""Spearman rank correlation of each zero-cost proxy with NATS-Bench CIFAR-10 accuracy (JSON).

Samples ``--n`` nasbench201 architectures (seeded), computes every proxy of
:mod:`nas.search._proxies` on one seeded random batch (no CIFAR download; the papers use a
real data batch, so data-dependent proxies can score lower here), and the synflow + jacob_cov +
snip rank vote (Abdelfattah et al., ICLR 2021). Published values: synflow ~0.74-0.79,
jacob_cov ~0.72, vote ~0.82.

Usage: python benchmarks/proxies_nb201.py [--n 1000] [--batch-size 64] [--device cuda]
(``--scores-out F`` only computes and saves the proxy values, e.g. on a GPU machine without the
data; ``--scores-in F`` then correlates them with the accuracies.)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu"
    )
    ap.add_argument("--shared-data", default=os.environ.get("NAS_SHARED_DATA", "../shared/data"))
    ap.add_argument("--scores-out", default=None)
    ap.add_argument("--scores-in", default=None)
    args = ap.parse_args(argv)
    if not args.scores_out:  # fail before computing 1000 archs' proxies, not after
        _accuracy_file(args).resolve(strict=True)
    if args.scores_in:
        saved = json.loads(Path(args.scores_in).read_text())
        return _report(saved, args)

    from nas.search import compute_proxies, make_batch
    from nas.search._proxies import BASE_PROXIES
    from search_spaces import get_space

    sp = get_space("nasbench201")
    rng = np.random.default_rng(args.seed)
    archs: dict[str, None] = {}
    while len(archs) < args.n:  # distinct, seeded, uniform over the grid
        archs[sp.to_string(sp.random(rng))] = None
    scores: dict[str, list[float]] = {k: [] for k in BASE_PROXIES}
    t0 = time.perf_counter()
    for text in archs:
        arch = sp.from_string(text)
        vals = compute_proxies(
            functools.partial(sp.build, arch),
            lambda m: make_batch(
                sp, m, batch_size=args.batch_size, seed=args.seed, device=args.device
            ),
            list(BASE_PROXIES),
            seed=args.seed,
            device=args.device,
        )
        for k, v in vals.items():
            scores[k].append(v)
    saved = {"archs": list(archs), "scores": scores, "wall_s": time.perf_counter() - t0}
    if args.scores_out:
        Path(args.scores_out).write_text(json.dumps(saved))
        return 0
    return _report(saved, args)


def _accuracy_file(args: argparse.Namespace) -> Path:
    return Path(args.shared_data) / "nb201-accuracy" / "nats_bench.csv"


def _report(saved: dict[str, object], args: argparse.Namespace) -> int:
    from scipy.stats import spearmanr

    from nas.search import rank_ensemble
    from search_spaces import get_space

    sp = get_space("nasbench201")
    table = pd.read_csv(_accuracy_file(args))
    by_arch = dict(
        zip(
            (sp.canonicalize(a) for a in table["ArchitectureString"]),
            table["CIFAR10TestAccuracy200Epochs"],
            strict=True,
        )
    )
    names: list[str] = list(saved["archs"])  # type: ignore[call-overload]
    scores: dict[str, list[float]] = dict(saved["scores"])  # type: ignore[call-overload]
    acc = np.asarray([float(by_arch[a]) for a in names], dtype=np.float64)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    arrays["vote"] = rank_ensemble(arrays)
    rho = {}
    for k, v in arrays.items():
        ok = np.isfinite(v)
        rho[k] = {"spearman": float(spearmanr(v[ok], acc[ok]).statistic), "n_finite": int(ok.sum())}
    json.dump(
        {
            "benchmark": "proxies_nb201",
            "n": args.n,
            "batch_size": args.batch_size,
            "data": "seeded gaussian batch",
            "device": args.device,
            "proxy_wall_s": saved["wall_s"],
            "spearman": rho,
        },
        sys.stdout,
        indent=2,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)

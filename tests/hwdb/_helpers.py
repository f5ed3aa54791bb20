"""Helpers shared by the hwdb tests."""

from __future__ import annotations

import itertools
from pathlib import Path

from hwdb.importers._common import nb201_from_ops

NB201_0 = (
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
)


def nb201_archs(n: int) -> list[str]:
    """The first ``n`` NB201 strings in op-code order."""
    return [
        nb201_from_ops(ops) for ops in itertools.islice(itertools.product(range(5), repeat=6), n)
    ]


def help_subset(shared: Path, dest: Path) -> Path:
    """A HELP tree with a few devices per space (symlinks into the shared data)."""
    src = shared / "help" / "data"
    files = {
        "nasbench201": ["str_arch2idx.pt", "latency/titan_rtx_32.pt", "latency/gold_6226.pt"],
        "fbnet": ["metainfo.pt", "latency/titan_rtx_32.pt", "latency/pixel2.pt"],
        "ofa": ["ofa_archs.pt", "latency/v100_1.pt"],
    }
    for space, names in files.items():
        for name in names:
            target = dest / space / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(src / space / name)
    return dest

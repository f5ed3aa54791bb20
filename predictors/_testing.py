"""Test/benchmark helper: a latency table read straight from the public HELP data files.

Used only by tests and ``benchmarks/`` (the product reads through :mod:`hwdb`). Nothing is
copied: the files are read from ``NAS_SHARED_DATA`` (default ``../shared/data``) at call time.
Arch strings: NAS-Bench-201 strings from ``str_arch2idx.pt``; FBNet layer ops joined by ``-``;
OFA ``ks=..;e=..;d=..;r=..``. The predictors' parsers accept these and the hwdb spellings.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from hwdb import FrozenMap

__all__ = ["help_data_dir", "help_latency_table"]


def help_data_dir() -> Path:
    """``<shared>/help/data`` of the public HELP release."""
    root = Path(__file__).resolve().parents[1]
    shared = Path(os.environ.get("NAS_SHARED_DATA", root.parent / "shared" / "data"))
    return shared / "help" / "data"


def _arch_strings(space: str, base: Path) -> list[str]:
    import torch

    if space == "nasbench201":
        mapping = torch.load(base / "str_arch2idx.pt", weights_only=True)
        inv = {int(i): str(s) for s, i in mapping.items()}
        return [inv[i] for i in range(len(inv))]
    if space == "fbnet":
        meta = torch.load(base / "metainfo.pt", weights_only=True)
        return ["-".join(a["arch_str"]) for a in meta["arch"]]
    if space == "ofa":
        archs = torch.load(base / "ofa_archs.pt", weights_only=False)["arch"]
        out = []
        for a in archs:
            ks, e, d = list(a["ks"]), list(a["e"]), list(a["d"])
            kk = ".".join("".join(map(str, ks[4 * s : 4 * s + d[s]])) for s in range(5))
            ee = ".".join("".join(map(str, e[4 * s : 4 * s + d[s]])) for s in range(5))
            out.append(f"r{int(a['r'])}-d{''.join(map(str, d))}-k{kk}-e{ee}")
        return out
    raise ValueError(f"`space` must be one of nasbench201, fbnet, ofa, got {space!r}.")


@lru_cache(maxsize=4)
def _table(space: str, data_dir: str) -> pd.DataFrame:
    import torch

    base = Path(data_dir) / space
    archs = _arch_strings(space, base)
    cols = {}
    for f in sorted((base / "latency").glob("*.pt")):
        cols[f.stem] = np.asarray(torch.load(f, weights_only=True), dtype=np.float64)
    df = pd.DataFrame(cols, index=pd.Index(archs, name="arch"))
    return df


def help_latency_table(space: str, devices: list[str] | None = None) -> pd.DataFrame:
    """The HELP latency table of ``space`` shaped like ``HardwareDB.latency_table``."""
    df = _table(space, str(help_data_dir())).copy()
    if devices is not None:
        df = df[devices]
    df.attrs["benchmark_index"] = FrozenMap((a, i) for i, a in enumerate(df.index))
    return df

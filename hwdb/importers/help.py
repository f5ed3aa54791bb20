"""Importer of the HELP latency release (Lee et al., "HELP: Hardware-Adaptive Efficient Latency
Prediction for NAS via Meta-Learning", NeurIPS 2021, arXiv 2106.08630).

Layout of ``DIR`` (``github.com/HayeonLee/HELP`` ``data/``)::

    DIR/<space>/latency/<device>.pt     list of latencies in ms; element i = architecture i
    DIR/nasbench201/str_arch2idx.pt     NB201 string -> NAS-Bench-201 index
    DIR/fbnet/metainfo.pt               {"arch": [{"arch_str": [22 block names], ...}, ...]}
    DIR/ofa/ofa_archs.pt                {"arch": [{"ks": [20], "e": [20], "d": [5], "r": int}, ...]}

The device name is the file stem; the same stem in two spaces is the same device. Family,
hardware and batch size are inferred from the stem (``titan_rtx_32`` -> gpu, batch 32).
Architectures keep their benchmark index (NB201 index; position in ``metainfo.pt`` /
``ofa_archs.pt``).

Canonical ``ofa`` string (Once-for-All MobileNetV3 space, Cai et al., ICLR 2020)::

    r<R>-d<D1D2D3D4D5>-k<stage kernels>-e<stage expand ratios>

``R`` is the input resolution (128..224), ``D1..D5`` the depth (2..4) of the 5 stages, and
``k``/``e`` list, per stage and separated by ``.``, one digit per *active* layer (the first
``Di`` of the stage's 4 slots; inactive slots do not change the network and are dropped), e.g.
``r216-d34323-k357.7753.555.53.577-e644.3434.464.64.364``. Kernel sizes are 3/5/7 and expand
ratios 3/4/6. All 5,000 HELP subnets stay distinct under this form.

All ``.pt`` files load with ``torch.load(weights_only=True)``; ``ofa_archs.pt`` additionally
allow-lists numpy's scalar reconstructor (it stores the resolution as ``numpy.int64``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdb._bulk import BulkImport, MeasurementSeries
from hwdb._types import DeviceSpec
from hwdb.importers._common import (
    bad,
    check_fbnet,
    check_latency,
    check_nb201,
    ofa_string,
)

if TYPE_CHECKING:
    from hwdb._storage import HardwareDB

__all__ = ["SOURCE", "device_spec", "import_help", "load_help"]

SOURCE = "HELP release (github.com/HayeonLee/HELP @45f70eb)"
SPACES = ("nasbench201", "fbnet", "ofa")
PROTOCOL = "help-release"

_HARDWARE = (
    ("1080ti", "gpu", "NVIDIA GeForce GTX 1080 Ti"),
    ("2080ti", "gpu", "NVIDIA GeForce RTX 2080 Ti"),
    ("titan_rtx", "gpu", "NVIDIA Titan RTX"),
    ("titan_xp", "gpu", "NVIDIA Titan Xp"),
    ("titanxp", "gpu", "NVIDIA Titan Xp"),
    ("titanx", "gpu", "NVIDIA GeForce GTX Titan X"),
    ("v100", "gpu", "NVIDIA Tesla V100"),
    ("gold_", "cpu", "Intel Xeon Gold {}"),
    ("silver_", "cpu", "Intel Xeon Silver {}"),
    ("pixel", "phone", "Google Pixel {}"),
    ("samsung_", "phone", "Samsung Galaxy {}"),
    ("essential_ph", "phone", "Essential Phone PH-1"),
    ("raspi4", "cpu", "Raspberry Pi 4 (ARM Cortex-A72)"),
    ("eyeriss", "asic", "Eyeriss ASIC accelerator"),
    ("fpga", "fpga", "FPGA accelerator"),
)
_BATCH = re.compile(r"^(.*)_(\d+)$")


def device_spec(stem: str) -> DeviceSpec:
    """Device of a HELP latency file stem (family, hardware and batch size inferred)."""
    family, hardware, batch = "other", "", 1
    for prefix, fam, text in _HARDWARE:
        if stem.startswith(prefix):
            family = fam
            model = stem[len(prefix) :].split("_")[0].upper()
            hardware = text.format(model) if "{}" in text else text
            break
    match = _BATCH.match(stem)
    if family == "gpu" and match:
        batch = int(match.group(2))
    return DeviceSpec(
        name=stem,
        family=family,
        hardware=hardware,
        runtime="unknown",
        precision="fp32",
        batch_size=batch,
        provenance="imported",
        source=SOURCE,
        attributes={"dataset": "HELP", "file_stem": stem},
    )


def _torch_load(path: Path, *, numpy_scalars: bool = False) -> Any:
    import torch

    if not path.is_file():
        raise bad(path, "file", "path", "file not found")
    try:
        if not numpy_scalars:
            return torch.load(path, map_location="cpu", weights_only=True)
        import numpy as np
        from numpy._core.multiarray import scalar  # type: ignore[attr-defined]

        allowed: list[Any] = [
            (scalar, "numpy.core.multiarray.scalar"),
            scalar,
            np.dtype,
            type(np.dtype(np.int64)),
        ]
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise bad(path, "file", "content", f"not a readable torch file ({first})") from None


def _nb201_archs(root: Path) -> list[str]:
    path = root / "nasbench201" / "str_arch2idx.pt"
    table = _torch_load(path)
    if not isinstance(table, dict) or not table:
        raise bad(path, "file", "content", "expected a dict arch string -> index")
    archs: list[str | None] = [None] * len(table)
    for arch, index in table.items():
        if not isinstance(arch, str) or not check_nb201(arch):
            raise bad(path, f"key {arch!r}", "arch", "malformed NAS-Bench-201 string")
        if not isinstance(index, int) or not 0 <= index < len(table) or archs[index] is not None:
            raise bad(path, f"key {arch!r}", "index", f"bad or repeated index {index!r}")
        archs[index] = arch
    return [a for a in archs if a is not None]


def _meta_archs(path: Path, parse: Callable[[dict[str, Any]], str]) -> list[str]:
    meta = _torch_load(path, numpy_scalars=path.name == "ofa_archs.pt")
    entries = meta.get("arch") if isinstance(meta, dict) else None
    if not isinstance(entries, list) or not entries:
        raise bad(path, "file", "arch", "expected a dict with a non-empty 'arch' list")
    out: list[str] = []
    for i, entry in enumerate(entries):
        try:
            out.append(parse(entry))
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(path, f"arch[{i}]", "arch", f"malformed architecture ({exc})") from None
    if len(set(out)) != len(out):
        raise bad(path, "file", "arch", "architectures are not distinct")
    return out


def _fbnet(entry: dict[str, Any]) -> str:
    text = "-".join(entry["arch_str"])
    if not check_fbnet(text):
        raise ValueError(f"not 22 FBNet block names: {text}")
    return text


def _ofa(entry: dict[str, Any]) -> str:
    return ofa_string(entry["ks"], entry["e"], entry["d"], int(entry["r"]))


def _space_archs(root: Path, space: str) -> list[str]:
    if space == "nasbench201":
        return _nb201_archs(root)
    if space == "fbnet":
        return _meta_archs(root / "fbnet" / "metainfo.pt", _fbnet)
    return _meta_archs(root / "ofa" / "ofa_archs.pt", _ofa)


def _latencies(path: Path, n_archs: int) -> list[float]:
    values = _torch_load(path)
    if hasattr(values, "tolist"):
        values = values.tolist()
    if not isinstance(values, list):
        raise bad(path, "file", "content", "expected a list of latencies")
    if len(values) != n_archs:
        raise bad(path, "file", "length", f"{len(values)} latencies for {n_archs} architectures")
    return [check_latency(v, path, f"index {i}", "latency_ms") for i, v in enumerate(values)]


def load_help(root: str | Path, *, spaces: tuple[str, ...] = SPACES) -> BulkImport:
    """Read and validate a HELP data directory (nothing is written).

    Args:
        root: The ``data`` directory of the HELP release.
        spaces: Spaces to read; a space without a ``latency`` folder is skipped.

    Raises:
        ImportDataError: naming the file, the key/index and the field.
    """
    base = Path(root)
    if not base.is_dir():
        raise bad(base, "directory", "path", "not a directory")
    data = BulkImport()
    devices: dict[str, DeviceSpec] = {}
    for space in spaces:
        files = sorted((base / space / "latency").glob("*.pt"))
        if not files:
            continue
        archs = _space_archs(base, space)
        data.archs[space] = {a: i for i, a in enumerate(archs)}
        for path in files:
            if path.stem not in devices:
                devices[path.stem] = spec = device_spec(path.stem)
                # the file name states a GPU's batch size; the rest is assumed, not stated
                stated = spec.family == "gpu" and _BATCH.match(path.stem) is not None
                where = {"batch_size": (f"{path}: file", "file name")} if stated else {}
                data.stated[path.stem] = where
            series = MeasurementSeries(
                device=path.stem,
                space=space,
                archs=archs,
                values=_latencies(path, len(archs)),
                protocol=PROTOCOL,
                source=f"{SOURCE} data/{space}/latency/{path.name}",
            )
            data.measurements.append(series)
    if not data.measurements:
        hint = ""
        if any((base / "data").glob("*/latency/*.pt")):
            hint = f"; the release's files are in {base / 'data'}: import that folder"
        raise bad(base, "directory", "latency", f"no <space>/latency/*.pt files found{hint}")
    data.devices = list(devices.values())
    return data


def import_help(
    db: HardwareDB, root: str | Path, *, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Import a HELP data directory in one transaction; re-importing changes nothing.

    Returns:
        Counts as :meth:`hwdb.HardwareDB.bulk_import` returns them.
    """
    return db.bulk_import(load_help(root), progress=progress)

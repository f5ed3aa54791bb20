"""Importer of LatBench pickles (Dudziak et al., "BRP-NAS: Prediction-based NAS using GCNs",
NeurIPS 2020; measured with ``SamsungLabs/eagle``).

Each file is a dict for one device: key = 6 op codes of a NAS-Bench-201 cell in edge order
(0->1), (0->2), (1->2), (0->3), (1->3), (2->3) with 0 none, 1 skip_connect, 2 nor_conv_1x1,
3 nor_conv_3x3, 4 avg_pool_3x3; value = latency in **seconds** (stored here in ms). The device
name is the file stem, e.g. ``embedded-gpu-jetson-nano-fp32``. LatBench devices therefore add
to the ``nasbench201`` space next to the HELP devices.

Pickles are untrusted input: :class:`RestrictedUnpickler` resolves only a few builtins and
numpy's scalar/dtype reconstructors; anything else fails the import.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdb._bulk import BulkImport, MeasurementSeries
from hwdb._types import DeviceSpec
from hwdb.importers._common import bad, check_input_file, check_latency, nb201_from_ops

if TYPE_CHECKING:
    from hwdb._storage import HardwareDB

__all__ = ["RestrictedUnpickler", "device_spec", "import_latbench", "load_latbench"]

SOURCE = "LatBench (BRP-NAS, Dudziak et al. 2020; SamsungLabs/eagle)"
PROTOCOL = "latbench"
_SAFE_BUILTINS = frozenset({"tuple", "list", "dict", "set", "frozenset", "int", "float", "complex"})
_FAMILY = {"cpu": "cpu", "gpu": "gpu", "tpu": "tpu", "dsp": "dsp", "npu": "npu"}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only allows plain containers and numpy scalars."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "scalar":
            import numpy as np

            core = getattr(np, "_core", None) or np.core
            return core.multiarray.scalar
        if module == "numpy" and name == "dtype":
            import numpy as np

            return np.dtype
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def _load(path: Path) -> dict[Any, Any]:
    check_input_file(path, "LatBench pickle")
    try:
        obj = RestrictedUnpickler(io.BytesIO(path.read_bytes())).load()
    except Exception as exc:  # noqa: BLE001 - corrupt pickles raise many types
        raise bad(path, "file", "content", f"not a readable pickle ({exc})") from None
    if not isinstance(obj, dict) or not obj:
        raise bad(path, "file", "content", "expected a non-empty dict op tuple -> seconds")
    return obj


def device_spec(stem: str) -> DeviceSpec:
    """Device of a LatBench file stem (``<form>-<kind>-<hardware...>-<precision>``)."""
    parts = stem.split("-")
    kind = parts[1] if len(parts) > 1 else ""
    family = "jetson" if "jetson" in stem else _FAMILY.get(kind, "other")
    precision = parts[-1] if parts[-1] in ("fp32", "fp16", "int8", "bf16") else "fp32"
    hardware = " ".join(parts[2:-1]) if len(parts) > 3 else stem
    return DeviceSpec(
        name=stem,
        family=family,
        hardware=hardware,
        runtime="unknown",
        precision=precision,
        batch_size=1,
        provenance="imported",
        source=SOURCE,
        attributes={"dataset": "LatBench", "form_factor": parts[0], "file_stem": stem},
    )


def _key_arch(path: Path, key: Any) -> str:
    ok = isinstance(key, tuple) and len(key) == 6
    if not ok or not all(isinstance(k, int) and 0 <= k <= 4 for k in key):
        raise bad(path, f"key {key!r}", "key", "expected a tuple of 6 op codes in 0..4")
    return nb201_from_ops(key)


def load_latbench(paths: Sequence[str | Path]) -> BulkImport:
    """Read and validate LatBench pickles (nothing is written).

    Raises:
        ImportDataError: naming the file, the key and the field.
    """
    if not paths:
        raise ValueError("`paths` must name at least one LatBench pickle.")
    data = BulkImport()
    archs: dict[str, int | None] = {}
    files: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw)
        other = files.setdefault(path.stem, path)
        if other is not path:
            if other.resolve() == path.resolve():
                continue  # the same file given twice
            raise bad(path, "file", "path", f"device {path.stem!r} is also given by {other}")
        table = _load(path)
        names: list[str] = []
        values: list[float] = []
        for key, seconds in table.items():
            arch = _key_arch(path, key)
            where = f"key {key!r}"
            # finite: check_latency caps ``seconds * 1000.0``, this very product
            ms = check_latency(seconds, path, where, "latency_s", to_ms=1000.0) * 1000.0
            names.append(arch)
            values.append(ms)
            archs.setdefault(arch, None)
        spec = device_spec(path.stem)
        data.devices.append(spec)
        if path.stem.endswith(f"-{spec.precision}"):  # what the file name states
            data.stated[spec.name] = {"precision": (f"{path}: file", "file name")}
        else:
            data.stated[spec.name] = {}
        data.measurements.append(
            MeasurementSeries(
                device=path.stem,
                space="nasbench201",
                archs=names,
                values=values,
                protocol=PROTOCOL,
                source=f"{SOURCE} {path.name}",
                environment={"network": "NB201 32x32x3, 3x5 cells, C=16 (eagle defaults)"},
            )
        )
    data.archs["nasbench201"] = archs
    return data


def import_latbench(
    db: HardwareDB,
    paths: Sequence[str | Path],
    *,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Import LatBench pickles in one transaction; re-importing changes nothing."""
    return db.bulk_import(load_latbench(paths), progress=progress)

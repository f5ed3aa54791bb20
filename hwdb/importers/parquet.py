"""Importer and exporter of the project's parquet dataset format.

One row per measurement, device columns inlined.

Columns are the :class:`~hwdb.MeasurementIn` fields (``environment`` and ``workload`` as JSON
strings) plus ``device_family``, ``device_hardware``, ``device_runtime``, ``device_precision``,
``device_batch_size``, ``device_threads``, ``device_provenance``, ``device_source`` and
``device_attributes`` (JSON string). ``nas hwdb init`` imports every bundled
``hwdb/data/*.parquet``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdb._bulk import DEVICE_SETTINGS, BulkImport
from hwdb._errors import ImportDataError
from hwdb._types import DeviceSpec, MeasurementIn
from hwdb.importers._common import RowChecker, bad, canonical_arch, check_input_file

if TYPE_CHECKING:
    import pyarrow as pa

    from hwdb._storage import HardwareDB

__all__ = [
    "COLUMNS",
    "DEVICE_COLUMNS",
    "bundled_datasets",
    "export_parquet",
    "import_parquet",
    "load_parquet",
]

_STR, _F, _I = "string", "float64", "int64"
COLUMNS: dict[str, str] = {
    "device": _STR,
    "space": _STR,
    "arch": _STR,
    "metric": _STR,
    "median": _F,
    "mean": _F,
    "std": _F,
    "min": _F,
    "p90": _F,
    "n_runs": _I,
    "warmup": _I,
    "protocol": _STR,
    "environment": _STR,
    "source": _STR,
    "workload": _STR,
    "benchmark_index": _I,
}
DEVICE_COLUMNS: dict[str, str] = {
    "device_family": _STR,
    "device_hardware": _STR,
    "device_runtime": _STR,
    "device_precision": _STR,
    "device_batch_size": _I,
    "device_threads": _I,
    "device_provenance": _STR,
    "device_source": _STR,
    "device_attributes": _STR,
}
_JSON = ("environment", "workload", "device_attributes")


def _schema() -> pa.Schema:
    import pyarrow as pa

    kinds = {_STR: pa.string(), _F: pa.float64(), _I: pa.int64()}
    return pa.schema([(c, kinds[t]) for c, t in {**COLUMNS, **DEVICE_COLUMNS}.items()])


def bundled_datasets() -> list[Path]:
    """The ``hwdb/data/*.parquet`` files shipped with the package, sorted."""
    return sorted((Path(__file__).resolve().parents[1] / "data").glob("*.parquet"))


def _cell(kind: str, value: Any) -> Any:
    """A frame value as the parquet column wants it: missing numbers (NaN, NA) become null."""
    if kind == _STR or value is None:
        return value
    try:
        if math.isnan(value):
            return None
    except TypeError:  # pandas.NA and friends
        return None
    return int(value) if kind == _I else float(value)


def _check_out(path: Path) -> Path:
    """The file an export replaces: ``path`` with symbolic links resolved (a link is written
    through), which must be a regular file or nothing, in an existing folder."""
    out = Path(os.path.realpath(path))
    if out.is_dir():
        raise ValueError(f"cannot write {path}: it is a directory (give a .parquet file name)")
    if out.exists() and not out.is_file():
        raise ValueError(f"cannot write {path}: it is not a regular file")
    if not out.parent.is_dir():
        raise ValueError(f"cannot write {path}: folder {path.parent} does not exist")
    return out


def export_parquet(
    db: HardwareDB, path: str | Path, *, space: str | None = None, device: str | None = None
) -> int:
    """Write the measurements (optionally of one space / device) to a parquet file.

    Integer columns are nullable (a device without a thread count exports null, not NaN). The
    file is written next to ``path`` and renamed into place, so a failed export leaves no
    half-written file.

    Returns:
        Number of rows written.

    Raises:
        ValueError: if ``path`` is a directory or its folder does not exist.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = _check_out(Path(path))
    frame = db.measurement_frame(space=space, device=device)
    kinds = {**COLUMNS, **DEVICE_COLUMNS}
    records: list[dict[str, Any]] = []
    for raw in frame.to_dict("records"):
        rec = {c: _cell(kinds[c], raw[c]) for c in kinds}
        for col in _JSON:
            rec[col] = json.dumps(raw[col] or {}, sort_keys=True, default=str)
        records.append(rec)
    table = pa.Table.from_pylist(records, schema=_schema())
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise OSError(f"cannot write {path}: {exc.strerror}") from exc
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make a file meant to share private
        pq.write_table(table, tmp)
        os.replace(tmp, out)
    except OSError as exc:
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return len(records)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _json(file: Path, where: str, field: str, text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except (TypeError, ValueError):
        raise bad(file, where, field, f"not valid JSON: {text!r}") from None
    if not isinstance(value, dict):
        raise bad(file, where, field, "must be a JSON object")
    return value


def _row(file: Path, i: int, rec: dict[str, Any]) -> tuple[DeviceSpec, MeasurementIn]:
    where = f"row {i + 1}"
    field = "device"
    try:
        spec = DeviceSpec(
            name=rec["device"],
            **{c[len("device_") :]: rec[c] for c in DEVICE_COLUMNS if c != "device_attributes"},
            attributes=_json(file, where, "device_attributes", rec["device_attributes"]),
        )
        field = "arch"
        arch = canonical_arch(str(rec["space"]), str(rec["arch"]), file, where)
        field = "median"
        kw = {c: rec[c] for c in COLUMNS if c not in ("arch", "environment", "workload")}
        meas = MeasurementIn(
            **{**kw, "arch": arch},
            environment=_json(file, where, "environment", rec["environment"]),
            workload=_json(file, where, "workload", rec["workload"]),
        )
    except ImportDataError:
        raise
    except (TypeError, ValueError) as exc:
        name = str(exc).split("`")[1] if "`" in str(exc) else field
        raise bad(file, where, name, str(exc)) from None
    return spec, meas


def load_parquet(path: str | Path) -> BulkImport:
    """Read and validate a parquet dataset (nothing is written).

    Raises:
        ImportDataError: naming the file, the row and the column.
    """
    import pyarrow.parquet as pq

    file = Path(path)
    check_input_file(file, "parquet")
    try:
        table = pq.read_table(file)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types
        raise bad(file, "file", "content", f"not a readable parquet file ({exc})") from None
    missing = [c for c in (*COLUMNS, *DEVICE_COLUMNS) if c not in table.column_names]
    if missing:
        raise bad(file, "schema", missing[0], "missing column")
    data = BulkImport()
    rows = RowChecker(file)
    for i, rec in enumerate(table.to_pylist()):
        spec, meas = _row(file, i, rec)
        for setting in DEVICE_SETTINGS:  # a null cell states nothing
            if rec[f"device_{setting}"] not in (None, ""):
                rows.state(i, spec.name, setting, f"device_{setting}")
        key = (meas.device, meas.space, meas.arch, meas.metric, meas.protocol)
        if not rows.new_row(i, spec, key, meas, "median"):
            continue  # an exact duplicate: keep one
        data.rows.append(meas)
    data.devices = rows.devices
    data.stated = rows.stated
    return data


def import_parquet(
    db: HardwareDB, path: str | Path, *, progress: Callable[[int], None] | None = None
) -> int:
    """Import a parquet dataset in one transaction; returns measurements newly inserted.

    Devices that already exist are kept (a file whose ``device_runtime``,
    ``device_precision``, ``device_batch_size`` or ``device_threads`` contradicts the stored
    device imports nothing); existing measurements are kept (idempotent).
    """
    return db.bulk_import(load_parquet(path), progress=progress)["measurements"]

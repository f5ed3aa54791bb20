"""Importer and exporter of the project's parquet dataset format.

One row per record, device columns inlined. ``row_kind`` says what a row is:

* ``measurement`` (or null, or no ``row_kind`` column: files written before it existed): the
  :class:`~hwdb.MeasurementIn` fields (``environment`` and ``workload`` as JSON strings;
  ``created_at``, a UTC timestamp, is optional: a row without it is stamped on import;
  so is ``uploaded_by``, the API key that uploaded it) plus
  ``device_family``, ``device_hardware``, ``device_runtime``, ``device_precision``,
  ``device_batch_size``, ``device_threads``, ``device_provenance``, ``device_source`` and
  ``device_attributes`` (JSON string), and the optional ``device_registered_by``: the API key
  that registered the device through the service (:attr:`hwdb.Device.registered_by`), which
  an import sets on the devices it inserts when the database has an API key of that name
  (names are per database);
* ``accuracy``: an :class:`~hwdb.AccuracyIn` in ``space``, ``arch``, ``dataset``, ``metric``,
  ``value`` and ``source`` (plus the arch's ``benchmark_index``); device columns null;
* ``device``: a device without measurements (e.g. a catalog device), in ``device`` and the
  device columns; everything else null.

A whole-database export therefore moves everything a search needs from one database to
another (SQLite to a team's PostgreSQL). ``nas hwdb init`` imports every bundled
``hwdb/data/*.parquet``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from hwdb._bulk import DEVICE_SETTINGS, AccuracySeries, BulkImport
from hwdb._errors import ImportDataError
from hwdb._types import AccuracyIn, DeviceSpec, MeasurementIn
from hwdb.importers._common import (
    RowChecker,
    bad,
    canonical_arch,
    check_input_file,
    value_error_field,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from hwdb._storage import HardwareDB

__all__ = [
    "COLUMNS",
    "DEVICE_COLUMNS",
    "ROW_KINDS",
    "bundled_datasets",
    "export_parquet",
    "import_parquet",
    "load_parquet",
]

_STR, _F, _I, _TS = "string", "float64", "int64", "timestamp"
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
#: Columns of accuracy rows beyond :data:`COLUMNS`, the row kind, when and by whom a
#: measurement was stored and which API key registered its device through the service
#: (optional on import: older files lack them).
_EXTRA_COLUMNS: dict[str, str] = {
    "row_kind": _STR, "dataset": _STR, "value": _F, "created_at": _TS, "uploaded_by": _STR,
    "device_registered_by": _STR,
}  # fmt: skip
_KINDS = {**COLUMNS, **DEVICE_COLUMNS, **_EXTRA_COLUMNS}
#: What a row of the format can be (``row_kind``).
ROW_KINDS = ("measurement", "accuracy", "device")
_JSON = ("environment", "workload", "device_attributes")


def _schema() -> pa.Schema:
    import pyarrow as pa

    kinds = {_STR: pa.string(), _F: pa.float64(), _I: pa.int64(), _TS: pa.timestamp("us", "UTC")}
    return pa.schema([(c, kinds[t]) for c, t in _KINDS.items()])


def bundled_datasets() -> list[Path]:
    """The ``hwdb/data/*.parquet`` files shipped with the package, sorted."""
    return sorted((Path(__file__).resolve().parents[1] / "data").glob("*.parquet"))


def _cell(kind: str, value: Any) -> Any:
    """A frame value as the parquet column wants it: missing values (NaN, NA) become null."""
    if value is None or (kind == _STR and isinstance(value, str)):
        return value
    if kind == _TS:
        return None if value is pd.NaT else pd.Timestamp(value).to_pydatetime()
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
) -> dict[str, int]:
    """Write the measurements (optionally of one space / device) to a parquet file, with the
    accuracies (unless ``device`` is given) and the devices without measurements (unless
    ``space`` is given; a selected ``device`` without measurements is written as a device
    row even then, so exporting a catalog device carries it).

    Integer columns are nullable (a device without a thread count exports null, not NaN). The
    file is written next to ``path`` and renamed into place, so a failed export leaves no
    half-written file.

    Returns:
        Rows written of each kind: ``{"measurements", "accuracies", "devices"}``.

    Raises:
        ValueError: if ``path`` is a directory or its folder does not exist, or ``space`` is
            neither a registered space nor one in the database.
        NotFoundError: if ``device`` is not in the database.
    """
    import pyarrow as pa

    out = _check_out(Path(path))
    if device is not None:
        db.get_device(device)
    if space is not None and space not in db.list_spaces():
        from search_spaces import list_spaces

        if space not in list_spaces():
            raise ValueError(f"`space` must be a search space, got {space!r}.")
    records = _measurement_records(db, space, device)
    counts = {"measurements": len(records), "accuracies": 0, "devices": 0}
    if device is None:
        acc = _accuracy_records(db, space)
        counts["accuracies"] = len(acc)
        records += acc
    if space is None or (device is not None and not records):
        idle = _device_records(db, device)  # a selected device without measurements, too
        counts["devices"] = len(idle)
        records += idle
    _write(pa.Table.from_pylist(records, schema=_schema()), out, path)
    return counts


def _blank() -> dict[str, Any]:
    return dict.fromkeys(_KINDS)


def _measurement_records(
    db: HardwareDB, space: str | None, device: str | None
) -> list[dict[str, Any]]:
    records = []
    for raw in db.measurement_frame(space=space, device=device).to_dict("records"):
        cols = (*COLUMNS, *DEVICE_COLUMNS, "device_registered_by", "created_at", "uploaded_by")
        rec = {**_blank(), **{c: _cell(_KINDS[c], raw[c]) for c in cols}}
        for col in _JSON:
            rec[col] = json.dumps(raw[col] or {}, sort_keys=True, default=str)
        rec["row_kind"] = "measurement"
        records.append(rec)
    return records


def _accuracy_records(db: HardwareDB, space: str | None) -> list[dict[str, Any]]:
    records = []
    for raw in db.accuracy_frame(space=space).to_dict("records"):
        rec = {**_blank(), **{c: _cell(_KINDS[c], v) for c, v in raw.items()}}
        rec["row_kind"] = "accuracy"
        records.append(rec)
    return records


def _device_records(db: HardwareDB, only: str | None) -> list[dict[str, Any]]:
    records = []
    for dev in db.unmeasured_devices():
        if only is not None and dev.name != only:
            continue
        rec = _blank()
        rec.update({c: getattr(dev, c[len("device_") :]) for c in DEVICE_COLUMNS})
        rec["device_attributes"] = json.dumps(dev.attributes or {}, sort_keys=True, default=str)
        rec.update(device=dev.name, row_kind="device", device_registered_by=dev.registered_by)
        records.append(rec)
    return records


def _write(table: pa.Table, out: Path, path: str | Path) -> None:
    import pyarrow.parquet as pq

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


def _device_spec(file: Path, where: str, rec: dict[str, Any]) -> DeviceSpec:
    try:
        return DeviceSpec(
            name=rec["device"],
            **{c[len("device_") :]: rec[c] for c in DEVICE_COLUMNS if c != "device_attributes"},
            attributes=_json(file, where, "device_attributes", rec["device_attributes"]),
        )
    except ImportDataError:
        raise
    except (TypeError, ValueError) as exc:
        raise bad(file, where, value_error_field(exc, "device"), str(exc)) from None


def _row(file: Path, i: int, rec: dict[str, Any]) -> tuple[DeviceSpec, MeasurementIn]:
    where = f"row {i + 1}"
    spec = _device_spec(file, where, rec)
    arch = canonical_arch(str(rec["space"]), str(rec["arch"]), file, where)
    try:
        kw = {c: rec[c] for c in COLUMNS if c not in ("arch", "environment", "workload")}
        meas = MeasurementIn(
            **{**kw, "arch": arch},
            environment=_json(file, where, "environment", rec["environment"]),
            workload=_json(file, where, "workload", rec["workload"]),
            created_at=_utc(rec.get("created_at")),
            uploaded_by=rec.get("uploaded_by") or None,
        )
    except ImportDataError:
        raise
    except (TypeError, ValueError) as exc:
        raise bad(file, where, value_error_field(exc, "median"), str(exc)) from None
    return spec, meas


def _utc(value: Any) -> Any:
    """A ``created_at`` cell: a naive timestamp (a file written by other tools) is UTC."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _accuracy(file: Path, i: int, rec: dict[str, Any]) -> AccuracyIn:
    where = f"row {i + 1}"
    arch = canonical_arch(str(rec["space"]), str(rec["arch"]), file, where)
    try:
        return AccuracyIn(
            space=rec["space"], arch=arch, dataset=rec["dataset"], metric=rec["metric"],
            value=rec["value"], source=rec["source"] or "",
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise bad(file, where, value_error_field(exc, "value"), str(exc)) from None


class _Accuracies:
    """A file's accuracy rows, one value per (space, arch, dataset, metric), as series."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._seen: dict[tuple[str, str, str, str], tuple[int, float]] = {}
        self._series: dict[tuple[str, str, str, str], AccuracySeries] = {}
        self.archs: dict[str, dict[str, int | None]] = {}
        self._index_row: dict[tuple[str, str], int] = {}  # the row that gave an arch's index

    def add(self, i: int, rec: dict[str, Any]) -> None:
        acc = _accuracy(self.file, i, rec)
        self._index(i, acc.space, acc.arch, rec.get("benchmark_index"))
        key = (acc.space, acc.arch, acc.dataset, acc.metric)
        first, value = self._seen.setdefault(key, (i, acc.value))
        if first != i:
            if value != acc.value:
                what = "same space, arch, dataset and metric"
                raise bad(
                    self.file, f"row {i + 1}", "value", f"conflicts with row {first + 1} ({what})"
                )
            return  # an exact duplicate: keep one
        group = (acc.space, acc.dataset, acc.metric, acc.source)
        series = self._series.setdefault(
            group, AccuracySeries(acc.space, acc.dataset, acc.metric, [], [], acc.source)
        )
        series.archs.append(acc.arch)
        series.values.append(float(acc.value))

    def _index(self, i: int, space: str, arch: str, value: Any) -> None:
        """Record ``arch``'s benchmark index from row ``i``; one arch, one index."""
        where = f"row {i + 1}"
        if value is None:
            self.archs.setdefault(space, {}).setdefault(arch, None)
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(
                self.file, where, "benchmark_index", f"must be an integer >= 0, got {value!r}"
            )
        known = self.archs.setdefault(space, {})
        if known.get(arch) is None:
            known[arch] = value
            self._index_row[(space, arch)] = i
        elif known[arch] != value:
            first = self._index_row[(space, arch)] + 1
            raise bad(self.file, where, "benchmark_index", f"{value} conflicts with row {first} "
                      f"({known[arch]}, same arch)")  # fmt: skip

    @property
    def series(self) -> list[AccuracySeries]:
        return list(self._series.values())


#: The int64 columns of the format (nullable): pandas reads one with a null as float64, so
#: a file it writes back holds ``1.0`` there.
_INTEGER_COLUMNS = tuple(c for c, kind in _KINDS.items() if kind == _I)
#: The largest float that is an exact int64 (2**63 itself is not).
_INT64_FLOAT_MAX = float(2**63 - 1024)


def _integer_columns(file: Path, table: pa.Table) -> pa.Table:
    """``table`` with its integer columns (:data:`_INTEGER_COLUMNS`) that a tool wrote as
    floats cast back to int64: whole numbers (``1.0``) become integers, NaN a null (how pandas
    writes a missing integer); a fraction, an infinity or a number past int64 is an error
    naming the first such row.

    Raises:
        ImportDataError: naming the file, the row and the column.
    """
    import numpy as np
    import pyarrow as pa

    for col in _INTEGER_COLUMNS:
        if col not in table.column_names:
            continue
        column = table.column(col)
        if not pa.types.is_floating(column.type):
            continue  # an int64 column, or a type the row checks name
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        nulls = np.isnan(values)
        with np.errstate(invalid="ignore"):
            wrong = ~nulls & ((values != np.round(values)) | (np.abs(values) > _INT64_FLOAT_MAX))
        if wrong.any():
            i = int(np.argmax(wrong))
            value = float(values[i])
            what = "out of range for an integer" if value.is_integer() else "not an integer"
            raise bad(file, f"row {i + 1}", col, f"{what}: {value!r}")
        ints = pa.array(np.where(nulls, 0, values).astype(np.int64), mask=nulls)
        table = table.set_column(table.column_names.index(col), col, ints)
    return table


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
    table = _integer_columns(file, table)
    data = BulkImport()
    rows = RowChecker(file)
    accuracies = _Accuracies(file)
    for i, rec in enumerate(table.to_pylist()):
        kind = rec.get("row_kind") or "measurement"
        if kind == "accuracy":
            if "dataset" not in rec or "value" not in rec:
                raise bad(
                    file, "schema", "dataset" if "dataset" not in rec else "value", "missing column"
                )
            accuracies.add(i, rec)
            continue
        if kind == "device":
            spec = _device_spec(file, f"row {i + 1}", rec)
            rows.device(i, spec)
        elif kind == "measurement":
            spec, meas = _row(file, i, rec)
            key = (meas.device, meas.space, meas.arch, meas.metric, meas.protocol)
            if rows.new_row(i, spec, key, meas, "median"):  # equality ignores created_at
                data.rows.append(meas)
        else:
            kinds = ", ".join(ROW_KINDS)
            raise bad(file, f"row {i + 1}", "row_kind", f"must be one of {kinds}, got {kind!r}")
        for setting in DEVICE_SETTINGS:  # a null cell states nothing
            if rec[f"device_{setting}"] not in (None, ""):
                rows.state(i, spec.name, setting, f"device_{setting}")
        _registered_by(file, i, rec, data.registered_by)
    data.devices = rows.devices
    data.stated = rows.stated
    data.accuracies = accuracies.series
    data.archs = accuracies.archs
    return data


def _registered_by(file: Path, i: int, rec: dict[str, Any], seen: dict[str, str]) -> None:
    """Record the API key that registered the row's device (``device_registered_by``; a null
    cell states nothing); rows of one device that name two keys are refused."""
    key = rec.get("device_registered_by")
    if key in (None, ""):
        return
    if not isinstance(key, str):
        raise bad(file, f"row {i + 1}", "device_registered_by", f"must be a string, got {key!r}")
    first = seen.setdefault(rec["device"], key)
    if first != key:
        raise bad(
            file, f"row {i + 1}", "device_registered_by",
            f"{key!r} contradicts {first!r} of an earlier row of device {rec['device']!r}",
        )  # fmt: skip


def import_parquet(
    db: HardwareDB, path: str | Path, *, progress: Callable[[int], None] | None = None
) -> int:
    """Import a parquet dataset in one transaction; returns measurements newly inserted.

    Devices that already exist are kept (a file whose ``device_runtime``,
    ``device_precision``, ``device_batch_size`` or ``device_threads`` contradicts the stored
    device imports nothing); existing measurements are kept (idempotent).
    """
    return db.bulk_import(load_parquet(path), progress=progress)["measurements"]

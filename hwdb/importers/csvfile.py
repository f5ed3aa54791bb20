"""Importer of hand-written CSV files: ``space,arch,device,latency_ms`` per row.

Optional columns: ``metric`` (default: the space's latency metric, ``e2e_ms`` for
``nemotron_flash``, else ``latency_ms``), ``batch_size``, ``precision``,
``runtime``, ``family``; they describe devices that are not in the database yet (existing
devices are kept as they are: a row whose ``batch_size``, ``precision`` or ``runtime``
contradicts the stored device is refused, and the file imports nothing; an empty cell states
nothing). The input a row was measured at (its workload): ``resolution`` (vision),
``prompt_len`` and ``decode_len`` (language models), and ``batch_size``; a row that states
none was measured at the space's default input. A device's latencies are read at one workload,
the one most of its rows have (:meth:`hwdb.HardwareDB.latency_table`), so rows at another are
stored but not used: :func:`unused_rows` finds them (and a device's earlier rows that an
import ties or outnumbers, given :func:`read_workloads` taken before it). ``metric`` must be
one the space is measured in (``latency_ms``; ``prefill_ms``, ``decode_ms_per_token`` or
``e2e_ms`` for language models) and ``precision`` one of :data:`hwdb._types.PRECISIONS`.
Architecture strings are canonicalised through the registered search space
(``search_spaces.get_space(space).canonicalize``). Every row has as many fields as the header
(an empty cell for a value not given): a row with more or fewer is refused, since its values
would be read under other columns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdb._bulk import BulkImport
from hwdb._errors import ImportDataError
from hwdb._types import FAMILIES, PRECISIONS, DeviceSpec, MeasurementIn
from hwdb.importers._common import (
    RowChecker,
    bad,
    canonical_arch,
    check_input_file,
    check_latency,
    known_metrics,
    value_error_field,
)

if TYPE_CHECKING:
    from hwdb._storage import HardwareDB

__all__ = ["REQUIRED", "import_csv", "load_csv", "read_workloads", "unused_rows"]

REQUIRED = ("space", "arch", "device", "latency_ms")
_DEVICE_FIELDS = ("batch_size", "precision", "runtime", "family")
#: Columns giving a row's workload (``batch_size`` also describes its device).
_WORKLOAD_FIELDS = ("batch_size", "resolution", "prompt_len", "decode_len")
#: (device, space, metric): one latency column of a device.
_Key = tuple[str, str, str]


def _device(file: Path, where: str, name: str, row: dict[str, str]) -> DeviceSpec:
    batch_text = row.get("batch_size") or "1"
    try:
        batch = int(batch_text)
    except ValueError:
        raise bad(file, where, "batch_size", f"not an integer: {batch_text!r}") from None
    family = row.get("family") or "other"
    if family not in FAMILIES:
        raise bad(file, where, "family", f"must be one of {', '.join(FAMILIES)}, got {family!r}")
    precision = row.get("precision") or "fp32"
    if precision not in PRECISIONS:
        known = ", ".join(PRECISIONS)
        raise bad(file, where, "precision", f"must be one of {known}, got {precision!r}")
    try:
        return DeviceSpec(
            name=name,
            family=family,
            runtime=row.get("runtime") or "unknown",
            precision=precision,
            batch_size=batch,
            provenance="imported",
            source=f"csv {file.name}",
        )
    except ValueError as exc:
        field = value_error_field(exc, "device")
        raise bad(file, where, "device" if field == "name" else field, str(exc)) from None


def _workload(file: Path, where: str, space: str, row: dict[str, str]) -> dict[str, int]:
    """The input shapes a row states (``{}``: the space's default), checked as
    :class:`search_spaces.Workload` checks them."""
    stated: dict[str, int] = {}
    for col in _WORKLOAD_FIELDS:
        text = row.get(col) or ""
        if not text:
            continue
        try:
            stated[col] = int(text)
        except ValueError:
            raise bad(file, where, col, f"not an integer: {text!r}") from None
    if not stated or stated == {"batch_size": 1}:
        return {}
    from search_spaces import SearchSpaceError, get_space

    try:
        sp = get_space(space)
    except SearchSpaceError:  # a space the registry does not know: stored as stated
        return stated
    try:
        sp.workload_with(stated)
    except ValueError as exc:
        col = next((c for c in stated if f"`{c}`" in str(exc)), next(iter(stated)))
        raise bad(file, where, col, str(exc)) from None
    return stated


def read_workloads(db: HardwareDB, rows: list[MeasurementIn]) -> dict[_Key, dict[str, Any] | None]:
    """The input shape each (device, space, metric) of ``rows`` has its latencies read at now
    (:func:`hwdb._queries.workload_shape`), None where the database holds none of its rows.
    Taken before an import, it lets :func:`unused_rows` tell which earlier rows the import
    displaced."""
    from hwdb._errors import NotFoundError
    from hwdb._queries import workload_shape

    out: dict[_Key, dict[str, Any] | None] = {}
    for device, space, metric in sorted({(r.device, r.space, r.metric) for r in rows}):
        try:
            table = db.latency_table(space, devices=[device], metric=metric)
        except NotFoundError:  # a new device or space
            out[(device, space, metric)] = None
            continue
        stored = table.attrs["workload"].get(device)
        has_rows = device in table.columns and bool(table[device].notna().any())
        out[(device, space, metric)] = (
            workload_shape(space, dict(stored or {})) if has_rows else None
        )
    return out


def unused_rows(
    db: HardwareDB,
    rows: list[MeasurementIn],
    before: dict[_Key, dict[str, Any] | None] | None = None,
) -> list[dict[str, Any]]:
    """The groups of stored rows that latency tables leave out: rows of ``rows`` (stored) of a
    device at another workload than the one most of its rows in that space have, and, given
    ``before`` (:func:`read_workloads` taken before the import), the device's earlier rows
    when the import moved its column to another workload (its rows tie or outnumber them).
    A row of ``rows`` whose record the database holds at another workload (an import without
    ``--replace`` kept the stored row) is not at the workload it states: it counts where it
    is stored, among the earlier rows.

    Returns:
        ``{"device", "space", "metric", "rows", "workload", "used", "earlier"}`` per such
        group: ``workload`` the rows' input shapes that differ from the space's default
        (:func:`hwdb._queries.workload_shape`), ``used`` those of the workload the device's
        column is read at, ``earlier`` whether they are rows stored before the import.
    """
    from hwdb._queries import workload_shape

    now = read_workloads(db, rows)
    groups: dict[tuple[str, str, str, str], int] = {}
    stored_at = _StoredShapes(db)
    for r in rows:
        shape = workload_shape(r.space, dict(r.workload))
        if shape != (now[(r.device, r.space, r.metric)] or {}) and stored_at(r) != shape:
            continue  # kept as stored before, at another input (an import without --replace)
        key = (r.device, r.space, r.metric, json.dumps(shape, sort_keys=True))
        groups[key] = groups.get(key, 0) + 1
    out = []
    for (device, space, metric, text), n in sorted(groups.items()):
        used = now[(device, space, metric)] or {}
        if json.loads(text) != used:
            out.append({"device": device, "space": space, "metric": metric, "rows": n,
                        "workload": json.loads(text), "used": used, "earlier": False})  # fmt: skip
    for (device, space, metric), was in sorted((before or {}).items()):
        used = now.get((device, space, metric)) or {}
        if was is None or was == used:
            continue
        stored = sum(
            g["rows"]
            for g in db.measurement_groups(device, space=space)
            if g["metric"] == metric and workload_shape(space, dict(g["workload"])) == was
        )
        # this file's rows at that input are named by the first loop
        n = stored - groups.get((device, space, metric, json.dumps(was, sort_keys=True)), 0)
        if n > 0:
            out.append({"device": device, "space": space, "metric": metric, "rows": n,
                        "workload": was, "used": used, "earlier": True})  # fmt: skip
    return out


class _StoredShapes:
    """The input shape (:func:`hwdb._queries.workload_shape`) each stored row of a file's
    rows has: a row an import kept (the same device, space, arch, metric and protocol was
    stored already) keeps the stored row's input, not the one the file states. Reads each
    device's rows in a space once, when first asked."""

    def __init__(self, db: HardwareDB) -> None:
        self._db = db
        self._shapes: dict[tuple[str, str], dict[tuple[str, str, str], dict[str, Any]]] = {}

    def __call__(self, row: MeasurementIn) -> dict[str, Any] | None:
        """The stored input shape of ``row``'s record, None if it is not stored."""
        shapes = self._shapes.get((row.device, row.space))
        if shapes is None:
            shapes = self._read(row.device, row.space)
            self._shapes[(row.device, row.space)] = shapes
        return shapes.get((row.arch, row.metric, row.protocol))

    def _read(self, device: str, space: str) -> dict[tuple[str, str, str], dict[str, Any]]:
        from hwdb._queries import workload_shape

        frame = self._db.measurement_frame(space=space, device=device)
        cols = ["arch", "metric", "protocol", "workload"]
        out: dict[tuple[str, str, str], dict[str, Any]] = {}
        seen: dict[str, dict[str, Any]] = {}  # a device's rows share a few workloads
        for arch, metric, protocol, workload in frame[cols].itertuples(index=False):
            text = json.dumps(workload or {}, sort_keys=True, default=str)
            if text not in seen:
                seen[text] = workload_shape(space, dict(workload or {}))
            out[(arch, metric, protocol)] = seen[text]
        return out


def _metric(file: Path, where: str, space: str, row: dict[str, str]) -> str:
    from hwdb._storage import space_latency_metric

    known = known_metrics(space)
    metric = row.get("metric") or space_latency_metric(space)
    if metric not in known:
        raise bad(file, where, "metric", f"{space} is measured in {', '.join(known)}, "
                  f"got {metric!r}")  # fmt: skip
    return metric


def _check_field_counts(file: Path) -> None:
    """Refuse a data row with more or fewer fields than the header. pandas would read one
    more field on the first row as an index (shifting every value a column to the left) and
    pad a short row with empty cells, where a forgotten value moves the next one under its
    column (a resolution read as the latency); either way values end up under the wrong
    column, so the row is named instead. Rows are counted as :func:`_read` counts them (blank
    lines skipped); a file the ``csv`` module cannot split, or whose header lacks a
    :data:`REQUIRED` column, is left to pandas and the header check.

    Raises:
        ImportDataError: naming the row, its line and both field counts.
    """
    import csv

    header: list[str] | None = None
    named = row = 0
    try:
        with file.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
            reader = csv.reader(handle, skipinitialspace=True)
            line = 1
            for record in reader:
                start, line = line, reader.line_num + 1
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue  # a blank line, which pandas skips too
                if header is None:
                    if not set(REQUIRED) <= {c.strip() for c in record}:
                        return  # not this importer's CSV: the header check says so
                    header = record
                    named = len(header)  # trailing unnamed columns hold nothing to shift
                    while named and not header[named - 1].strip():
                        named -= 1
                    continue
                row += 1
                if not named <= len(record) <= len(header):
                    raise ImportDataError(_ragged(file, row, start, len(record), header[:named]))
    except (csv.Error, OSError):
        return  # pandas reports what makes the file unreadable


def _ragged(file: Path, row: int, line: int, fields: int, header: list[str]) -> str:
    """The message for data row ``row`` (on ``line``) with ``fields`` fields."""
    names = ", ".join(c.strip() for c in header)
    fix = (
        "quote a value that contains a comma, or remove the extra field"
        if fields > len(header)
        else "write an empty cell for a value not given, so that no value lands under "
        "another column"
    )
    return (
        f"{file}: row {row} (line {line}): {fields} field{'' if fields == 1 else 's'}, but "
        f"the header has {len(header)} ({names}): {fix}"
    )


def _read(file: Path) -> list[dict[str, str]]:
    import pandas as pd

    check_input_file(file, "CSV")
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types
        _check_field_counts(file)  # "Expected 4 fields in line 3, saw 5": name the row
        raise bad(file, "file", "content", f"not a readable CSV ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise bad(file, "header", missing[0], f"missing column (need {', '.join(REQUIRED)})")
    _check_field_counts(file)
    if frame.empty:
        raise bad(file, "file", "rows", "no data rows")
    records: list[dict[str, Any]] = frame.to_dict("records")
    return [{k: str(v).strip() for k, v in r.items()} for r in records]


def load_csv(path: str | Path) -> BulkImport:
    """Read and validate a measurement CSV (nothing is written).

    Raises:
        ImportDataError: naming the file, the row (1 = first data row) and the column.
    """
    file = Path(path)
    data = BulkImport()
    rows = RowChecker(file)
    for i, row in enumerate(_read(file)):
        where = f"row {i + 1}"
        for col in ("space", "device"):
            if not row[col]:
                raise bad(file, where, col, "empty value")
        space = row["space"].lower()
        arch = canonical_arch(space, row["arch"], file, where)
        latency = check_latency(row["latency_ms"], file, where, "latency_ms")
        spec = _device(file, where, row["device"], row)
        metric = _metric(file, where, space, row)
        for setting in ("batch_size", "precision", "runtime"):
            if row.get(setting):
                rows.state(i, spec.name, setting, setting)
        if not rows.new_row(i, spec, (spec.name, space, arch, metric), latency, "latency_ms"):
            continue  # an exact duplicate: keep one
        data.rows.append(
            MeasurementIn(
                device=spec.name,
                space=space,
                arch=arch,
                metric=metric,
                median=latency,
                source=f"csv {file.name}",
                workload=_workload(file, where, space, row),
            )
        )
    data.devices = rows.devices
    data.stated = rows.stated
    return data


def import_csv(
    db: HardwareDB, path: str | Path, *, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Import a measurement CSV in one transaction; re-importing changes nothing."""
    return db.bulk_import(load_csv(path), progress=progress)

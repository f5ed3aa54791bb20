"""Set-based SQL helpers behind :class:`hwdb.HardwareDB` (the only callers).

Every helper works inside the caller's transaction. Get-or-create is race-safe: rows are
inserted with the dialect's ``INSERT ... ON CONFLICT DO NOTHING`` (sorted, so concurrent
PostgreSQL writers lock keys in the same order) and ids are read back afterwards.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import Table, and_, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hwdb._errors import DuplicateError, ImportDataError, StorageError
from hwdb._models import (
    ArchitectureModel,
    DeviceModel,
    SearchSpaceModel,
)
from hwdb._types import (
    DEVICE_SETTINGS,
    accuracy_problem,
    check_new_device,
    clamped_float,
    latency_problem,
    new_name_problem,
    settings_conflict,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hwdb._types import DeviceSpec, MeasurementIn

__all__ = [
    "DEVICE_SETTINGS",
    "AccuracySeries",
    "BulkImport",
    "MeasurementSeries",
    "arch_hash",
    "check_device_settings",
    "check_values",
    "ensure_archs",
    "ensure_devices",
    "ensure_spaces",
    "insert_accuracies",
    "insert_measurements",
    "measurement_params",
    "series_params",
]

CHUNK = 20_000
_IN_CHUNK = 500


def arch_hash(space: str, arch: str) -> str:
    """SHA-256 content hash of an architecture (space name and canonical string)."""
    return hashlib.sha256(f"{space}\n{arch}".encode()).hexdigest()


@dataclass
class MeasurementSeries:
    """Many latencies of one device in one space that share metric, protocol and provenance.

    ``archs`` are canonical strings and ``values`` medians in milliseconds, checked as
    :class:`~hwdb.MeasurementIn` checks a median when the series is written.
    """

    device: str
    space: str
    archs: list[str]
    values: list[float]
    metric: str = "latency_ms"
    protocol: str = ""
    source: str = ""
    n_runs: int = 1
    warmup: int = 0
    environment: dict[str, Any] = field(default_factory=dict)
    workload: dict[str, Any] = field(default_factory=dict)


@dataclass
class AccuracySeries:
    """Many accuracy values of one space, dataset and metric, checked as
    :class:`~hwdb.AccuracyIn` checks a value when the series is written."""

    space: str
    dataset: str
    metric: str
    archs: list[str]
    values: list[float]
    source: str = ""


@dataclass
class BulkImport:
    """Everything one importer writes, applied by ``HardwareDB.bulk_import`` in one transaction.

    ``archs`` maps space -> canonical arch -> benchmark index (or None). ``stated`` maps a
    device name -> setting (:data:`DEVICE_SETTINGS`) -> ``(where, field)``: the settings the
    file states for that device, where (``"FILE: row 3"``) and under which field name; a
    device without an entry states all of them (``where``: the device name).
    ``registered_by`` maps a device name -> the API key that registered it through the
    service (an export's ``device_registered_by``), set on the devices the import inserts.
    """

    devices: list[DeviceSpec] = field(default_factory=list)
    archs: dict[str, dict[str, int | None]] = field(default_factory=dict)
    measurements: list[MeasurementSeries] = field(default_factory=list)
    accuracies: list[AccuracySeries] = field(default_factory=list)
    rows: list[MeasurementIn] = field(default_factory=list)
    stated: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    registered_by: dict[str, str] = field(default_factory=dict)

    @property
    def n_archs(self) -> int:
        """Distinct ``(space, arch)`` pairs the import names, however it names them."""
        keys = {(space, a) for space, archs in self.archs.items() for a in archs}
        keys.update((m.space, a) for m in self.measurements for a in m.archs)
        keys.update((c.space, a) for c in self.accuracies for a in c.archs)
        keys.update((r.space, r.arch) for r in self.rows)
        return len(keys)

    @property
    def n_measurements(self) -> int:
        """Number of measurement rows (series values plus single rows)."""
        return sum(len(s.values) for s in self.measurements) + len(self.rows)

    @property
    def n_accuracies(self) -> int:
        """Number of accuracy values."""
        return sum(len(s.values) for s in self.accuracies)

    @property
    def n_rows(self) -> int:
        """Number of measurement plus accuracy rows."""
        return self.n_measurements + sum(len(s.values) for s in self.accuracies)


def _insert(session: Session, table: Any) -> Any:
    name = session.get_bind().dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise StorageError(f"unsupported database dialect {name!r} (use SQLite or PostgreSQL)")


def _chunks(rows: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def ensure_spaces(session: Session, names: Iterable[str]) -> dict[str, int]:
    """Get-or-create search spaces; returns name -> id."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    table = SearchSpaceModel.__table__
    stmt = _insert(session, table).on_conflict_do_nothing(index_elements=["name"])
    session.execute(stmt, [{"name": n} for n in wanted])
    rows = session.execute(
        select(SearchSpaceModel.name, SearchSpaceModel.id).where(SearchSpaceModel.name.in_(wanted))
    )
    return {name: id_ for name, id_ in rows}


def device_row(spec: DeviceSpec, now: datetime) -> dict[str, Any]:
    """Column values of a device."""
    row = asdict(spec)
    row["created_at"] = now
    return row


def check_device_settings(session: Session, data: BulkImport) -> None:
    """Refuse an import whose device contradicts the stored device of that name in a setting
    the file states (:data:`DEVICE_SETTINGS`; values that state nothing never conflict).

    Raises:
        ImportDataError: naming where the file states the setting, the field, both values.
    """
    names = sorted({d.name for d in data.devices})
    stored: dict[str, Any] = {}
    for part in _chunks(names, _IN_CHUNK):
        q = select(DeviceModel).where(DeviceModel.name.in_(part))
        stored.update({row.name: row for row in session.execute(q).scalars()})
    for spec in data.devices:
        row = stored.get(spec.name)
        if row is None:
            continue
        stated = data.stated.get(spec.name)
        if stated is None:
            stated = {s: (f"device {spec.name!r}", s) for s in DEVICE_SETTINGS}
        for setting, (where, column) in stated.items():
            if not settings_conflict(setting, getattr(spec, setting), getattr(row, setting)):
                continue
            given, have = getattr(spec, setting), getattr(row, setting)
            raise ImportDataError(
                f"{where}: field {column!r}: device {spec.name!r} is stored with {setting} "
                f"{have!r}, not {given!r}; existing devices are kept as they are, so import "
                "these rows under another device name"
            )


def _check_new_names(session: Session, names: Sequence[str]) -> None:
    """Refuse a name a device not stored yet may not take (:func:`new_name_problem`).

    Raises:
        ValueError: naming ``name``.
    """
    odd = [n for n in names if new_name_problem(n)]
    if not odd:
        return
    stored = set(
        session.execute(select(DeviceModel.name).where(DeviceModel.name.in_(odd))).scalars()
    )
    for name in odd:
        if name not in stored:
            raise ValueError(new_name_problem(name))


def ensure_devices(
    session: Session,
    specs: Sequence[DeviceSpec],
    now: datetime,
    *,
    update_existing: bool,
    fields: Collection[str] | None = None,
    registered_by: str | Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Insert devices (or update them when ``update_existing``: every field, or only
    ``fields``); returns name -> id. The insert and the update are one statement, so a
    device another writer inserted meanwhile keeps the fields this one does not set.
    ``registered_by`` (one API key's name, or one per device name: an export's) is set on
    inserted devices only.

    Raises:
        ValueError: naming the argument of a device that :func:`check_new_device` refuses.
    """
    if not specs:
        return {}
    for spec in specs:
        check_new_device(spec)
    _check_new_names(session, [s.name for s in specs])
    by_name = {s.name: s for s in specs}
    owner = (
        registered_by.get if isinstance(registered_by, Mapping) else (lambda name: registered_by)
    )
    rows = [{**device_row(by_name[n], now), "registered_by": owner(n)} for n in sorted(by_name)]
    stmt = _insert(session, DeviceModel.__table__)
    keep = ("name", "created_at", "registered_by")
    cols = {
        c: stmt.excluded[c] for c in rows[0] if c not in keep and (fields is None or c in fields)
    }
    if update_existing and cols:
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_=cols)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["name"])
    session.execute(stmt, rows)
    return device_ids(session, list(by_name))


def device_ids(session: Session, names: Sequence[str]) -> dict[str, int]:
    """Ids of existing devices among ``names``."""
    out: dict[str, int] = {}
    unique = sorted(set(names))
    for part in _chunks(unique, _IN_CHUNK):
        q = select(DeviceModel.name, DeviceModel.id).where(DeviceModel.name.in_(part))
        out.update({name: id_ for name, id_ in session.execute(q)})
    return out


def _existing_archs(
    session: Session, space_id: int, archs: Sequence[str], *, whole_space: bool
) -> dict[str, tuple[int, int | None]]:
    cols = (ArchitectureModel.arch, ArchitectureModel.id, ArchitectureModel.benchmark_index)
    base = select(*cols).where(ArchitectureModel.space_id == space_id)
    if whole_space:
        return {a: (i, b) for a, i, b in session.execute(base)}
    out: dict[str, tuple[int, int | None]] = {}
    for part in _chunks(list(archs), _IN_CHUNK):
        q = base.where(ArchitectureModel.arch.in_(part))
        out.update({a: (i, b) for a, i, b in session.execute(q)})
    return out


def ensure_archs(
    session: Session, space: str, space_id: int, archs: Mapping[str, int | None]
) -> dict[str, int]:
    """Get-or-create architectures of one space; fill missing benchmark indices.

    Raises:
        DuplicateError: if an architecture already has a different benchmark index.
    """
    if not archs:
        return {}
    names = sorted(archs)
    whole = len(names) > 2_000
    known = _existing_archs(session, space_id, names, whole_space=whole)
    new = [
        {"space_id": space_id, "arch": a, "hash": arch_hash(space, a), "benchmark_index": archs[a]}
        for a in names
        if a not in known
    ]
    stmt = _insert(session, ArchitectureModel.__table__).on_conflict_do_nothing(
        index_elements=["space_id", "arch"]
    )
    for part in _chunks(new):
        session.execute(stmt, list(part))
    if new:
        known = _existing_archs(session, space_id, names, whole_space=whole)
    fill: list[dict[str, Any]] = []
    for a in names:
        arch_id, index = known[a]
        wanted = archs[a]
        if wanted is None or wanted == index:
            continue
        if index is not None:
            raise DuplicateError(
                f"architecture {a!r} of space {space!r} already has benchmark index {index}, "
                f"not {wanted}"
            )
        fill.append({"b_id": arch_id, "b_index": wanted})
    if fill:
        table = cast(Table, ArchitectureModel.__table__)
        upd = (
            update(table)
            .where(and_(table.c.id == bindparam("b_id"), table.c.benchmark_index.is_(None)))
            .values(benchmark_index=bindparam("b_index"))
        )
        session.execute(upd, fill)
    return {a: known[a][0] for a in names}


_MEASUREMENT_COLS = (
    "device_id",
    "architecture_id",
    "metric",
    "median",
    "mean",
    "std",
    "min",
    "p90",
    "n_runs",
    "warmup",
    "protocol",
    "environment",
    "workload",
    "source",
    "created_at",
    "uploaded_by",
)
_MEASUREMENT_KEY = ("device_id", "architecture_id", "metric", "protocol")
_ACCURACY_COLS = ("architecture_id", "dataset", "metric", "value", "source")
_ACCURACY_KEY = ("architecture_id", "dataset", "metric")
_JSON_COLS = frozenset({"environment", "workload"})


def _raw_insert_sql(
    dialect: str, table: str, cols: Sequence[str], key: Sequence[str], replace: bool
) -> str:
    """``INSERT ... ON CONFLICT`` in the driver's paramstyle (qmark / format). A replacing
    insert of measurements uploaded with an API key (``uploaded_by`` set) overwrites only the
    rows that key uploaded; a local one (``uploaded_by`` null) overwrites any row."""
    mark = "?" if dialect == "sqlite" else "%s"
    values = ", ".join(
        f"CAST({mark} AS JSON)" if dialect == "postgresql" and c in _JSON_COLS else mark
        for c in cols
    )
    if replace:
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key)
        action = f"DO UPDATE SET {sets}"
        if "uploaded_by" in cols:  # an API key replaces only rows it uploaded itself
            action += (
                f" WHERE excluded.uploaded_by IS NULL OR {table}.uploaded_by = excluded.uploaded_by"
            )
    else:
        action = "DO NOTHING"
    return (
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({values}) "
        f"ON CONFLICT ({', '.join(key)}) {action}"
    )


def _db_value(dialect: str, col: str, value: Any) -> Any:
    if col in _JSON_COLS:
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(sep=" ") if dialect == "sqlite" else value
    return value


def _executemany(
    session: Session,
    sql: str,
    rows: Sequence[tuple[Any, ...]],
    progress: Callable[[int], None] | None,
) -> int:
    """Run ``sql`` over ``rows`` in chunks with the DBAPI's executemany; returns rowcount."""
    conn = session.connection()
    total = 0
    for part in _chunks(rows):
        result = conn.exec_driver_sql(sql, list(part))
        total += max(int(result.rowcount or 0), 0)
        if progress is not None:
            progress(len(part))
    return total


def measurement_params(dialect: str, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """DBAPI parameter tuples (column order of the bulk INSERT) of measurement dicts."""
    return [tuple(_db_value(dialect, c, r[c]) for c in _MEASUREMENT_COLS) for r in rows]


def series_params(
    dialect: str,
    series: MeasurementSeries,
    device_id: int,
    arch_ids: Mapping[str, int],
    now: datetime,
) -> list[tuple[Any, ...]]:
    """DBAPI parameter tuples of one series (constants serialised once).

    Raises:
        ImportDataError: if a value is no latency :class:`~hwdb.MeasurementIn` would take
            (nothing of it is written).
    """
    check_values(f"{series.device} ({series.space})", series.archs, series.values, kind="latency")
    env = _db_value(dialect, "environment", series.environment)
    work = _db_value(dialect, "workload", series.workload)
    ts = _db_value(dialect, "created_at", now)
    metric, proto, src = series.metric, series.protocol, series.source
    n_runs, warmup = series.n_runs, series.warmup
    rows = [
        (device_id, arch_ids[a], metric, v, None, None, None, None, n_runs, warmup, proto)
        + (env, work, src, ts, None)
        for a, v in zip(series.archs, series.values, strict=True)
    ]
    rows.sort(key=lambda row: row[1])  # index locality
    return rows


def check_values(
    what: str,
    archs: Sequence[str],
    values: Sequence[float],
    *,
    kind: Literal["latency", "accuracy"],
) -> None:
    """Raise :class:`ImportDataError` naming the first value that is not an int or float, or
    that the rule of its ``kind`` refuses (:func:`~hwdb._types.latency_problem`, in
    milliseconds, or :func:`~hwdb._types.accuracy_problem`): the rules
    :class:`~hwdb.MeasurementIn` and :class:`~hwdb.AccuracyIn` apply."""
    rule = latency_problem if kind == "latency" else accuracy_problem
    for arch, value in zip(archs, values, strict=True):
        if isinstance(value, bool) or not isinstance(value, (int, float)):  # what the DBAPI binds
            raise ImportDataError(
                f"{what}: arch {arch!r}: value must be a number (int or float), got {value!r}"
            )
        problem = rule(clamped_float(value))
        if problem is not None:
            raise ImportDataError(f"{what}: arch {arch!r}: value must be {problem}, got {value!r}")


def insert_measurements(
    session: Session,
    params: Sequence[tuple[Any, ...]],
    *,
    replace: bool,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert measurement parameter tuples; returns rows inserted (or replaced).

    The DBAPI's ``executemany`` is used directly (no per-row ORM work): this is the bulk path
    that imports the public datasets in seconds.
    """
    if not params:
        return 0
    dialect = session.get_bind().dialect.name
    sql = _raw_insert_sql(dialect, "measurement", _MEASUREMENT_COLS, _MEASUREMENT_KEY, replace)
    return _executemany(session, sql, params, progress)


def insert_accuracies(
    session: Session,
    rows: Sequence[dict[str, Any]],
    progress: Callable[[int], None] | None = None,
    *,
    replace: bool = False,
) -> int:
    """Insert accuracy rows (ids resolved), keeping existing ones (``replace``: overwriting
    them); returns rows inserted (or replaced)."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    sql = _raw_insert_sql(dialect, "accuracy", _ACCURACY_COLS, _ACCURACY_KEY, replace)
    params = [tuple(r[c] for c in _ACCURACY_COLS) for r in rows]
    return _executemany(session, sql, params, progress)

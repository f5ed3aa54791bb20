"""The repository layer: :class:`HardwareDB` is the only code that touches ORM sessions."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import distinct, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hwdb import _apikeys, _bulk, _queries
from hwdb._engine import (
    WRITE_OPTION,
    check_schema,
    in_default_folder,
    make_engine,
    redact,
    sqlite_file,
)
from hwdb._errors import (
    ChangedError,
    DuplicateError,
    NotFoundError,
    SchemaOutdatedError,
    StorageError,
)
from hwdb._models import (
    Base,
    DeviceModel,
    MeasurementModel,
    PredictorArtifactModel,
    utcnow,
)
from hwdb._types import (
    AccuracyIn,
    Artifact,
    Device,
    DeviceSpec,
    MeasurementIn,
    default_database_url,
    json_ready,
)

if TYPE_CHECKING:
    import pandas as pd

    from hwdb._apikeys import ApiKey

__all__ = ["HardwareDB"]

T = TypeVar("T")
_MAX_ATTEMPTS = 12
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock


def space_latency_metric(space: str) -> str:
    """The metric that is ``space``'s latency (``SearchSpace.latency_metric``: ``e2e_ms`` for
    language models), ``latency_ms`` for a space that is not registered (HELP's ``ofa``)."""
    from search_spaces import UnknownSpaceError, get_space

    try:
        return str(get_space(space).latency_metric)
    except UnknownSpaceError:
        return "latency_ms"


_RowT = TypeVar("_RowT", MeasurementIn, AccuracyIn)


def _canonical_rows(rows: Sequence[_RowT]) -> list[_RowT]:
    """``rows`` with each architecture in its space's canonical form.

    Raises:
        ValueError: naming ``rows[i].space`` (unknown space) or ``rows[i].arch``.
    """
    from dataclasses import replace

    from hwdb.importers._common import ArchFieldError, canonical_text

    out = []
    for i, row in enumerate(rows):
        try:
            arch = canonical_text(row.space, row.arch)
        except ArchFieldError as exc:
            raise ValueError(f"`rows[{i}].{exc.field}`: {exc}") from None
        out.append(row if arch == row.arch else replace(row, arch=arch))
    return out


def _row_key(row: MeasurementIn | AccuracyIn) -> tuple[str, ...]:
    """What one stored row is unique on."""
    if isinstance(row, MeasurementIn):
        return (row.device, row.space, row.arch, row.metric, row.protocol)
    return (row.space, row.arch, row.dataset, row.metric)


def _distinct_rows(rows: list[_RowT]) -> list[_RowT]:
    """``rows`` with exact repeats dropped.

    Raises:
        ValueError: naming the two rows if two of one key (a measurement's device, space,
            arch, metric and protocol; an accuracy's space, arch, dataset and metric) differ:
            the database would keep one of them silently.
    """
    seen: dict[tuple[str, ...], int] = {}
    out = []
    for i, row in enumerate(rows):
        first = seen.setdefault(_row_key(row), i)
        if first == i:
            out.append(row)
        elif rows[first] != row:
            raise ValueError(
                f"`rows[{i}]` and `rows[{first}]` are the same record (key "
                f"{', '.join(map(repr, _row_key(row)))}) with different values: pass one."
            )
    return out


def _check_row_list(rows: object, kind: type) -> None:
    """``ValueError`` unless ``rows`` is a sequence of ``kind`` (one row is a common slip)."""
    if isinstance(rows, kind):
        raise ValueError(f"`rows` must be a list of {kind.__name__}, not one (wrap it: [row]).")
    if any(not isinstance(r, kind) for r in rows):  # type: ignore[attr-defined]
        raise ValueError(f"`rows` must contain only {kind.__name__} objects.")


def _retryable(exc: BaseException | None) -> bool:
    if isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower():
        return True
    if isinstance(exc, DBAPIError):
        return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES
    return False


def _device(row: DeviceModel) -> Device:
    return Device(
        name=row.name,
        family=row.family,
        hardware=row.hardware,
        runtime=row.runtime,
        precision=row.precision,
        batch_size=row.batch_size,
        threads=row.threads,
        provenance=row.provenance,
        source=row.source,
        attributes=dict(row.attributes or {}),
        id=row.id,
        created_at=row.created_at,
        registered_by=row.registered_by,
    )


class HardwareDB:
    """Hardware-measurement database on SQLite or PostgreSQL (storage design after optuna's RDB).

    Thread safety: one instance may be shared by threads (each call opens its own session);
    processes each open their own instance. Every public write is one transaction, retried on
    ``database is locked`` / deadlock; nothing is half-written on error.

    Args:
        url: SQLAlchemy URL; ``None`` -> :func:`hwdb.default_database_url`.
        create: Create the schema in an empty database (and a missing SQLite file). Without
            it a missing SQLite file raises :class:`~hwdb.SchemaOutdatedError` and is not
            created. An existing database at another revision always raises it.
        statement_timeout_ms: On PostgreSQL, longest a statement of this instance may run
            before the server cancels it (a :class:`~hwdb.StorageError`); ``0``: no limit
            (every ``nas`` command). The REST service sets one.

    Raises:
        SchemaOutdatedError: the schema needs ``nas hwdb upgrade`` (or ``nas hwdb init``).
        StorageError: the database cannot be reached.
    """

    def __init__(
        self, url: str | None = None, *, create: bool = True, statement_timeout_ms: int = 0
    ) -> None:
        self.url = url if url is not None else default_database_url()
        file = sqlite_file(self.url)
        missing = file is not None and not file.exists()
        #: The SQLite file this instance created (``None``: it existed, or PostgreSQL).
        self.created_file = file if create and missing else None
        if not create and missing:
            assert file is not None
            if not file.parent.is_dir() and not in_default_folder(file):  # init would fail
                raise SchemaOutdatedError(
                    f"database {file} does not exist, nor does its folder {file.parent}: "
                    "check --db / NAS_DATABASE_URL"
                )
            raise SchemaOutdatedError(
                f"database {file} does not exist: run `nas hwdb init` to create it "
                "(or check --db / NAS_DATABASE_URL)"
            )
        self._engine = make_engine(self.url, statement_timeout_ms=statement_timeout_ms)
        self._read_maker = sessionmaker(bind=self._engine, expire_on_commit=False)
        self._write_maker = sessionmaker(
            bind=self._engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )
        try:
            self._retry(lambda: check_schema(self._engine, self.url, create=create))
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise StorageError(f"cannot open database {redact(self.url)}: {exc}") from exc
        except BaseException:
            self._engine.dispose()
            raise

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release all connections."""
        self._engine.dispose()

    def __enter__(self) -> HardwareDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HardwareDB(url={redact(self.url)!r})"

    # ----------------------------------------------------------------- sessions
    @contextmanager
    def _scoped_session(self, *, write: bool) -> Iterator[Session]:
        session = (self._write_maker if write else self._read_maker)()
        try:
            yield session
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise DuplicateError(f"duplicate or conflicting row: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            session.rollback()
            raise StorageError(f"database error on {redact(self.url)}: {exc}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _retry(self, fn: Callable[[], T]) -> T:
        delay = 0.02
        for attempt in range(_MAX_ATTEMPTS):
            try:
                return fn()
            except (StorageError, SQLAlchemyError) as exc:
                cause = exc if isinstance(exc, SQLAlchemyError) else exc.__cause__
                if attempt + 1 >= _MAX_ATTEMPTS or not _retryable(cause):
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _write(self, fn: Callable[[Session], T]) -> T:
        def attempt() -> T:
            with self._scoped_session(write=True) as session:
                return fn(session)

        return self._retry(attempt)

    def _read(self, fn: Callable[[Session], T]) -> T:
        with self._scoped_session(write=False) as session:
            return fn(session)

    # ----------------------------------------------------------------- devices
    def upsert_device(
        self,
        spec: DeviceSpec,
        *,
        fields: Collection[str] | None = None,
        registered_by: str | None = None,
    ) -> Device:
        """Insert ``spec`` or update the device of that name (``created_at`` and
        ``registered_by`` are kept).

        Args:
            spec: The device.
            fields: Update only these fields of a stored device (None: all). A caller that
                merged a request into the record it read passes the request's fields, so a
                device another writer stored meanwhile keeps the rest (one statement: insert
                or update).
            registered_by: The API key registering a new device through the service
                (:attr:`Device.registered_by`); ignored for a stored device.
        """
        if not isinstance(spec, DeviceSpec):
            raise ValueError(f"`spec` must be a DeviceSpec, got {type(spec).__name__}.")
        if fields is not None:
            known = {f.name for f in dataclasses.fields(DeviceSpec)}
            if isinstance(fields, str):
                raise ValueError("`fields` must be a collection of DeviceSpec field names.")
            names = list(fields)  # once: a generator can be read only once
            if not all(isinstance(f, str) for f in names):
                raise ValueError("`fields` must be a collection of DeviceSpec field names.")
            fields = frozenset(names)
            if fields - known:
                raise ValueError(
                    f"`fields` must name DeviceSpec fields, got {sorted(fields - known)} "
                    f"(known: {', '.join(sorted(known))})."
                )

        def run(session: Session) -> Device:
            _bulk.ensure_devices(
                session, [spec], utcnow(), update_existing=True, fields=fields,
                registered_by=registered_by,
            )  # fmt: skip
            return _device(session.execute(_queries.device_by_name(spec.name)).scalar_one())

        return self._write(run)

    def delete_unmeasured_device(self, name: str) -> bool:
        """Delete the device called ``name`` if it has no measurements (e.g. one a failed
        ``nas measure`` registered before its first group was stored).

        Returns:
            Whether a device was deleted (False: none of that name, or it has measurements).
        """

        def run(session: Session) -> bool:
            row = session.execute(_queries.device_by_name(name)).scalar_one_or_none()
            if row is None:
                return False
            count = select(func.count()).where(MeasurementModel.device_id == row.id)
            if session.execute(count).scalar_one():
                return False
            session.delete(row)
            return True

        return self._write(run)

    def get_device(self, name: str) -> Device:
        """The device called ``name``.

        Raises:
            NotFoundError: if there is none.
        """
        row = self._read(lambda s: s.execute(_queries.device_by_name(name)).scalar_one_or_none())
        if row is None:
            raise NotFoundError(f"device {name!r} not found")
        return _device(row)

    def list_devices(self, *, space: str | None = None, family: str | None = None) -> list[Device]:
        """Devices sorted by name; ``space`` keeps those with measurements in that space."""
        rows = self._read(lambda s: list(s.execute(_queries.devices(space, family)).scalars()))
        return [_device(r) for r in rows]

    # ----------------------------------------------------------------- architectures
    def list_spaces(self) -> list[str]:
        """Spaces with at least one architecture, sorted."""
        return self._read(lambda s: list(s.execute(_queries.spaces_with_archs()).scalars()))

    def architectures(self, space: str) -> pd.DataFrame:
        """Architectures of ``space``: columns ``arch``, ``benchmark_index``, ``hash``.

        Raises:
            NotFoundError: if the space has no architectures.
        """
        return self._read(lambda s: _queries.architectures_frame(s, space))

    # ----------------------------------------------------------------- measurements
    def add_measurements(self, rows: Sequence[MeasurementIn], *, replace: bool = False) -> int:
        """Store measurements in one transaction (devices must exist).

        Architectures are stored in their space's canonical form (a reference name such as
        ``mnasnet-a1`` or extra whitespace is accepted); a row of an unknown space or with a
        malformed architecture string is refused before anything is written.

        Args:
            rows: The measurements.
            replace: Overwrite rows with the same (device, space, arch, metric, protocol);
                otherwise those are kept unchanged.

        Returns:
            Number of rows inserted (or replaced).

        Raises:
            NotFoundError: if a device does not exist (nothing is written).
            ValueError: naming ``rows[i].space`` or ``rows[i].arch``, or two rows of one key
                with different values (nothing is written; exact repeats are stored once).
        """
        _check_row_list(rows, MeasurementIn)
        if not rows:
            return 0
        canonical = _distinct_rows(_canonical_rows(rows))
        return self._write(lambda s: _queries.add_measurements(s, canonical, replace=replace))

    def delete_measurements(
        self,
        *,
        device: str,
        space: str | None = None,
        metric: str | None = None,
        protocol: str | None = None,
        uploaded_by: str | None = None,
        archs: Sequence[str] | None = None,
        dry_run: bool = False,
        expected: int | None = None,
    ) -> int:
        """Delete, in one transaction, the measurements of ``device`` that match every filter
        given (e.g. a run measured under load, or what one API key uploaded). The device, its
        other rows, architectures and accuracies stay.

        Args:
            device: Name of the device.
            space: Only rows of this search space.
            metric: Only rows of this metric.
            protocol: Only rows under this protocol tag (``""``: rows stored without one).
            uploaded_by: Only rows this API key uploaded (``MeasurementIn.uploaded_by``).
            archs: Only these architectures (``space`` required; canonicalised as
                :meth:`add_measurements` does).
            dry_run: Count the rows instead of deleting them.
            expected: Delete only if exactly this many rows match (the count a user confirmed;
                rows stored meanwhile would otherwise go too).

        Returns:
            Number of rows deleted (``dry_run``: that would be).

        Raises:
            NotFoundError: if the device does not exist.
            ChangedError: if ``expected`` is given and another number of rows matches now
                (nothing is deleted).
            ValueError: naming ``archs`` (without ``space``, or one malformed) or a filter
                that is not a non-empty string.
        """
        from hwdb.importers._common import ArchFieldError, canonical_text

        filters = {"device": device, "space": space, "metric": metric, "uploaded_by": uploaded_by}
        for name, value in filters.items():
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"`{name}` must be a non-empty string, got {value!r}.")
        if protocol is not None and not isinstance(protocol, str):
            raise ValueError(f"`protocol` must be a string, got {protocol!r}.")
        names: list[str] | None = None
        if archs is not None:
            if isinstance(archs, str):
                raise ValueError(f"`archs` must be a list of architectures, not one: [{archs!r}].")
            if space is None:
                raise ValueError("`archs` needs `space`: architecture strings belong to a space.")
            try:
                names = [canonical_text(space, a) for a in archs]
            except ArchFieldError as exc:
                raise ValueError(f"`archs`: {exc}") from None

        def run(session: Session) -> int:
            def delete(dry: bool) -> int:
                return _queries.delete_measurements(
                    session, device, space=space, metric=metric, protocol=protocol,
                    uploaded_by=uploaded_by, archs=names, dry_run=dry,
                )  # fmt: skip

            if expected is not None and not dry_run:
                now = delete(True)
                if now != expected:
                    raise ChangedError(
                        f"{now} measurements of {device!r} match now, not the {expected} "
                        "confirmed; nothing was deleted"
                    )
            return delete(dry_run)

        return self._write(run)

    def measurement_groups(self, device: str, *, space: str | None = None) -> list[dict[str, Any]]:
        """What is stored for ``device``: its rows counted per (space, metric, protocol,
        uploader, workload), each group with its smallest and largest median and when its
        first and last rows were stored (what :meth:`delete_measurements` can select).

        Returns:
            Dicts with ``space, metric, protocol, uploaded_by, workload, rows, median_min,
            median_max, first_stored, last_stored``, sorted by space, metric and protocol.

        Raises:
            NotFoundError: if the device does not exist.
        """
        return self._read(lambda s: _queries.measurement_groups(s, device, space))

    def replace_run_measurements(self, rows: Sequence[MeasurementIn], *, run_id: str) -> list[int]:
        """Overwrite, in one transaction, the stored rows (same device, space, arch, metric and
        protocol) whose ``environment["run_id"]`` is ``run_id``; rows another run stored, or
        none stored, are left as they are. The check and the write are one transaction, so a
        run that re-levels its rows cannot overwrite rows another run replaced meanwhile.

        Returns:
            Indices of ``rows`` that were not written.

        Raises:
            NotFoundError: if a device does not exist (nothing is written).
            ValueError: naming ``run_id``, ``rows`` (one row, not a list of them),
                ``rows[i].space`` or ``rows[i].arch``.
        """
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"`run_id` must be a non-empty string, got {run_id!r}.")
        _check_row_list(rows, MeasurementIn)
        if not rows:
            return []
        canonical = _canonical_rows(rows)
        return self._write(lambda s: _queries.replace_run_rows(s, canonical, run_id))

    def run_metrics(
        self, *, space: str, device: str, protocol: str, run_id: str, archs: Sequence[str]
    ) -> dict[str, set[str]]:
        """Of ``archs``, those with rows under ``protocol`` that carry
        ``environment["run_id"] == run_id``, each with the metrics of those rows. Reads only
        the rows of ``archs`` (not the device's whole table)."""
        return self._read(
            lambda s: _queries.run_metrics(s, space, device, protocol, run_id, list(archs))
        )

    def measured_archs(
        self, *, space: str, device: str, metric: str | None = None, protocol: str | None = None
    ) -> set[str]:
        """Canonical strings of ``space`` measured on ``device`` for ``metric`` (default: the
        space's latency metric, :func:`space_latency_metric`) and ``protocol``."""
        q = _queries.measured_archs(space, device, metric or space_latency_metric(space), protocol)
        return self._read(lambda s: set(s.execute(q).scalars()))

    def measured_workloads(self, *, space: str, device: str) -> list[dict[str, Any]]:
        """Distinct workload dicts of the rows of ``device`` in ``space`` (``{}``: default)."""
        q = _queries.measured_workloads(space, device)
        texts = self._read(lambda s: sorted(set(s.execute(q).scalars())))
        out: list[dict[str, Any]] = []
        for text_ in texts:
            value = json.loads(text_) if text_ else {}
            if value not in out:
                out.append(value)
        return out

    def latency_table(
        self, space: str, *, metric: str | None = None, devices: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Median latencies, index ``arch``, one column per device (NaN where missing), of
        ``metric`` (default: the space's latency metric, :func:`space_latency_metric`:
        ``e2e_ms`` for language models, whose rows hold no ``latency_ms``).

        When a device has several protocols for one architecture the newest row wins. A
        device measured under several workloads (input shapes) keeps only the rows of the one
        it has most measurements of (ties: the newest), since latencies at different shapes
        are different quantities. ``df.attrs["benchmark_index"]`` maps arch -> benchmark index
        (or None); ``df.attrs["workload"]`` maps device -> the workload dict of its column
        (``{}`` when stored without one: the space's default workload). Both are read-only
        :class:`FrozenMap` s, which pandas shares between derived frames instead of
        deep-copying them after every operation.

        Raises:
            NotFoundError: unknown space or device.
        """
        if isinstance(devices, str):
            raise ValueError(
                f"`devices` must be a list of device names, not one string: [{devices!r}]."
            )
        metric = metric or space_latency_metric(space)
        return self._read(lambda s: _queries.latency_frame(s, space, metric, devices))

    def measurements(
        self,
        *,
        space: str | None = None,
        device: str | None = None,
        metric: str | None = None,
        limit: int = 1000,
        offset: int = 0,
        uploaded_by: str | None = None,
    ) -> list[dict[str, Any]]:
        """Measurement records (newest first) as plain dicts, paginated; ``uploaded_by``: only
        rows that API key uploaded."""
        if limit < 1:
            raise ValueError(f"`limit` must be greater than or equal to 1, got {limit}.")
        if offset < 0:
            raise ValueError(f"`offset` must be greater than or equal to 0, got {offset}.")
        return self._read(
            lambda s: _queries.measurement_records(
                s, space, device, metric, limit, offset, uploaded_by
            )
        )

    # ----------------------------------------------------------------- accuracies
    def add_accuracies(self, rows: Sequence[AccuracyIn]) -> int:
        """Store accuracy records (existing keys are kept); returns rows inserted.

        Architectures are canonicalised and checked as :meth:`add_measurements` does.

        Raises:
            ValueError: naming ``rows[i].space`` or ``rows[i].arch``, or two rows of one key
                with different values (nothing is written; exact repeats are stored once).
        """
        _check_row_list(rows, AccuracyIn)
        if not rows:
            return 0
        canonical = _distinct_rows(_canonical_rows(rows))
        return self._write(lambda s: _queries.add_accuracies(s, canonical))

    def accuracy_table(
        self, space: str, *, dataset: str, metric: str = "test_accuracy"
    ) -> pd.Series:
        """Accuracy values of ``space`` on ``dataset``, indexed by arch (may be empty)."""
        return self._read(lambda s: _queries.accuracy_series(s, space, dataset, metric))

    def count_accuracies(self, *, space: str | None = None) -> int:
        """Number of accuracy records (of ``space``)."""
        return int(self._read(lambda s: s.execute(_queries.count_accuracies(space)).scalar_one()))

    # ----------------------------------------------------------------- artifacts
    def save_artifact(
        self,
        *,
        kind: str,
        space: str,
        version: str,
        payload: bytes,
        summary: dict[str, Any],
        metrics: dict[str, Any],
    ) -> int:
        """Store a predictor artifact; returns its id.

        Raises:
            DuplicateError: if (kind, space, version) already exists.
            ValueError: naming the argument, e.g. a ``metrics`` value JSON cannot hold (NaN).
        """
        for name, value in (("kind", kind), ("space", space), ("version", version)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"`{name}` must be a non-empty string, got {value!r}.")
        if not isinstance(payload, (bytes, bytearray)):
            raise ValueError(f"`payload` must be bytes, got {type(payload).__name__}.")
        row = PredictorArtifactModel(
            kind=kind,
            space=space,
            version=version,
            weights=bytes(payload),
            summary=json_ready("summary", summary),
            metrics=json_ready("metrics", metrics),
            created_at=utcnow(),
        )

        def run(session: Session) -> int:
            session.add(row)
            session.flush()
            return row.id

        return self._write(run)

    def load_artifact(self, *, kind: str, space: str, version: str | None = None) -> Artifact:
        """The artifact of ``version``, or the newest one when ``version`` is None.

        Raises:
            NotFoundError: if there is none.
        """
        q = _queries.artifact(kind, space, version)
        row = self._read(lambda s: s.execute(q).scalars().first())
        if row is None:
            which = f"version {version!r}" if version else "any version"
            raise NotFoundError(f"no {kind!r} artifact for space {space!r} ({which})")
        return Artifact(
            id=row.id,
            kind=row.kind,
            space=row.space,
            version=row.version,
            payload=row.weights,
            summary=dict(row.summary),
            metrics=dict(row.metrics),
            created_at=row.created_at,
        )

    # ----------------------------------------------------------------- overview
    def stats(self) -> dict[str, Any]:
        """``{"spaces": {SPACE: {"devices", "architectures", "measurements", "accuracies"}},
        "devices": N}``."""

        def run(session: Session) -> dict[str, Any]:
            spaces = _queries.space_stats(session)
            n_devices = session.execute(select(func.count(DeviceModel.id))).scalar_one()
            return {"spaces": spaces, "devices": int(n_devices)}

        return self._read(run)

    def is_empty(self) -> bool:
        """Whether no table holds a row: only the schema has been written."""

        def run(session: Session) -> bool:
            tables = Base.metadata.sorted_tables
            return all(session.execute(select(t).limit(1)).first() is None for t in tables)

        return self._read(run)

    # ----------------------------------------------------------------- bulk paths
    def bulk_import(
        self,
        data: _bulk.BulkImport,
        *,
        progress: Callable[[int], None] | None = None,
        replace: bool = False,
        before_commit: Callable[[], None] | None = None,
    ) -> dict[str, int]:
        """Apply one importer's data in ONE transaction (used by :mod:`hwdb.importers`).

        Devices that exist are kept as they are, and so are existing accuracies; a device
        the import describes with other settings (``data.stated``, ``DEVICE_SETTINGS``) than
        the stored one is an error and nothing is written. A measurement already stored
        (same device, space, arch, metric and protocol) is kept unless ``replace``
        (re-importing changes nothing); with ``replace`` the import's row overwrites it, e.g.
        to correct a wrong value.

        Args:
            data: What an importer's ``load_*`` read.
            progress: Called with the number of rows written after each chunk.
            replace: Overwrite stored measurements of the same key.
            before_commit: Called when every row is written, just before the commit (e.g.
                the CLI holds Ctrl-C back from there until it has said the import is stored).

        Returns:
            Counts: ``devices`` and distinct ``architectures`` given, ``measurements`` and
            ``accuracies`` newly inserted (or, with ``replace``, replaced), and
            ``measurements_kept`` / ``accuracies_kept``: rows given that were not written
            because that record is already stored (or the import repeats it).
        """

        def run(session: Session) -> dict[str, int]:
            written = _queries.apply_bulk(session, data, progress, replace=replace)
            if before_commit is not None:
                before_commit()
            return written

        written = self._write(run)
        return {
            "devices": len({d.name for d in data.devices}),
            "architectures": data.n_archs,
            **written,
            "measurements_kept": max(data.n_measurements - written["measurements"], 0),
            "accuracies_kept": max(data.n_accuracies - written["accuracies"], 0),
        }

    def measurement_frame(
        self, *, space: str | None = None, device: str | None = None
    ) -> pd.DataFrame:
        """All measurements joined with their device columns and ``created_at`` (the parquet
        dataset layout)."""
        return self._read(lambda s: _queries.measurement_frame(s, space, device))

    def accuracy_frame(self, *, space: str | None = None) -> pd.DataFrame:
        """All accuracy records (of ``space``) with their arch's benchmark index: columns
        ``space, arch, dataset, metric, value, source, benchmark_index``."""
        return self._read(lambda s: _queries.accuracy_frame(s, space))

    def unmeasured_devices(self) -> list[Device]:
        """Devices without any measurement (e.g. catalog devices from ``nas device add``)."""
        measured = set(self._read(_queries.measured_device_names))
        return [d for d in self.list_devices() if d.name not in measured]

    # ----------------------------------------------------------------- service helpers
    def ping(self) -> None:
        """Run ``SELECT 1`` (health checks).

        Raises:
            StorageError: if the database cannot be reached.
        """
        self._read(lambda s: s.execute(text("SELECT 1")).scalar_one())

    def count_measurements(
        self,
        *,
        space: str | None = None,
        device: str | None = None,
        metric: str | None = None,
        distinct_archs: bool = False,
        uploaded_by: str | None = None,
    ) -> int:
        """Number of measurement rows matching the filters (as :meth:`measurements`).

        Args:
            space: Only this space.
            device: Only this device.
            metric: Only this metric.
            uploaded_by: Only rows this API key uploaded.
            distinct_archs: Count distinct architectures instead of rows (what
                :meth:`latency_table` holds for one device and metric).
        """
        M = MeasurementModel
        what = func.count(distinct(M.architecture_id)) if distinct_archs else func.count(M.id)
        q = _queries.filtered(
            select(what).select_from(M), space=space, device=device, metric=metric,
            uploaded_by=uploaded_by,
        )  # fmt: skip
        return int(self._read(lambda s: s.execute(q).scalar_one()))

    def measurement_stamp(self, *, space: str, device: str, metric: str) -> tuple[Any, ...]:
        """A value that changes whenever rows of ``device`` in ``space`` for ``metric`` are
        added, deleted or replaced (their count, largest id, sum of medians and newest
        ``created_at``): what a cache of models adapted to those rows compares."""
        M = MeasurementModel
        what = (func.count(M.id), func.max(M.id), func.sum(M.median), func.max(M.created_at))
        q = _queries.filtered(select(*what).select_from(M), space=space, device=device,
                              metric=metric)  # fmt: skip
        return tuple(self._read(lambda s: s.execute(q).one()))

    # ----------------------------------------------------------------- API keys
    def create_api_key(self, name: str) -> tuple[ApiKey, str]:
        """Create an API key; returns it and its token (stored only as a SHA-256 hash).

        Raises:
            ValueError: if ``name`` is not a valid key name.
            DuplicateError: if a key of that name exists.
        """
        _apikeys.check_name(name)
        return self._write(lambda s: _apikeys.create_key(s, name))

    def list_api_keys(self) -> list[ApiKey]:
        """Every API key (active and revoked), sorted by name."""
        return self._read(_apikeys.list_keys)

    def revoke_api_key(self, name: str) -> ApiKey:
        """Revoke the key called ``name``.

        Raises:
            NotFoundError: if there is none.
        """
        return self._write(lambda s: _apikeys.revoke_key(s, name))

    def verify_api_key(self, token: str) -> ApiKey | None:
        """The active key whose token is ``token``, or ``None`` (unknown or revoked)."""
        return self._read(lambda s: _apikeys.verify(s, token))

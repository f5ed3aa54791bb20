"""Queries run by :class:`hwdb.HardwareDB` inside its sessions (private to the repository)."""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVarTuple

import pandas as pd
from sqlalchemy import (
    Select,
    String,
    Table,
    bindparam,
    cast,
    delete,
    distinct,
    func,
    select,
    update,
)

from hwdb import _bulk
from hwdb._errors import FILL_HINT, DuplicateError, NotFoundError
from hwdb._frozen import FrozenMap
from hwdb._models import (
    AccuracyModel,
    ApiKeyModel,
    ArchitectureModel,
    DeviceModel,
    MeasurementModel,
    PredictorArtifactModel,
    SearchSpaceModel,
    utcnow,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hwdb._types import AccuracyIn, MeasurementIn

A = ArchitectureModel
M = MeasurementModel
D = DeviceModel
S = SearchSpaceModel


def device_by_name(name: str) -> Select[DeviceModel]:
    return select(D).where(D.name == name)


def devices(space: str | None, family: str | None) -> Select[DeviceModel]:
    q = select(D).order_by(D.name)
    if family is not None:
        q = q.where(D.family == family)
    if space is not None:
        sub = (
            select(M.device_id)
            .join(A, A.id == M.architecture_id)
            .join(S, S.id == A.space_id)
            .where(S.name == space)
            .distinct()
        )
        q = q.where(D.id.in_(sub))
    return q


def spaces_with_archs() -> Select[str]:
    return select(S.name).where(select(A.id).where(A.space_id == S.id).exists()).order_by(S.name)


def _space_id(session: Session, space: str) -> int:
    sid = session.execute(select(S.id).where(S.name == space)).scalar_one_or_none()
    if sid is None:
        known = ", ".join(session.execute(select(S.name).order_by(S.name)).scalars())
        if not known:
            raise NotFoundError(
                f"search space {space!r} not in the database, which holds no search space yet: "
                f"{FILL_HINT}"
            )
        raise NotFoundError(f"search space {space!r} not in the database (known: {known})")
    return int(sid)


def architectures_frame(session: Session, space: str) -> pd.DataFrame:
    sid = _space_id(session, space)
    rows = session.execute(
        select(A.arch, A.benchmark_index, A.hash).where(A.space_id == sid).order_by(A.id)
    ).all()
    frame = pd.DataFrame(rows, columns=["arch", "benchmark_index", "hash"])
    frame["benchmark_index"] = frame["benchmark_index"].astype("Int64")
    return frame


def _resolve_rows(
    session: Session, spaces: dict[str, dict[str, int | None]]
) -> dict[tuple[str, str], int]:
    space_ids = _bulk.ensure_spaces(session, spaces)
    arch_ids: dict[tuple[str, str], int] = {}
    for space, archs in sorted(spaces.items()):
        ids = _bulk.ensure_archs(session, space, space_ids[space], archs)
        arch_ids.update({(space, a): i for a, i in ids.items()})
    return arch_ids


def _arch_map(items: Sequence[tuple[str, str, int | None]]) -> dict[str, dict[str, int | None]]:
    out: dict[str, dict[str, int | None]] = {}
    for space, arch, index in items:
        current = out.setdefault(space, {})
        known = current.get(arch)
        if known is None:
            current[arch] = index
        elif index is not None and index != known:
            raise DuplicateError(
                f"architecture {arch!r} of space {space!r} is given benchmark indices {known} "
                f"and {index} in one batch"
            )
    return out


def _row_ids(
    session: Session, rows: Sequence[MeasurementIn]
) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Device ids by name and architecture ids by (space, arch) of ``rows`` (archs created
    as needed); NotFoundError for a device that does not exist."""
    dev_ids = _bulk.device_ids(session, [r.device for r in rows])
    missing = sorted({r.device for r in rows} - set(dev_ids))
    if missing:
        raise NotFoundError(f"device {missing[0]!r} not found (register it with upsert_device)")
    arch_ids = _resolve_rows(
        session, _arch_map([(r.space, r.arch, r.benchmark_index) for r in rows])
    )
    return dev_ids, arch_ids


def _values(r: MeasurementIn, now: datetime) -> dict[str, Any]:
    """The stored values of a measurement row, less its key (device, arch, metric, protocol);
    ``now`` is its ``created_at`` unless the row brings its own (an import of an export)."""
    return {
        "median": float(r.median), "mean": r.mean, "std": r.std, "min": r.min, "p90": r.p90,
        "n_runs": r.n_runs, "warmup": r.warmup, "environment": dict(r.environment),
        "workload": dict(r.workload), "source": r.source, "created_at": r.created_at or now,
        "uploaded_by": r.uploaded_by,
    }  # fmt: skip


def add_measurements(session: Session, rows: Sequence[MeasurementIn], *, replace: bool) -> int:
    dev_ids, arch_ids = _row_ids(session, rows)
    now = utcnow()
    values = [
        {
            "device_id": dev_ids[r.device],
            "architecture_id": arch_ids[(r.space, r.arch)],
            "metric": r.metric,
            "protocol": r.protocol,
            **_values(r, now),
        }
        for r in rows
    ]
    params = _bulk.measurement_params(session.get_bind().dialect.name, values)
    return _bulk.insert_measurements(session, params, replace=replace)


def _stored_rows(
    session: Session, device_id: int, arch_ids: Sequence[int], *, lock: bool = False
) -> dict[tuple[int, str, str], tuple[int, dict[str, Any]]]:
    """``(architecture id, metric, protocol) -> (row id, environment)`` of one device's rows of
    ``arch_ids``; ``lock``: held until the transaction ends (``FOR UPDATE`` on PostgreSQL,
    SQLite's write transactions already exclude other writers)."""
    out: dict[tuple[int, str, str], tuple[int, dict[str, Any]]] = {}
    for part in _bulk._chunks(sorted(set(arch_ids)), _bulk._IN_CHUNK):
        q = select(M.id, M.architecture_id, M.metric, M.protocol, M.environment).where(
            M.device_id == device_id, M.architecture_id.in_(part)
        )
        if lock and session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        for row_id, arch_id, metric, protocol, env in session.execute(q).all():
            env = json.loads(env) if isinstance(env, str) else env
            out[(arch_id, metric, protocol)] = (row_id, env if isinstance(env, dict) else {})
    return out


def run_metrics(
    session: Session, space: str, device: str, protocol: str, run_id: str, archs: Sequence[str]
) -> dict[str, set[str]]:
    dev = session.execute(select(D.id).where(D.name == device)).scalar_one_or_none()
    sid = session.execute(select(S.id).where(S.name == space)).scalar_one_or_none()
    if dev is None or sid is None or not archs:
        return {}
    ids: dict[int, str] = {}
    for part in _bulk._chunks(sorted(set(archs)), _bulk._IN_CHUNK):
        q = select(A.id, A.arch).where(A.space_id == sid, A.arch.in_(part))
        ids.update({int(i): str(a) for i, a in session.execute(q).all()})
    out: dict[str, set[str]] = {}
    for (arch_id, metric, proto), (_, env) in _stored_rows(session, dev, list(ids)).items():
        if proto == protocol and env.get("run_id") == run_id:
            out.setdefault(ids[arch_id], set()).add(metric)
    return out


def replace_run_rows(session: Session, rows: Sequence[MeasurementIn], run_id: str) -> list[int]:
    dev_ids, arch_ids = _row_ids(session, rows)
    stored: dict[tuple[int, int, str, str], tuple[int, dict[str, Any]]] = {}
    for dev in sorted(set(dev_ids[r.device] for r in rows)):
        mine = [arch_ids[(r.space, r.arch)] for r in rows if dev_ids[r.device] == dev]
        for key, value in _stored_rows(session, dev, mine, lock=True).items():
            stored[(dev, *key)] = value
    now = utcnow()
    updates, skipped = [], []
    for i, r in enumerate(rows):
        found = stored.get((dev_ids[r.device], arch_ids[(r.space, r.arch)], r.metric, r.protocol))
        if found is None or found[1].get("run_id") != run_id:
            skipped.append(i)
            continue
        updates.append({"b_id": found[0], **_values(r, now)})
    if updates:
        table = typing.cast(Table, M.__table__)  # the Core table of the model
        cols = [k for k in updates[0] if k != "b_id"]
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({c: bindparam(f"v_{c}") for c in cols})
        )
        params = [{"b_id": u["b_id"], **{f"v_{c}": u[c] for c in cols}} for u in updates]
        session.execute(stmt, params)
    return skipped


def measured_archs(space: str, device: str, metric: str, protocol: str | None) -> Select[str]:
    q = (
        select(A.arch)
        .join(M, M.architecture_id == A.id)
        .join(S, S.id == A.space_id)
        .join(D, D.id == M.device_id)
        .where(S.name == space, D.name == device, M.metric == metric)
    )
    if protocol is not None:
        q = q.where(M.protocol == protocol)
    return q.distinct()


def measured_workloads(space: str, device: str) -> Select[str]:
    q = (
        select(cast(M.workload, String))
        .join(A, A.id == M.architecture_id)
        .join(S, S.id == A.space_id)
        .join(D, D.id == M.device_id)
        .where(S.name == space, D.name == device)
    )
    return q.distinct()


def measurement_groups(session: Session, device: str, space: str | None) -> list[dict[str, Any]]:
    """Rows of ``device`` counted per (space, metric, protocol, uploader, workload); a workload
    equal to its space's default is ``{}`` (as rows stored without one are)."""
    dev = session.execute(select(D.id).where(D.name == device)).scalar_one_or_none()
    if dev is None:
        raise NotFoundError(f"device {device!r} not found")
    work = cast(M.workload, String)
    keys = (S.name, M.metric, M.protocol, M.uploaded_by, work)
    q = (
        select(
            *keys,
            func.count(M.id),
            func.min(M.median),
            func.max(M.median),
            func.min(M.created_at),
            func.max(M.created_at),
        )
        .join(A, A.id == M.architecture_id)
        .join(S, S.id == A.space_id)
        .where(M.device_id == dev)
        .group_by(*keys)
    )
    if space is not None:
        q = q.where(S.name == space)
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for name, metric, protocol, by, text_, n, lo, hi, first, last in session.execute(q).all():
        stored = json.loads(text_) if text_ else {}
        workload = stored if workload_changes(name, stored) else {}
        key = (name, metric, protocol, by, json.dumps(workload, sort_keys=True))
        group = merged.setdefault(key, {
            "space": name, "metric": metric, "protocol": protocol, "uploaded_by": by,
            "workload": workload, "rows": 0, "median_min": math.inf, "median_max": -math.inf,
            "first_stored": first, "last_stored": last,
        })  # fmt: skip
        group["rows"] += int(n)
        group["median_min"] = min(group["median_min"], float(lo))
        group["median_max"] = max(group["median_max"], float(hi))
        group["first_stored"] = min(group["first_stored"], first)
        group["last_stored"] = max(group["last_stored"], last)
    return sorted(
        merged.values(), key=lambda g: (g["space"], g["metric"], g["protocol"], -g["rows"])
    )


def workload_changes(space: str, workload: dict[str, Any]) -> dict[str, Any]:
    """The fields of a stored ``workload`` that differ from ``space``'s default workload
    (``{}``: the default, however it was written); all of them for a space that is not
    registered (HELP's ``ofa``)."""
    from search_spaces import SearchSpaceError, get_space

    if not workload:
        return {}
    try:
        default = get_space(space).default_workload().to_dict()
    except SearchSpaceError:
        return dict(workload)
    return {k: v for k, v in sorted(workload.items()) if default.get(k) != v}


#: Workload fields that do not describe the timed input: a language model prepends its own
#: architecture's meta tokens (``mt256``), whatever ``meta_tokens`` a row recorded (``nas
#: measure`` stored 32 before session 23, 256 since).
_NOT_SHAPES = ("meta_tokens",)


def workload_shape(space: str, workload: dict[str, Any]) -> dict[str, Any]:
    """The input shapes of a stored ``workload`` that differ from ``space``'s default, so
    ``{}`` and the default written out in full are one workload, as are a full dict and the
    few fields a hand-written CSV states (fields that are no input shape, :data:`_NOT_SHAPES`,
    left out)."""
    changes = workload_changes(space, workload)
    return {k: v for k, v in changes.items() if k not in _NOT_SHAPES}


def _shape_key(space: str, workload: str) -> str:
    """:func:`workload_shape` of a stored ``workload`` (JSON) as a comparable key."""
    return json.dumps(workload_shape(space, json.loads(workload) or {}), sort_keys=True)


def _one_workload_per_device(
    long: pd.DataFrame, space: str
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Keep each device's rows of one workload: the one it has most rows of (ties: the one
    measured last). Latencies at different input shapes are different quantities, so a column
    must not mix them (fields that are no input shape, :data:`_NOT_SHAPES`, are not compared,
    nor is how a workload was written: :func:`_shape_key`). Returns the kept rows and
    ``{device: workload dict}`` (as the newest kept row of the device stored it)."""
    raw = long["workload"].fillna("{}")
    canon = {w: _shape_key(space, w) for w in raw.unique()}
    long = long.assign(raw=raw, workload=raw.map(canon), pos=range(len(long)))
    stats = long.groupby(["device", "workload"])["pos"].agg(["size", "max"]).reset_index()
    best = stats.sort_values(["device", "size", "max"]).drop_duplicates("device", keep="last")
    chosen = dict(zip(best["device"], best["workload"], strict=True))
    keep = long[long["workload"] == long["device"].map(chosen)]
    newest = keep.drop_duplicates("device", keep="last")
    stored = {d: json.loads(w) for d, w in zip(newest["device"], newest["raw"], strict=True)}
    return keep.drop(columns=["workload", "raw", "pos"]), stored


def latency_frame(
    session: Session, space: str, metric: str, devices_: Sequence[str] | None
) -> pd.DataFrame:
    sid = _space_id(session, space)
    q = (
        select(A.arch, D.name, M.median, cast(M.workload, String))
        .join(M, M.architecture_id == A.id)
        .join(D, D.id == M.device_id)
        .where(A.space_id == sid, M.metric == metric)
        .order_by(M.created_at, M.id)
    )
    if devices_ is not None:
        known = set(_bulk.device_ids(session, list(devices_)))
        missing = [d for d in devices_ if d not in known]
        if missing:
            raise NotFoundError(f"device {missing[0]!r} not found")
        q = q.where(D.name.in_(list(devices_)))
    rows = session.execute(q).all()
    long = pd.DataFrame(rows, columns=["arch", "device", "median", "workload"])
    long, workloads = _one_workload_per_device(long, space)
    long = long.drop_duplicates(["arch", "device"], keep="last")
    table = long.pivot(index="arch", columns="device", values="median")
    if devices_ is not None:
        table = table.reindex(columns=list(devices_))
    table = table.sort_index()
    table.index.name = "arch"
    table.columns.name = None
    index_rows = session.execute(select(A.arch, A.benchmark_index).where(A.space_id == sid))
    bench = {a: b for a, b in index_rows}
    table.attrs["benchmark_index"] = FrozenMap((a, bench.get(a)) for a in table.index)
    table.attrs["workload"] = FrozenMap(
        (str(d), FrozenMap(workloads.get(str(d), {}))) for d in table.columns
    )
    return table


def _record(row: Any) -> dict[str, Any]:
    m, arch, bench, space, device = row
    return {
        "id": m.id,
        "device": device,
        "space": space,
        "arch": arch,
        "benchmark_index": bench,
        "metric": m.metric,
        "median": m.median,
        "mean": m.mean,
        "std": m.std,
        "min": m.min,
        "p90": m.p90,
        "n_runs": m.n_runs,
        "warmup": m.warmup,
        "protocol": m.protocol,
        "environment": dict(m.environment or {}),
        "workload": dict(m.workload or {}),
        "source": m.source,
        "created_at": m.created_at,
        "uploaded_by": m.uploaded_by,
    }


def measurement_records(
    session: Session,
    space: str | None,
    device: str | None,
    metric: str | None,
    limit: int,
    offset: int,
    uploaded_by: str | None = None,
) -> list[dict[str, Any]]:
    q = (
        select(M, A.arch, A.benchmark_index, S.name, D.name)
        .join(A, A.id == M.architecture_id)
        .join(S, S.id == A.space_id)
        .join(D, D.id == M.device_id)
    )
    q = filtered(q, space=space, device=device, joined=True, metric=metric, uploaded_by=uploaded_by)
    q = q.order_by(M.id.desc()).limit(limit).offset(offset)
    return [_record(r) for r in session.execute(q).all()]


_Row = TypeVarTuple("_Row")


def column_filters(
    *, metric: str | None = None, protocol: str | None = None, uploaded_by: str | None = None
) -> list[Any]:
    """WHERE clauses on the measurement table's own columns for the filters given."""
    where: list[Any] = []
    if metric is not None:
        where.append(M.metric == metric)
    if protocol is not None:
        where.append(M.protocol == protocol)
    if uploaded_by is not None:
        where.append(M.uploaded_by == uploaded_by)
    return where


def filtered(
    q: Select[*_Row],
    *,
    space: str | None = None,
    device: str | None = None,
    joined: bool = False,
    **columns: str | None,
) -> Select[*_Row]:
    """``q`` (a query over measurement rows) restricted to ``space``, ``device`` and the
    :func:`column_filters` in ``columns``; the architecture, space and device tables are
    joined as needed unless ``joined`` says ``q`` already joins all three. (Joins: about
    twice as fast as ``IN`` subqueries on a 500k-row SQLite table.)"""
    if space is not None:
        if not joined:
            q = q.join(A, A.id == M.architecture_id).join(S, S.id == A.space_id)
        q = q.where(S.name == space)
    if device is not None:
        if not joined:
            q = q.join(D, D.id == M.device_id)
        q = q.where(D.name == device)
    return q.where(*column_filters(**columns))


def delete_measurements(
    session: Session,
    device: str,
    *,
    space: str | None,
    metric: str | None,
    protocol: str | None,
    uploaded_by: str | None,
    archs: Sequence[str] | None,
    dry_run: bool,
) -> int:
    """Delete (``dry_run``: count) the rows of ``device`` that match every given filter."""
    dev = session.execute(select(D.id).where(D.name == device)).scalar_one_or_none()
    if dev is None:
        raise NotFoundError(f"device {device!r} not found")
    where = [M.device_id == dev]
    if space is not None:  # a DELETE cannot join: the space's archs as a subquery
        where.append(M.architecture_id.in_(select(A.id).join(S, S.id == A.space_id)
                                           .where(S.name == space)))  # fmt: skip
    where += column_filters(metric=metric, protocol=protocol, uploaded_by=uploaded_by)
    if archs is None:
        return _delete_where(session, where, dry_run)
    total = 0
    for part in _bulk._chunks(sorted(set(archs)), _bulk._IN_CHUNK):
        ids = select(A.id).join(S, S.id == A.space_id).where(S.name == space, A.arch.in_(part))
        total += _delete_where(session, [*where, M.architecture_id.in_(ids)], dry_run)
    return total


def _delete_where(session: Session, where: list[Any], dry_run: bool) -> int:
    if dry_run:
        return int(session.execute(select(func.count(M.id)).where(*where)).scalar_one())
    stmt = delete(M).where(*where)
    result = session.execute(stmt, execution_options={"synchronize_session": False})
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


def add_accuracies(session: Session, rows: Sequence[AccuracyIn]) -> int:
    arch_ids = _resolve_rows(session, _arch_map([(r.space, r.arch, None) for r in rows]))
    values = [
        {
            "architecture_id": arch_ids[(r.space, r.arch)],
            "dataset": r.dataset,
            "metric": r.metric,
            "value": float(r.value),
            "source": r.source,
        }
        for r in rows
    ]
    return _bulk.insert_accuracies(session, values)


def accuracy_series(session: Session, space: str, dataset: str, metric: str) -> pd.Series:
    sid = _space_id(session, space)
    q = (
        select(A.arch, AccuracyModel.value)
        .join(AccuracyModel, AccuracyModel.architecture_id == A.id)
        .where(A.space_id == sid, AccuracyModel.dataset == dataset, AccuracyModel.metric == metric)
        .order_by(A.arch)
    )
    rows = session.execute(q).all()
    index = pd.Index([r[0] for r in rows], name="arch", dtype=object)
    return pd.Series([float(r[1]) for r in rows], index=index, name=dataset, dtype=float)


def count_accuracies(space: str | None) -> Select[int]:
    q = select(func.count(AccuracyModel.id))
    if space is not None:
        q = q.join(A, A.id == AccuracyModel.architecture_id).join(S, S.id == A.space_id)
        q = q.where(S.name == space)
    return q


def artifact(kind: str, space: str, version: str | None) -> Select[PredictorArtifactModel]:
    P = PredictorArtifactModel
    q = select(P).where(P.kind == kind, P.space == space)
    if version is not None:
        q = q.where(P.version == version)
    return q.order_by(P.created_at.desc(), P.id.desc())


def space_stats(session: Session) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    archs = session.execute(
        select(S.name, func.count(A.id)).join(A, A.space_id == S.id).group_by(S.name)
    )
    for name, n in archs:
        out[name] = {"devices": 0, "architectures": int(n), "measurements": 0, "accuracies": 0}
    accs = session.execute(
        select(S.name, func.count(AccuracyModel.id))
        .join(A, A.space_id == S.id)
        .join(AccuracyModel, AccuracyModel.architecture_id == A.id)
        .group_by(S.name)
    )
    for name, n in accs:
        out[name]["accuracies"] = int(n)
    meas = session.execute(
        select(S.name, func.count(M.id), func.count(distinct(M.device_id)))
        .join(A, A.space_id == S.id)
        .join(M, M.architecture_id == A.id)
        .group_by(S.name)
    )
    for name, n, n_dev in meas:
        out[name]["measurements"] = int(n)
        out[name]["devices"] = int(n_dev)
    return dict(sorted(out.items()))


def _known_owners(session: Session, owners: dict[str, str]) -> dict[str, str]:
    """The ``device -> API key name`` of an import whose key this database has. Key names
    are per database: a name from another database's export that no local key has is not
    stored, so a key created here later under that name does not take the device over (a
    name a local key has is taken as that key, as rows' ``uploaded_by`` are)."""
    if not owners:
        return {}
    query = select(ApiKeyModel.name).where(ApiKeyModel.name.in_(set(owners.values())))
    known = set(session.execute(query).scalars())
    return {device: key for device, key in owners.items() if key in known}


def apply_bulk(
    session: Session,
    data: _bulk.BulkImport,
    progress: Callable[[int], None] | None,
    *,
    replace: bool = False,
) -> dict[str, int]:
    now = utcnow()
    dialect = session.get_bind().dialect.name
    _bulk.check_device_settings(session, data)
    dev_ids = _bulk.ensure_devices(
        session, data.devices, now, update_existing=False,
        registered_by=_known_owners(session, data.registered_by),
    )  # fmt: skip
    needed = {s.device for s in data.measurements} - set(dev_ids)
    dev_ids.update(_bulk.device_ids(session, sorted(needed)))
    missing = sorted(needed - set(dev_ids))
    if missing:
        raise NotFoundError(f"device {missing[0]!r} not found")
    arch_ids = _resolve_rows(session, data.archs)
    n_meas = 0
    for series in data.measurements:
        ids = {a: arch_ids[(series.space, a)] for a in series.archs}
        params = _bulk.series_params(dialect, series, dev_ids[series.device], ids, now)
        n_meas += _bulk.insert_measurements(session, params, replace=replace, progress=progress)
    if data.rows:
        n_meas += add_measurements(session, data.rows, replace=replace)
        if progress is not None:
            progress(len(data.rows))
    n_acc = 0
    for acc in data.accuracies:
        _bulk.check_values(
            f"{acc.dataset} {acc.metric} ({acc.space})", acc.archs, acc.values, kind="accuracy"
        )
        rows_a = [
            {
                "architecture_id": arch_ids[(acc.space, a)],
                "dataset": acc.dataset,
                "metric": acc.metric,
                "value": v,
                "source": acc.source,
            }
            for a, v in zip(acc.archs, acc.values, strict=True)
        ]
        n_acc += _bulk.insert_accuracies(session, rows_a, progress=progress, replace=replace)
    return {"measurements": n_meas, "accuracies": n_acc}


_FRAME_DEVICE_COLS = (
    "family",
    "hardware",
    "runtime",
    "precision",
    "batch_size",
    "threads",
    "provenance",
    "source",
    "attributes",
)


def measured_device_names(session: Session) -> list[str]:
    q = select(D.name).join(M, M.device_id == D.id).distinct()
    return [str(n) for n in session.execute(q).scalars()]


def accuracy_frame(session: Session, space: str | None) -> pd.DataFrame:
    cols = [
        S.name.label("space"),
        A.arch,
        AccuracyModel.dataset,
        AccuracyModel.metric,
        AccuracyModel.value,
        AccuracyModel.source,
        A.benchmark_index,
    ]
    q = (
        select(*cols)
        .join(A, A.id == AccuracyModel.architecture_id)
        .join(S, S.id == A.space_id)
        .order_by(AccuracyModel.id)
    )
    if space is not None:
        q = q.where(S.name == space)
    result = session.execute(q)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def measurement_frame(session: Session, space: str | None, device: str | None) -> pd.DataFrame:
    cols = [
        D.name.label("device"),
        S.name.label("space"),
        A.arch,
        M.metric,
        M.median,
        M.mean,
        M.std,
        M.min,
        M.p90,
        M.n_runs,
        M.warmup,
        M.protocol,
        M.environment,
        M.source,
        M.workload,
        A.benchmark_index,
        *[getattr(D, c).label(f"device_{c}") for c in _FRAME_DEVICE_COLS],
        D.registered_by.label("device_registered_by"),
        M.created_at,
        M.uploaded_by,
    ]
    q = (
        select(*cols)
        .join(A, A.id == M.architecture_id)
        .join(S, S.id == A.space_id)
        .join(D, D.id == M.device_id)
        .order_by(M.id)
    )
    if space is not None:
        q = q.where(S.name == space)
    if device is not None:
        q = q.where(D.name == device)
    result = session.execute(q)
    return pd.DataFrame(result.all(), columns=list(result.keys()))

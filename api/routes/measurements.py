"""``POST/GET/DELETE /v1/devices/{name}/measurements``: idempotent batch upload, paged reads
and deleting what one API key uploaded."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from api._predictors import canonical_archs, check_space
from api.deps import (
    DbDep,
    ReadAccess,
    ServicesDep,
    SettingsDep,
    WriteKey,
    require_key_to_filter,
)
from api.errors import ApiError, field_errors
from api.routes.devices import get_device_or_404
from api.schemas import (
    INT32,
    ArchText,
    DeletedPublic,
    ErrorPublic,
    MeasurementPublic,
    MeasurementsCreate,
    MeasurementsPublic,
    Metric,
    SpaceName,
    UploadPublic,
)

if TYPE_CHECKING:
    from hwdb import HardwareDB, MeasurementIn

__all__ = ["router"]

router = APIRouter(prefix="/devices/{name}/measurements", tags=["measurements"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic},
    404: {"model": ErrorPublic},
    413: {"model": ErrorPublic},
    422: {"model": ErrorPublic},
}
IdemHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Same key + same body: the first response is returned, nothing is duplicated.",
    ),
]


def _check_workload(space: str, workload: dict[str, Any], row: int) -> None:
    """Reject a workload the predictors could not read back: they merge the stored fields
    over the space's default workload (``predictors`` ``device_workload``)."""
    if not workload:
        return
    from search_spaces import get_space

    try:
        get_space(space).workload_with(workload)
    except (TypeError, ValueError) as exc:
        raise ApiError(
            422, ["body", "measurements", row, "workload"],
            f"invalid workload: {exc}", type="invalid_workload",
        ) from exc  # fmt: skip


def _rows(name: str, body: MeasurementsCreate, uploaded_by: str) -> list[MeasurementIn]:
    by_space: dict[str, list[int]] = {}
    for i, m in enumerate(body.measurements):
        check_space(m.space, ["body", "measurements", i, "space"])
        by_space.setdefault(m.space, []).append(i)
    archs: dict[int, str] = {}
    for space, idx in by_space.items():
        texts = [body.measurements[i].arch for i in idx]
        try:
            canon = canonical_archs(space, texts, ["body", "measurements"])
        except ApiError as exc:  # re-point the index at the row, and name the field
            row = idx[int(exc.loc[-1])]
            raise ApiError(
                422, ["body", "measurements", row, "arch"], exc.msg, type=exc.type
            ) from exc
        archs.update(zip(idx, canon, strict=True))
    rows: list[MeasurementIn] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    from hwdb.importers import known_metrics
    from predictors import latency_metric

    for i, m in enumerate(body.measurements):
        metric = m.metric or latency_metric(m.space)
        if metric not in known_metrics(m.space):  # as a CSV import refuses it
            raise ApiError(
                422, ["body", "measurements", i, "metric"],
                f"{m.space} is measured in {', '.join(known_metrics(m.space))}, got {metric!r}",
                type="unknown_metric",
            )  # fmt: skip
        key = (m.space, archs[i], metric, m.protocol)
        if key in seen:
            raise ApiError(
                422,
                ["body", "measurements", i],
                f"duplicates measurements[{seen[key]}] (same space, arch, metric and protocol)",
                type="duplicate_in_batch",
            )
        seen[key] = i
        _check_workload(m.space, m.workload, i)
        with field_errors("body", "measurements", i):
            fields = {**m.model_dump(), "metric": metric, "uploaded_by": uploaded_by}
            rows.append(_measurement(name, fields, archs[i], i))
    return rows


def _measurement(device: str, fields: dict[str, Any], arch: str, i: int) -> MeasurementIn:
    """The row as :class:`hwdb.MeasurementIn`; a value it rejects (e.g. ``min`` above
    ``median``) is a 422 at the field its message names in backticks."""
    from hwdb import MeasurementIn

    try:
        return MeasurementIn(device=device, **{**fields, "arch": arch})
    except ValueError as exc:
        text = str(exc)
        field = text.split("`")[1] if text.count("`") >= 2 else None
        loc: list[str | int] = ["body", "measurements", i]
        if field in fields:
            loc.append(str(field))
        raise ApiError(422, loc, text, type="value_error") from exc


def _store(
    db: HardwareDB, name: str, body: MeasurementsCreate, key: str | None, uploaded_by: str
) -> dict[str, Any]:
    rows = _rows(name, body, uploaded_by)
    with field_errors("body", "measurements"):
        inserted = db.add_measurements(rows, replace=body.replace)
    return UploadPublic(
        device=name,
        received=len(rows),
        inserted=inserted,
        existing=len(rows) - inserted,
        client_key=key,
    ).model_dump()


@router.post("", response_model=UploadPublic, responses=_ERRORS)
def upload_measurements(
    name: str,
    body: MeasurementsCreate,
    db: DbDep,
    services: ServicesDep,
    settings: SettingsDep,
    api_key: WriteKey,
    response: Response,
    idempotency_key: IdemHeader = None,
) -> dict[str, Any]:
    """Store a batch of measurements of device ``name`` in one transaction.

    Rows already stored under the same (space, arch, metric, protocol) are kept unless
    ``replace``, which overwrites only rows this API key uploaded. With a client key a
    repeated request gets the first answer (rows deleted since are stored again). Each row
    stored records the request's API key (``uploaded_by``).
    """
    get_device_or_404(db, name)
    if len(body.measurements) > settings.max_batch:
        raise ApiError(
            413,
            ["body", "measurements"],
            f"at most {settings.max_batch} measurements per request, got {len(body.measurements)}",
            type="batch_too_large",
        )
    key = body.client_key
    if idempotency_key is not None:
        if key is not None and key != idempotency_key:
            raise ApiError(
                422, ["header", "Idempotency-Key"], "differs from the body's client_key",
                type="conflicting_keys",
            )  # fmt: skip
        key = idempotency_key
    if key is None:
        result = _store(db, name, body, None, api_key.name)
    else:
        digest = hashlib.sha256(
            (name + "\x00" + body.model_dump_json(exclude={"client_key"})).encode()
        ).hexdigest()
        loc = ["header", "Idempotency-Key"] if idempotency_key else ["body", "client_key"]
        result, replayed = services.idempotency.run(
            # NUL can be neither in a device name nor in a header: no two devices share a key
            f"{name}\x00{key}",
            digest,
            lambda: _store(db, name, body, key, api_key.name),
            loc=loc,
            scope=str(api_key.id),  # each API key has its own records (and capacity)
        )
        response.headers["Idempotent-Replayed"] = "true" if replayed else "false"
        if replayed:
            # The first answer is returned, but rows deleted since then (``DELETE``, ``nas hwdb
            # delete``) are stored again, without overwriting anything stored meanwhile: a
            # client that re-sends a batch after a delete must not be told it is stored when
            # it is not.
            again = _store(db, name, body.model_copy(update={"replace": False}), key,
                           api_key.name)  # fmt: skip
            if again["inserted"]:
                services.cache.invalidate(db.url, name)
                services.metrics.inc("nas_api_measurements_stored_total", (),
                                     float(again["inserted"]))  # fmt: skip
            return result
    services.cache.invalidate(db.url, name)
    services.metrics.inc("nas_api_measurements_stored_total", (), float(result["inserted"]))
    return result


@router.get("", response_model=MeasurementsPublic, responses={404: {"model": ErrorPublic}})
def read_measurements(
    name: str,
    db: DbDep,
    access: ReadAccess,
    space: Annotated[SpaceName | None, Query()] = None,
    metric: Annotated[Metric | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=INT32)] = 0,
    uploaded_by: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Only rows uploaded with the API key of this name (needs an API key).",
        ),
    ] = None,
) -> MeasurementsPublic:
    """Measurements of device ``name``, newest first; ``count`` is the total matching.
    ``uploaded_by`` is shown to readers with an API key only, and only they may filter by it."""
    if uploaded_by is not None:
        require_key_to_filter(access, "uploaded_by")
    get_device_or_404(db, name)
    records = db.measurements(space=space, device=name, metric=metric, limit=limit,
                              offset=offset, uploaded_by=uploaded_by)  # fmt: skip
    total = db.count_measurements(space=space, device=name, metric=metric, uploaded_by=uploaded_by)
    if access is None:
        records = [{**r, "uploaded_by": None} for r in records]
    data = [MeasurementPublic.model_validate(r) for r in records]
    return MeasurementsPublic(data=data, count=total, limit=limit, offset=offset)


@router.delete("", response_model=DeletedPublic, responses=_ERRORS)
def delete_measurements(
    name: str,
    db: DbDep,
    services: ServicesDep,
    api_key: WriteKey,
    space: Annotated[SpaceName | None, Query()] = None,
    metric: Annotated[Metric | None, Query()] = None,
    protocol: Annotated[
        str | None,
        Query(max_length=200, description="Only rows under this protocol tag (empty: none)."),
    ] = None,
    arch: Annotated[
        list[ArchText] | None,
        Query(max_length=1000, description="Only these architectures (needs `space`)."),
    ] = None,
    dry_run: Annotated[bool, Query()] = False,
) -> DeletedPublic:
    """Delete, in one transaction, the measurements of device ``name`` that the request's
    API key uploaded and that match every filter given (``dry_run``: only count them).

    Rows are matched by the key's name (``uploaded_by``): rows other keys uploaded, or that
    were written locally or imported without an uploader, are never touched; the
    database's owner removes those with ``nas hwdb delete``. An imported export keeps its
    uploaders' names, so a key of the same name here owns those rows.
    """
    if space is not None:
        check_space(space, ["query", "space"])
    get_device_or_404(db, name)
    archs = None
    if arch is not None:
        if space is None:
            raise ApiError(422, ["query", "space"], "required with `arch`", type="missing")
        archs = canonical_archs(space, arch, ["query", "arch"])
    n = db.delete_measurements(
        device=name, space=space, metric=metric, protocol=protocol, uploaded_by=api_key.name,
        archs=archs, dry_run=dry_run,
    )  # fmt: skip
    if n and not dry_run:
        services.cache.invalidate(db.url, name)
        services.metrics.inc("nas_api_measurements_deleted_total", (), float(n))
    return DeletedPublic(device=name, deleted=n, dry_run=dry_run)

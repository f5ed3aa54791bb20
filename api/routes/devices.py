"""``GET/POST /v1/devices`` and ``GET/PATCH /v1/devices/{name}``."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status

from api.deps import DbDep, ReadAccess, ServicesDep, WriteKey
from api.errors import ApiError, field_errors
from api.schemas import (
    DeviceCreate,
    DevicePublic,
    DevicesPublic,
    DeviceUpdate,
    ErrorPublic,
    SpaceName,
)

__all__ = ["router"]

router = APIRouter(prefix="/devices", tags=["devices"])

Family = Literal["jetson", "gpu", "cpu", "phone", "npu", "fpga", "asic", "tpu", "dsp", "other"]
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic},
    403: {"model": ErrorPublic, "description": "Registered by another API key (not_owner)"},
    422: {"model": ErrorPublic},
}


@router.get("", response_model=DevicesPublic)
def read_devices(
    db: DbDep,
    access: ReadAccess,
    space: Annotated[SpaceName | None, Query(description="Only devices measured here.")] = None,
    family: Annotated[Family | None, Query()] = None,
) -> DevicesPublic:
    """Devices sorted by name, optionally those measured in ``space`` / of ``family``."""
    devices = db.list_devices(space=space, family=family)
    data = [_public(d, access) for d in devices]
    return DevicesPublic(data=data, count=len(data))


def _public(device: object, access: object | None) -> DevicePublic:
    """``device`` as the API shows it: who registered it only to readers with an API key."""
    public = DevicePublic.model_validate(device)
    return public if access is not None else public.model_copy(update={"registered_by": None})


@router.post(
    "",
    response_model=DevicePublic,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": DevicePublic, "description": "Updated"}, **_ERRORS},
)
def create_device(
    body: DeviceCreate, db: DbDep, services: ServicesDep, key: WriteKey, response: Response
) -> DevicePublic:
    """Register a device (201), or update the device of that name (200): the fields sent
    replace the stored ones, and those left out keep their stored values. Only the API key
    that registered a device may change it (403 ``not_owner``); any key may fill in a
    setting it leaves open (an unknown runtime, no thread count) and send fields it already
    has."""
    from hwdb import NotFoundError

    fields = body.model_dump(exclude_unset=True)
    sent = set(fields)
    try:
        stored = db.get_device(body.name)
    except NotFoundError:
        full = body.model_dump()
        created = _store(db, services, full, set(full), key.name, insert_only=True)
        mine = created.registered_by == key.name
        if mine and all(getattr(created, f) == v for f, v in full.items()):
            return created  # 201: this request's device
        stored = db.get_device(body.name)  # another request registered the name meanwhile
    response.status_code = status.HTTP_200_OK
    _check_owner(stored, fields, key.name, ["body"])
    return _store(db, services, {**_fields_of(stored), **fields}, sent, key.name)


@router.patch(
    "/{name}",
    response_model=DevicePublic,
    responses={404: {"model": ErrorPublic}, **_ERRORS},
)
def update_device(
    name: str, body: DeviceUpdate, db: DbDep, services: ServicesDep, key: WriteKey
) -> DevicePublic:
    """Change some fields of a registered device; those left out keep their stored values.
    Only the API key that registered the device may change it (403 ``not_owner``); any key
    may fill in a setting it leaves open (an unknown runtime, no thread count)."""
    stored = get_device_or_404(db, name)
    fields = body.model_dump(exclude_unset=True)
    _check_owner(stored, fields, key.name, ["body"])
    return _store(db, services, {**_fields_of(stored), **fields}, set(fields), key.name)


def _check_owner(stored: Any, fields: dict[str, Any], key: str, loc: list[str | int]) -> None:
    """A 403 naming the first field of ``fields`` that the API key ``key`` may not change on
    ``stored``: every field that differs from the stored value, unless ``key`` registered
    the device (:attr:`hwdb.Device.registered_by`) or the field is a setting the device
    leaves open (a measuring board states it on its first upload)."""
    from hwdb._types import DEVICE_SETTINGS, is_unstated

    if stored.registered_by is not None and stored.registered_by == key:
        return
    for field, value in fields.items():
        have = getattr(stored, field, None)
        if value == have or (field in DEVICE_SETTINGS and is_unstated(field, have)):
            continue
        who = (
            "another API key" if stored.registered_by is not None
            else "the database's owner (`nas device add`, an import)"
        )  # fmt: skip
        raise ApiError(
            403, [*loc, field],
            f"device {stored.name!r} was registered by {who}: only it may change its "
            f"{field} ({have!r}) through the service; change it on the database, or register "
            "a device of another name",
            type="not_owner",
        )  # fmt: skip


def _fields_of(device: object) -> dict[str, Any]:
    """The :class:`hwdb.DeviceSpec` fields of a stored device."""
    from hwdb import DeviceSpec

    return {f.name: getattr(device, f.name) for f in dataclasses.fields(DeviceSpec)}


def _check_catalog_precision(fields: dict[str, Any]) -> None:
    """A device with a datasheet entry is priced at its precision, so the entry must list
    it (checked on the merged record: a ``PATCH`` may change either field)."""
    from hwdb.catalog import get_entry

    entry = (fields.get("attributes") or {}).get("catalog")
    if not isinstance(entry, str):
        return
    try:
        get_entry(entry).peak_flops(fields.get("precision", "fp32"))
    except ValueError as exc:
        raise ApiError(422, ["body", "precision"], str(exc), type="unknown_precision") from exc
    except LookupError:  # an entry that has left the catalog: stored devices stay readable
        return


def _check_catalog_runtime(fields: dict[str, Any], sent: set[str]) -> None:
    """A device with a datasheet entry is priced by its runtime, and the roofline prices any
    name it does not know as a fused graph, so such a device's runtime must be one of
    :data:`predictors.zeroshot.KNOWN_RUNTIMES` (a typo would silently change its
    predictions). Checked on the merged record when the request sets ``runtime`` or
    ``attributes``: a device stored before the check can still be changed otherwise, and a
    device without an entry may carry any runtime label."""
    if not sent & {"runtime", "attributes"}:
        return
    if not isinstance((fields.get("attributes") or {}).get("catalog"), str):
        return
    from predictors.zeroshot import KNOWN_RUNTIMES, is_known_runtime

    runtime = str(fields.get("runtime", ""))
    if not is_known_runtime(runtime):
        raise ApiError(
            422,
            ["body", "runtime"],
            f"runtime {runtime!r} of a device with a datasheet catalog entry must be one of "
            f"{', '.join(KNOWN_RUNTIMES)}",
            type="unknown_runtime",
        )


def _store(
    db: DbDep,
    services: ServicesDep,
    fields: dict[str, Any],
    sent: set[str],
    key: str,
    *,
    insert_only: bool = False,
) -> DevicePublic:
    """Check and store the merged record ``fields`` (``sent``: the fields of the request;
    ``key``: the API key, recorded as the registrant of a new device). ``insert_only``: leave
    a device of that name stored meanwhile by another request as it is (the caller checks
    who registered it before changing it)."""
    from hwdb import DeviceSpec

    _check_catalog_precision(fields)
    _check_catalog_runtime(fields, sent)
    with field_errors("body"):
        # only the request's fields: a device stored meanwhile by a concurrent request keeps
        # the fields this one left out (two creates of one new name both found none)
        device = db.upsert_device(
            DeviceSpec(**fields), fields=() if insert_only else sent, registered_by=key
        )
    services.cache.invalidate(db.url, device.name)
    return DevicePublic.model_validate(device)


@router.get("/{name}", response_model=DevicePublic, responses={404: {"model": ErrorPublic}})
def read_device(name: str, db: DbDep, access: ReadAccess) -> DevicePublic:
    """One device."""
    return _public(get_device_or_404(db, name), access)


def get_device_or_404(db: DbDep, name: str) -> object:
    """The device ``name`` or a 404 naming the path parameter."""
    from hwdb import NotFoundError

    try:
        return db.get_device(name)
    except NotFoundError as exc:
        raise ApiError(404, ["path", "name"], str(exc), type="not_found") from exc

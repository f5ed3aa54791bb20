"""``POST /v1/predict`` and ``POST /v1/devices/{name}/adapt``."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api._predictors import canonical_archs, check_space
from api.deps import DbDep, ReadAccess, Services, ServicesDep, SettingsDep, WriteKey
from api.errors import ApiError, field_errors
from api.routes.devices import get_device_or_404
from api.schemas import AdaptCreate, AdaptPublic, ErrorPublic, PredictCreate, PredictionsPublic

if TYPE_CHECKING:
    from api._predictors import ServedModel
    from hwdb import HardwareDB

__all__ = ["router"]

router = APIRouter(tags=["predictions"])

_INLINE_ARCHS = 64  # batches up to this size are answered on the event loop when warm
_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorPublic} for s in (401, 404, 409, 413, 422, 503)
}


def _check_names(space: str, predictor: str | None) -> None:
    from predictors import list_predictors

    check_space(space, ["body", "space"])
    if predictor is not None and predictor not in list_predictors():
        raise ApiError(
            422, ["body", "predictor"],
            f"unknown predictor {predictor!r} (known: {', '.join(list_predictors())})",
            type="unknown_predictor",
        )  # fmt: skip


def _served(
    services: Services, db: HardwareDB, body: PredictCreate, *, train: bool = True
) -> ServedModel:
    from hwdb import NotFoundError

    try:
        db.get_device(body.device)
    except NotFoundError as exc:
        raise ApiError(422, ["body", "device"], str(exc), type="unknown_device") from exc
    return _cached(
        services, db, body.space, body.device, body.predictor, ("body", "device"), train=train
    )


def require_space_data(db: HardwareDB, space: str, *, status: int, kind: str) -> None:
    """An error at ``body.space`` unless the database has architectures of ``space``."""
    if space not in db.list_spaces():
        raise ApiError(
            status, ["body", "space"],
            f"search space {space!r} has no architectures in the database; upload "
            "measurements (or `nas hwdb import`) first",
            type=kind,
        )  # fmt: skip


def _cached(
    services: Services,
    db: HardwareDB,
    space: str,
    device: str,
    predictor: str | None,
    device_loc: tuple[str, ...],
    *,
    train: bool = True,
) -> ServedModel:
    """The adapted model from the cache; library errors at ``device_loc``, except that a
    space without source devices to meta-train on is reported at ``body.space``. A catalog
    device not measured in the space needs no data of the space (zero-shot). ``train=False``
    raises ``NotTrainedError`` where a meta-training would be needed."""
    from predictors import (
        NoSourceDevicesError,
        NotTrainedError,
        TrainingBusy,
        TrainingCancelled,
        catalog_only,
    )

    if not catalog_only(db, space=space, device=device):
        require_space_data(db, space, status=409, kind="not_enough_data")
    with field_errors(*device_loc):
        try:
            return services.cache.get(
                db, space=space, device=device, predictor=predictor, train=train
            )
        except NoSourceDevicesError as exc:  # the space's data is missing, not the device's
            raise ApiError(409, ["body", "space"], str(exc), type="not_enough_data") from exc
        except TrainingCancelled as exc:  # stop_when: the client of a predict request left
            raise _ClientGone from exc
        except TrainingBusy as exc:
            raise ApiError(
                503, ["server"], str(exc), type="busy", headers={"Retry-After": "60"}
            ) from exc
        except NotTrainedError as exc:
            raise ApiError(
                409, ["body", "predictor"],
                f"{exc}: send the request with an API key to meta-train it (once, then it is "
                f"stored), or run `nas predictor adapt --space {space} --device {device} "
                f"--predictor {predictor}` on the server's database",
                type="not_trained",
            ) from exc  # fmt: skip


def _workload(model: ServedModel, space: str) -> dict[str, int]:
    """The input shapes the predictions are for: the device's measured workload, else (no
    measurements, or none stored) the space's default."""
    from search_spaces import get_space

    return get_space(space).workload_dict(getattr(model, "workload", None))


class _ClientGone(Exception):
    """The client disconnected: the rest of a slow prediction is not computed."""


_CHUNK_ARCHS = 32  # a roofline prices an arch in ~0.1 s cold: check the client this often


def _predict(model: ServedModel, archs: list[str], gone: threading.Event | None) -> Any:
    """``model.predict(archs)``; a datasheet roofline (which traces every arch) in chunks,
    stopping with :class:`_ClientGone` once ``gone`` is set."""
    from predictors import AdaptedLatencyModel

    if gone is None or isinstance(model, AdaptedLatencyModel) or not archs:
        return model.predict(archs)
    parts = []
    for start in range(0, len(archs), _CHUNK_ARCHS):
        if gone.is_set():
            raise _ClientGone
        parts.append(model.predict(archs[start : start + _CHUNK_ARCHS]))
    return replace(
        parts[0], archs=list(archs),
        mean_ms=np.concatenate([p.mean_ms for p in parts]),
        std_ms=np.concatenate([p.std_ms for p in parts]),
    )  # fmt: skip


def _answer(
    model: ServedModel, body: PredictCreate, archs: list[str], gone: threading.Event | None = None
) -> dict[str, Any]:
    with field_errors("body", "archs"):
        pred = _predict(model, archs, gone)
    mean, std = pred.mean_ms.tolist(), pred.std_ms.tolist()
    if not all(math.isfinite(m) and math.isfinite(s) for m, s in zip(mean, std, strict=True)):
        raise ApiError(503, ["body", "archs"], "the predictor returned non-finite values",
                       type="predictor_failed")  # fmt: skip
    return {
        "space": body.space,
        "device": body.device,
        "predictor": pred.predictor,
        "version": pred.version,
        "n_measurements": int(pred.n_measurements),
        "source": pred.source,
        "workload": _workload(model, body.space),
        "data": [
            {"arch": a, "latency_ms": m, "std_ms": s}
            for a, m, s in zip(pred.archs, mean, std, strict=True)
        ],
        "count": len(archs),
    }


@router.post("/predict", response_model=PredictionsPublic, responses=_ERRORS)
async def predict(
    request: Request,
    body: PredictCreate,
    db: DbDep,
    services: ServicesDep,
    settings: SettingsDep,
    access: ReadAccess,
) -> Response:
    """Predicted latency (ms) and uncertainty of each architecture on ``device``.

    Uses the space's default (or the named) predictor adapted to the device's measurements;
    a device registered with a catalog entry and not measured in the space yet is predicted
    zero-shot by its datasheet roofline (``source``: ``zero-shot (datasheet)``; at most
    ``NAS_API_MAX_ZERO_SHOT_ARCHS`` archs per request). The response says which
    predictor/version and how many measurements back it. The default predictor is
    meta-trained on first need; another one only for a request with an API key (409
    ``not_trained`` without).
    """
    if len(body.archs) > settings.max_predict_archs:
        raise ApiError(
            413, ["body", "archs"],
            f"at most {settings.max_predict_archs} archs per request, got {len(body.archs)}",
            type="batch_too_large",
        )  # fmt: skip
    _check_names(body.space, body.predictor)
    from predictors import DEFAULT_PREDICTOR, AdaptedLatencyModel, stop_when

    model = services.cache.fresh(services.cache.key(db, body.space, body.device, body.predictor))
    # an adapted model predicts small batches in microseconds; a roofline traces each arch
    if isinstance(model, AdaptedLatencyModel) and len(body.archs) <= _INLINE_ARCHS:
        content = _answer(model, body, canonical_archs(body.space, body.archs, ["body", "archs"]))
    else:
        # an anonymous request may meta-train only the default predictor (once per device)
        train = access is not None or body.predictor in (None, DEFAULT_PREDICTOR)

        def work(gone: threading.Event) -> dict[str, Any]:
            # bad archs are refused before any model is loaded, adapted or meta-trained
            archs = canonical_archs(body.space, body.archs, ["body", "archs"])
            with stop_when(gone.is_set):  # a meta-training stops when the client leaves
                served = _served(services, db, body, train=train)
            _check_zero_shot_batch(served, len(archs), settings.max_zero_shot_archs)
            return _answer(served, body, archs, gone)

        try:
            content = await _unless_disconnected(request, work)
        except _ClientGone:  # nobody reads this; nginx's code for "client closed request"
            return Response(status_code=499)
    services.metrics.inc("nas_api_predicted_archs_total", (), float(len(body.archs)))
    return JSONResponse(content)


def _check_zero_shot_batch(model: ServedModel, n: int, cap: int) -> None:
    """413 for more than ``cap`` archs priced by a datasheet roofline (it traces each one)."""
    from predictors import AdaptedLatencyModel

    if not isinstance(model, AdaptedLatencyModel) and n > cap:
        raise ApiError(
            413, ["body", "archs"],
            f"at most {cap} archs per request for a device predicted zero-shot (its datasheet "
            f"roofline traces every architecture's model, ~0.05 s each), got {n}",
            type="batch_too_large",
        )  # fmt: skip


async def _unless_disconnected(
    request: Request, work: Callable[[threading.Event], dict[str, Any]]
) -> dict[str, Any]:
    """``work(gone)`` in a worker thread while the event loop polls the client; ``gone`` is
    set when it disconnects (a zero-shot batch of 10,000 archs takes many minutes)."""
    gone, done = threading.Event(), anyio.Event()

    async def watch() -> None:
        while not done.is_set():
            if await request.is_disconnected():
                gone.set()
                return
            with anyio.move_on_after(0.5):
                await done.wait()

    failure: Exception | None = None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        try:
            content = await anyio.to_thread.run_sync(work, gone)
        except Exception as exc:  # noqa: BLE001 - re-raised below, not as an ExceptionGroup
            failure = exc
        finally:
            done.set()
    if failure is not None:
        raise failure
    return content


@router.post("/devices/{name}/adapt", response_model=AdaptPublic, responses=_ERRORS)
def adapt(
    name: str, body: AdaptCreate, db: DbDep, services: ServicesDep, _key: WriteKey
) -> AdaptPublic:
    """(Re-)adapt the predictor of ``space`` to device ``name``'s current measurements.

    Meta-trains the space's predictor first when no stored one exists (slow once).
    """
    from predictors import MIN_ADAPT_MEASUREMENTS, AdaptedLatencyModel, latency_metric

    get_device_or_404(db, name)
    _check_names(body.space, body.predictor)
    t0 = time.perf_counter()
    services.cache.invalidate(db.url, name)
    model = _cached(services, db, body.space, name, body.predictor, ("path", "name"))
    if not isinstance(model, AdaptedLatencyModel):
        n = db.count_measurements(
            space=body.space, device=name, metric=latency_metric(body.space), distinct_archs=True
        )
        raise ApiError(
            409, ["path", "name"],
            f"device {name!r} has {n} measured arch{'' if n == 1 else 's'} in {body.space!r}, "
            f"a predictor adapts to at least {MIN_ADAPT_MEASUREMENTS} (until then it is "
            "predicted zero-shot from its catalog entry); upload measurements first",
            type="not_enough_data",
        )  # fmt: skip
    return AdaptPublic(
        space=body.space,
        device=name,
        predictor=model.model.name,
        version=model.version,
        n_measurements=model.n_measurements,
        source=model.source,
        elapsed_ms=(time.perf_counter() - t0) * 1000.0,
    )

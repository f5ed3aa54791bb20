"""``GET /healthz`` and ``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from api._metrics import CONTENT_TYPE
from api.deps import DbDep, ServicesDep
from api.schemas import HealthPublic

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def healthz(db: DbDep) -> JSONResponse:
    """Liveness plus a ``SELECT 1`` on the database (503 when it is unreachable)."""
    from hwdb import HwdbError
    from nas import __version__

    try:
        db.ping()
        ok = True
    except HwdbError:
        ok = False
    body = HealthPublic(
        status="ok" if ok else "degraded",
        version=__version__,
        database="ok" if ok else "unavailable",
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(services: ServicesDep) -> PlainTextResponse:
    """Request counters and latency histograms, searches and cache gauges."""
    return PlainTextResponse(services.metrics.render(), media_type=CONTENT_TYPE)

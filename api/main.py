"""The FastAPI application: ``create_app()`` wires settings, routers, middleware and handlers.

Layout after full-stack-fastapi-template's backend (``app/main.py`` + ``app/api/main.py``):
versioned routers under ``/v1``, OpenAPI at ``/docs``; ``/healthz`` and ``/metrics`` unversioned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI

from api.config import Settings
from api.deps import Services, load_settings
from api.errors import install_handlers
from api.middleware import BodyLimitMiddleware, HeadMiddleware, MetricsMiddleware
from api.routes import catalog, devices, health, measurements, predictions, searches, spaces
from api.schemas import ErrorPublic

if TYPE_CHECKING:
    from hwdb import HardwareDB

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/v1"


#: Answers any ``/v1`` route may give, whatever its own: a malformed body (400), a bad API key
#: (401, also on open reads), a body over the size limit (413), one not sent as JSON (415).
_COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorPublic, "description": "Malformed body (invalid_body)"},
    401: {"model": ErrorPublic, "description": "Invalid or revoked API key"},
    413: {"model": ErrorPublic, "description": "Body too large (body_too_large)"},
    415: {"model": ErrorPublic, "description": "Body not sent as JSON (unsupported_media_type)"},
}


def _api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, responses=_COMMON_ERRORS)
    for module in (spaces, catalog, devices, measurements, predictions, searches):
        router.include_router(module.router)
    return router


def _describe_metrics(services: Services) -> None:
    m = services.metrics
    m.describe("nas_api_measurements_stored_total", "counter", "Measurement rows newly stored.")
    m.describe("nas_api_measurements_deleted_total", "counter", "Measurement rows deleted.")
    m.describe("nas_api_predicted_archs_total", "counter", "Architectures predicted.")
    m.describe("nas_api_searches_active", "gauge", "Searches queued or running.")
    m.describe("nas_api_predictor_cache_entries", "gauge", "Adapted predictors cached.")
    m.gauge("nas_api_searches_active", lambda: float(services.searches.active()))
    m.gauge("nas_api_predictor_cache_entries", lambda: float(len(services.cache)))


def create_app(settings: Settings | None = None, *, db: HardwareDB | None = None) -> FastAPI:
    """Build the REST service.

    Args:
        settings: Configuration (default: :meth:`Settings.from_env`, read once).
        db: Serve this database instead of opening ``settings.database_url``.

    Returns:
        The FastAPI app (run it with uvicorn; ``nas serve`` does).
    """
    from nas import __version__

    cfg = settings if settings is not None else load_settings()
    services = Services.create(cfg, db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            services.close()

    app = FastAPI(
        title="hw-nas",
        version=__version__,
        summary="Hardware-aware NAS: devices, measurements, latency predictions and searches.",
        docs_url="/docs",
        openapi_url="/openapi.json",
        lifespan=lifespan,
        # a trailing slash is a 404 like any unknown path: Starlette's 307 carried no body
        # and built its Location from the client's Host header
        redirect_slashes=False,
    )
    app.state.services = services
    _describe_metrics(services)
    install_handlers(app)
    app.include_router(health.router)
    app.include_router(_api_router())
    # last added is outermost: metrics see every response, the 413s of the body limit too
    app.add_middleware(HeadMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=cfg.max_body_bytes)
    if cfg.cors_origins:  # a browser dashboard on another origin (answers preflights)
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=[o.strip() for o in cfg.cors_origins.split(",") if o.strip()],
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["Idempotent-Replayed", "Retry-After"],
        )
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    return app

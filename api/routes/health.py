"""``GET /healthz`` and ``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from api._metrics import CONTENT_TYPE
from api.deps import ServicesDep, get_db
from api.errors import ApiError
from api.schemas import HealthPublic
from hwdb import HwdbError

if TYPE_CHECKING:
    from api.deps import Services
    from hwdb import HardwareDB

__all__ = ["HEALTH_TIMEOUT_S", "router"]

router = APIRouter(tags=["health"])

HEALTH_TIMEOUT_S = 2.0
"""How long ``/healthz`` waits for the database before answering 503."""
_PING_ABANDON_S = 60.0
"""A ping still running after this long is left to its thread and the next probe starts a new
one (a connection stuck past its connect timeout must not keep ``/healthz`` at 503 after the
database is back)."""


class _SharedPing:
    """At most one database ping in flight per app; probes arriving meanwhile share its result.

    The ping runs in its own daemon thread, outside the server's thread pool, so probes during
    an outage hold no worker threads (a hung ping holds one thread, not one per probe) and a
    hung ping does not delay shutdown.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._future: Future[bool] | None = None
        self._started = 0.0

    def start(self, ping: Callable[[], bool]) -> Future[bool]:
        """The in-flight ping's future, or a new ping's when none runs (or it is abandoned)."""
        with self._lock:
            now = time.monotonic()
            future = self._future
            if future is None or future.done() or now - self._started > _PING_ABANDON_S:
                future = Future()
                future.set_running_or_notify_cancel()  # waiters that time out cannot cancel it
                self._future, self._started = future, now
                thread = threading.Thread(
                    target=_run, args=(future, ping), name="nas-healthz", daemon=True
                )
                thread.start()
            return future


def _run(future: Future[bool], ping: Callable[[], bool]) -> None:
    try:
        future.set_result(ping())
    except BaseException as exc:  # noqa: BLE001 - handed to the waiting probes
        future.set_exception(exc)


def _pinger(app: FastAPI, services: Services) -> Callable[[], bool]:
    """``SELECT 1`` on the app's database, opened on first use (``False``: unreachable).

    The database is found as :func:`api.deps.get_db` finds it, including a no-argument
    ``app.dependency_overrides[get_db]`` (tests), but without holding a server thread while
    it is opened.
    """
    override = app.dependency_overrides.get(get_db)

    def ping() -> bool:
        try:
            db: HardwareDB = override() if override is not None else services.db()
            db.ping()
        except (HwdbError, ApiError):  # ApiError: services.db() could not open it
            return False
        return True

    return ping


def _shared_ping(app: FastAPI) -> _SharedPing:
    shared: _SharedPing | None = getattr(app.state, "health_ping", None)
    if shared is None:  # no await since the lookup: one per app
        shared = app.state.health_ping = _SharedPing()
    return shared


@router.get("/healthz", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
async def healthz(request: Request, services: ServicesDep) -> JSONResponse:
    """Liveness plus a ``SELECT 1`` on the database (503 when it is unreachable, or does not
    answer within :data:`HEALTH_TIMEOUT_S`; concurrent probes share one ping)."""
    from nas import __version__

    future = _shared_ping(request.app).start(_pinger(request.app, services))
    try:
        ok = await asyncio.wait_for(asyncio.wrap_future(future), HEALTH_TIMEOUT_S)
    except TimeoutError:
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

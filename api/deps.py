"""Dependencies: settings, the database, the service singletons and API-key checks."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated

import anyio
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api._idempotency import IdempotencyStore
from api._metrics import Metrics
from api._predictors import PredictorCache
from api._searches import SearchManager
from api.config import Settings, search_dir
from api.errors import ApiError, field_errors
from hwdb import ApiKey, HardwareDB
from hwdb._apikeys import TOKEN_PREFIX

__all__ = [
    "DbDep",
    "ReadAccess",
    "ServicesDep",
    "SettingsDep",
    "WriteKey",
    "Services",
    "get_db",
    "get_services",
    "get_settings",
    "load_settings",
    "read_access",
    "require_api_key",
    "require_key_to_filter",
]


#: Longest wait for another request that is opening the database.
OPEN_WAIT_S = 2.0
#: How long a failed attempt to open the database is reported before the next attempt.
OPEN_RETRY_S = 5.0


@lru_cache
def load_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings.from_env()


@dataclass
class Services:
    """Process-wide objects of one app (created by :func:`api.main.create_app`)."""

    settings: Settings
    cache: PredictorCache
    idempotency: IdempotencyStore
    searches: SearchManager
    metrics: Metrics
    _db: HardwareDB | None = None
    _db_lock: threading.Lock = field(default_factory=threading.Lock)
    #: When the last attempt to open the database failed, and the error it gave.
    _open_failed: tuple[float, ApiError] | None = None

    @classmethod
    def create(cls, settings: Settings, db: HardwareDB | None = None) -> Services:
        """Build the services for ``settings`` (``db``: use this database)."""
        return cls(
            settings=settings,
            cache=PredictorCache(settings.predictor_revalidate_s),
            idempotency=IdempotencyStore(settings.idempotency_capacity),
            searches=SearchManager(
                workers=settings.search_workers,
                max_active=settings.max_active_searches,
                out_dir=search_dir(
                    settings.search_out_dir, db.url if db is not None else settings.database_url
                ),
                max_per_owner=settings.max_searches_per_key,
            ),
            metrics=Metrics(),
            _db=db,
        )

    def db(self) -> HardwareDB:
        """The shared :class:`hwdb.HardwareDB` (opened on first use; thread-safe).

        While another request opens it, a request waits at most :data:`OPEN_WAIT_S`; after a
        failed attempt, requests get its error for :data:`OPEN_RETRY_S` before the next
        attempt. So a database that accepts connections and never answers (each attempt
        runs to hwdb's connect timeout) costs one thread, not one per request.

        On PostgreSQL each connection of the database opened here runs its statements under
        ``settings.statement_timeout_s`` (``HardwareDB(statement_timeout_ms=...)``); a
        database passed to :meth:`create` is used as it is.
        """
        if self._db is not None:
            return self._db
        if not self._db_lock.acquire(timeout=OPEN_WAIT_S):
            raise ApiError(
                503, ["server", "database"], "the database is being opened; try again",
                type="storage_unavailable", headers={"Retry-After": "5"},
            )  # fmt: skip
        try:
            if self._db is None:
                failed = self._open_failed
                if failed is not None and time.monotonic() - failed[0] < OPEN_RETRY_S:
                    err = failed[1]
                    wait = max(1, round(OPEN_RETRY_S - (time.monotonic() - failed[0])))
                    raise ApiError(
                        err.status_code, err.loc, err.msg, type=err.type,
                        headers={"Retry-After": str(wait)},
                    )  # fmt: skip
                try:
                    with field_errors("database"):
                        self._db = HardwareDB(
                            self.settings.database_url,
                            statement_timeout_ms=self.settings.statement_timeout_ms(),
                        )
                except ApiError as exc:
                    self._open_failed = (time.monotonic(), exc)
                    raise
                self._open_failed = None
            return self._db
        finally:
            self._db_lock.release()

    def close(self) -> None:
        """Stop the search workers and close the database."""
        self.searches.shutdown()
        if self._db is not None:
            self._db.close()
            self._db = None


async def get_services(request: Request) -> Services:
    """The app's :class:`Services`."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    """The app's settings (override in tests)."""
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_db(services: ServicesDep) -> HardwareDB:
    """The database (override with ``app.dependency_overrides[get_db]`` in tests)."""
    if services._db is not None:
        return services._db
    return await anyio.to_thread.run_sync(services.db)


DbDep = Annotated[HardwareDB, Depends(get_db)]

_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key.")
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token.")


def require_key_to_filter(access: ApiKey | None, field: str) -> None:
    """A 401 at ``["query", field]`` for a request without an API key: filtering by who
    submitted or uploaded something would tell an anonymous reader what the responses hide."""
    if access is None:
        raise ApiError(
            401, ["query", field],
            f"filtering by {field} needs an API key (X-API-Key header or Authorization: Bearer)",
            type="missing_api_key", headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip


async def _check_key(
    db: HardwareDB, header: str | None, bearer: HTTPAuthorizationCredentials | None
) -> ApiKey:
    token = header or (bearer.credentials if bearer is not None else None)
    loc = ["header", "X-API-Key"]
    if not token:
        raise ApiError(
            401,
            loc,
            "an API key is required (X-API-Key header or Authorization: Bearer)",
            type="missing_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = await anyio.to_thread.run_sync(db.verify_api_key, token)
    if key is None:
        raise ApiError(
            401, loc, "invalid or revoked API key", type="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    return key


async def require_api_key(
    db: DbDep,
    header: Annotated[str | None, Security(_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> ApiKey:
    """Every write needs an active API key."""
    return await _check_key(db, header, bearer)


async def read_access(
    db: DbDep,
    settings: SettingsDep,
    header: Annotated[str | None, Security(_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> ApiKey | None:
    """Reads are open unless ``require_key_for_reads`` is set. On an open read an
    ``X-API-Key`` is checked all the same (a request with a valid key may start a
    meta-training that an anonymous one may not: ``POST /v1/predict``; a typo should say so),
    and so is a bearer token in our keys' format (``nas_...``), while any other bearer token
    makes the read anonymous: a gateway in front of the service may send its own."""
    if settings.require_key_for_reads:
        return await _check_key(db, header, bearer)
    if header:
        return await _check_key(db, header, None)
    if bearer is not None and bearer.credentials.startswith(TOKEN_PREFIX):
        return await _check_key(db, None, bearer)  # one of ours: a revoked key should say so
    return None


WriteKey = Annotated[ApiKey, Depends(require_api_key)]
ReadAccess = Annotated[ApiKey | None, Depends(read_access)]

"""``NAS_API_STATEMENT_TIMEOUT_S``: PostgreSQL cancels a statement of the service's own
connections that runs too long, and the client gets a 503 ``query_timeout``."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from api.config import Settings
from api.errors import QUERY_TIMEOUT_RETRY_S, public_message, query_cancelled, status_of
from api.main import create_app
from hwdb import HardwareDB, StorageError
from tests.api.conftest import make_app
from tests.hwdb.conftest import reset_postgres

QUERY_TIMEOUT_BODY = {
    "detail": [
        {
            "loc": ["server", "database"],
            "msg": "the database query took longer than this server's time limit (statement "
            "timeout) and was cancelled; try again later, or ask for less",
            "type": "query_timeout",
        }
    ]
}


def _scalar(db: HardwareDB, sql: str) -> Any:
    """One value of ``sql`` read through ``db``'s own sessions."""
    return db._read(lambda s: s.execute(text(sql)).scalar())


def _sleep(db: HardwareDB) -> Any:
    """A statement that runs 1 s, through ``db``'s own sessions."""
    return db._read(lambda s: s.execute(text("SELECT pg_sleep(1)")).all())


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    """The PostgreSQL test database, its schema emptied (the service creates it)."""
    reset_postgres(postgres_url)
    return postgres_url


@pytest.fixture
def pg_services(pg_url: str) -> Iterator[Any]:
    """The services of an app over PostgreSQL whose statements may run 50 ms."""
    settings = dataclasses.replace(Settings(), database_url=pg_url, statement_timeout_s=0.05)
    services = create_app(settings).state.services
    yield services
    services.close()


# ----------------------------------------------------------------------------- settings


def test_statement_timeout_setting_defaults_and_validation() -> None:
    assert Settings().statement_timeout_s == 30.0 and Settings().statement_timeout_ms() == 30_000
    env = Settings.from_env
    assert env({"NAS_API_STATEMENT_TIMEOUT_S": "2.5"}).statement_timeout_ms() == 2500
    assert env({"NAS_API_STATEMENT_TIMEOUT_S": "0"}).statement_timeout_ms() == 0  # off
    assert env({"NAS_API_STATEMENT_TIMEOUT_S": "0.0001"}).statement_timeout_ms() == 1  # not off
    for raw in ("-1", "abc", "", "nan", "inf", "1e9"):
        with pytest.raises(ValueError, match="`NAS_API_STATEMENT_TIMEOUT_S` has an invalid value"):
            env({"NAS_API_STATEMENT_TIMEOUT_S": raw})
    with pytest.raises(ValueError, match="`statement_timeout_s` must be a number of seconds"):
        Settings(statement_timeout_s=-0.5)
    with pytest.raises(ValueError, match="`statement_timeout_s`"):
        Settings(statement_timeout_s=True)
    # the other settings' range errors name their variable too
    with pytest.raises(ValueError, match="`NAS_API_MAX_BATCH` has an invalid value '0'"):
        env({"NAS_API_MAX_BATCH": "0"})


# ----------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_the_api_engine_cancels_a_slow_statement_and_the_cli_engine_does_not(
    pg_services: Any, pg_url: str
) -> None:
    db = pg_services.db()
    # the first connection handed out fails its first transaction, which rolls back: the
    # limit was committed when the connection was made, so it stays
    with pytest.raises(StorageError):
        _scalar(db, "SELECT 1 / 0")
    assert _scalar(db, "SHOW statement_timeout") == "50ms"
    start = time.monotonic()
    with pytest.raises(StorageError) as info:
        _sleep(db)
    assert time.monotonic() - start < 0.9
    assert query_cancelled(info.value) and status_of(info.value) == (503, "query_timeout")
    assert "statement timeout" in public_message(info.value)  # a failed search's error
    assert _scalar(db, "SELECT 1") == 1  # the connection is usable afterwards
    # a HardwareDB opened outside the service (every `nas ...` command) has no limit
    with HardwareDB(pg_url) as cli_db:
        assert _scalar(cli_db, "SHOW statement_timeout") == "0"
        assert _sleep(cli_db) is not None
    # 0 turns the limit off
    off = dataclasses.replace(Settings(), database_url=pg_url, statement_timeout_s=0)
    services = create_app(off).state.services
    try:
        assert _scalar(services.db(), "SHOW statement_timeout") == "0"
    finally:
        services.close()


@pytest.mark.postgres
def test_a_cancelled_query_is_a_503_query_timeout(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the app's own database (no ``get_db`` override): the statement PostgreSQL
    cancels answers with the documented body, not the database's text."""
    settings = dataclasses.replace(Settings(), database_url=pg_url, statement_timeout_s=0.05)
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.get("/v1/devices").status_code == 200  # opens the database
        db = app.state.services.db()
        monkeypatch.setattr(db, "list_devices", lambda **_kw: _sleep(db))
        start = time.monotonic()
        response = client.get("/v1/devices")
        assert time.monotonic() - start < 0.9
    assert response.status_code == 503, response.text
    assert response.json() == QUERY_TIMEOUT_BODY
    assert response.headers["Retry-After"] == str(QUERY_TIMEOUT_RETRY_S)
    assert "pg_sleep" not in response.text and "postgresql" not in response.text
    assert "QueryCanceled" in caplog.text  # logged for the operator


# ----------------------------------------------------------------------------- mapping


def _query_canceled() -> StorageError:
    """hwdb's error of a statement PostgreSQL cancelled, as ``HardwareDB`` raises it."""
    import psycopg.errors

    orig = psycopg.errors.QueryCanceled("canceling statement due to statement timeout")
    wrapped = OperationalError("SELECT pg_sleep(1)", None, orig)
    try:
        try:
            raise wrapped from orig
        except OperationalError as exc:
            raise StorageError(f"database error on postgresql://db: {exc}") from exc
    except StorageError as exc:
        return exc


def test_query_timeout_mapping_without_a_server(
    db: HardwareDB, settings: Settings, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways a database error reaches a client: raised from a route (the library
    handler) and inside ``field_errors`` (an ``ApiError``)."""

    def cancelled(*_args: object, **_kw: object) -> None:
        raise _query_canceled()

    other = StorageError("database error on postgresql://db: connection refused")
    assert status_of(other) == (503, "storage_unavailable") and not query_cancelled(other)
    monkeypatch.setattr(db, "list_devices", cancelled)
    monkeypatch.setattr(db, "upsert_device", cancelled)
    with TestClient(make_app(db, settings)) as client:
        read = client.get("/v1/devices")
        write = client.post("/v1/devices", json={"name": "new-board"}, headers=auth)
    for response in (read, write):
        assert response.status_code == 503, response.text
        assert response.json() == QUERY_TIMEOUT_BODY
        assert response.headers["Retry-After"] == str(QUERY_TIMEOUT_RETRY_S)

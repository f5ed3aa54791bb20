"""PostgreSQL engines bound the connect time (review H3: a silent server hung every caller)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from hwdb import HardwareDB, StorageError, _engine

URL = "postgresql+psycopg://nas:nas@127.0.0.1:9/nas"


class _Captured(Exception):
    """Raised instead of connecting, carrying the driver's keyword arguments."""

    def __init__(self, cparams: dict[str, Any]) -> None:
        super().__init__("captured")
        self.cparams = cparams


def _connect_params(url: str) -> dict[str, Any]:
    """The keyword arguments ``make_engine(url)`` hands the driver's ``connect()``."""
    engine = _engine.make_engine(url)

    def capture(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        raise _Captured(dict(cparams))

    event.listen(engine, "do_connect", capture)
    try:
        with pytest.raises(_Captured) as info:
            engine.connect()
    finally:
        engine.dispose()
    return info.value.cparams


@pytest.fixture(autouse=True)
def _psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg")
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)


def test_postgres_engines_bound_the_connect_time_unless_the_user_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _connect_params(URL)["connect_timeout"] == _engine.CONNECT_TIMEOUT_S == 10
    # a plain postgresql:// URL is run by psycopg 3 too
    assert _connect_params(URL.replace("+psycopg", ""))["connect_timeout"] == 10
    # the URL's own value is kept
    assert _connect_params(f"{URL}?connect_timeout=45")["connect_timeout"] == "45"
    # so is PGCONNECT_TIMEOUT, which libpq and psycopg read when no argument is passed
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "45")
    assert "connect_timeout" not in _connect_params(URL)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conns.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    server.close()
    for conn in conns:
        conn.close()


def test_a_silent_server_raises_storage_error_instead_of_hanging(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_engine, "CONNECT_TIMEOUT_S", 2)  # libpq's smallest timeout
    outcome: list[BaseException | None] = []

    def open_db() -> None:
        try:
            HardwareDB(f"postgresql+psycopg://nas:nas@127.0.0.1:{silent_port}/nas").ping()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    start = time.monotonic()
    thread = threading.Thread(target=open_db, daemon=True)  # a hang must not hang the suite
    thread.start()
    thread.join(timeout=60)
    assert outcome, "HardwareDB() still hangs on a server that never answers"
    assert isinstance(outcome[0], StorageError), outcome
    assert "timeout" in str(outcome[0]).lower()
    assert time.monotonic() - start >= 1.5  # it did wait on the silent server

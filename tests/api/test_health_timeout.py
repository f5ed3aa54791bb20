"""``/healthz`` against a database that accepts connections but never answers (review H3).

The probe must answer 503 within its time limit, concurrent probes must share one ping, and
probes must not hold the server's worker threads (other routes keep answering).
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from api.config import Settings
from api.main import create_app
from api.routes import health
from hwdb import HardwareDB
from tests.api._helpers import live_server
from tests.api.conftest import make_app

N_PROBES = 50
"""More concurrent probes than the server's worker threads (anyio's default: 40)."""


class SilentListener:
    """A TCP server on 127.0.0.1 that accepts connections and never writes (a hung database)."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)

    @property
    def accepted(self) -> int:
        """Connections accepted so far."""
        return len(self._conns)

    def close(self) -> None:
        """Stop listening and close every accepted connection (their clients then fail)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentListener]:
    """A listener that accepts and stays silent."""
    listener = SilentListener()
    yield listener
    listener.close()


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_healthz_is_503_when_the_database_accepts_but_never_answers(
    silent: SilentListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Server started against the silent listener: the first open of the database hangs."""
    pytest.importorskip("psycopg")
    monkeypatch.setattr(health, "HEALTH_TIMEOUT_S", 0.5)
    url = f"postgresql+psycopg://nas:nas@127.0.0.1:{silent.port}/nas"
    app = create_app(dataclasses.replace(Settings(), database_url=url))
    with live_server(app) as base, httpx.Client(base_url=base, timeout=20) as client:
        response = client.get("/healthz")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "degraded" and body["database"] == "unavailable"
        assert set(body) == {"status", "version", "database"}
        head = client.head("/healthz")
        assert head.status_code == 503 and head.content == b""
    # both probes shared the one connection attempt still hanging on the listener
    assert _wait_until(lambda: silent.accepted >= 1)
    assert silent.accepted == 1


def test_concurrent_probes_share_one_ping_and_leave_the_workers_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An open database stops answering: every ping blocks until the test releases it."""
    monkeypatch.setattr(health, "HEALTH_TIMEOUT_S", 3.0)
    db = HardwareDB(f"sqlite:///{tmp_path / 'health.sqlite'}")
    release = threading.Event()
    lock = threading.Lock()
    calls = [0, 0, 0]  # started, in flight, most in flight at once

    def hanging_ping() -> None:
        with lock:
            calls[0] += 1
            calls[1] += 1
            calls[2] = max(calls[2], calls[1])
        try:
            release.wait(timeout=120)
        finally:
            with lock:
                calls[1] -= 1

    monkeypatch.setattr(db, "ping", hanging_ping)
    statuses: list[int] = []

    def probe(base: str) -> None:
        try:
            statuses.append(httpx.get(f"{base}/healthz", timeout=30).status_code)
        except httpx.HTTPError:
            statuses.append(-1)

    with live_server(make_app(db, Settings())) as base:
        try:
            threads = [threading.Thread(target=probe, args=(base,)) for _ in range(N_PROBES)]
            for thread in threads:
                thread.start()
            assert _wait_until(lambda: calls[0] >= 1)
            # the probes are waiting now; a route that needs a worker thread still answers
            catalog = httpx.get(f"{base}/v1/catalog", timeout=20)
            assert catalog.status_code == 200
            for thread in threads:
                thread.join(timeout=60)
            assert statuses == [503] * N_PROBES
            assert calls[0] == 1 and calls[2] == 1
        finally:
            release.set()  # the database answers again
        assert _wait_until(lambda: httpx.get(f"{base}/healthz", timeout=20).status_code == 200)
        assert calls[2] == 1
    db.close()

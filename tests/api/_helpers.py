"""Helpers of the API tests: a seeded HELP database and a live uvicorn server in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from hwdb import HardwareDB

SPACE = "nasbench201"
SOURCES = ("1080ti_1", "silver_4114", "pixel3", "titanx_32")
TARGET = "gold_6226"
# HELP protocol pools: train = index < 900, query = 900..1899; plus the 10 reference archs
INDICES = (*range(0, 80), *range(900, 940))


def distinct_archs(n: int, start: int = 0) -> list[str]:
    """``n`` distinct random archs of :data:`SPACE` (seeds ``start``, ``start + 1``, ...)."""
    from search_spaces import get_space

    space = get_space(SPACE)
    out: list[str] = []
    i = start
    while len(out) < n:
        arch = space.to_string(space.random(i))
        if arch not in out:
            out.append(arch)
        i += 1
    return out


def seed_help_subset(db: HardwareDB, shared: Path) -> dict[str, list[str]]:
    """Store a slice of the public HELP NAS-Bench-201 latencies (5 devices) in ``db``.

    Returns:
        Per device, the archs stored (canonical strings).
    """
    import torch

    from hwdb import DeviceSpec, MeasurementIn
    from hwdb.importers.help import SOURCE, device_spec
    from predictors import HELP_REFERENCE_INDICES

    base = shared / "help" / "data" / SPACE
    mapping = torch.load(base / "str_arch2idx.pt", weights_only=True)
    by_index = {int(i): str(s) for s, i in mapping.items()}
    indices = sorted(set(INDICES) | set(HELP_REFERENCE_INDICES[SPACE]))
    stored: dict[str, list[str]] = {}
    for dev in (*SOURCES, TARGET):
        lat = torch.load(base / "latency" / f"{dev}.pt", weights_only=True)
        spec = device_spec(dev)
        db.upsert_device(DeviceSpec(**{**spec.__dict__, "provenance": "imported"}))
        rows = [
            MeasurementIn(
                device=dev, space=SPACE, arch=by_index[i], median=float(lat[i]),
                protocol="help-release", source=SOURCE, benchmark_index=i,
            )
            for i in indices
        ]  # fmt: skip
        db.add_measurements(rows)
        stored[dev] = [by_index[i] for i in indices]
    return stored


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_for_search(client: TestClient, sid: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll ``GET /v1/searches/{sid}`` until the search is no longer queued or running (or
    ``timeout`` seconds passed); its last body."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/v1/searches/{sid}").json()
        if body["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)

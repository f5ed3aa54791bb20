"""16 clients upload overlapping batches at once through a live server: every row once."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from api.config import Settings
from hwdb import HardwareDB
from search_spaces import get_space
from tests.api._helpers import SPACE, live_server
from tests.api.conftest import make_app
from tests.hwdb.conftest import reset_postgres

N_CLIENTS = 16
N_ARCHS = 40


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> HardwareDB:
    if request.param == "sqlite":
        return HardwareDB(f"sqlite:///{tmp_path / 'conc.sqlite'}")
    url = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return HardwareDB(url)


def test_sixteen_concurrent_uploaders_store_every_row_once(empty_db: HardwareDB) -> None:
    space = get_space(SPACE)
    archs = list(dict.fromkeys(space.to_string(space.random(i)) for i in range(N_ARCHS * 2)))
    archs = archs[:N_ARCHS]
    token = empty_db.create_api_key("conc")[1]
    errors: list[str] = []
    results: list[dict[str, int]] = []
    barrier = threading.Barrier(N_CLIENTS)

    def client(rank: int, url: str) -> None:
        headers = {"X-API-Key": token}
        # every client writes all shared rows (two devices) in batches, plus its own device
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            for name in ("shared-a", "shared-b", f"own-{rank}"):
                c.post("/v1/devices", json={"name": name})
            barrier.wait()
            for start in range(0, N_ARCHS, 10):
                part = archs[start : start + 10]
                for dev in ("shared-a", "shared-b", f"own-{rank}"):
                    rows = [
                        {"space": SPACE, "arch": a, "median": 1.0 + i, "protocol": "p"}
                        for i, a in enumerate(part)
                    ]
                    key = f"{dev}-{start}"  # shared keys: concurrent retries of one batch
                    r = c.post(
                        f"/v1/devices/{dev}/measurements",
                        json={"measurements": rows},
                        headers={"Idempotency-Key": key},
                    )
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text}")
                    elif dev.startswith("own"):
                        results.append(r.json())

    with empty_db, live_server(make_app(empty_db, Settings())) as url:
        threads = [threading.Thread(target=client, args=(r, url)) for r in range(N_CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        assert sum(r["inserted"] for r in results) == N_CLIENTS * N_ARCHS
        stats = empty_db.stats()
        expected = (2 + N_CLIENTS) * N_ARCHS
        assert stats["spaces"][SPACE] == {
            "devices": 2 + N_CLIENTS, "architectures": N_ARCHS, "measurements": expected,
            "accuracies": 0,
        }  # fmt: skip
        for dev in ("shared-a", "shared-b"):
            assert empty_db.count_measurements(device=dev) == N_ARCHS

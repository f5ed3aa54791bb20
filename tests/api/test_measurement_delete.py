"""Who uploaded a measurement (``uploaded_by``) and ``DELETE /v1/devices/{name}/measurements``."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from hwdb import HardwareDB, MeasurementIn
from tests.api._helpers import SPACE, TARGET, distinct_archs
from tests.api.conftest import make_app

DEVICE = "delete-dev"
URL = f"/v1/devices/{DEVICE}/measurements"


ARCHS = distinct_archs(6)


def _body(archs: list[str], protocol: str = "t") -> dict[str, Any]:
    return {"measurements": [{"space": SPACE, "arch": a, "median": 1.0 + i, "protocol": protocol}
                             for i, a in enumerate(archs)]}  # fmt: skip


@pytest.fixture
def other(db: HardwareDB) -> dict[str, str]:
    """Headers of a second API key."""
    return {"X-API-Key": db.create_api_key("other-team")[1]}


@pytest.fixture
def seeded(client: TestClient, db: HardwareDB, auth: dict[str, str], other: dict[str, str]) -> None:
    """Three rows uploaded with ``tests``, two with ``other-team``, one written locally."""
    assert client.post("/v1/devices", json={"name": DEVICE}, headers=auth).status_code == 201
    assert client.post(URL, json=_body(ARCHS[:3]), headers=auth).status_code == 200
    assert client.post(URL, json=_body(ARCHS[3:5]), headers=other).status_code == 200
    db.add_measurements([MeasurementIn(device=DEVICE, space=SPACE, arch=ARCHS[5], median=9.0)])


def _uploaders(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    page = client.get(URL, params={"limit": 100}, headers=headers or {}).json()
    return {r["arch"]: r["uploaded_by"] for r in page["data"]}


@pytest.mark.usefixtures("seeded")
def test_uploads_record_the_key_and_only_keyed_readers_see_it(
    client: TestClient, auth: dict[str, str]
) -> None:
    assert _uploaders(client, auth) == {
        **dict.fromkeys(ARCHS[:3], "tests"), **dict.fromkeys(ARCHS[3:5], "other-team"),
        ARCHS[5]: None,
    }  # fmt: skip
    assert set(_uploaders(client).values()) == {None}  # anonymous reader


@pytest.mark.usefixtures("seeded")
def test_a_key_deletes_only_its_own_uploads(
    client: TestClient, db: HardwareDB, auth: dict[str, str], other: dict[str, str]
) -> None:
    dry = client.delete(URL, params={"dry_run": True}, headers=auth)
    assert dry.status_code == 200
    assert dry.json() == {"device": DEVICE, "deleted": 3, "dry_run": True}
    assert db.count_measurements(device=DEVICE) == 6
    gone = client.delete(URL, headers=auth).json()
    assert gone == {"device": DEVICE, "deleted": 3, "dry_run": False}
    assert set(_uploaders(client, other)) == set(ARCHS[3:])
    assert client.delete(URL, headers=auth).json()["deleted"] == 0  # repeating is harmless


@pytest.mark.usefixtures("seeded")
def test_filters(client: TestClient, auth: dict[str, str]) -> None:
    one = client.delete(URL, params={"space": SPACE, "arch": [ARCHS[0]]}, headers=auth)
    assert one.json()["deleted"] == 1
    assert client.delete(URL, params={"protocol": "nope"}, headers=auth).json()["deleted"] == 0
    assert client.delete(URL, params={"metric": "e2e_ms"}, headers=auth).json()["deleted"] == 0
    assert client.delete(URL, params={"space": SPACE}, headers=auth).json()["deleted"] == 2


@pytest.mark.usefixtures("seeded")
def test_bad_requests(client: TestClient, db: HardwareDB, auth: dict[str, str]) -> None:
    assert client.delete(URL).status_code == 401
    missing = client.delete("/v1/devices/nope/measurements", headers=auth)
    assert missing.status_code == 404
    no_space = client.delete(URL, params={"arch": [ARCHS[0]]}, headers=auth)
    assert no_space.status_code == 422
    assert no_space.json()["detail"][0]["loc"] == ["query", "space"]
    bad = client.delete(URL, params={"space": SPACE, "arch": ["bogus"]}, headers=auth)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "arch", 0]
    assert db.count_measurements(device=DEVICE) == 6


@pytest.mark.usefixtures("seeded")
def test_delete_drops_the_cached_model(client: TestClient, app: Any, auth: dict[str, str]) -> None:
    calls: list[str] = []
    cache = app.state.services.cache
    original = cache.invalidate
    cache.invalidate = lambda url, name: calls.append(name) or original(url, name)
    client.delete(URL, params={"dry_run": True}, headers=auth)
    assert calls == []
    client.delete(URL, headers=auth)
    assert calls == [DEVICE]


@pytest.mark.usefixtures("seeded")
def test_filtering_by_uploader_needs_a_key(client: TestClient, auth: dict[str, str]) -> None:
    page = client.get(URL, params={"uploaded_by": "other-team"}, headers=auth).json()
    assert page["count"] == 2 and {r["arch"] for r in page["data"]} == set(ARCHS[3:5])
    anonymous = client.get(URL, params={"uploaded_by": "other-team"})
    assert anonymous.status_code == 401
    assert anonymous.json()["detail"][0]["loc"] == ["query", "uploaded_by"]


@pytest.mark.usefixtures("seeded")
def test_a_batch_sent_again_after_a_delete_is_stored_again(
    client: TestClient, db: HardwareDB, auth: dict[str, str]
) -> None:
    """The idempotency record replays the first answer; the rows it describes must exist."""
    body = {**_body(ARCHS[:3]), "client_key": "batch-1"}
    first = client.post(URL, json=body, headers=auth)  # the seeded rows: nothing new
    assert client.delete(URL, headers=auth).json()["deleted"] == 3
    again = client.post(URL, json=body, headers=auth)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert db.count_measurements(device=DEVICE, uploaded_by="tests") == 3


@pytest.mark.usefixtures("seeded")
def test_replace_does_not_take_over_another_keys_rows(
    client: TestClient, db: HardwareDB, auth: dict[str, str], other: dict[str, str]
) -> None:
    for body in (_body(ARCHS[:1]), _body(ARCHS[5:], protocol="")):  # tests' row, a local row
        result = client.post(URL, json={**body, "replace": True}, headers=other).json()
        assert (result["inserted"], result["existing"]) == (0, 1)
    assert client.delete(URL, headers=other).json()["deleted"] == 2  # its own two only
    assert _uploaders(client, auth) == {**dict.fromkeys(ARCHS[:3], "tests"), ARCHS[5]: None}
    mine = client.post(URL, json={**_body(ARCHS[:1]), "replace": True}, headers=auth).json()
    assert mine["inserted"] == 1  # a key replaces its own rows


def test_empty_protocol_and_unknown_space(
    client: TestClient, auth: dict[str, str], seeded: None
) -> None:
    untagged = client.post(URL, json=_body(ARCHS[:1], protocol=""), headers=auth).json()
    assert untagged["inserted"] == 1
    dry = client.delete(URL, params={"protocol": "", "dry_run": True}, headers=auth).json()
    assert dry["deleted"] == 1
    bad = client.delete(URL, params={"space": "nosuchspace"}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "space"]
    assert bad.json()["detail"][0]["type"] == "unknown_space"


def test_the_served_model_follows_rows_deleted_outside_the_server(
    db: HardwareDB, auth: dict[str, str]
) -> None:
    """A delete on the database itself (``nas hwdb delete``) that leaves every arch measured
    (newer rows shadowing older ones) still re-adapts the served model."""
    settings = dataclasses.replace(Settings(), predictor_revalidate_s=0.0)
    measured = list(db.latency_table(SPACE, devices=[TARGET])[TARGET].dropna().index[:12])
    with TestClient(make_app(db, settings)) as c:

        def predict() -> float:
            body = {"space": SPACE, "device": TARGET, "archs": distinct_archs(1, start=99)}
            return float(c.post("/v1/predict", json=body).json()["data"][0]["latency_ms"])

        before = predict()
        db.add_measurements([MeasurementIn(device=TARGET, space=SPACE, arch=a, median=500.0,
                                           protocol="slow") for a in measured])  # fmt: skip
        slow = predict()
        assert slow > before * 1.2
        assert db.delete_measurements(device=TARGET, protocol="slow") == len(measured)
        assert predict() == pytest.approx(before, rel=1e-6)

"""Only the API key that registered a device may change it through the service (QA: any key
could patch any device, imported ones included, and so change how it is predicted)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hwdb import DeviceSpec, HardwareDB


def _key(db: HardwareDB, name: str) -> dict[str, str]:
    return {"X-API-Key": db.create_api_key(name)[1]}


def test_a_device_is_changed_only_by_the_key_that_registered_it(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    other = _key(db, "bob")
    board = {"name": "alice-board", "hardware": "Jetson Orin", "runtime": "unknown"}
    assert client.post("/v1/devices", json=board, headers=auth).status_code == 201
    assert db.get_device("alice-board").registered_by == "tests"
    # another key: no change of a stated field, by PATCH or by POST of the same name
    for response in (
        client.patch("/v1/devices/alice-board", json={"hardware": "mine"}, headers=other),
        client.post("/v1/devices", json={**board, "batch_size": 8}, headers=other),
    ):
        assert response.status_code == 403, response.text
        (err,) = response.json()["detail"]
        assert err["type"] == "not_owner" and err["loc"][0] == "body"
        assert err["loc"][1] in ("hardware", "batch_size") and "another API key" in err["msg"]
    assert db.get_device("alice-board").hardware == "Jetson Orin"
    # ... but it may send what is stored, and fill in a setting the device leaves open
    assert client.post("/v1/devices", json=board, headers=other).status_code == 200
    filled = client.patch(
        "/v1/devices/alice-board", json={"runtime": "tensorrt", "threads": 6}, headers=other
    )
    assert filled.status_code == 200, filled.text
    assert (db.get_device("alice-board").runtime, db.get_device("alice-board").threads) == (
        "tensorrt", 6,
    )  # fmt: skip
    # the registering key changes anything
    mine = client.patch("/v1/devices/alice-board", json={"hardware": "Orin NX"}, headers=auth)
    assert mine.status_code == 200 and mine.json()["registered_by"] == "tests"


def test_a_device_registered_on_the_database_is_not_changed_through_the_service(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    db.upsert_device(DeviceSpec(name="lab-pi", hardware="Raspberry Pi 4", runtime="unknown"))
    response = client.patch("/v1/devices/lab-pi", json={"hardware": "x"}, headers=auth)
    assert response.status_code == 403 and "database's owner" in response.text
    assert client.patch("/v1/devices/lab-pi", json={"runtime": "tflite"}, headers=auth).is_success
    assert db.get_device("lab-pi").registered_by is None  # filling it in does not take it over


def test_who_registered_a_device_is_shown_to_readers_with_a_key(
    client: TestClient, auth: dict[str, str]
) -> None:
    assert client.post("/v1/devices", json={"name": "k-board"}, headers=auth).status_code == 201
    assert client.get("/v1/devices/k-board", headers=auth).json()["registered_by"] == "tests"
    assert client.get("/v1/devices/k-board").json()["registered_by"] is None
    listed = {d["name"]: d for d in client.get("/v1/devices").json()["data"]}
    assert listed["k-board"]["registered_by"] is None


def test_a_create_racing_another_keys_create_does_not_take_its_device(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    """Review: two creates of one new name both found none, and the second one's insert
    became an update of the first key's device."""
    import pytest

    from hwdb import NotFoundError

    first = {"name": "raced", "hardware": "alice's board"}
    assert client.post("/v1/devices", json=first, headers=auth).status_code == 201
    real = HardwareDB.get_device
    calls: list[str] = []

    def not_yet(self: HardwareDB, name: str) -> object:
        calls.append(name)
        if len(calls) == 1:  # bob's request looked before alice's insert landed
            raise NotFoundError(f"device {name!r} not found")
        return real(self, name)

    mp = pytest.MonkeyPatch()
    mp.setattr(HardwareDB, "get_device", not_yet)
    try:
        bob = {"X-API-Key": db.create_api_key("bob")[1]}
        response = client.post("/v1/devices", json={**first, "hardware": "bob's"}, headers=bob)
    finally:
        mp.undo()
    assert response.status_code == 403 and response.json()["detail"][0]["type"] == "not_owner"
    assert db.get_device("raced").hardware == "alice's board"
    # the same body as stored is no change: a second board registering the same device
    mp.setattr(HardwareDB, "get_device", not_yet)
    calls.clear()
    try:
        same = client.post("/v1/devices", json=first, headers=bob)
    finally:
        mp.undo()
    assert same.status_code == 200 and same.json()["registered_by"] == "tests"  # not bob's

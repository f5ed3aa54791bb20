"""``/v1/devices``: API keys on writes, upsert, filters, 404/422 naming the field."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hwdb import HardwareDB
from tests.api._helpers import SOURCES, SPACE, TARGET
from tests.api.conftest import make_app


def test_write_without_key_is_401(client: TestClient, db: HardwareDB) -> None:
    response = client.post("/v1/devices", json={"name": "dev-a"})
    assert response.status_code == 401
    assert response.json()["detail"][0]["loc"] == ["header", "X-API-Key"]
    bad = client.post("/v1/devices", json={"name": "dev-a"}, headers={"X-API-Key": "nas_wrong"})
    assert bad.status_code == 401 and bad.json()["detail"][0]["type"] == "invalid_api_key"
    assert [d.name for d in db.list_devices()] == sorted([*SOURCES, TARGET])


def test_create_then_update_device(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    spec = {"name": "jetson-x", "family": "jetson", "hardware": "Orin", "threads": 4}
    created = client.post("/v1/devices", json=spec, headers=auth)
    assert created.status_code == 201 and created.json()["family"] == "jetson"
    updated = client.post("/v1/devices", json={**spec, "hardware": "Orin NX"}, headers=auth)
    assert updated.status_code == 200 and updated.json()["id"] == created.json()["id"]
    assert db.get_device("jetson-x").hardware == "Orin NX"
    assert client.get("/v1/devices/jetson-x").json()["hardware"] == "Orin NX"


def test_update_keeps_the_fields_left_out(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    spec = {"name": "jetson-y", "family": "jetson", "runtime": "tensorrt", "threads": 4,
            "attributes": {"board": "devkit"}}  # fmt: skip
    assert client.post("/v1/devices", json=spec, headers=auth).status_code == 201
    again = client.post("/v1/devices", json={"name": "jetson-y", "hardware": "Orin"}, headers=auth)
    assert again.status_code == 200
    stored = db.get_device("jetson-y")
    got = (stored.family, stored.runtime, stored.threads, stored.hardware)
    assert got == ("jetson", "tensorrt", 4, "Orin")
    assert stored.attributes == {"board": "devkit"}


def test_patch_changes_only_the_fields_sent(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    spec = {"name": "pi-5", "family": "cpu", "hardware": "Pi 5", "threads": 4}
    created = client.post("/v1/devices", json=spec, headers=auth).json()
    patched = client.patch("/v1/devices/pi-5", json={"threads": None, "runtime": "tflite"},
                           headers=auth)  # fmt: skip
    assert patched.status_code == 200, patched.text
    body = patched.json()
    got = (body["id"], body["hardware"], body["threads"], body["runtime"])
    assert got == (created["id"], "Pi 5", None, "tflite")
    assert db.get_device("pi-5").runtime == "tflite"


@pytest.mark.parametrize(
    ("name", "body", "code", "loc"),
    [
        ("nope", {"threads": 2}, 404, ["path", "name"]),
        ("pi-6", {"name": "other"}, 422, ["body", "name"]),
        ("pi-6", {"batch_size": 0}, 422, ["body", "batch_size"]),
        ("pi-6", {"family": None}, 422, ["body", "family"]),
    ],
)
def test_bad_patch_names_the_field_and_changes_nothing(
    client: TestClient, auth: dict[str, str], db: HardwareDB,
    name: str, body: dict[str, object], code: int, loc: list[str],
) -> None:  # fmt: skip
    client.post("/v1/devices", json={"name": "pi-6", "threads": 4}, headers=auth)
    response = client.patch(f"/v1/devices/{name}", json=body, headers=auth)
    assert response.status_code == code
    assert response.json()["detail"][0]["loc"] == loc
    assert db.get_device("pi-6").threads == 4


def test_patch_needs_a_key(client: TestClient, auth: dict[str, str]) -> None:
    client.post("/v1/devices", json={"name": "pi-7"}, headers=auth)
    assert client.patch("/v1/devices/pi-7", json={"threads": 2}).status_code == 401


def test_bearer_token_and_revocation(client: TestClient, db: HardwareDB, api_key: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    assert client.post("/v1/devices", json={"name": "b1"}, headers=headers).status_code == 201
    db.revoke_api_key("tests")
    assert client.post("/v1/devices", json={"name": "b2"}, headers=headers).status_code == 401


def test_list_filters(client: TestClient, auth: dict[str, str]) -> None:
    client.post("/v1/devices", json={"name": "phone-z", "family": "phone"}, headers=auth)
    everything = client.get("/v1/devices").json()
    assert everything["count"] == 6
    measured = client.get("/v1/devices", params={"space": SPACE}).json()
    assert {d["name"] for d in measured["data"]} == {*SOURCES, TARGET}
    phones = client.get("/v1/devices", params={"family": "phone"}).json()
    assert {d["name"] for d in phones["data"]} == {"phone-z", "pixel3"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "family": "toaster"}, "family"),
        ({"name": "x", "batch_size": 0}, "batch_size"),
        ({"name": "x", "batch_size": "many"}, "batch_size"),
        # a batch no workload takes: the device could never be predicted (QA, session 31)
        ({"name": "x", "batch_size": 70_000}, "batch_size"),
        ({"name": ""}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "x", "threads": 2**40}, "threads"),
        ({"name": "x", "unknown_field": 1}, "unknown_field"),
        ({"name": "x", "runtime": "tf\tlite"}, "runtime"),  # hwdb refuses control characters
        ({"name": "x", "precision": "fp\x0132"}, "precision"),
    ],
)
def test_bad_device_is_422_naming_the_field(
    client: TestClient, auth: dict[str, str], db: HardwareDB, body: dict[str, object], field: str
) -> None:
    response = client.post("/v1/devices", json=body, headers=auth)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field
    assert len(db.list_devices()) == 5


def test_unknown_device_is_404(client: TestClient) -> None:
    response = client.get("/v1/devices/nope")
    assert response.status_code == 404 and response.json()["detail"][0]["loc"] == ["path", "name"]


def test_reads_can_require_a_key(db: HardwareDB, api_key: str) -> None:
    from api.config import Settings

    app = make_app(db, dataclasses.replace(Settings(), require_key_for_reads=True))
    with TestClient(app) as c:
        assert c.get("/v1/devices").status_code == 401
        assert c.get("/v1/devices", headers={"X-API-Key": api_key}).status_code == 200
        assert c.get("/healthz").status_code == 200


def _post_raw(client: TestClient, auth: dict[str, str], body: dict[str, Any] | str) -> Any:
    """POST a device with the JSON text as given (json.dumps escapes lone surrogates)."""
    raw = body if isinstance(body, str) else json.dumps(body)
    headers = {**auth, "Content-Type": "application/json"}
    return client.post("/v1/devices", content=raw.encode(), headers=headers)


@pytest.mark.parametrize(
    "attributes",
    [
        {"k": "\ud800x"},
        {"\udfff": 1},
        {"a": [{"b": ["ok", "\udc00"]}]},
        {"nested": {"\ud83d": "lone high surrogate as a key"}},
    ],
)
def test_lone_surrogate_in_attributes_is_422_and_not_stored(
    client: TestClient, auth: dict[str, str], db: HardwareDB, attributes: dict[str, Any]
) -> None:
    response = _post_raw(client, auth, {"name": "qa-sur", "attributes": attributes})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "attributes"]
    assert "qa-sur" not in {d.name for d in db.list_devices()}
    assert client.get("/v1/devices").status_code == 200


def test_valid_non_ascii_attributes_round_trip(client: TestClient, auth: dict[str, str]) -> None:
    attributes = {"emoji": "\U0001f680", "clé": ["naïve", {"深": 1}]}
    assert _post_raw(client, auth, {"name": "qa-utf8", "attributes": attributes}).status_code == 201
    assert client.get("/v1/devices/qa-utf8").json()["attributes"] == attributes


def test_deeply_nested_attributes_are_422_not_500(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    from api.schemas import MAX_JSON_DEPTH

    deep = '{"name": "qa-deep", "attributes": {"k": ' + "[" * 500 + "]" * 500 + "}}"
    response = _post_raw(client, auth, deep)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "attributes"]
    assert "qa-deep" not in {d.name for d in db.list_devices()}
    # the object itself is level 1: MAX_JSON_DEPTH - 1 nested lists are still accepted
    n = MAX_JSON_DEPTH - 1
    at_limit = '{"name": "qa-deep", "attributes": {"k": ' + "[" * n + "]" * n + "}}"
    assert _post_raw(client, auth, at_limit).status_code == 201
    over = '{"name": "qa-deep2", "attributes": {"k": ' + "[" * (n + 1) + "]" * (n + 1) + "}}"
    assert _post_raw(client, auth, over).status_code == 422


def test_catalog_attribute_is_checked_on_writes_only(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    """A request naming an unknown catalog entry is a 422 (POST and PATCH); a device stored
    with one (an import, or an entry since renamed) still reads back."""
    from hwdb import DeviceSpec

    db.upsert_device(
        DeviceSpec(name="old-board", attributes={"catalog": "retired-chip"}), registered_by="tests"
    )  # registered through the service by the tests' key, which may then change it
    got = client.get("/v1/devices/old-board")
    assert got.status_code == 200 and got.json()["attributes"]["catalog"] == "retired-chip"
    assert client.get("/v1/devices").status_code == 200
    patch = client.patch(
        "/v1/devices/old-board", json={"attributes": {"catalog": "nope"}}, headers=auth
    )
    assert patch.status_code == 422 and patch.json()["detail"][0]["loc"] == ["body", "attributes"]
    fixed = client.patch(
        "/v1/devices/old-board", json={"attributes": {"catalog": "jetson nano"}}, headers=auth
    )
    assert fixed.status_code == 200 and fixed.json()["attributes"]["catalog"] == "jetson-nano"


def test_catalog_device_precision_must_be_priced_by_its_entry(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    """A catalog device is priced at its precision: one the datasheet does not list is a 422
    at ``precision`` when written (POST or PATCH, either field), not a failure later."""
    bad = {"name": "nano-x", "precision": "weird", "attributes": {"catalog": "jetson-nano"}}
    response = client.post("/v1/devices", json=bad, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "precision"]
    assert "nano-x" not in {d.name for d in db.list_devices()}
    good = {**bad, "precision": "fp16"}
    assert client.post("/v1/devices", json=good, headers=auth).status_code == 201
    patch = client.patch("/v1/devices/nano-x", json={"precision": "fp4"}, headers=auth)
    assert patch.status_code == 422 and patch.json()["detail"][0]["loc"] == ["body", "precision"]
    assert db.get_device("nano-x").precision == "fp16"
    plain = {"name": "plain-x", "precision": "fp64"}  # no datasheet: any label is stored
    assert client.post("/v1/devices", json=plain, headers=auth).status_code == 201
    adding = client.patch(
        "/v1/devices/plain-x", json={"attributes": {"catalog": "jetson-nano"}}, headers=auth
    )
    assert adding.status_code == 422 and adding.json()["detail"][0]["loc"] == ["body", "precision"]


def test_a_create_racing_another_keeps_the_fields_it_left_out(
    client: TestClient, auth: dict[str, str], db: HardwareDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two creates of one new name both read "not found"; the second one used to write its
    defaults over every field the first had set (the review saw 201 six times on
    PostgreSQL)."""
    from hwdb import DeviceSpec, NotFoundError

    spec = DeviceSpec(name="race", family="gpu", hardware="RTX 4090", threads=8)
    db.upsert_device(spec, registered_by="tests")  # the other request: the same key's
    real = db.get_device

    def not_yet(name: str) -> Any:  # the read happened before the other request's insert
        monkeypatch.setattr(db, "get_device", real)
        raise NotFoundError(f"device {name!r} not found")

    monkeypatch.setattr(db, "get_device", not_yet)
    body = {"name": "race", "runtime": "onnxruntime"}
    response = client.post("/v1/devices", json=body, headers=auth)
    assert response.status_code == 200, response.text  # the other request created it
    stored = db.get_device("race")
    assert stored.runtime == "onnxruntime"  # the field this request sent
    assert (stored.family, stored.hardware, stored.threads) == ("gpu", "RTX 4090", 8)


def test_a_stored_device_past_todays_limits_still_lists(client: TestClient, db: HardwareDB) -> None:
    """A device an older release stored with a batch past today's limit (QA, session 31: one
    made every `GET /v1/devices` a 500) is read back as stored."""
    from sqlalchemy import text

    with db._engine.begin() as conn:  # as an older release could have written it
        conn.execute(text("UPDATE device SET batch_size = :b WHERE name = :n"),
                     {"b": 2**31 - 1, "n": TARGET})  # fmt: skip
    response = client.get("/v1/devices")
    assert response.status_code == 200, response.text
    assert {d["name"]: d["batch_size"] for d in response.json()["data"]}[TARGET] == 2**31 - 1
    assert client.get(f"/v1/devices/{TARGET}").json()["batch_size"] == 2**31 - 1

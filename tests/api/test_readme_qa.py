"""Regression tests of the README walk-through QA (session 25) over ``/v1/devices``."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from hwdb import HardwareDB

NANO = {"catalog": "jetson-nano"}


def _loc(response: httpx.Response) -> Any:
    """Where an error response says the problem is."""
    return response.json()["detail"][0]["loc"]


def test_catalog_device_runtime_must_be_known(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    """M3: a typo in a catalog device's runtime used to be stored and priced as a fused
    graph; it is a 422 at ``runtime`` naming the known runtimes (POST and PATCH)."""
    bad = {"name": "nano-t", "runtime": "tensorrtt", "attributes": NANO}
    response = client.post("/v1/devices", json=bad, headers=auth)
    assert response.status_code == 422, response.text
    assert _loc(response) == ["body", "runtime"]
    detail = response.json()["detail"][0]
    assert detail["type"] == "unknown_runtime" and "tensorrt, " in detail["msg"]
    assert "nano-t" not in {d.name for d in db.list_devices()}
    good = {**bad, "runtime": "TensorRT"}  # priced as tensorrt: any case
    assert client.post("/v1/devices", json=good, headers=auth).status_code == 201
    patch = client.patch("/v1/devices/nano-t", json={"runtime": "torhc"}, headers=auth)
    assert patch.status_code == 422 and _loc(patch) == ["body", "runtime"]
    assert db.get_device("nano-t").runtime == "TensorRT"
    again = client.post("/v1/devices", json={"name": "nano-t", "runtime": "foo"}, headers=auth)
    assert again.status_code == 422 and _loc(again) == ["body", "runtime"]  # merged record


def test_measured_devices_keep_any_runtime_label(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    """Without a datasheet entry the runtime prices nothing: any label is stored; giving
    such a device an entry checks its runtime; a stored device is still editable."""
    from hwdb import DeviceSpec

    plain = {"name": "board-x", "runtime": "my-runtime-2"}
    assert client.post("/v1/devices", json=plain, headers=auth).status_code == 201
    adding = client.patch("/v1/devices/board-x", json={"attributes": NANO}, headers=auth)
    assert adding.status_code == 422 and _loc(adding) == ["body", "runtime"]
    both = {"attributes": NANO, "runtime": "tflite"}
    assert client.patch("/v1/devices/board-x", json=both, headers=auth).status_code == 200
    spec = DeviceSpec(name="legacy", runtime="foo", attributes=NANO)
    db.upsert_device(spec, registered_by="tests")  # the tests' key registered it
    other = client.patch("/v1/devices/legacy", json={"hardware": "Nano devkit"}, headers=auth)
    assert other.status_code == 200, other.text  # the request changes no priced field

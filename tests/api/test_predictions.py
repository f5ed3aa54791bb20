"""``POST /v1/predict`` and ``POST /v1/devices/{name}/adapt`` over the seeded HELP slice."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from hwdb import HardwareDB
from predictors import get_adapted_predictor
from search_spaces import get_space
from tests.api._helpers import SPACE, TARGET
from tests.api.conftest import make_app


def _random_archs(n: int) -> list[str]:
    space = get_space(SPACE)
    return [space.to_string(space.random(1000 + i)) for i in range(n)]


def test_predict_matches_the_library(client: TestClient, db: HardwareDB) -> None:
    archs = _random_archs(20)
    body = client.post("/v1/predict", json={"space": SPACE, "device": TARGET, "archs": archs})
    assert body.status_code == 200
    data = body.json()
    expected = get_adapted_predictor(db, space=SPACE, device=TARGET).predict(archs)
    assert [d["arch"] for d in data["data"]] == archs and data["count"] == 20
    got = np.array([d["latency_ms"] for d in data["data"]])
    np.testing.assert_allclose(got, expected.mean_ms, rtol=1e-6)
    assert all(d["std_ms"] >= 0 for d in data["data"])
    assert data["predictor"] == expected.predictor and data["version"] == expected.version
    assert data["n_measurements"] == db.count_measurements(device=TARGET, distinct_archs=True)
    assert data["workload"] == get_space(SPACE).workload_dict()  # imported: default
    assert set(data["workload"]) == {"batch_size", "resolution"}  # what a CNN reads


def test_single_arch_uses_the_warm_cache(client: TestClient) -> None:
    arch = _random_archs(1)
    first = client.post("/v1/predict", json={"space": SPACE, "device": TARGET, "archs": arch})
    second = client.post("/v1/predict", json={"space": SPACE, "device": TARGET, "archs": arch})
    assert first.json() == second.json()
    metrics = client.get("/metrics").text
    assert "nas_api_predictor_cache_entries 1" in metrics


def test_new_measurements_re_adapt_the_model(db: HardwareDB, auth: dict[str, str]) -> None:
    settings = dataclasses.replace(Settings(), predictor_revalidate_s=0.0)
    with TestClient(make_app(db, settings)) as c:
        arch = _random_archs(1)
        before = c.post("/v1/predict", json={"space": SPACE, "device": TARGET, "archs": arch})
        rows = [
            {"space": SPACE, "arch": a, "median": 3.0, "protocol": "new"} for a in _random_archs(5)
        ]
        up = c.post(f"/v1/devices/{TARGET}/measurements", json={"measurements": rows}, headers=auth)
        assert up.json()["inserted"] == 5
        after = c.post("/v1/predict", json={"space": SPACE, "device": TARGET, "archs": arch})
        assert after.json()["n_measurements"] == before.json()["n_measurements"] + 5


def test_canonicalizes_arch_strings(client: TestClient) -> None:
    arch = _random_archs(1)[0]
    body = client.post(
        "/v1/predict", json={"space": SPACE, "device": TARGET, "archs": [f"  {arch} "]}
    )
    assert body.status_code == 200 and body.json()["data"][0]["arch"] == arch


@pytest.mark.parametrize(
    ("patch", "loc", "status"),
    [
        ({"archs": ["ok", "|bad|"]}, ["body", "archs", 0], 422),
        ({"space": "nope"}, ["body", "space"], 422),
        ({"space": "Bad Space"}, ["body", "space"], 422),
        ({"device": "ghost"}, ["body", "device"], 422),
        ({"archs": []}, ["body", "archs"], 422),
        ({"archs": "not-a-list"}, ["body", "archs"], 422),
        ({"predictor": "magic"}, ["body", "predictor"], 422),
    ],
)
def test_bad_predict_request_names_the_field(
    client: TestClient, patch: dict[str, object], loc: list[object], status: int
) -> None:
    body = {"space": SPACE, "device": TARGET, "archs": _random_archs(2), **patch}
    response = client.post("/v1/predict", json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"][0]["loc"] == loc


def test_too_many_archs_is_413(db: HardwareDB) -> None:
    with TestClient(make_app(db, dataclasses.replace(Settings(), max_predict_archs=3))) as c:
        response = c.post(
            "/v1/predict", json={"space": SPACE, "device": TARGET, "archs": _random_archs(4)}
        )
        assert response.status_code == 413 and response.json()["detail"][0]["loc"] == [
            "body",
            "archs",
        ]


def test_ten_thousand_archs_in_one_request(client: TestClient) -> None:
    space = get_space(SPACE)
    archs = [space.to_string(space.random(i)) for i in range(10_000)]
    response = client.post("/v1/predict", json={"space": SPACE, "device": TARGET, "archs": archs})
    assert response.status_code == 200 and response.json()["count"] == 10_000


def test_device_without_measurements_is_409(client: TestClient, auth: dict[str, str]) -> None:
    client.post("/v1/devices", json={"name": "empty"}, headers=auth)
    response = client.post(
        "/v1/predict", json={"space": SPACE, "device": "empty", "archs": _random_archs(1)}
    )
    assert response.status_code == 409
    assert response.json()["detail"][0]["loc"] == ["body", "device"]
    assert "nas measure" in response.json()["detail"][0]["msg"]


def test_space_without_source_devices_is_409_at_space(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    """The only device measured in a space has nothing to meta-train on: the space's data is
    what is missing, so the error points at ``space``, not at the device."""
    from hwdb import DeviceSpec, MeasurementIn

    space = get_space("mnasnet")
    db.upsert_device(DeviceSpec(name="solo"))
    archs = [space.to_string(space.random(i)) for i in range(25)]
    db.add_measurements(
        [MeasurementIn(device="solo", space="mnasnet", arch=a, median=1.0 + i) for i, a in
         enumerate(archs)]
    )  # fmt: skip
    body = {"space": "mnasnet", "device": "solo", "archs": archs[:1]}
    for response in (
        client.post("/v1/predict", json=body),
        client.post("/v1/devices/solo/adapt", json={"space": "mnasnet"}, headers=auth),
    ):
        assert response.status_code == 409, response.text
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", "space"] and detail["type"] == "not_enough_data"
        assert "no source device" in detail["msg"]


def test_space_with_no_data_in_the_database_is_409_at_space(
    client: TestClient, auth: dict[str, str]
) -> None:
    fbnet = get_space("fbnet")
    body = {"space": "fbnet", "device": TARGET, "archs": [fbnet.to_string(fbnet.random(0))]}
    for response in (
        client.post("/v1/predict", json=body),
        client.post(f"/v1/devices/{TARGET}/adapt", json={"space": "fbnet"}, headers=auth),
    ):
        assert response.status_code == 409, response.text
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", "space"] and detail["type"] == "not_enough_data"
        assert "no architectures" in detail["msg"]


def test_adapt_endpoint(client: TestClient, auth: dict[str, str]) -> None:
    assert client.post(f"/v1/devices/{TARGET}/adapt", json={"space": SPACE}).status_code == 401
    body = client.post(f"/v1/devices/{TARGET}/adapt", json={"space": SPACE}, headers=auth).json()
    assert (
        body["device"] == TARGET and body["predictor"] == "help+" and body["n_measurements"] > 100
    )
    missing = client.post("/v1/devices/ghost/adapt", json={"space": SPACE}, headers=auth)
    assert missing.status_code == 404


def test_archs_limit_is_413_by_default_and_settable_above_ten_thousand(db: HardwareDB) -> None:
    body = {"space": SPACE, "device": TARGET, "archs": ["bad"] * 10_001}
    with TestClient(make_app(db, Settings())) as c:
        response = c.post("/v1/predict", json=body)
        assert response.status_code == 413, response.text[:300]
        assert response.json()["detail"][0]["type"] == "batch_too_large"
        assert response.json()["detail"][0]["loc"] == ["body", "archs"]
    with TestClient(make_app(db, dataclasses.replace(Settings(), max_predict_archs=10_001))) as c:
        response = c.post("/v1/predict", json=body)
        # past the size check: the (bad) archs themselves are validated
        assert response.status_code == 422 and response.json()["detail"][0]["type"] == (
            "invalid_arch"
        )


def test_catalog_device_is_predicted_zero_shot(client: TestClient, auth: dict[str, str]) -> None:
    """A device created with ``attributes.catalog`` and no measurements in the space gets its
    datasheet roofline (as ``nas search`` and ``nas predictor predict`` do); it cannot be
    adapted until it has measurements; an unknown catalog entry is a 422 at the field."""
    from predictors.zeroshot import ZERO_SHOT_SOURCE

    bad = {"name": "orin", "attributes": {"catalog": "no-such-chip"}}
    response = client.post("/v1/devices", json=bad, headers=auth)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "attributes"]
    assert "catalog" in response.json()["detail"][0]["msg"]
    good = {"name": "orin", "family": "jetson", "attributes": {"catalog": "Orin Nano"}}
    created = client.post("/v1/devices", json=good, headers=auth)
    assert created.status_code in (200, 201), created.text
    assert created.json()["attributes"]["catalog"] == "jetson-orin-nano"  # stored by its name
    archs = _random_archs(3)
    body = client.post("/v1/predict", json={"space": SPACE, "device": "orin", "archs": archs})
    assert body.status_code == 200, body.text
    data = body.json()
    assert data["source"] == ZERO_SHOT_SOURCE and data["n_measurements"] == 0
    assert data["predictor"] == "roofline" and all(d["latency_ms"] > 0 for d in data["data"])
    adapt = client.post("/v1/devices/orin/adapt", json={"space": SPACE}, headers=auth)
    assert adapt.status_code == 409
    assert adapt.json()["detail"][0]["loc"] == ["path", "name"]
    # one measurement (fewer than a predictor adapts to): still zero-shot, in the device's ms
    first = data["data"][0]["latency_ms"]
    row = {"space": SPACE, "arch": archs[0], "median": 3.0 * first, "protocol": "t", "n_runs": 5}
    upload = client.post(
        "/v1/devices/orin/measurements", json={"measurements": [row]}, headers=auth
    )
    assert upload.status_code == 200, upload.text
    body = client.post("/v1/predict", json={"space": SPACE, "device": "orin", "archs": archs})
    assert body.status_code == 200, body.text
    scaled = body.json()
    assert scaled["source"] == ZERO_SHOT_SOURCE and scaled["n_measurements"] == 1
    for old, new in zip(data["data"], scaled["data"], strict=True):
        assert new["latency_ms"] == pytest.approx(3.0 * old["latency_ms"], rel=1e-6)
    # QA: this said "no measurements" while `nas predictor adapt` counted them
    adapt = client.post("/v1/devices/orin/adapt", json={"space": SPACE}, headers=auth)
    assert adapt.status_code == 409
    assert "has 1 measured arch in" in adapt.json()["detail"][0]["msg"]
    assert "a predictor adapts to at least 3" in adapt.json()["detail"][0]["msg"]


def test_catalog_lists_the_datasheet_entries(client: TestClient) -> None:
    from hwdb.catalog import load_catalog

    body = client.get("/v1/catalog").json()
    names = [e["name"] for e in body["data"]]
    assert names == [e.name for e in load_catalog()] and body["count"] == len(names)
    nano = body["data"][names.index("jetson-nano")]
    assert nano["peak_tflops"]["fp32"] > 0 and nano["citations"][0]["url"].startswith("https://")


def test_catalog_device_needs_no_data_of_the_space(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    """Zero-shot prediction prices the datasheet only, so a space without a single row in the
    database (mnasnet here) is no reason to refuse it, as the CLI does not."""
    from predictors.zeroshot import ZERO_SHOT_SOURCE

    assert "mnasnet" not in db.list_spaces()
    device = {"name": "orin", "family": "jetson", "attributes": {"catalog": "jetson-orin-nano"}}
    assert client.post("/v1/devices", json=device, headers=auth).status_code in (200, 201)
    body = {"space": "mnasnet", "device": "orin", "archs": ["mnasnet-a1"]}
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["source"] == ZERO_SHOT_SOURCE
    assert response.json()["data"][0]["latency_ms"] > 0


def test_a_zero_shot_batch_stops_when_the_client_leaves(
    client: TestClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A roofline traces every arch (10,000 of them take many minutes): once the client has
    disconnected, the rest is not computed."""
    from starlette.requests import Request

    from predictors.zeroshot import RooflineLatencyModel

    device = {"name": "orin", "family": "jetson", "attributes": {"catalog": "jetson-orin-nano"}}
    assert client.post("/v1/devices", json=device, headers=auth).status_code in (200, 201)
    priced: list[int] = []
    original = RooflineLatencyModel.predict

    def counting(self: RooflineLatencyModel, archs: Any) -> Any:
        priced.append(len(archs))
        return original(self, archs)

    async def gone(self: Request) -> bool:
        return True

    monkeypatch.setattr(RooflineLatencyModel, "predict", counting)
    archs = _random_archs(200)
    body = {"space": SPACE, "device": "orin", "archs": archs}
    assert client.post("/v1/predict", json={**body, "archs": archs[:40]}).status_code == 200
    assert priced == [32, 8]  # chunks, while the client waits
    priced.clear()
    monkeypatch.setattr(Request, "is_disconnected", gone)
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 499
    assert sum(priced) < len(archs)


def test_a_mistyped_reference_name_is_a_422_with_the_librarys_hint(client: TestClient) -> None:
    """The API read a reference name its own way and lost `SearchSpace.resolve`'s hint: for
    ``mnasnet-a2`` the CLI says which reference model it may mean, the API said only that
    ``mnasnet`` is no block type. Both now resolve with the library, at the same place."""
    arch = get_space("mnasnet").to_string(get_space("mnasnet").random(0))
    body = {"space": "mnasnet", "device": TARGET, "archs": [arch, " MNASNET-A1 ", "mnasnet-a2"]}
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "archs", 2] and detail["type"] == "invalid_arch"
    assert detail["msg"].startswith("invalid architecture: 'mnasnet-a2' is neither")
    assert "did you mean 'mnasnet-a1'?" in detail["msg"]
    empty = client.post("/v1/predict", json={**body, "archs": [arch, "  "]})
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body", "archs", 1]
    assert "is empty" in empty.json()["detail"][0]["msg"]

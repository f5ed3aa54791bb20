"""``/v1/devices/{name}/measurements``: idempotent batch upload, validation, paging."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.errors import ApiError
from hwdb import HardwareDB
from search_spaces import get_space
from tests.api._helpers import SPACE, distinct_archs
from tests.api.conftest import make_app

DEVICE = "upload-dev"
_ROW2 = ["body", "measurements", 2]


def _body(n: int = 5, **extra: Any) -> dict[str, Any]:
    rows = [
        {"space": SPACE, "arch": a, "median": 1.0 + i, "protocol": "t", "n_runs": 10}
        for i, a in enumerate(distinct_archs(n))
    ]
    return {"measurements": rows, **extra}


@pytest.fixture
def device(client: TestClient, auth: dict[str, str]) -> str:
    assert client.post("/v1/devices", json={"name": DEVICE}, headers=auth).status_code == 201
    return DEVICE


def _count(db: HardwareDB) -> int:
    return db.count_measurements(device=DEVICE)


def test_upload_then_read_back(client: TestClient, auth: dict[str, str], device: str) -> None:
    body = _body(5)
    response = client.post(f"/v1/devices/{device}/measurements", json=body, headers=auth)
    assert response.status_code == 200
    assert response.json() == {
        "device": device, "received": 5, "inserted": 5, "existing": 0, "client_key": None,
    }  # fmt: skip
    page = client.get(f"/v1/devices/{device}/measurements", params={"limit": 2}).json()
    assert page["count"] == 5 and len(page["data"]) == 2
    rest = client.get(f"/v1/devices/{device}/measurements", params={"offset": 2}).json()
    medians = {r["median"] for r in page["data"] + rest["data"]}
    assert medians == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert (
        client.get(f"/v1/devices/{device}/measurements", params={"metric": "e2e_ms"}).json()[
            "count"
        ]
        == 0
    )


def test_same_key_same_body_replays(
    client: TestClient, auth: dict[str, str], device: str, db: HardwareDB
) -> None:
    url = f"/v1/devices/{device}/measurements"
    headers = {**auth, "Idempotency-Key": "batch-1"}
    first = client.post(url, json=_body(4), headers=headers)
    second = client.post(url, json=_body(4), headers=headers)
    assert first.json() == second.json() and first.json()["inserted"] == 4
    assert first.headers["Idempotent-Replayed"] == "false"
    assert second.headers["Idempotent-Replayed"] == "true"
    via_field = client.post(url, json=_body(4, client_key="batch-1"), headers=auth)
    assert via_field.json() == first.json()
    assert _count(db) == 4


def test_without_key_a_retry_stores_nothing_twice(
    client: TestClient, auth: dict[str, str], device: str, db: HardwareDB
) -> None:
    url = f"/v1/devices/{device}/measurements"
    client.post(url, json=_body(3), headers=auth)
    again = client.post(url, json=_body(3), headers=auth).json()
    assert again["inserted"] == 0 and again["existing"] == 3 and _count(db) == 3


def test_same_key_other_body_is_422(client: TestClient, auth: dict[str, str], device: str) -> None:
    url = f"/v1/devices/{device}/measurements"
    headers = {**auth, "Idempotency-Key": "k"}
    client.post(url, json=_body(2), headers=headers)
    response = client.post(url, json=_body(3), headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_keys_of_two_devices_never_collide(client: TestClient, auth: dict[str, str]) -> None:
    """Device names may hold ':', so ``x:y`` + key ``k`` and ``x`` + key ``y:k`` were one
    record (the second upload got a 422 for a body it never sent)."""
    for name in ("x:y", "x"):
        assert client.post("/v1/devices", json={"name": name}, headers=auth).status_code == 201
    first = client.post(
        "/v1/devices/x:y/measurements", json=_body(2), headers={**auth, "Idempotency-Key": "k"}
    )
    second = client.post(
        "/v1/devices/x/measurements", json=_body(3), headers={**auth, "Idempotency-Key": "y:k"}
    )
    assert first.status_code == 200 and second.status_code == 200, second.text
    assert second.json()["inserted"] == 3


@pytest.mark.parametrize(
    ("row", "loc"),
    [
        ({"arch": "|bogus~0|+|x|"}, ["body", "measurements", 2, "arch"]),
        ({"space": "no_such_space"}, ["body", "measurements", 2, "space"]),
        ({"median": -1.0}, ["body", "measurements", 2, "median"]),
        ({"median": 0}, ["body", "measurements", 2, "median"]),
        ({"median": "fast"}, ["body", "measurements", 2, "median"]),
        ({"std": -0.5}, ["body", "measurements", 2, "std"]),
        ({"n_runs": 0}, ["body", "measurements", 2, "n_runs"]),
        ({"benchmark_index": 2**40}, ["body", "measurements", 2, "benchmark_index"]),
        ({"protocol": "p" * 201}, ["body", "measurements", 2, "protocol"]),
        ({"workload": {"resolution": "abc"}}, ["body", "measurements", 2, "workload"]),
        ({"workload": {"foo": 1}}, ["body", "measurements", 2, "workload"]),
        ({"workload": {"resolution": -5}}, ["body", "measurements", 2, "workload"]),
        ({"workload": {"batch_size": 2.5}}, ["body", "measurements", 2, "workload"]),
        # beyond any real input: the cost models would overflow on it at prediction time
        ({"workload": {"resolution": 10**30}}, ["body", "measurements", 2, "workload"]),
        ({"environment": {"k": json.loads("[" * 40 + "]" * 40)}}, [*_ROW2, "environment"]),
        # statistics of one set of runs that contradict each other
        ({"median": 2.0, "min": 3.0}, [*_ROW2, "min"]),
        ({"median": 2.0, "p90": 1.5}, [*_ROW2, "p90"]),
        ({"median": 2.0, "min": 1.5, "mean": 1.0}, [*_ROW2, "mean"]),
        ({"n_runs": True}, [*_ROW2, "n_runs"]),  # strict bodies: no bool, str or 2.0 for an int
        ({"n_runs": "5"}, [*_ROW2, "n_runs"]),
        # a metric the space is not measured in: stored, it was read by nothing (QA, s31)
        ({"metric": "bogus"}, [*_ROW2, "metric"]),
        ({"metric": "e2e_ms"}, [*_ROW2, "metric"]),
    ],
)
def test_bad_row_is_422_and_nothing_is_written(
    client: TestClient,
    auth: dict[str, str],
    device: str,
    db: HardwareDB,
    row: dict[str, Any],
    loc: list[Any],
) -> None:
    body = _body(4)
    body["measurements"][2].update(row)
    response = client.post(f"/v1/devices/{device}/measurements", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc
    assert _count(db) == 0


def test_nan_latency_is_422(client: TestClient, auth: dict[str, str], device: str) -> None:
    raw = json.dumps(_body(2)).replace('"median": 2.0', '"median": NaN')
    response = client.post(
        f"/v1/devices/{device}/measurements",
        content=raw,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "measurements", 1, "median"]


def test_duplicate_rows_in_one_batch_are_422(
    client: TestClient, auth: dict[str, str], device: str, db: HardwareDB
) -> None:
    body = _body(3)
    body["measurements"].append(dict(body["measurements"][0]))
    response = client.post(f"/v1/devices/{device}/measurements", json=body, headers=auth)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == 3
    assert _count(db) == 0


def test_unknown_device_is_404(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/v1/devices/ghost/measurements", json=_body(1), headers=auth)
    assert response.status_code == 404 and response.json()["detail"][0]["loc"] == ["path", "name"]


def test_upload_needs_a_key(client: TestClient, device: str) -> None:
    assert client.post(f"/v1/devices/{device}/measurements", json=_body(1)).status_code == 401


def test_batch_and_body_limits(db: HardwareDB, auth: dict[str, str]) -> None:
    settings = dataclasses.replace(Settings(), max_batch=3, max_body_bytes=4096)
    with TestClient(make_app(db, settings)) as c:
        c.post("/v1/devices", json={"name": DEVICE}, headers=auth)
        url = f"/v1/devices/{DEVICE}/measurements"
        big = c.post(url, json=_body(4), headers=auth)
        assert big.status_code == 413 and big.json()["detail"][0]["loc"] == ["body", "measurements"]
        huge = _body(2)
        huge["measurements"][0]["source"] = "s" * 1900
        huge["measurements"][1]["source"] = "s" * 1900
        huge["measurements"][1]["environment"] = {"blob": "x" * 2000}
        too_large = c.post(url, json=huge, headers=auth)
        assert too_large.status_code == 413 and too_large.json()["detail"][0]["loc"] == ["body"]
    assert _count(db) == 0


def test_valid_workload_is_stored_and_predictable(
    client: TestClient, auth: dict[str, str], device: str
) -> None:
    body = _body(3)
    for row in body["measurements"]:
        row["workload"] = {"batch_size": 2}
    response = client.post(f"/v1/devices/{device}/measurements", json=body, headers=auth)
    assert response.status_code == 200 and response.json()["inserted"] == 3, response.text
    predicted = client.post(
        "/v1/predict", json={"space": SPACE, "device": device, "archs": distinct_archs(1, start=50)}
    )
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["workload"]["batch_size"] == 2


@pytest.mark.parametrize("field", ["environment", "workload"])
def test_lone_surrogate_in_a_row_is_422_and_listing_still_works(
    client: TestClient, auth: dict[str, str], device: str, db: HardwareDB, field: str
) -> None:
    body = _body(3)
    body["measurements"][1][field] = {"os": "linux\ud800"}
    raw = json.dumps(body).encode()  # ASCII escapes: the server sees a lone surrogate
    headers = {**auth, "Content-Type": "application/json"}
    response = client.post(f"/v1/devices/{device}/measurements", content=raw, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "measurements", 1, field]
    assert _count(db) == 0
    assert client.get(f"/v1/devices/{device}/measurements").status_code == 200


def test_a_failed_upload_does_not_lock_its_idempotency_key(
    client: TestClient, auth: dict[str, str], device: str, db: HardwareDB
) -> None:
    url = f"/v1/devices/{device}/measurements"
    headers = {**auth, "Idempotency-Key": "k2"}
    bad = _body(2)
    bad["measurements"][1]["arch"] = "bad"
    failed = client.post(url, json=bad, headers=headers)
    assert failed.status_code == 422 and failed.json()["detail"][0]["type"] == "invalid_arch"
    again = client.post(url, json=bad, headers=headers)  # the same failing body: same 422
    assert again.status_code == 422 and again.json()["detail"][0]["type"] == "invalid_arch"
    fixed = client.post(url, json=_body(2), headers=headers)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["inserted"] == 2 and fixed.headers["Idempotent-Replayed"] == "false"
    replay = client.post(url, json=_body(2), headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == fixed.json()
    assert client.post(url, json=bad, headers=headers).json()["detail"][0]["type"] == (
        "idempotency_key_reused"
    )
    assert _count(db) == 2


def test_idempotency_store_releases_a_failed_claim() -> None:
    from api._idempotency import IdempotencyStore

    store = IdempotencyStore(capacity=4)

    def boom() -> dict[str, Any]:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        store.run("k", "fp-1", boom, loc=["body"])
    assert len(store) == 0
    assert store.run("k", "fp-2", lambda: {"ok": 1}, loc=["body"]) == ({"ok": 1}, False)
    assert store.run("k", "fp-2", lambda: {"ok": 2}, loc=["body"]) == ({"ok": 1}, True)


def test_one_keys_uploads_do_not_evict_another_keys_records() -> None:
    """All keys shared one bounded store: a second key's uploads pushed the first key's
    records out, and the first key's retry with another body was then accepted."""
    from api._idempotency import IdempotencyStore

    store = IdempotencyStore(capacity=2)
    store.run("k", "fp-a", lambda: {"alice": 1}, loc=["body"], scope="alice")
    for i in range(5):
        store.run(f"b{i}", "fp", lambda: {"bob": 1}, loc=["body"], scope="bob")
    with pytest.raises(ApiError, match="already used with a different request body"):
        store.run("k", "fp-other", lambda: {"alice": 2}, loc=["body"], scope="alice")
    assert len(store) == 3  # alice's one, bob's last two


def test_batch_limit_is_a_413_above_the_default_and_settable_beyond_it(
    client: TestClient, db: HardwareDB, auth: dict[str, str], device: str
) -> None:
    url = f"/v1/devices/{device}/measurements"
    row = {"space": SPACE, "arch": "bad", "median": 1.0}
    over = client.post(url, json={"measurements": [row] * 10_001}, headers=auth)
    assert over.status_code == 413, over.text[:300]
    assert over.json()["detail"][0] == {
        "loc": ["body", "measurements"],
        "msg": "at most 10000 measurements per request, got 10001",
        "type": "batch_too_large",
    }
    with TestClient(make_app(db, dataclasses.replace(Settings(), max_batch=10_001))) as c:
        allowed = c.post(url, json={"measurements": [row] * 10_001}, headers=auth)
        # past the size check: the (bad) archs are validated
        assert allowed.status_code == 422 and allowed.json()["detail"][0]["type"] == "invalid_arch"
    assert _count(db) == 0


def test_metric_defaults_to_the_space_latency_metric(
    client: TestClient, auth: dict[str, str], device: str, db: HardwareDB
) -> None:
    """A language model's latency is ``e2e_ms`` (what its predictor reads); an upload that
    leaves ``metric`` out is stored under it, not under ``latency_ms`` where nothing reads it."""
    lm = get_space("nemotron_flash")
    rows = [
        {"space": "nemotron_flash", "arch": lm.to_string(lm.random(0)), "median": 40.0},
        {"space": SPACE, "arch": distinct_archs(1)[0], "median": 2.0},
        {"space": "nemotron_flash", "arch": lm.to_string(lm.random(1)), "median": 9.0,
         "metric": "prefill_ms"},
    ]  # fmt: skip
    response = client.post(f"/v1/devices/{device}/measurements", json={"measurements": rows},
                           headers=auth)  # fmt: skip
    assert response.status_code == 200, response.text
    stored = {(m["space"], m["metric"]) for m in db.measurements(device=device)}
    assert stored == {("nemotron_flash", "e2e_ms"), (SPACE, "latency_ms"),
                      ("nemotron_flash", "prefill_ms")}  # fmt: skip


def test_all_keys_together_are_bounded_too() -> None:
    """Per-key capacity alone let memory grow with the number of keys (revoked ones too)."""
    from api._idempotency import IdempotencyStore

    store = IdempotencyStore(capacity=3, total_capacity=5)
    for i in range(4):
        store.run("k", "fp", lambda: {"n": 1}, loc=["body"], scope=f"key-{i}")
    store.run("k2", "fp", lambda: {"n": 1}, loc=["body"], scope="key-3")
    assert len(store) == 5
    store.run("k", "fp", lambda: {"n": 1}, loc=["body"], scope="key-1")  # used: now the newest
    store.run("k", "fp", lambda: {"n": 1}, loc=["body"], scope="key-4")
    assert len(store) == 5
    # key-0's record, the least recently used, is gone: its key is free for another body
    assert store.run("k", "other", lambda: {"n": 2}, loc=["body"], scope="key-0")[1] is False
    with pytest.raises(ApiError, match="already used with a different request body"):
        store.run("k", "other", lambda: {"n": 2}, loc=["body"], scope="key-1")
    assert IdempotencyStore(capacity=10).total_capacity == 40

"""What one request may cost the server: no meta-training for bad input or anonymous callers
of other predictors, bounded zero-shot batches, a search quota per API key."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.errors import ApiError
from hwdb import HardwareDB
from tests.api._helpers import SPACE, TARGET, wait_for_search
from tests.api.conftest import make_app

ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    "skip_connect~2|"
)


def _newest_artifact(db: HardwareDB) -> str:
    return db.load_artifact(kind="latency_predictor", space=SPACE).version


def test_bad_archs_are_refused_before_any_meta_training(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    """A request for a predictor not meta-trained yet with a bad arch used to meta-train
    (20-50 s for help+, 200 s for maml) and store it before the 422."""
    before = _newest_artifact(db)
    body = {"space": SPACE, "device": TARGET, "archs": [ARCH, "bad"], "predictor": "flops"}
    response = client.post("/v1/predict", json=body, headers=auth)
    assert response.status_code == 422, response.text
    (err,) = response.json()["detail"]
    assert err["type"] == "invalid_arch" and err["loc"] == ["body", "archs", 1]
    assert _newest_artifact(db) == before  # nothing meta-trained, nothing stored


def test_anonymous_requests_meta_train_only_the_default_predictor(
    client: TestClient, auth: dict[str, str], db: HardwareDB
) -> None:
    body = {"space": SPACE, "device": TARGET, "archs": [ARCH], "predictor": "flops"}
    refused = client.post("/v1/predict", json=body)
    assert refused.status_code == 409, refused.text
    (err,) = refused.json()["detail"]
    assert err["type"] == "not_trained" and err["loc"] == ["body", "predictor"]
    assert "API key" in err["msg"] and "nas predictor adapt" in err["msg"]
    before = _newest_artifact(db)
    keyed = client.post("/v1/predict", json=body, headers=auth)  # a key may meta-train it
    assert keyed.status_code == 200, keyed.text
    assert _newest_artifact(db) != before
    again = client.post("/v1/predict", json=body)  # stored now: anonymous callers use it
    assert again.status_code == 200, again.text
    assert again.json()["data"] == keyed.json()["data"]
    # the default predictor (stored for TARGET by the fixture) needs no key
    default = client.post("/v1/predict", json={**body, "predictor": None})
    assert default.status_code == 200, default.text


def test_a_wrong_key_on_an_open_read_is_refused(client: TestClient) -> None:
    """A key sent with an open read is checked (it decides what the request may start)."""
    body = {"space": SPACE, "device": TARGET, "archs": [ARCH]}
    response = client.post("/v1/predict", json=body, headers={"X-API-Key": "nope"})
    assert response.status_code == 401
    assert response.json()["detail"][0]["type"] == "invalid_api_key"
    assert client.post("/v1/predict", json=body).status_code == 200
    # a bearer token that is no key of ours (a gateway's own) leaves the read anonymous
    gateway = client.post("/v1/predict", json=body, headers={"Authorization": "Bearer gw-1"})
    assert gateway.status_code == 200, gateway.text
    ours = client.post("/v1/predict", json=body, headers={"Authorization": "Bearer nas_revoked"})
    assert ours.status_code == 401  # a token in our keys' format is checked


def test_zero_shot_batches_are_capped(db: HardwareDB, auth: dict[str, str]) -> None:
    """A datasheet roofline traces every arch (~0.05 s each): 10,000 archs took minutes."""
    settings = dataclasses.replace(Settings(), max_zero_shot_archs=2)
    archs = [
        ARCH,
        ARCH.replace("avg_pool_3x3~1", "none~1"),
        ARCH.replace("skip_connect~2", "none~2"),
    ]
    with TestClient(make_app(db, settings)) as c:
        dev = {"name": "my-nano", "attributes": {"catalog": "jetson-nano"}}
        assert c.post("/v1/devices", json=dev, headers=auth).status_code == 201
        body = {"space": SPACE, "device": "my-nano", "archs": archs}
        too_many = c.post("/v1/predict", json=body)
        assert too_many.status_code == 413, too_many.text
        (err,) = too_many.json()["detail"]
        assert err["type"] == "batch_too_large" and "zero-shot" in err["msg"]
        ok = c.post("/v1/predict", json={**body, "archs": archs[:2]})
        assert ok.status_code == 200 and ok.json()["source"] == "zero-shot (datasheet)"
        # a measured device is not capped by it
        measured = c.post("/v1/predict", json={**body, "device": TARGET})
        assert measured.status_code == 200, measured.text


def _search(**extra: Any) -> dict[str, Any]:
    return {"space": SPACE, "devices": [TARGET], "accuracy": "proxy:params", "seed": 3, **extra}


def test_one_key_cannot_take_every_search_slot(db: HardwareDB, auth: dict[str, str]) -> None:
    settings = dataclasses.replace(Settings(), max_active_searches=4, max_searches_per_key=1)
    other = {"X-API-Key": db.create_api_key("other")[1]}
    with TestClient(make_app(db, settings)) as c:
        first = c.post("/v1/searches", json=_search(trials=20_000, population=2), headers=auth)
        assert first.status_code == 202, first.text
        second = c.post("/v1/searches", json=_search(trials=10, population=2), headers=auth)
        assert second.status_code == 429
        assert "this API key already has 1 searches" in second.json()["detail"][0]["msg"]
        theirs = c.post("/v1/searches", json=_search(trials=4, population=2), headers=other)
        assert theirs.status_code == 202, theirs.text
        c.delete(f"/v1/searches/{first.json()['id']}", headers=auth)
        assert wait_for_search(c, first.json()["id"])["status"] == "cancelled"
        wait_for_search(c, theirs.json()["id"])


def test_limits_above_the_hard_list_cap_are_refused() -> None:
    """A list longer than ``MAX_LIST_ITEMS`` is refused before it is read, so a larger
    configured limit could never take effect."""
    from api.schemas import MAX_LIST_ITEMS

    for name in ("max_batch", "max_predict_archs", "max_zero_shot_archs"):
        with pytest.raises(ValueError, match=f"`{name}` must be at most {MAX_LIST_ITEMS}"):
            Settings(**{name: MAX_LIST_ITEMS + 1})
        Settings(**{name: MAX_LIST_ITEMS})
    env = {"NAS_API_MAX_SEARCHES_PER_KEY": "1", "NAS_API_MAX_ZERO_SHOT_ARCHS": "50"}
    assert Settings.from_env(env).max_searches_per_key == 1
    assert Settings.from_env(env).max_zero_shot_archs == 50


def test_a_latency_below_one_nanosecond_is_refused(
    client: TestClient, auth: dict[str, str]
) -> None:
    """5e-324 ms was stored, and the flops and scratch baselines then answered 503 for the
    device for good."""
    assert client.post("/v1/devices", json={"name": "tiny"}, headers=auth).status_code == 201
    row = {"space": SPACE, "arch": ARCH, "median": 5e-324}
    response = client.post(
        "/v1/devices/tiny/measurements", json={"measurements": [row]}, headers=auth
    )
    assert response.status_code == 422, response.text
    (err,) = response.json()["detail"]
    assert err["loc"][-1] == "median" and "at least 1e-06 ms" in err["msg"]


def test_cancelling_a_search_stops_its_meta_training(
    client: TestClient, auth: dict[str, str], db: HardwareDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search on a device whose predictor is not stored meta-trains it first (20-50 s);
    a cancel used to wait for that to finish and store it."""
    import threading

    import predictors._evaluate as evaluate

    started, cancelled = threading.Event(), threading.Event()
    real = evaluate.meta_train_for

    def meta_train_for(*args: Any, **kwargs: Any) -> Any:
        started.set()
        cancelled.wait(60)  # the cancel lands before the training's first step, however fast
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "meta_train_for", meta_train_for)
    before = _newest_artifact(db)
    body = {**_search(trials=4, population=2), "devices": ["1080ti_1"]}
    created = client.post("/v1/searches", json=body, headers=auth)
    assert created.status_code == 202, created.text
    assert started.wait(120)
    client.delete(f"/v1/searches/{created.json()['id']}", headers=auth)
    cancelled.set()
    assert wait_for_search(client, created.json()["id"])["status"] == "cancelled"
    assert _newest_artifact(db) == before  # stopped before it stored anything


def test_a_failed_search_does_not_show_the_database_to_readers() -> None:
    """A search's ``error`` is an open read; a storage error named host, user and driver."""
    from api.errors import public_message
    from hwdb import StorageError

    exc = StorageError("database error on postgresql://nas:***@10.1.2.3:5432/prod: refused")
    assert public_message(exc) == "the database is unavailable; try again later"
    assert public_message(ValueError("bad\nsecond line")) == "bad"


def test_cors_is_off_unless_origins_are_configured(db: HardwareDB) -> None:
    """A browser dashboard on another origin needs CORS headers and preflight answers
    (``OPTIONS`` was a 405); none are sent unless ``NAS_API_CORS_ORIGINS`` names origins."""
    preflight = {
        "Origin": "https://dash.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key",
    }
    with TestClient(make_app(db, Settings())) as c:
        assert c.options("/v1/predict", headers=preflight).status_code == 405
        plain = c.get("/v1/spaces", headers={"Origin": "https://dash.example"})
        assert "access-control-allow-origin" not in plain.headers
    cfg = Settings.from_env({"NAS_API_CORS_ORIGINS": "https://dash.example, https://b.example"})
    with TestClient(make_app(db, cfg)) as c:
        answer = c.options("/v1/predict", headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://dash.example"
        read = c.get("/v1/spaces", headers={"Origin": "https://b.example"})
        assert read.headers["access-control-allow-origin"] == "https://b.example"
        other = c.get("/v1/spaces", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_a_database_that_cannot_be_opened_is_tried_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Requests queued one attempt each (up to the 10 s connect timeout) behind the lock
    that opens the database, holding a server thread apiece."""
    from api import deps
    from hwdb import StorageError

    attempts: list[str | None] = []

    def failing(url: str | None, **_options: Any) -> Any:
        attempts.append(url)
        raise StorageError("cannot open database postgresql://u:***@10.0.0.9/x: timeout")

    monkeypatch.setattr(deps, "HardwareDB", failing)
    services = deps.Services.create(Settings(database_url="postgresql://u:p@10.0.0.9/x"))
    try:
        for _ in range(3):
            with pytest.raises(ApiError) as exc:
                services.db()
            assert exc.value.status_code == 503 and exc.value.loc == ["server", "database"]
            assert "10.0.0.9" not in exc.value.msg
        assert exc.value.headers and 1 <= int(exc.value.headers["Retry-After"]) <= 5
        assert len(attempts) == 1
        monkeypatch.setattr(deps, "OPEN_RETRY_S", 0.0)
        with pytest.raises(ApiError):
            services.db()
        assert len(attempts) == 2
        monkeypatch.setattr(deps, "OPEN_WAIT_S", 0.05)
        assert services._db_lock.acquire()  # another request is opening it
        try:
            with pytest.raises(ApiError, match="being opened"):
                services.db()
        finally:
            services._db_lock.release()
    finally:
        services.close()


def test_requests_waiting_for_one_model_stop_and_are_bounded(db: HardwareDB) -> None:
    """Requests for one new model queued on its lock for the whole meta-training, told to
    stop or not, as many as came (the training-lock bound did not reach them)."""
    from api._predictors import PredictorCache
    from predictors import TrainingBusy, TrainingCancelled, stop_when
    from predictors._service import MAX_TRAINING_WAITERS

    cache = PredictorCache()
    key = cache.key(db, SPACE, TARGET, None)
    lock = cache._locks.setdefault(key, threading.Lock())
    assert lock.acquire()  # another request is building this model
    try:
        with stop_when(lambda: True), pytest.raises(TrainingCancelled):
            cache.get(db, space=SPACE, device=TARGET)
        cache._wait_line().waiting = MAX_TRAINING_WAITERS
        with pytest.raises(TrainingBusy, match="already wait for this model"):
            cache.get(db, space=SPACE, device=TARGET)
        cache._wait_line().waiting = 0
    finally:
        lock.release()
    assert cache.get(db, space=SPACE, device=TARGET).n_measurements > 0  # free again


def test_a_search_waits_while_meta_trainings_are_busy() -> None:
    """A search's few worker threads wait their turn instead of failing on TrainingBusy."""
    from api._searches import SearchJob, _Cancelled, _model_when_free
    from predictors import TrainingBusy

    class Busy:
        def __init__(self, times: int) -> None:
            self.times = times

        def get(self, db: Any, **kwargs: Any) -> str:
            if self.times:
                self.times -= 1
                raise TrainingBusy("busy")
            return "model"

    job = SearchJob(id="x", request=None, created_at=None)  # type: ignore[arg-type]
    assert _model_when_free(Busy(1), None, SPACE, TARGET, None, job) == "model"  # type: ignore[arg-type]
    job.cancel_event.set()
    with pytest.raises(_Cancelled):
        _model_when_free(Busy(5), None, SPACE, TARGET, None, job)  # type: ignore[arg-type]


def test_misspelt_cors_origins_are_refused() -> None:
    with pytest.raises(ValueError, match="`cors_origins` must list origins"):
        Settings(cors_origins="https://a.example/")
    Settings(cors_origins="*, https://a.example, http://localhost:3000")

"""README QA: a cancelled search stops inside the proxy vote's calibration, shutting the server
down cancels its searches, the defaults are `nas search`'s, short-train needs a language model."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from hwdb import HardwareDB, NotFoundError
from tests.api._helpers import SPACE, TARGET
from tests.api._helpers import wait_for_search as _wait
from tests.api.conftest import make_app

#: Proxy computations of the vote's calibration set: 32 archs x 3 proxies.
CALIBRATION_CALLS = 96


class _SlowProxies:
    """Stand-ins for the vote's proxies that take ``delay`` seconds each (no real work)."""

    def __init__(self, delay: float) -> None:
        self.delay, self.calls, self.started = delay, 0, threading.Event()

    def __call__(self, model: Any, batch: Any) -> float:
        self.calls += 1
        self.started.set()
        time.sleep(self.delay)
        return float(self.calls)


@pytest.fixture
def slow_vote(monkeypatch: pytest.MonkeyPatch) -> _SlowProxies:
    from nas.search import _proxies

    fake = _SlowProxies(0.1)
    for name in _proxies.VOTE_MEMBERS:
        monkeypatch.setitem(_proxies.BASE_PROXIES, name, fake)
    return fake


def _vote(**extra: Any) -> dict[str, Any]:
    return {"space": SPACE, "devices": [TARGET], "accuracy": "proxy", "seed": 0, **extra}


def test_cancel_stops_the_vote_inside_its_calibration(
    client: TestClient, auth: dict[str, str], slow_vote: _SlowProxies
) -> None:
    """The vote scores 32 calibration archs x 3 proxies before its first architecture; a
    cancel used to wait for all of them (8-10 min at 224 px on a small CPU)."""
    created = client.post("/v1/searches", json=_vote(trials=4, population=2), headers=auth)
    assert created.status_code == 202, created.text
    sid = created.json()["id"]
    assert slow_vote.started.wait(120)
    assert client.delete(f"/v1/searches/{sid}", headers=auth).status_code == 200
    done = _wait(client, sid)
    assert done["status"] == "cancelled" and done["progress"]["done"] == 0
    assert slow_vote.calls < CALIBRATION_CALLS  # the calibration did not run to its end


def test_shutdown_cancels_running_and_queued_searches(
    db: HardwareDB, auth: dict[str, str], slow_vote: _SlowProxies
) -> None:
    """Stopping the server (lifespan shutdown) used to wait for the running search's whole
    calibration; a queued search stayed ``queued``."""
    app = make_app(db, Settings())
    with TestClient(app) as c:
        first = c.post("/v1/searches", json=_vote(trials=4, population=2), headers=auth)
        second = c.post("/v1/searches", json=_vote(trials=4, population=2), headers=auth)
        assert first.status_code == second.status_code == 202
        assert slow_vote.started.wait(120)
    searches = app.state.services.searches
    assert slow_vote.calls < CALIBRATION_CALLS
    assert searches.get(first.json()["id"]).status == "cancelled"
    assert searches.get(second.json()["id"]).status == "cancelled"


def test_omitted_accuracy_is_the_clis_auto(
    client: TestClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``accuracy`` the API ran the three-proxy vote at full resolution, population
    50; `nas search` runs SynFlow at <= 64 px, batch 8, population 20 (no accuracy table)."""
    import nas.search
    from nas.search import SearchError
    from nas.search._objectives import AUTO_PROXY_BATCH

    real = nas.search.make_accuracy_objective
    built: list[Any] = []

    def spy(spec: str, **kwargs: Any) -> Any:
        built.append((spec, real(spec, **kwargs)))
        raise SearchError("stop here: the objective is all this test needs")

    monkeypatch.setattr(nas.search, "make_accuracy_objective", spy)
    body = {"space": SPACE, "devices": [TARGET], "seed": 1}
    created = client.post("/v1/searches", json=body, headers=auth)
    assert created.status_code == 202, created.text
    request = created.json()["request"]
    assert (request["accuracy"], request["trials"], request["population"]) == ("auto", 200, 20)
    assert created.json()["progress"]["total"] == 200
    assert _wait(client, created.json()["id"])["status"] == "failed"
    (spec, objective), *_ = built
    side = nas.search.ProxyAccuracy(SPACE).space.default_workload().resolution
    assert spec == "auto" and objective.name == "proxy:synflow"
    assert objective.resolution == min(side, 64) and objective.batch_size == AUTO_PROXY_BATCH
    assert objective.should_stop is not None  # a cancel reaches inside it
    explicit = client.post(
        "/v1/searches", json={**body, "accuracy": "proxy:params", "trials": 6}, headers=auth
    )
    assert explicit.status_code == 202
    echoed = explicit.json()["request"]
    assert (echoed["accuracy"], echoed["trials"], echoed["population"]) == ("proxy:params", 6, 20)
    _wait(client, explicit.json()["id"])
    assert built[1][0] == "proxy:params"


class _FakeDb:
    """Just what :func:`nas.search.has_accuracy_table` reads."""

    def __init__(self, table: bool) -> None:
        self.table = table

    def accuracy_table(self, space: str, *, dataset: str, metric: str) -> list[float]:
        if not self.table:
            raise NotFoundError(f"no space {space!r}")
        return [0.9]


def test_defaults_follow_the_cli_budgets() -> None:
    from api._searches import with_defaults
    from api.schemas import SearchCreate

    bare = SearchCreate(space="mnasnet", devices=["d"])
    assert (bare.accuracy, bare.trials, bare.population) == ("auto", None, None)
    for has_table, expected in ((True, ("table", 1000, 50)), (False, ("auto", 200, 20))):
        req = with_defaults(bare, db=_FakeDb(has_table), max_trials=20_000)  # type: ignore[arg-type]
        assert (req.accuracy, req.trials, req.population) == expected
    capped = with_defaults(bare, db=_FakeDb(True), max_trials=300)  # type: ignore[arg-type]
    assert capped.trials == 300
    given = SearchCreate(space="mnasnet", devices=["d"], accuracy="proxy", trials=7, population=3)
    req = with_defaults(given, db=_FakeDb(True), max_trials=20_000)  # type: ignore[arg-type]
    assert (req.accuracy, req.trials, req.population) == ("proxy", 7, 3)
    table_req = with_defaults(
        SearchCreate(space="mnasnet", devices=["d"], accuracy="table"),
        db=_FakeDb(True),  # type: ignore[arg-type]
        max_trials=20_000,
    )
    assert (table_req.trials, table_req.population) == (1000, 50)


def test_openapi_documents_the_default_objective(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    text = spec["paths"]["/v1/searches"]["post"]["description"]
    assert "auto" in text and "64 px" in text and "calibration" in text
    cancel = spec["paths"]["/v1/searches/{search_id}"]["delete"]["description"]
    assert "before the next model" in cancel


def test_a_dataset_without_a_table_is_refused_with_the_default_accuracy(
    client: TestClient, auth: dict[str, str]
) -> None:
    body = {"space": SPACE, "devices": [TARGET], "dataset": "imagenet", "trials": 4}
    response = client.post("/v1/searches", json=body, headers=auth)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "dataset"] and detail["type"] == "no_accuracy_table"


def test_short_train_needs_a_language_model_space(client: TestClient, auth: dict[str, str]) -> None:
    body = {"space": SPACE, "devices": [TARGET], "accuracy": "short-train", "trials": 2}
    response = client.post("/v1/searches", json=body, headers=auth)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "accuracy"] and detail["type"] == "unsupported_accuracy"
    assert "nemotron_flash" in detail["msg"]
    assert client.app.state.services.searches.active() == 0  # type: ignore[attr-defined]

"""A search's ``owner`` (the submitting API key's name) is shown to keyed readers only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hwdb import HardwareDB
from tests.api._helpers import SPACE, TARGET
from tests.api._helpers import wait_for_search as _wait


@pytest.fixture
def search_id(client: TestClient, auth: dict[str, str]) -> Iterator[str]:
    """A finished search submitted with the ``tests`` key."""
    body = {"space": SPACE, "devices": [TARGET], "accuracy": "proxy:params", "seed": 3}
    created = client.post("/v1/searches", json={**body, "trials": 4, "population": 2}, headers=auth)
    assert created.status_code == 202, created.text
    assert created.json()["owner"] == "tests"  # the submitter reads its own name
    sid = str(created.json()["id"])
    assert _wait(client, sid)["status"] == "completed"
    yield sid


def _owners(client: TestClient, sid: str, headers: dict[str, str]) -> tuple[object, object]:
    """``owner`` of the search as ``GET /v1/searches/{id}`` and ``GET /v1/searches`` read it."""
    one = client.get(f"/v1/searches/{sid}", headers=headers)
    listed = client.get("/v1/searches", headers=headers)
    assert one.status_code == 200 and listed.status_code == 200, (one.text, listed.text)
    [summary] = [s for s in listed.json()["data"] if s["id"] == sid]
    return one.json()["owner"], summary["owner"]


def test_the_owner_is_shown_to_keyed_readers_only(
    client: TestClient, search_id: str, auth: dict[str, str], db: HardwareDB
) -> None:
    assert _owners(client, search_id, {}) == (None, None)
    # a gateway's own bearer token leaves the read anonymous
    assert _owners(client, search_id, {"Authorization": "Bearer gateway-token"}) == (None, None)
    assert _owners(client, search_id, auth) == ("tests", "tests")
    bearer = {"Authorization": f"Bearer {auth['X-API-Key']}"}
    assert _owners(client, search_id, bearer) == ("tests", "tests")
    other = {"X-API-Key": db.create_api_key("someone-else")[1]}  # any valid key
    assert _owners(client, search_id, other) == ("tests", "tests")


def test_filtering_by_owner_needs_a_key(
    client: TestClient, search_id: str, auth: dict[str, str]
) -> None:
    """Otherwise ``?owner=NAME`` would tell an anonymous reader whose searches they are."""
    refused = client.get("/v1/searches", params={"owner": "tests"})
    assert refused.status_code == 401, refused.text
    assert refused.json()["detail"][0]["loc"] == ["query", "owner"]
    assert refused.json()["detail"][0]["type"] == "missing_api_key"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    mine = client.get("/v1/searches", params={"owner": "tests"}, headers=auth).json()
    assert [s["id"] for s in mine["data"]] == [search_id] and mine["data"][0]["owner"] == "tests"
    theirs = client.get("/v1/searches", params={"owner": "someone-else"}, headers=auth).json()
    assert theirs == {"data": [], "count": 0, "limit": 100}
    # the other filters stay open
    done = client.get("/v1/searches", params={"status": "completed"}).json()["data"]
    assert [(s["id"], s["owner"]) for s in done] == [(search_id, None)]

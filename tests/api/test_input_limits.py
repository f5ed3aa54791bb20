"""Bounded work and bounded error documents for hostile inputs (review s26: H1, L1, L8, L9).

Sizes and counts are asserted, never wall-clock times.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.deps import get_db
from api.errors import MAX_ERRORS
from api.main import create_app
from api.schemas import MAX_LIST_ITEMS
from hwdb import HardwareDB
from tests.api._helpers import SPACE, TARGET, free_port
from tests.api.conftest import make_app

DEVICE = "limits-dev"
_JSON = {"content-type": "application/json"}


def _ints(n: int) -> str:
    """A JSON list of ``n`` integers (built as text: fast, and as a client would send it)."""
    return "[" + ",".join(["1"] * n) + "]"


def _predict_ints(n: int) -> str:
    return f'{{"space":"{SPACE}","device":"{TARGET}","archs":{_ints(n)}}}'


def _detail(response: Any) -> list[dict[str, Any]]:
    detail: list[dict[str, Any]] = response.json()["detail"]
    return detail


@pytest.fixture
def device(client: TestClient, auth: dict[str, str]) -> str:
    assert client.post("/v1/devices", json={"name": DEVICE}, headers=auth).status_code == 201
    return DEVICE


# ----------------------------------------------------------------------------- H1
def test_many_bad_archs_give_a_small_422(client: TestClient) -> None:
    """100,000 integer archs (under the list cap): the first 20 errors and one counting the
    rest, not 100,000 errors (a 9 MB document before)."""
    response = client.post("/v1/predict", content=_predict_ints(100_000), headers=_JSON)
    assert response.status_code == 422
    assert len(response.content) < 10_000
    detail = _detail(response)
    assert len(detail) == MAX_ERRORS + 1
    assert detail[0] == {
        "loc": ["body", "archs", 0],
        "msg": "Input should be a valid string",
        "type": "string_type",
    }
    assert [d["loc"] for d in detail[:MAX_ERRORS]] == [["body", "archs", i] for i in range(20)]
    assert detail[-1] == {
        "loc": ["body", "archs"],
        "msg": "99980 more errors not listed (the first 20 of 100000 are)",
        "type": "too_many_errors",
    }


def test_few_bad_archs_are_all_listed(client: TestClient) -> None:
    response = client.post("/v1/predict", content=_predict_ints(MAX_ERRORS), headers=_JSON)
    assert response.status_code == 422
    detail = _detail(response)
    assert [d["loc"] for d in detail] == [["body", "archs", i] for i in range(MAX_ERRORS)]
    assert {d["type"] for d in detail} == {"string_type"}


def test_a_list_past_the_hard_cap_is_a_413_before_its_items_are_validated(
    client: TestClient,
) -> None:
    """The review's request (one million integers): one 413 naming the configured cap, as the
    route's own 413 does (a 92 MB 422 before)."""
    response = client.post("/v1/predict", content=_predict_ints(1_000_000), headers=_JSON)
    assert response.status_code == 413
    assert _detail(response) == [
        {
            "loc": ["body", "archs"],
            "msg": "at most 10000 archs per request, got 1000000",
            "type": "batch_too_large",
        }
    ]


def test_the_hard_cap_applies_at_the_largest_configurable_cap(db: HardwareDB) -> None:
    """Settings refuse a cap above ``MAX_LIST_ITEMS``; at it, a longer list is refused before
    its items are read."""
    settings = dataclasses.replace(Settings(), max_predict_archs=MAX_LIST_ITEMS)
    with TestClient(make_app(db, settings)) as c:
        n = MAX_LIST_ITEMS + 1
        response = c.post("/v1/predict", content=_predict_ints(n), headers=_JSON)
    assert response.status_code == 413
    assert _detail(response)[0]["msg"] == f"at most {MAX_LIST_ITEMS} archs per request, got {n}"


def test_many_bad_rows_give_a_small_422(
    client: TestClient, auth: dict[str, str], device: str
) -> None:
    """100,000 empty rows (three errors each): 20 listed, one counting 299,980 (a 26 MB
    document before)."""
    url = f"/v1/devices/{device}/measurements"
    body = json.dumps({"measurements": [{}] * 100_000})
    response = client.post(url, content=body, headers={**auth, **_JSON})
    assert response.status_code == 422
    assert len(response.content) < 10_000
    detail = _detail(response)
    assert len(detail) == MAX_ERRORS + 1
    assert detail[0]["loc"] == ["body", "measurements", 0, "space"]
    assert detail[-1] == {
        "loc": ["body", "measurements"],
        "msg": "299980 more errors not listed (the first 20 of 300000 are)",
        "type": "too_many_errors",
    }


def test_too_many_rows_is_a_413_before_they_are_validated(
    client: TestClient, auth: dict[str, str], device: str
) -> None:
    url = f"/v1/devices/{device}/measurements"
    body = f'{{"measurements":{_ints(MAX_LIST_ITEMS + 1)}}}'
    response = client.post(url, content=body, headers={**auth, **_JSON})
    assert response.status_code == 413
    assert _detail(response) == [
        {
            "loc": ["body", "measurements"],
            "msg": f"at most 10000 measurements per request, got {MAX_LIST_ITEMS + 1}",
            "type": "batch_too_large",
        }
    ]


def test_many_unknown_fields_give_a_small_422(client: TestClient, auth: dict[str, str]) -> None:
    body = {"name": "x", **{f"k{i}": 0 for i in range(1000)}}
    response = client.post("/v1/devices", json=body, headers=auth)
    assert response.status_code == 422
    detail = _detail(response)
    assert len(detail) == MAX_ERRORS + 1
    assert detail[0] == {
        "loc": ["body", "k0"],
        "msg": "Extra inputs are not permitted",
        "type": "extra_forbidden",
    }
    assert detail[-1]["type"] == "too_many_errors"
    assert detail[-1]["msg"] == "980 more errors not listed (the first 20 of 1000 are)"


def test_the_handler_bounds_any_error_list(client: TestClient, auth: dict[str, str]) -> None:
    """Errors that no list validator counted (here: of a JSON object's values) are cut by the
    422 handler itself."""
    body = {"space": SPACE, "devices": [TARGET], "choices": {f"k{i}": [] for i in range(30)}}
    response = client.post("/v1/searches", json=body, headers=auth)
    assert response.status_code == 422
    detail = _detail(response)
    assert len(detail) == MAX_ERRORS + 1
    assert detail[-1] == {
        "loc": ["body", "choices"],
        "msg": "10 more errors not listed (the first 20 of 30 are)",
        "type": "too_many_errors",
    }


# ----------------------------------------------------------------------------- L8
def test_a_long_device_name_is_not_echoed_in_full(client: TestClient) -> None:
    response = client.get("/v1/devices/" + "a" * 20_000)
    assert response.status_code == 404
    assert len(response.content) < 1_000
    (error,) = _detail(response)
    assert error["loc"] == ["path", "name"] and error["type"] == "not_found"
    assert error["msg"].startswith("device 'aaaa") and "(20000 characters)" in error["msg"]


def test_a_long_invalid_arch_is_not_echoed_in_full(client: TestClient) -> None:
    body = {"space": SPACE, "device": TARGET, "archs": ["|" + "x" * 3998 + "|"]}
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 422
    (error,) = _detail(response)
    assert error["type"] == "invalid_arch" and error["loc"] == ["body", "archs", 0]
    assert len(error["msg"]) < 500 and "(4000 characters)" in error["msg"]


def test_validation_messages_and_locs_are_clipped(client: TestClient, auth: dict[str, str]) -> None:
    body = {"name": "x", "attributes": {"catalog": "z" * 5000}}
    (error,) = _detail(client.post("/v1/devices", json=body, headers=auth))
    assert error["loc"] == ["body", "attributes"]
    assert len(error["msg"]) < 500 and "(5000 characters)" in error["msg"]
    body = {"space": SPACE, "device": TARGET, "archs": ["a"], "q" * 3000: 1}
    (error,) = _detail(client.post("/v1/predict", json=body))
    assert error["type"] == "extra_forbidden"
    assert error["loc"][1].startswith("qqq") and error["loc"][1].endswith("(3000 characters)")
    assert len(error["loc"][1]) < 300


# ----------------------------------------------------------------------------- L1
class _DownDB:
    """A database whose every call fails as a refused PostgreSQL connection does."""

    url = "postgresql://nas:***@127.0.0.1:15432/nas_qa"

    def __getattr__(self, name: str) -> Any:
        from hwdb import StorageError

        def fail(*_args: object, **_kwargs: object) -> Any:
            raise StorageError(
                f"database error on {self.url}: (psycopg.OperationalError) connection failed"
            )

        return fail


def test_a_storage_error_hides_the_database_url(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings())
    app.dependency_overrides[get_db] = _DownDB
    caplog.set_level(logging.WARNING, logger="api.errors")
    with TestClient(app) as c:
        response = c.get("/v1/devices")
    assert response.status_code == 503
    assert _detail(response) == [
        {
            "loc": ["server", "database"],
            "msg": "the database is unavailable; try again later",
            "type": "storage_unavailable",
        }
    ]
    logged = [r for r in caplog.records if "127.0.0.1:15432" in r.getMessage()]
    assert logged and logged[0].levelno == logging.WARNING


def test_an_unreachable_database_hides_its_url(caplog: pytest.LogCaptureFixture) -> None:
    """The database the service opens itself (not a dependency override) refuses the
    connection: the 503 names neither the host nor the driver."""
    url = f"postgresql://nas:secret@127.0.0.1:{free_port()}/nas_qa"
    caplog.set_level(logging.WARNING, logger="api.errors")
    with TestClient(create_app(Settings(database_url=url))) as c:
        response = c.get("/v1/devices")
    assert response.status_code == 503
    (error,) = _detail(response)
    assert error["loc"] == ["server", "database"]
    assert error["type"] == "storage_unavailable"
    assert "127.0.0.1" not in response.text and "postgresql" not in response.text
    assert any("127.0.0.1" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- L9
@pytest.mark.parametrize(
    ("value", "msg"),
    [
        ("9" * 5000, "the JSON body holds an integer of more than 4300 digits"),
        ("[" * 10_000 + "]" * 10_000, "the JSON body is nested too deeply to parse"),
    ],
    ids=["5000-digit-integer", "10000-levels-deep"],
)
def test_an_unparsable_body_says_why(client: TestClient, value: str, msg: str) -> None:
    body = f'{{"space":"{SPACE}","device":"{TARGET}","archs":["a"],"predictor":{value}}}'
    response = client.post("/v1/predict", content=body, headers=_JSON)
    assert response.status_code == 400
    assert _detail(response) == [{"loc": ["body"], "msg": msg, "type": "invalid_body"}]


def test_an_apostrophe_does_not_clip_a_message_as_a_quoted_value() -> None:
    """QA: the not_trained message lost the command it names: the clipper took the text from
    a quote to the apostrophe of "server's" for one long quoted value."""
    from api.errors import clip_message

    msg = (
        "predictor 'flops' of nasbench201 is not trained: send the request with an API key to "
        "meta-train it (once, then it is stored), or run `nas predictor adapt --space "
        "nasbench201 --device pixel3 --predictor flops` on the server's database"
    )
    assert clip_message(msg) == msg
    long = "x" * 300
    assert clip_message(f"device '{long}' is not the server's") == (
        f"device '{'x' * 200}\u2026' (300 characters) is not the server's"
    )
    # a bytes repr is a quoted value too (its b is no word the quote is inside)
    assert clip_message(f"value b'{long}' is bad") == (
        f"value b'{'x' * 200}\u2026' (300 characters) is bad"
    )


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_a_body_not_sent_as_json_is_a_415_naming_the_header(
    client: TestClient, content_type: str | None
) -> None:
    """QA: valid JSON sent as text/plain (or with no Content-Type) got a 422 saying the body
    "should be a valid dictionary"."""
    body = json.dumps({"space": SPACE, "device": TARGET, "archs": ["a"]})
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v1/predict", content=body, headers=headers)
    assert response.status_code == 415, response.text
    (error,) = _detail(response)
    assert error["loc"] == ["header", "content-type"] and error["type"] == "unsupported_media_type"
    assert "application/json" in error["msg"]


def test_a_missing_or_wrong_json_body_is_still_a_422(client: TestClient) -> None:
    response = client.post("/v1/predict", headers={"content-type": "application/json"})
    assert response.status_code == 422 and _detail(response)[0]["loc"] == ["body"]
    response = client.post("/v1/predict", json=["not", "an", "object"])
    assert response.status_code == 422 and _detail(response)[0]["loc"] == ["body"]


def test_openapi_declares_the_answers_every_route_may_give(client: TestClient) -> None:
    """QA: GET routes did not list the 401 an invalid key gets, and no route listed the 400
    of a malformed body or the 415 of a body not sent as JSON."""
    spec = client.get("/openapi.json").json()
    for path, methods in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, op in methods.items():
            assert {"400", "401", "413", "415"} <= set(op["responses"]), (method, path)

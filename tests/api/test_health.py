"""``/healthz``, ``/metrics`` and the OpenAPI document."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from hwdb import HardwareDB
from tests.api._helpers import TARGET
from tests.api.conftest import make_app


def test_healthz_reports_database_ok(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok"


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/v1/devices/gold_6226")
    client.get("/v1/devices/no-such-device")
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert "# TYPE nas_api_requests_total counter" in text
    assert 'nas_api_requests_total{method="GET",route="/v1/devices/{name}",status="200"} 1' in text
    assert 'nas_api_requests_total{method="GET",route="/v1/devices/{name}",status="404"} 1' in text
    assert (
        'nas_api_request_duration_seconds_count{method="GET",route="/v1/devices/{name}"} 2' in text
    )


def test_openapi_lists_every_endpoint_under_v1(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        "/v1/spaces": {"get"},
        "/v1/spaces/{space}": {"get"},
        "/v1/devices": {"get", "post"},
        "/v1/devices/{name}": {"get"},
        "/v1/devices/{name}/measurements": {"get", "post"},
        "/v1/devices/{name}/adapt": {"post"},
        "/v1/predict": {"post"},
        "/v1/searches": {"get", "post"},
        "/v1/searches/{search_id}": {"get", "delete"},
        "/healthz": {"get"},
        "/metrics": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    assert client.get("/docs").status_code == 200


def _shape_ok(body: object) -> bool:
    if not isinstance(body, dict) or set(body) != {"detail"} or not body["detail"]:
        return False
    return all(
        isinstance(d, dict)
        and set(d) == {"loc", "msg", "type"}
        and isinstance(d["loc"], list)
        and d["loc"]
        and d["loc"][0] in ("path", "query", "header", "body")
        for d in body["detail"]
    )


def test_framework_errors_have_the_documented_shape(client: TestClient) -> None:
    missing = client.get("/v1/nope")
    assert missing.status_code == 404 and _shape_ok(missing.json()), missing.text
    assert missing.json()["detail"][0]["type"] == "not_found"
    wrong = client.delete("/healthz")
    assert wrong.status_code == 405 and _shape_ok(wrong.json()), wrong.text
    assert wrong.headers["allow"] == "GET, HEAD"
    unreadable = client.post(
        "/v1/predict",
        content=b'{"space": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )
    assert unreadable.status_code == 400 and _shape_ok(unreadable.json()), unreadable.text
    assert unreadable.json()["detail"][0]["loc"] == ["body"]


def test_chunked_body_over_the_limit_is_413(db: HardwareDB, auth: dict[str, str]) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "chunky", "hardware": "'
        for _ in range(8):
            yield b"x" * 1024
        yield b'"}'

    with TestClient(make_app(db, dataclasses.replace(Settings(), max_body_bytes=4096))) as c:
        response = c.post(
            "/v1/devices",
            content=chunks(),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert response.status_code == 413, response.text
        assert response.json()["detail"][0]["type"] == "body_too_large"
        assert response.json()["detail"][0]["loc"] == ["body"]
        text = c.get("/metrics").text
        assert 'route="/v1/devices",status="413"} 1' in text
    assert "chunky" not in {d.name for d in db.list_devices()}


def test_metrics_labels_use_the_route_template(client: TestClient) -> None:
    client.get("/v1/devices/v1")  # a path parameter equal to another path segment
    client.get("/v1/spaces/v1")
    client.get("/v1/spaces/spaces")
    client.get("/no/such/path/1")
    client.get("/no/such/path/2")
    text = client.get("/metrics").text
    assert 'route="/v1/devices/{name}",status="404"} 1' in text
    assert 'route="/v1/spaces/{space}",status="404"} 2' in text
    assert 'nas_api_requests_total{method="GET",route="unmatched",status="404"} 2' in text
    assert "/no/such" not in text and '"/{' not in text


def test_metrics_render_large_counts_exactly() -> None:
    from api._metrics import Metrics

    m = Metrics()
    m.describe("c_total", "counter", "A counter.")
    m.describe("h", "histogram", "A histogram.")
    m.inc("c_total", (), 1_240_013.0)
    m.inc("c_total", (("k", "v"),), 0.5)
    m.observe("h", 0.25)
    text = m.render()
    assert "c_total 1240013\n" in text
    assert 'c_total{k="v"} 0.5' in text
    assert 'h_bucket{le="0.25"} 1' in text and "h_count 1\n" in text and "h_sum 0.25" in text
    assert "e+" not in text


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/v1/spaces", f"/v1/devices/{TARGET}"])
def test_head_answers_like_get_without_a_body(client: TestClient, path: str) -> None:
    get = client.get(path)
    head = client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    text = client.get("/metrics").text
    assert 'method="HEAD",route="' + path.replace(TARGET, "{name}") + '",status="200"} 1' in text


def test_head_of_unknown_paths_and_post_routes(client: TestClient) -> None:
    assert client.head("/v1/nope").status_code == 404
    assert client.head("/v1/predict").status_code == 405


def test_405_allow_lists_every_method_of_the_path(client: TestClient) -> None:
    """Starlette names only the first route matching a path; ``Allow`` must name them all."""
    for method, path, expected in (
        ("OPTIONS", "/v1/devices", {"GET", "HEAD", "POST"}),
        ("POST", "/v1/devices/some-board", {"GET", "HEAD", "PATCH"}),
        ("DELETE", "/v1/searches", {"GET", "HEAD", "POST"}),
    ):
        response = client.request(method, path)
        assert response.status_code == 405, (method, path, response.text)
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert expected <= allowed and method not in allowed, (path, allowed)


def test_unknown_methods_share_one_metrics_label(client: TestClient) -> None:
    """Any client may send any method token; each must not become a new time series."""
    for method in ("FOO1", "FOO2", "BREW"):
        client.request(method, "/healthz")
    text = client.get("/metrics").text
    assert "FOO" not in text and "BREW" not in text
    assert 'nas_api_requests_total{method="other",route="/healthz",status="405"} 3' in text


def test_a_trailing_slash_is_a_404_not_a_redirect(client: TestClient) -> None:
    response = client.post(
        "/v1/devices/raspi4/", json={}, headers={"Host": "evil.example"}, follow_redirects=False
    )
    assert response.status_code == 404 and "location" not in response.headers
    assert response.json()["detail"][0]["type"] == "not_found"

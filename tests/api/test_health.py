"""``/healthz``, ``/metrics`` and the OpenAPI document."""

from __future__ import annotations

from fastapi.testclient import TestClient


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
        "/v1/searches": {"post"},
        "/v1/searches/{search_id}": {"get", "delete"},
        "/healthz": {"get"},
        "/metrics": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    assert client.get("/docs").status_code == 200

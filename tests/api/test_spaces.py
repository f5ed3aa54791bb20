"""``GET /v1/spaces`` and ``GET /v1/spaces/{space}``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from predictors import HELP_REFERENCE_INDICES
from search_spaces import get_space, list_spaces
from tests.api._helpers import INDICES, SPACE


def test_list_spaces_with_database_counts(client: TestClient) -> None:
    body = client.get("/v1/spaces").json()
    assert [s["name"] for s in body["data"]] == list_spaces() and body["count"] == len(
        list_spaces()
    )
    nb = next(s for s in body["data"] if s["name"] == SPACE)
    assert nb["n_devices"] == 5
    assert nb["n_architectures"] == len(set(INDICES) | set(HELP_REFERENCE_INDICES[SPACE]))
    assert nb["n_measurements"] == 5 * nb["n_architectures"]


def test_space_detail_has_parameters_and_reference_archs(client: TestClient) -> None:
    body = client.get(f"/v1/spaces/{SPACE}").json()
    space = get_space(SPACE)
    assert body["parameters"] == {k: list(v) for k, v in space.search_parameters().items()}
    assert body["reference_archs"]["resnet"] == space.to_string(space.reference_archs()["resnet"])
    assert len(body["hardware_embedding_archs"]) == 10
    assert body["encoding_length"] == space.encoding_length


def test_unknown_space_is_404_naming_the_path_parameter(client: TestClient) -> None:
    response = client.get("/v1/spaces/not_a_space")
    assert response.status_code == 404
    assert response.json()["detail"][0]["loc"] == ["path", "space"]

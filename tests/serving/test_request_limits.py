"""Body limits per route, names that are user input, strict types and documented statuses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ml_platform.serving.inputs import max_json_bytes, route_body_limit
from tests.serving.conftest import AppFactory, Harness, b64, image_bytes

SMALL_IMAGES = 50_000  # max_image_bytes: the limits follow from it


@pytest.fixture
def app(make_app: AppFactory) -> Harness:
    return make_app(max_image_bytes=SMALL_IMAGES)


def test_each_route_has_a_body_limit_derived_from_the_image_limit() -> None:
    assert route_body_limit("/v1/analyze", SMALL_IMAGES, 16) == max_json_bytes(SMALL_IMAGES)
    assert route_body_limit("/v1/search", SMALL_IMAGES, 16) == max_json_bytes(SMALL_IMAGES)
    # zero-shot: 16 images, but at most ZERO_SHOT_BODY_IMAGES full-size images' worth in all
    assert route_body_limit("/v1/zero-shot", SMALL_IMAGES, 16) == max_json_bytes(SMALL_IMAGES, 4)
    assert route_body_limit("/v1/zero-shot", SMALL_IMAGES, 2) == max_json_bytes(SMALL_IMAGES, 2)
    assert route_body_limit("/v1/collections/1/classifier", SMALL_IMAGES, 16) < max_json_bytes(
        SMALL_IMAGES
    )


@pytest.mark.parametrize("path", ["/v1/analyze", "/v1/predict", "/v1/zero-shot"])
def test_a_declared_oversized_body_is_413_before_it_is_read(app: Harness, path: str) -> None:
    limit = route_body_limit(path, SMALL_IMAGES, 16)

    def body() -> Iterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    response = app.client.post(
        path, content=body(),
        headers={"content-type": "application/json", "content-length": str(limit + 1)},
    )  # fmt: skip
    assert response.status_code == 413, response.text
    assert f"over {limit} bytes" in response.json()["detail"]
    assert response.json()["kind"] == "image_too_large"


def test_a_chunked_oversized_body_is_413_as_soon_as_it_passes_the_limit(app: Harness) -> None:
    limit = route_body_limit("/v1/predict", SMALL_IMAGES, 16)
    chunks = (b" " * 65536 for _ in range(limit // 65536 + 40))
    response = app.client.post(
        "/v1/predict", content=chunks, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert "so far" in response.json()["detail"]


@pytest.mark.parametrize("name", ["a/b", "a:b", "../etc", "Breeds", ""])
def test_a_dataset_name_that_cannot_exist_is_422_not_an_outage(app: Harness, name: str) -> None:
    body = {"dataset": name, "image_base64": b64(image_bytes())}
    response = app.client.post("/v1/predict", json=body)
    assert response.status_code == 422, response.text
    again = app.client.post("/v1/predict", json={**body, "dataset": "breeds"})
    assert again.status_code == 404  # no backoff was set off: an unknown dataset is 404


@pytest.mark.parametrize("top_k", [True, 1.0, "3"])
def test_top_k_must_be_an_integer_not_something_read_as_one(app: Harness, top_k: object) -> None:
    body = {"dataset": "breeds", "image_base64": b64(image_bytes()), "top_k": top_k}
    response = app.client.post("/v1/predict", json=body)
    assert response.status_code == 422, response.text


def test_every_route_documents_every_status_it_can_return(app: Harness) -> None:
    schema = app.client.get("/openapi.json").json()
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            documented = {int(code) for code in operation["responses"]}
            assert {200, 413, 500} <= documented, (method, path, documented)
            if path.startswith("/v1/"):
                assert {401, 422} <= documented, (method, path, documented)
    predict = {int(c) for c in schema["paths"]["/v1/predict"]["post"]["responses"]}
    assert predict >= {400, 401, 403, 404, 413, 415, 422, 500, 502, 503, 504}

"""Bad input gets a clear 4xx, never a wrong answer: images, collections, operations."""

from __future__ import annotations

import pytest

from ml_platform.domain import DerivativeType, WeightsStatus
from tests.serving.conftest import (
    CLIP,
    CLIP_DIM,
    AppFactory,
    Store,
    analyze_json,
    b64,
    image_bytes,
)

CLASSIFY_CLIP = {"type": "classify", "collection_id": 1}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not an image at all", "not a decodable image"),
        (image_bytes(size=(200, 200))[:3000], "corrupt"),  # a JPEG cut short
    ],
    ids=["not-an-image", "truncated-jpeg"],
)
def test_undecodable_image_is_a_400(make_app: AppFactory, data: bytes, message: str) -> None:
    response = make_app().client.post("/v1/analyze", json=analyze_json(data, CLASSIFY_CLIP))

    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]
    assert response.json()["kind"] == "invalid_image"


def test_invalid_base64_is_a_400(make_app: AppFactory) -> None:
    body = {"image_base64": "%%% not base64 %%%", "operations": [CLASSIFY_CLIP]}
    response = make_app().client.post("/v1/analyze", json=body)

    assert response.status_code == 400
    assert "not valid base64" in response.json()["detail"]


def test_image_over_the_byte_limit_is_a_413(make_app: AppFactory) -> None:
    app = make_app(max_image_bytes=1_000)
    data = image_bytes(size=(200, 200))
    as_json = app.client.post("/v1/analyze", json=analyze_json(data, CLASSIFY_CLIP))
    as_upload = app.client.post(
        "/v1/analyze",
        files={"image": ("big.jpg", data, "image/jpeg")},
        data={"operations": '[{"type": "classify", "collection_id": 1}]'},
    )

    assert as_json.status_code == 413
    assert as_upload.status_code == 413
    assert "1000" in as_upload.json()["detail"]


def test_image_over_the_pixel_limit_is_a_413(make_app: AppFactory) -> None:
    app = make_app(max_image_pixels=100 * 100)
    over, far_over = image_bytes(size=(120, 100), fmt="PNG"), image_bytes(size=(200, 120))
    response = app.client.post("/v1/analyze", json=analyze_json(over, CLASSIFY_CLIP))
    refused_by_pil = app.client.post("/v1/analyze", json=analyze_json(far_over, CLASSIFY_CLIP))

    assert response.status_code == 413
    assert "120x100 = 12000 pixels; the limit is 10000" in response.json()["detail"]
    assert refused_by_pil.status_code == 413  # far over: the same header check, same message
    assert "24000 pixels; the limit is 10000" in refused_by_pil.json()["detail"]


def test_unknown_collection_is_a_404_naming_it(make_app: AppFactory) -> None:
    body = analyze_json(image_bytes(), {"type": "classify", "collection_id": 4040})
    response = make_app().client.post("/v1/analyze", json=body)

    assert response.status_code == 404
    assert "collection 4040" in response.json()["detail"]
    assert "crawlr-collection-4040" in response.json()["detail"]


def test_collection_without_champion_is_a_404(make_app: AppFactory, store: Store) -> None:
    store.register(40, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM, champion=False)
    body = analyze_json(image_bytes(), {"type": "classify", "collection_id": 40})
    response = make_app().client.post("/v1/analyze", json=body)

    assert response.status_code == 404
    assert "collection 40 has no champion" in response.json()["detail"]


def test_classifier_of_another_width_than_its_embedder_is_refused(
    make_app: AppFactory, store: Store
) -> None:
    store.register(41, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM + 1)
    app = make_app()
    body = analyze_json(image_bytes(), {"type": "classify", "collection_id": 41})
    response = app.client.post("/v1/analyze", json=body)

    assert response.status_code == 409
    detail = response.json()["detail"]
    assert f"expects {CLIP_DIM + 1}-d" in detail and f"makes {CLIP_DIM}-d" in detail
    assert response.json()["results"][0]["result"] is None
    assert app.spies[CLIP].calls == 0


def test_classifier_trained_on_other_weights_is_refused(make_app: AppFactory, store: Store) -> None:
    store.register(42, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM, weights=WeightsStatus.PRETRAINED)
    body = analyze_json(image_bytes(), {"type": "classify", "collection_id": 42})
    response = make_app().client.post("/v1/analyze", json=body)

    assert response.status_code == 409
    assert "trained on pretrained" in response.json()["detail"]


@pytest.mark.parametrize(
    "operation",
    [
        {"type": "segment"},
        {"type": "classify"},
        {"type": "classify", "collection_id": -1},
        {"type": "embed", "target": "whole_image"},
        {"type": "embed", "embedding_type": CLIP, "target": "elbow"},
        {"type": "detect", "target": "whole_image"},
        {"type": "classify", "collection_id": 1, "embedding_type": CLIP},
    ],
    ids=[
        "unknown-type",
        "missing-collection",
        "negative-collection",
        "missing-embedding-type",
        "unknown-target",
        "detect-whole-image",
        "client-chooses-embedding",
    ],
)
def test_malformed_operation_is_a_422(make_app: AppFactory, operation: dict[str, object]) -> None:
    response = make_app().client.post("/v1/analyze", json=analyze_json(image_bytes(), operation))

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:3] == ["body", "operations", 0]


@pytest.mark.parametrize(
    "body",
    [
        {"operations": [CLASSIFY_CLIP]},
        {
            "image_base64": b64(image_bytes()),
            "image_url": "http://x/y.jpg",
            "operations": [CLASSIFY_CLIP],
        },
        {"image_base64": b64(image_bytes()), "operations": []},
    ],
    ids=["no-image", "two-images", "no-operations"],
)
def test_malformed_request_is_a_422(make_app: AppFactory, body: dict[str, object]) -> None:
    response = make_app().client.post("/v1/analyze", json=body)
    assert response.status_code == 422, response.text


def test_unknown_embedding_type_fails_only_its_operation(make_app: AppFactory) -> None:
    body = analyze_json(
        image_bytes(), {"type": "embed", "embedding_type": "embed_nope"}, CLASSIFY_CLIP
    )
    response = make_app().client.post("/v1/analyze", json=body)

    assert response.status_code == 200
    embed, classify = response.json()["results"]
    assert embed["error"]["kind"] == "unknown_embedding_type"
    assert CLIP in embed["error"]["message"]
    assert classify["result"] is not None


def test_multipart_without_image_or_with_bad_operations_is_a_422(make_app: AppFactory) -> None:
    client = make_app().client
    no_image = client.post("/v1/analyze", data={"operations": "[]"}, files={"x": ("a", b"b")})
    bad_ops = client.post(
        "/v1/analyze",
        files={"image": ("a.jpg", image_bytes(), "image/jpeg")},
        data={"operations": '[{"type": "classify"}]'},
    )

    assert no_image.status_code == 422
    assert bad_ops.status_code == 422
    assert bad_ops.json()["detail"][0]["loc"][:2] == ["body", "operations"]


def test_unsupported_content_type_is_a_415(make_app: AppFactory) -> None:
    response = make_app().client.post(
        "/v1/analyze", content=b"x", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415

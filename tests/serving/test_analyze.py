"""POST /v1/analyze through the real app: focus from the registry, shared work, timings."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from ml_platform.domain import DerivativeType, WeightsStatus
from ml_platform.serving import ServeOptions
from tests.conftest import shared_path
from tests.crawlr_server import CrawlrServer, CrawlrState
from tests.serving.conftest import (
    CLIP,
    CLIP_DIM,
    DINO,
    DINO_DIM,
    FACE_BOX,
    AppFactory,
    Store,
    StubDetector,
    analyze_json,
    image_bytes,
)

CLASSIFY_CLIP = {"type": "classify", "collection_id": 1}
CLASSIFY_FACE = {"type": "classify", "collection_id": 2}


def test_classify_uses_clip_embedding_for_clip_collection(make_app: AppFactory) -> None:
    app = make_app()
    response = app.client.post("/v1/analyze", json=analyze_json(image_bytes(), CLASSIFY_CLIP))

    assert response.status_code == 200, response.text
    result = response.json()["results"][0]["result"]
    assert result["focus"] == {"derivative_type": "whole_image", "embedding_type": CLIP}
    assert result["embedder"]["dim"] == CLIP_DIM
    assert result["embedder"]["weights"] == "random"
    assert result["model_version"] == "1"
    assert 0.0 <= result["probability"] <= 1.0
    assert result["is_in_collection"] == (result["probability"] >= result["threshold"])
    assert result["box"] is None
    assert app.spies[CLIP].sizes == [(64, 48)]  # the whole image reached CLIP
    assert app.spies[DINO].calls == 0
    assert app.detector.calls == 0  # whole-image collections need no detection


def test_classify_uses_dino_embedding_of_the_face_crop_for_dino_face_collection(
    make_app: AppFactory,
) -> None:
    app = make_app()
    response = app.client.post("/v1/analyze", json=analyze_json(image_bytes(), CLASSIFY_FACE))

    assert response.status_code == 200, response.text
    result = response.json()["results"][0]["result"]
    assert result["focus"] == {"derivative_type": "prominent_face", "embedding_type": DINO}
    assert result["embedder"]["dim"] == DINO_DIM
    assert result["box"]["x0"] == FACE_BOX.x0
    assert app.spies[CLIP].calls == 0
    [size] = app.spies[DINO].sizes
    assert size != (64, 48)  # a crop around the face box, not the whole image
    assert size[0] >= FACE_BOX.width and size[1] >= FACE_BOX.height


def test_operations_sharing_a_focus_compute_one_embedding_and_one_detection(
    make_app: AppFactory,
) -> None:
    app = make_app()
    body = analyze_json(
        image_bytes(),
        CLASSIFY_CLIP,
        {"type": "classify", "collection_id": 3},  # also CLIP, whole image
        {"type": "embed", "embedding_type": CLIP, "target": "whole_image"},
        CLASSIFY_FACE,
        {"type": "detect", "target": "prominent_face"},
        {"type": "embed", "embedding_type": DINO, "target": "prominent_face"},
    )
    response = app.client.post("/v1/analyze", json=body)

    assert response.status_code == 200, response.text
    results = [outcome["result"] for outcome in response.json()["results"]]
    assert all(results), response.json()
    assert app.spies[CLIP].calls == 1
    assert app.spies[DINO].calls == 1
    assert app.detector.calls == 1
    assert results[2]["vector"] and len(results[2]["vector"]) == CLIP_DIM
    assert len(results[5]["vector"]) == DINO_DIM


def test_face_collection_without_a_face_fails_alone(make_app: AppFactory) -> None:
    app = make_app(detector=StubDetector(face=None))
    body = analyze_json(image_bytes(), CLASSIFY_FACE, CLASSIFY_CLIP)
    response = app.client.post("/v1/analyze", json=body)

    assert response.status_code == 200, response.text
    face, clip = response.json()["results"]
    assert face["result"] is None
    assert face["error"]["kind"] == "no_detection"
    assert face["error"]["status"] == 422
    assert "no face detected" in face["error"]["message"]
    assert clip["error"] is None and clip["result"]["model_version"] == "1"
    assert app.spies[DINO].calls == 0


def test_only_failing_operations_answer_with_the_first_error_status(make_app: AppFactory) -> None:
    app = make_app(detector=StubDetector(face=None))
    response = app.client.post("/v1/analyze", json=analyze_json(image_bytes(), CLASSIFY_FACE))

    assert response.status_code == 422
    assert "no face detected" in response.json()["detail"]


def test_detect_returns_box_and_crop_on_request(make_app: AppFactory) -> None:
    app = make_app()
    body = analyze_json(
        image_bytes(),
        {"type": "detect", "target": "prominent_face", "include_crop": True},
        {"type": "detect", "target": "prominent_person"},
    )
    response = app.client.post("/v1/analyze", json=body)

    assert response.status_code == 200, response.text
    face, person = (outcome["result"] for outcome in response.json()["results"])
    assert face["found"] and face["box"]["score"] == pytest.approx(0.9)
    assert face["detector"] == "stub-face" and face["faces_found"] == 1
    crop = Image.open(io.BytesIO(base64.b64decode(face["crop_base64"])))
    assert crop.width >= FACE_BOX.width
    assert person["found"] and person["crop_base64"] is None
    assert person["detector"] == "stub-person"


def test_response_reports_stage_timings(make_app: AppFactory) -> None:
    app = make_app()
    body = analyze_json(image_bytes(), CLASSIFY_FACE, CLASSIFY_CLIP)
    timings = app.client.post("/v1/analyze", json=body).json()["timings_ms"]

    for stage in ("decode_ms", "detection_ms", "embedding_ms", "classification_ms"):
        assert timings[stage] > 0.0, stage
    parts = sum(timings[s] for s in ("decode_ms", "detection_ms", "embedding_ms"))
    assert timings["total_ms"] >= parts


def test_multipart_upload_answers_like_base64(make_app: AppFactory) -> None:
    app = make_app()
    data = image_bytes(seed=3)
    as_json = app.client.post("/v1/analyze", json=analyze_json(data, CLASSIFY_CLIP))
    as_upload = app.client.post(
        "/v1/analyze",
        files={"image": ("photo.jpg", data, "image/jpeg")},
        data={"operations": '[{"type": "classify", "collection_id": 1}]'},
    )

    assert as_upload.status_code == 200, as_upload.text
    expected = as_json.json()["results"][0]["result"]["probability"]
    assert as_upload.json()["results"][0]["result"]["probability"] == pytest.approx(expected)


def test_image_url_is_fetched_only_from_allowed_hosts(make_app: AppFactory) -> None:
    state = CrawlrState(files={"/media/1.jpg": image_bytes()})
    with CrawlrServer(state) as crawlr:
        app = make_app(crawlr=crawlr.url)  # default allow-list: crawlr's host
        ok = app.client.post(
            "/v1/analyze",
            json={"image_url": f"{crawlr.url}/media/1.jpg", "operations": [CLASSIFY_CLIP]},
        )
        other_host = crawlr.url.replace("127.0.0.1", "localhost")
        refused = app.client.post(
            "/v1/analyze",
            json={"image_url": f"{other_host}/media/1.jpg", "operations": [CLASSIFY_CLIP]},
        )
        missing = app.client.post(
            "/v1/analyze",
            json={"image_url": f"{crawlr.url}/media/404.jpg", "operations": [CLASSIFY_CLIP]},
        )

    assert ok.status_code == 200, ok.text
    assert ok.json()["timings_ms"]["fetch_ms"] > 0
    assert refused.status_code == 403
    assert "not allowed" in refused.json()["detail"]
    assert state.hits["/media/1.jpg"] == 1  # the refused URL was never requested
    assert missing.status_code == 502


def test_image_url_is_refused_when_no_host_is_allowed(make_app: AppFactory) -> None:
    app = make_app(options=ServeOptions(allowed_image_hosts=()))
    response = app.client.post(
        "/v1/analyze",
        json={"image_url": "http://127.0.0.1:9/x.jpg", "operations": [CLASSIFY_CLIP]},
    )
    assert response.status_code == 403
    assert "image_url is disabled" in response.json()["detail"]


def _face_photo() -> Path | None:
    path = shared_path() / "data" / "faces" / "img1.jpg"
    return path if path.is_file() else None


@pytest.mark.skipif(_face_photo() is None, reason="../shared/data/faces/img1.jpg not found")
def test_real_detector_finds_the_face_in_a_shared_photo(make_app: AppFactory) -> None:
    from ml_platform.vision.detectors import get_detector

    photo = _face_photo()
    assert photo is not None
    image = Image.open(photo).convert("RGB")
    image.thumbnail((480, 480))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    app = make_app(detector=get_detector(yunet_model=None, person_onnx=None))
    response = app.client.post("/v1/analyze", json=analyze_json(buffer.getvalue(), CLASSIFY_FACE))

    assert response.status_code == 200, response.text
    result = response.json()["results"][0]["result"]
    assert result["box"] is not None and result["embedder"]["dim"] == DINO_DIM


def test_default_embedders_come_from_the_settings_model_directories(
    make_app: AppFactory, store: Store, tiny_model_dirs: dict[str, Path]
) -> None:
    store.register(60, DerivativeType.WHOLE_IMAGE, CLIP, 16, weights=WeightsStatus.PRETRAINED)
    app = make_app(spy_embedders=False, clip_model=str(tiny_model_dirs["clip"]))
    body = analyze_json(image_bytes(), {"type": "classify", "collection_id": 60})
    response = app.client.post("/v1/analyze", json=body)

    assert response.status_code == 200, response.text
    embedder = response.json()["results"][0]["result"]["embedder"]
    assert embedder["model_id"] == str(tiny_model_dirs["clip"])
    assert embedder["weights"] == "pretrained" and embedder["dim"] == 16

"""POST /v1/zero-shot with tiny random CLIP and SigLIP models and an offline tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml_platform.serving import ServeOptions
from ml_platform.vision.zero_shot import top_k
from tests.serving.conftest import AppFactory, Harness, b64, image_bytes

WORDS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "a", "photo", "of", "cat", "dog", "car", "tree"]
CLASSES = ["a photo of a cat", "a photo of a dog", "car", "tree"]


def write_tokenizer(directory: Path) -> None:
    """A word-level tokenizer with BOS/EOS/PAD, saved like a hub checkpoint (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {word: index for index, word in enumerate(WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", 2), ("[EOS]", 3)]
    )
    PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    ).save_pretrained(directory)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Tiny CLIP and SigLIP checkpoints: config + tokenizer, no weights (random init)."""
    from transformers import CLIPConfig, SiglipConfig

    tokens = {"bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0}
    layers = {"num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    text = {"vocab_size": len(WORDS), "hidden_size": 16, "max_position_embeddings": 16}
    vision = {"hidden_size": 16, "image_size": 32, "patch_size": 16}
    configs = {
        "clip": CLIPConfig(
            text_config={**text, **layers, **tokens},
            vision_config={**vision, **layers},
            projection_dim=8,
        ),
        "siglip": SiglipConfig(
            text_config={**text, **layers, **tokens}, vision_config={**vision, **layers}
        ),
    }
    dirs = {}
    for kind, config in configs.items():
        directory = tmp_path_factory.mktemp(f"tiny-{kind}")
        config.save_pretrained(directory)
        write_tokenizer(directory)
        dirs[kind] = str(directory)
    return dirs


@pytest.fixture
def zero_shot_app(make_app: AppFactory, model_dirs: dict[str, str]) -> Harness:
    options = ServeOptions(
        clip_zero_shot_model=model_dirs["clip"], siglip_model=model_dirs["siglip"]
    )
    return make_app(options=options)


def images(count: int) -> list[dict[str, str]]:
    return [{"id": f"img-{i}", "image_base64": b64(image_bytes(seed=i))} for i in range(count)]


@pytest.mark.parametrize("model", ["clip", "siglip"])
def test_zero_shot_returns_ordered_top_k_per_image(zero_shot_app: Harness, model: str) -> None:
    body = {"model": model, "images": images(2), "classes": CLASSES, "top_k": 3}
    response = zero_shot_app.client.post("/v1/zero-shot", json=body)

    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["weights"] == "random"
    assert payload["scoring"] == ("softmax" if model == "clip" else "sigmoid")
    assert [r["id"] for r in payload["results"]] == ["img-0", "img-1"]
    for result in payload["results"]:
        confidences = [p["confidence"] for p in result["predictions"]]
        assert len(confidences) == 3
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= c <= 1.0 for c in confidences)
        assert {p["label"] for p in result["predictions"]} <= set(CLASSES)


def test_clip_confidences_are_a_softmax_over_the_classes(zero_shot_app: Harness) -> None:
    body = {"model": "clip", "images": images(1), "classes": CLASSES, "top_k": len(CLASSES)}
    predictions = zero_shot_app.client.post("/v1/zero-shot", json=body).json()["results"][0]

    assert sum(p["confidence"] for p in predictions["predictions"]) == pytest.approx(1.0, abs=1e-5)


def test_threshold_drops_low_confidences(zero_shot_app: Harness) -> None:
    body = {"model": "clip", "images": images(1), "classes": CLASSES, "top_k": 4}
    everything = zero_shot_app.client.post("/v1/zero-shot", json=body).json()
    confidences = [p["confidence"] for p in everything["results"][0]["predictions"]]
    cut = (confidences[1] + confidences[2]) / 2

    thresholded = zero_shot_app.client.post("/v1/zero-shot", json={**body, "threshold": cut})
    kept = [p["confidence"] for p in thresholded.json()["results"][0]["predictions"]]
    assert kept == pytest.approx(confidences[:2])


def test_uploads_and_bad_images_are_reported_per_image(zero_shot_app: Harness) -> None:
    request = {
        "model": "siglip",
        "classes": CLASSES,
        "images": [{"id": "broken", "image_base64": b64(b"not an image")}],
    }
    response = zero_shot_app.client.post(
        "/v1/zero-shot",
        data={"request": json.dumps(request)},
        files=[("images", ("upload.jpg", image_bytes(), "image/jpeg"))],
    )

    assert response.status_code == 200, response.text
    broken, upload = response.json()["results"]
    assert broken["error"]["kind"] == "invalid_image" and broken["predictions"] == []
    assert upload["id"] == "upload.jpg" and len(upload["predictions"]) == len(CLASSES)


def test_random_weights_are_refused_unless_allowed(
    make_app: AppFactory, model_dirs: dict[str, str]
) -> None:
    options = ServeOptions(clip_zero_shot_model=model_dirs["clip"])
    app = make_app(options=options, allow_random_weights=False)
    body = {"model": "clip", "images": images(1), "classes": CLASSES}
    response = app.client.post("/v1/zero-shot", json=body)

    assert response.status_code == 503
    assert "allow random weights" in response.json()["detail"]
    assert app.client.get("/readyz").json()["status"] == "degraded"


@pytest.mark.parametrize(
    "body",
    [
        {"model": "blip", "images": images(1), "classes": CLASSES},
        {"model": "clip", "images": images(1), "classes": []},
        {"model": "clip", "images": images(1), "classes": ["cat", "cat"]},
        {"model": "clip", "images": images(1), "classes": CLASSES, "top_k": 0},
        {"model": "clip", "images": images(1), "classes": CLASSES, "threshold": 1.5},
        {"model": "clip", "images": [{"id": "x"}], "classes": CLASSES},
    ],
    ids=["model", "no-classes", "duplicate-classes", "top-k", "threshold", "image-without-data"],
)
def test_malformed_zero_shot_request_is_a_422(
    zero_shot_app: Harness, body: dict[str, object]
) -> None:
    assert zero_shot_app.client.post("/v1/zero-shot", json=body).status_code == 422


@pytest.mark.parametrize(
    ("k", "threshold", "expected"),
    [
        (2, 0.0, [("b", 0.5), ("c", 0.3)]),
        (5, 0.25, [("b", 0.5), ("c", 0.3)]),
        (1, 0.6, []),
        (3, 0.0, [("b", 0.5), ("c", 0.3), ("a", 0.2)]),
    ],
)
def test_top_k_orders_cuts_and_thresholds(
    k: int, threshold: float, expected: list[tuple[str, float]]
) -> None:
    scores = np.array([0.2, 0.5, 0.3], dtype=np.float32)
    ranked = top_k(scores, ["a", "b", "c"], k, threshold)
    assert [label for label, _ in ranked] == [label for label, _ in expected]
    assert [value for _, value in ranked] == pytest.approx([value for _, value in expected])

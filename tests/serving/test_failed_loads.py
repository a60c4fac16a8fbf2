"""A model that cannot load costs nothing past its first failure and degrades only what needs it.

No timing: what a failed load leaves behind is counted (weak references to the half-built
model, live `CLIPModel` objects), after 20 failed attempts with the backoff set to zero.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from ml_platform.serving import ServeOptions
from ml_platform.serving.backoff import FailureMemory
from ml_platform.serving.errors import ServingError
from ml_platform.serving.lazy import LazyModels
from ml_platform.serving.metrics import CacheKind, ServingMetrics
from tests.serving.conftest import AppFactory, b64, image_bytes

ATTEMPTS = 20


class HalfBuilt:
    """Stands for the towers a loader built before a later step failed."""

    def __init__(self) -> None:
        self.weights = bytearray(1 << 20)


def test_a_failed_load_keeps_no_half_built_model_over_20_attempts() -> None:
    models: LazyModels[HalfBuilt] = LazyModels(CacheKind.ZERO_SHOT, ServingMetrics())
    models.failures = FailureMemory(base_s=0.0, max_s=0.0)  # every request retries the load
    built: list[weakref.ref[HalfBuilt]] = []

    def load() -> HalfBuilt:
        towers = HalfBuilt()
        built.append(weakref.ref(towers))
        raise OSError("no tokenizer files in the cache (offline)")

    for _ in range(ATTEMPTS):
        with pytest.raises(ServingError, match="no tokenizer files") as caught:
            models.get("clip", load)
        del caught
    gc.collect()
    assert len(built) == ATTEMPTS
    assert [ref for ref in built if ref() is not None] == []
    assert list(models.failed()) == ["zero_shot 'clip'"]


def test_a_remembered_failure_does_not_grow_with_the_requests_it_answers() -> None:
    models: LazyModels[HalfBuilt] = LazyModels(CacheKind.ZERO_SHOT, ServingMetrics())

    def load() -> HalfBuilt:
        raise OSError("offline")

    raised = []
    for _ in range(ATTEMPTS):  # within the backoff: answered from memory
        with pytest.raises(ServingError) as caught:
            models.get("clip", load)
        raised.append(caught.value)
    assert len({id(e) for e in raised}) == ATTEMPTS  # a new error each time, no shared traceback
    assert all(e.__cause__ is None for e in raised)


def unreadable_tokenizer_clip(directory: Path) -> str:
    """A tiny CLIP whose tokenizer files are damaged (as a half-finished download leaves them)."""
    from transformers import CLIPConfig

    layers = {"num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    CLIPConfig(
        text_config={"vocab_size": 11, "hidden_size": 16, "max_position_embeddings": 16, **layers},
        vision_config={"hidden_size": 16, "image_size": 32, "patch_size": 16, **layers},
        projection_dim=8,
    ).save_pretrained(directory)
    (directory / "tokenizer.json").write_text("{not json")
    (directory / "tokenizer_config.json").write_text(
        '{"tokenizer_class": "PreTrainedTokenizerFast"}'
    )
    return str(directory)


def live_clip_models() -> int:
    from transformers import CLIPModel

    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, CLIPModel))


def test_zero_shot_with_a_broken_tokenizer_leaks_nothing_and_only_degrades_zero_shot(
    make_app: AppFactory, tmp_path: Path
) -> None:
    options = ServeOptions(clip_zero_shot_model=unreadable_tokenizer_clip(tmp_path / "clip"))
    app = make_app(options=options)
    app.client.app.state.serving.zero_shot.failures = FailureMemory(0.0, 0.0)  # type: ignore[attr-defined]
    before = live_clip_models()
    body = {"model": "clip", "images": [{"id": "a", "image_base64": b64(image_bytes())}],
            "classes": ["cat", "dog"]}  # fmt: skip
    for _ in range(ATTEMPTS):
        response = app.client.post("/v1/zero-shot", json=body)
        assert response.status_code == 503 and "tokenizer" in response.json()["detail"]
    assert live_clip_models() == before
    ready = app.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    readiness = ready.json()
    assert readiness["status"] == "degraded"
    assert readiness["failing"] == [f"zero_shot 'clip:{options.clip_zero_shot_model}'"]
    assert readiness["models"][readiness["failing"][0]].startswith("failed: ")


def test_readyz_is_503_only_when_nothing_can_be_served(make_app: AppFactory) -> None:
    app = make_app(mlflow_tracking_uri="http://127.0.0.1:9")  # nothing listens on port 9
    ready = app.client.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.json()["status"] == "unavailable" and "model registry" in ready.json()["failing"]

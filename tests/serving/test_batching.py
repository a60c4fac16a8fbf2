"""Dynamic batching of concurrent embeddings, and champions served on their own backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from ml_platform.domain import DerivativeType
from ml_platform.model_registry.collection.naming import VersionTag, model_name
from ml_platform.serving.batching import BatchingConfig, DynamicBatcher
from ml_platform.vision.embedders import Embedder
from ml_platform.vision.embedders.identity import EmbedderKey
from tests.serving.conftest import CLIP, CLIP_DIM, AppFactory, SpyEmbedder, Store, analyze_json
from tests.serving.conftest import image_bytes as make_image

CONCURRENT = 8


class GatedEmbedder:
    """A real embedder whose first forward pass waits for ``gate``; records batch sizes."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.model_id, self.revision = inner.name, inner.model_id, inner.revision
        self.weights, self.dim = inner.weights, inner.dim
        self.gate = threading.Event()
        self.entered = threading.Event()  # set once the first forward pass has started
        self.batches: list[int] = []

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.inner.preprocess(images)

    def embed_preprocessed(self, pixels: np.ndarray) -> np.ndarray:
        if not self.entered.is_set():
            self.entered.set()
            self.gate.wait(timeout=30)
        self.batches.append(len(pixels))
        return self.inner.embed_preprocessed(pixels)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.embed_preprocessed(self.preprocess(images))


def pictures(count: int) -> list[Image.Image]:
    rng = np.random.default_rng(3)
    return [
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)) for _ in range(count)
    ]


def wait_until_queued(batcher: DynamicBatcher, count: int) -> None:
    deadline = time.monotonic() + 30
    while batcher._queue.qsize() < count and time.monotonic() < deadline:
        time.sleep(0.005)


def test_requests_arriving_during_a_forward_pass_share_the_next_one(
    embedders: dict[str, Embedder],
) -> None:
    gated = GatedEmbedder(embedders[CLIP])
    batcher = DynamicBatcher(gated, threading.Lock(), BatchingConfig(max_batch=16, max_wait_ms=0))
    images = pictures(CONCURRENT)
    with ThreadPoolExecutor(CONCURRENT) as pool:
        first = pool.submit(batcher.embed, images[0])
        assert gated.entered.wait(timeout=30)  # the first request's pass has started
        rest = [pool.submit(batcher.embed, image) for image in images[1:]]
        wait_until_queued(batcher, CONCURRENT - 1)
        gated.gate.set()
        vectors = [first.result(), *(f.result() for f in rest)]
    batcher.close()
    assert gated.batches == [1, CONCURRENT - 1]
    expected = embedders[CLIP].embed(images)
    assert np.allclose(np.stack(vectors), expected, atol=1e-5)  # each got its own row


def test_a_full_batch_is_split_at_max_batch(embedders: dict[str, Embedder]) -> None:
    gated = GatedEmbedder(embedders[CLIP])
    batcher = DynamicBatcher(gated, threading.Lock(), BatchingConfig(max_batch=3, max_wait_ms=0))
    with ThreadPoolExecutor(CONCURRENT) as pool:
        futures = [pool.submit(batcher.embed, image) for image in pictures(7)]
        wait_until_queued(batcher, 6)
        gated.gate.set()
        assert all(f.result().shape == (CLIP_DIM,) for f in futures)
    batcher.close()
    assert sum(gated.batches) == 7 and max(gated.batches) <= 3


class FailingEmbedder(GatedEmbedder):
    def embed_preprocessed(self, pixels: np.ndarray) -> np.ndarray:
        raise RuntimeError("model exploded")


def test_a_failed_forward_pass_fails_every_request_in_it(embedders: dict[str, Embedder]) -> None:
    batcher = DynamicBatcher(
        FailingEmbedder(embedders[CLIP]), threading.Lock(), BatchingConfig(max_batch=4)
    )
    with pytest.raises(RuntimeError, match="model exploded"):
        batcher.embed(pictures(1)[0])
    batcher.close()


class BatchDependentEmbedder(GatedEmbedder):
    """Vectors that change with the batch (as dynamic INT8's do): scaled by the batch size."""

    batch_invariant = False

    def embed_preprocessed(self, pixels: np.ndarray) -> np.ndarray:
        return super().embed_preprocessed(pixels) * len(pixels)


def test_a_batch_dependent_embedder_runs_each_request_alone_in_the_shared_worker(
    embedders: dict[str, Embedder],
) -> None:
    gated = BatchDependentEmbedder(embedders[CLIP])
    batcher = DynamicBatcher(gated, threading.Lock(), BatchingConfig(max_batch=8, max_wait_ms=50))
    images = pictures(5)
    try:
        with ThreadPoolExecutor(5) as pool:
            futures = [pool.submit(batcher.embed, image) for image in images]
            wait_until_queued(batcher, 4)
            gated.gate.set()
            vectors = [f.result(timeout=30) for f in futures]
    finally:
        batcher.close()
    assert max(batcher.batch_sizes) > 1  # the requests were collected together...
    assert set(gated.batches) == {1}  # ...but each ran alone
    for image, vector in zip(images, vectors, strict=True):
        np.testing.assert_array_equal(vector, embedders[CLIP].embed([image])[0])


def test_batching_is_off_with_max_batch_one() -> None:
    assert not BatchingConfig(max_batch=1).enabled
    with pytest.raises(ValueError, match="max_wait_ms"):
        BatchingConfig(max_wait_ms=-1)


def test_concurrent_classify_requests_are_answered_through_the_batcher(
    make_app: AppFactory,
) -> None:
    app = make_app(serve_batch_max=8, serve_batch_wait_ms=5.0)
    bodies = [
        analyze_json(make_image(seed=i), {"type": "classify", "collection_id": 1}) for i in range(6)
    ]
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda b: app.client.post("/v1/analyze", json=b), bodies))
    assert [r.status_code for r in responses] == [200] * 6
    probabilities = {r.json()["results"][0]["result"]["probability"] for r in responses}
    assert len(probabilities) > 1  # six different images, six different answers
    assert app.spies[CLIP].calls == 6


def tag_backend(store: Store, collection_id: int, version: str, revision: str) -> None:
    store.client.set_model_version_tag(
        model_name(collection_id), version, VersionTag.EMBEDDER_REVISION.value, revision
    )


def test_a_champion_is_served_on_the_backend_it_was_trained_with(
    make_app: AppFactory, store: Store, embedders: dict[str, Embedder]
) -> None:
    version = store.register(141, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
    tag_backend(store, 141, version, "random-init+onnx")
    asked: list[str] = []

    class OnnxSpy(SpyEmbedder):
        def __init__(self, inner: Embedder) -> None:
            super().__init__(inner)
            self.revision = f"{inner.revision}+onnx"

    def factory(key: str) -> Embedder:
        asked.append(key)
        wanted = EmbedderKey.parse(key)
        base = embedders[str(wanted.on(None))]
        return OnnxSpy(base) if wanted.backend is not None else SpyEmbedder(base)

    harness = make_app()
    app = harness.client.app
    app.state.serving.models._embedder_factory = factory  # type: ignore[attr-defined]
    body = analyze_json(make_image(), {"type": "classify", "collection_id": 141})
    response = harness.client.post("/v1/analyze", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["result"]["embedder"]["revision"] == "random-init+onnx"
    assert asked == [CLIP, f"{CLIP}:onnx"]  # a given factory is asked for the configured one


def test_a_champion_whose_backend_this_server_cannot_give_is_refused(
    make_app: AppFactory, store: Store
) -> None:
    version = store.register(142, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
    tag_backend(store, 142, version, "random-init+onnx-int8")
    harness = make_app()  # the spies run on torch whatever key they are asked for
    original = harness.client.app.state.serving.models._embedder_factory  # type: ignore[attr-defined]
    harness.client.app.state.serving.models._embedder_factory = (  # type: ignore[attr-defined]
        lambda key: original(str(EmbedderKey.parse(key).on(None)))
    )
    body = analyze_json(make_image(), {"type": "classify", "collection_id": 142})
    response = harness.client.post("/v1/analyze", json=body)
    outcome = response.json()["results"][0]
    assert outcome["error"]["status"] == 409, response.text
    assert "onnx-int8" in outcome["error"]["message"]

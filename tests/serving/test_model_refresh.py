"""The champion cache: alias moves are served without restart; a lost registry degrades."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from mlflow import MlflowClient

from ml_platform.domain import DerivativeType
from ml_platform.model_registry.collection.register import rollback
from ml_platform.serving import ServeOptions, registered_champions
from tests.serving.conftest import (
    CLIP,
    CLIP_DIM,
    DINO,
    AppFactory,
    Harness,
    Store,
    analyze_json,
    image_bytes,
)

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connection refused at once


def classify_version(app: Harness, collection_id: int) -> str:
    body = analyze_json(image_bytes(), {"type": "classify", "collection_id": collection_id})
    response = app.client.post("/v1/analyze", json=body)
    assert response.status_code == 200, response.text
    version: str = response.json()["results"][0]["result"]["model_version"]
    return version


def metric(app: Harness, name: str, **labels: str) -> float:
    registry = app.client.app.state.serving.metrics.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


def champions_of(app: Harness) -> Any:
    return app.client.app.state.serving.champions  # type: ignore[attr-defined]


def test_promotion_and_rollback_are_served_without_restart(
    make_app: AppFactory, store: Store
) -> None:
    store.register(50, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
    app = make_app(options=ServeOptions(refresh_interval_s=0.0))
    assert classify_version(app, 50) == "1"

    store.register(50, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)  # promoted to champion
    assert classify_version(app, 50) == "1"  # answered at once; the re-check runs behind it
    champions_of(app).drain()
    assert classify_version(app, 50) == "2"
    rollback(store.client, 50, "bad deploy")
    assert classify_version(app, 50) == "2"
    champions_of(app).drain()
    assert classify_version(app, 50) == "1"

    loads = metric(app, "ml_platform_serving_model_loads_total", cache="classifier")
    hits = metric(app, "ml_platform_serving_model_cache_hits_total", cache="classifier")
    assert loads == 3  # v1, v2, v1 again
    assert hits == 4  # every request after the first was answered from memory


class BlockingRegistry:
    """The real registry client, whose calls wait until `release` is set."""

    def __init__(self, inner: MlflowClient) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def blocked(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            self.release.wait(30)
            return attribute(*args, **kwargs)

        return blocked


def test_a_slow_registry_never_blocks_a_request(
    make_app: AppFactory, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registered_champions, "BULK_READS_IN_WORKER", False)  # read by `slow`
    app = make_app(options=ServeOptions(refresh_interval_s=0.0))
    assert classify_version(app, 1) == "1"
    champions = champions_of(app)
    slow = BlockingRegistry(champions.client)
    champions.client = slow

    # The re-check is stuck in the registry; the requests are answered from memory anyway.
    assert [classify_version(app, 1) for _ in range(3)] == ["1", "1", "1"]
    slow.release.set()
    champions.drain()
    assert slow.calls >= 1  # the re-check did ask the registry, off the request path


class CountingRegistry(BlockingRegistry):
    def __init__(self, inner: MlflowClient) -> None:
        super().__init__(inner)
        self.release.set()


def test_a_failed_first_load_is_remembered_not_retried_per_request(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    app = make_app()
    champions = champions_of(app)
    unreachable = CountingRegistry(MlflowClient(tracking_uri=UNREACHABLE, registry_uri=UNREACHABLE))
    champions.client = unreachable
    body = analyze_json(image_bytes(), {"type": "classify", "collection_id": 3})

    first = app.client.post("/v1/analyze", json=body)
    calls_after_first = unreachable.calls
    second = app.client.post("/v1/analyze", json=body)

    assert first.status_code == second.status_code == 503
    assert "retried in 10 s" in second.json()["detail"]
    assert unreachable.calls == calls_after_first  # the second request did not ask again


def test_alias_is_not_rechecked_within_the_refresh_interval(
    make_app: AppFactory, store: Store
) -> None:
    store.register(51, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
    app = make_app(options=ServeOptions(refresh_interval_s=3600.0))
    assert classify_version(app, 51) == "1"

    store.register(51, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
    assert classify_version(app, 51) == "1"
    assert classify_version(make_app(), 51) == "2"  # a fresh server sees the promotion


def test_unreachable_registry_keeps_serving_loaded_champions_and_degrades_readiness(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(options=ServeOptions(refresh_interval_s=0.0))
    assert classify_version(app, 1) == "1"
    assert app.client.get("/readyz").status_code == 200

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    champions = app.client.app.state.serving.champions  # type: ignore[attr-defined]
    champions.client = MlflowClient(tracking_uri=UNREACHABLE, registry_uri=UNREACHABLE)

    assert classify_version(app, 1) == "1"
    champions.drain()  # the background re-check found the registry gone
    never_loaded = app.client.post(
        "/v1/analyze", json=analyze_json(image_bytes(), {"type": "classify", "collection_id": 2})
    )
    assert never_loaded.status_code == 503
    assert "unreachable" in never_loaded.json()["detail"]
    ready = app.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"  # 1 still serves
    reasons = ready.json()["reasons"]
    assert any(r.startswith("model registry unreachable") for r in reasons)
    assert any(r.startswith("collection 1: serving version 1") for r in reasons)
    assert ready.json()["loaded_classifiers"] == {"1": "1"}


def test_classifier_metadata_shows_champion_tags_aliases_and_served_version(
    make_app: AppFactory,
) -> None:
    app = make_app()
    before = app.client.get("/v1/collections/2/classifier")
    classify_version(app, 2)
    after = app.client.get("/v1/collections/2/classifier")

    assert before.status_code == 200, before.text
    info = before.json()
    assert info["model_name"] == "crawlr-collection-2"
    assert info["version"] == "1" and "champion" in info["aliases"]
    assert info["focus"] == {"derivative_type": "prominent_face", "embedding_type": DINO}
    assert info["tags"]["dimensionality"] == "40"
    assert info["loaded_version"] is None
    assert after.json()["loaded_version"] == "1"


def test_classifier_metadata_of_unknown_collection_is_a_404(make_app: AppFactory) -> None:
    response = make_app().client.get("/v1/collections/777/classifier")
    assert response.status_code == 404
    assert "collection 777" in response.json()["detail"]


def test_concurrent_first_requests_load_each_model_once(make_app: AppFactory) -> None:
    app = make_app(options=ServeOptions(refresh_interval_s=0.0))
    body = analyze_json(
        image_bytes(),
        {"type": "classify", "collection_id": 1},
        {"type": "classify", "collection_id": 2},
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: app.client.post("/v1/analyze", json=body), range(8)))

    assert [r.status_code for r in responses] == [200] * 8
    assert {r.json()["results"][1]["result"]["model_version"] for r in responses} == {"1"}
    assert metric(app, "ml_platform_serving_model_loads_total", cache="classifier") == 2
    assert metric(app, "ml_platform_serving_model_loads_total", cache="embedder") == 2
    assert metric(app, "ml_platform_serving_model_loads_total", cache="detector") == 1

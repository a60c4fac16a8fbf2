"""Start-up preload and /readyz: 503 while loading, 200 once loaded, 503 only while broken."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from pydantic import ValidationError

from ml_platform.domain import DerivativeType
from ml_platform.serving.preload import WARM_UP_SIDE
from ml_platform.settings import Settings
from tests.serving.conftest import (
    CLIP,
    CLIP_DIM,
    DINO,
    DINO_DIM,
    AppFactory,
    Harness,
    Store,
    StubDetector,
)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Two servable champions: 1 (CLIP whole image) and 2 (DINOv2 face)."""
    root = tmp_path_factory.mktemp("ready-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    store = Store(root, uri, MlflowClient(tracking_uri=uri, registry_uri=uri))
    store.register(1, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
    store.register(2, DerivativeType.PROMINENT_FACE, DINO, DINO_DIM)
    return store


def started(app: Harness) -> tuple[TestClient, Any]:
    """The app with its lifespan running (the preload starts) and its state."""
    client = TestClient(app.client.app)
    client.__enter__()
    return client, app.client.app.state.serving  # type: ignore[attr-defined]


def test_readyz_is_200_once_champions_embedders_and_detector_are_preloaded_and_run_once(
    make_app: AppFactory, small_store: Store
) -> None:
    app = make_app(mlflow_tracking_uri=small_store.uri)
    client, state = started(app)
    try:
        state.preloader.join(60)
        ready = client.get("/readyz")
    finally:
        client.__exit__(None, None, None)

    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert ready.json()["loaded_classifiers"] == {"1": "1", "2": "1"}
    loads = state.metrics.registry.get_sample_value
    assert loads("ml_platform_serving_model_loads_total", {"cache": "embedder"}) == 2
    assert loads("ml_platform_serving_model_loads_total", {"cache": "detector"}) == 1
    warm = (WARM_UP_SIDE, WARM_UP_SIDE)  # each ran once, CLIP through its serving batcher
    assert app.spies[CLIP].sizes == [warm]
    assert app.spies[DINO].sizes == [warm]
    assert app.detector.calls >= 1


def test_readyz_is_503_loading_until_the_preload_is_done(
    make_app: AppFactory, small_store: Store
) -> None:
    release = threading.Event()

    class SlowDetector(StubDetector):
        def __init__(self) -> None:
            super().__init__()
            release.wait(30)

    app = make_app(mlflow_tracking_uri=small_store.uri)
    app.client.app.state.serving.models._detector_factory = SlowDetector  # type: ignore[attr-defined]
    client, state = started(app)
    try:
        loading = client.get("/readyz")
        release.set()
        state.preloader.join(60)
        ready = client.get("/readyz")
    finally:
        client.__exit__(None, None, None)

    assert loading.status_code == 503 and loading.json()["status"] == "loading"
    assert "loading models at start-up (the detector)" in loading.json()["reasons"][0]
    assert ready.status_code == 200, ready.text


def test_a_champion_whose_embedder_cannot_load_degrades_only_its_collection(
    make_app: AppFactory, small_store: Store
) -> None:
    app = make_app(mlflow_tracking_uri=small_store.uri)
    spies = app.spies

    def factory(name: str) -> Any:
        if name.startswith(DINO):
            raise OSError(f"no weights for {name} (offline)")
        return spies[name]

    app.client.app.state.serving.models._embedder_factory = factory  # type: ignore[attr-defined]
    client, state = started(app)
    try:
        state.preloader.join(0.0)  # it keeps retrying with backoff: do not wait for it
        while state.preloader.status.value == "loading":
            threading.Event().wait(0.05)
        ready = client.get("/readyz")
        served = client.post(
            "/v1/analyze",
            json={
                "image_base64": _tiny_jpeg(),
                "operations": [{"type": "classify", "collection_id": 1}],
            },
        )
    finally:
        client.__exit__(None, None, None)

    assert ready.status_code == 200  # collection 1 can be served: not the whole replica
    failing = ready.json()["failing"]
    assert ready.json()["status"] == "degraded" and "collection 1" not in failing
    assert {"collection 2", f"embedder {DINO!r}"} <= set(failing)  # and the embedder, by name
    assert any(
        r.startswith("collection 2: classifier cannot be served") for r in ready.json()["reasons"]
    )
    assert served.status_code == 200  # collection 1 is served meanwhile


def _tiny_jpeg() -> str:
    from tests.serving.conftest import b64, image_bytes

    return b64(image_bytes())


def test_preload_can_be_turned_off(make_app: AppFactory, small_store: Store) -> None:
    app = make_app(mlflow_tracking_uri=small_store.uri, serve_preload=False)
    client, state = started(app)
    try:
        ready = client.get("/readyz")
    finally:
        client.__exit__(None, None, None)
    assert ready.status_code == 200 and state.preloader.status.value == "idle"
    assert ready.json()["loaded_classifiers"] == {}


@pytest.mark.parametrize("token", ["", "   "])
def test_an_empty_serve_token_is_a_start_up_error(tmp_path: Path, token: str) -> None:
    with pytest.raises(ValidationError, match="set but empty"):
        Settings(home=tmp_path, serve_token=token)

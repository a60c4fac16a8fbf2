"""Models in a memory budget: least recently used unloaded past it, idle ones after the TTL,
reloaded by their next request; the start-up index reads every champion in bulk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.model_registry.collection.naming import MODEL_NAME_PREFIX, model_name
from ml_platform.serving import ServeOptions
from ml_platform.serving.champion_index import champion_index
from ml_platform.serving.metrics import ServingMetrics
from ml_platform.serving.model_budget import ModelBudget
from ml_platform.serving.model_size import reachable_bytes
from tests.serving.conftest import (
    AppFactory,
    Harness,
    Store,
    analyze_json,
    image_bytes,
    new_store,
)
from tests.serving.test_model_refresh import UNREACHABLE


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def budget_with_models(limit: int, ttl_s: float = 0.0) -> tuple[ModelBudget, list[str], Clock]:
    clock = Clock()
    unloaded: list[str] = []
    budget = ModelBudget(limit, ttl_s, ServingMetrics(), clock)
    for key in ("a", "b", "c"):
        budget.admit("classifier", key, 40, lambda key=key: unloaded.append(key))  # type: ignore[misc]
        clock.now += 1
    return budget, unloaded, clock


def test_past_the_budget_the_least_recently_used_model_is_unloaded() -> None:
    budget, unloaded, _ = budget_with_models(100)
    assert unloaded == ["a"]
    assert [m.key for m in budget.loaded()] == ["b", "c"]
    budget.touch("classifier", "b")  # b is now the most recently used: c goes next
    budget.admit("classifier", "d", 40, lambda: unloaded.append("d"))
    assert unloaded == ["a", "c"] and budget.total_bytes() == 80


def test_a_model_idle_past_the_ttl_is_unloaded_by_the_next_sweep() -> None:
    budget, unloaded, clock = budget_with_models(1000, ttl_s=10)
    clock.now += 8.5  # a was used 11 s ago, b 10 s ago, c 9 s ago
    budget.sweep()
    assert unloaded == ["a", "b"]
    assert [m.key for m in budget.loaded()] == ["c"] and budget.total_bytes() == 40


def test_a_model_bigger_than_the_budget_is_served_alone() -> None:
    budget, unloaded, _ = budget_with_models(10)
    assert unloaded == ["a", "b"] and [m.key for m in budget.loaded()] == ["c"]


def test_reachable_bytes_counts_array_buffers() -> None:
    import numpy as np

    small, big = {"w": np.zeros(10)}, {"w": np.zeros(100_000)}
    assert reachable_bytes(big) - reachable_bytes(small) >= 8 * (100_000 - 10)


def test_an_onnx_session_counts_as_the_model_file_it_runs(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((256, 256), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])], [weights],
    )  # fmt: skip
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    size = reachable_bytes({"session": session})
    assert path.stat().st_size >= 256 * 256 * 4
    assert path.stat().st_size <= size < path.stat().st_size + 10_000


def classify(app: Harness, collection_id: int) -> dict[str, Any]:
    body = analyze_json(image_bytes(), {"type": "classify", "collection_id": collection_id})
    response = app.client.post("/v1/analyze", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["results"][0]
    return result


def test_a_classifier_unloaded_past_the_budget_is_reloaded_by_its_next_request(
    make_app: AppFactory,
) -> None:
    app = make_app()
    state = app.client.app.state.serving  # type: ignore[attr-defined]
    first = classify(app, 1)
    head = next(m.nbytes for m in state.budget.loaded() if m.key == "1")
    # room for one more head (give or take), not two: the next load evicts the oldest
    state.budget.limit_bytes = state.budget.total_bytes() + head // 2
    classify(app, 3)
    ready = app.client.get("/readyz").json()
    assert "classifier 1" not in ready["loaded_models"] and "classifier 3" in ready["loaded_models"]
    assert ready["model_memory_bytes"] == sum(ready["loaded_models"].values()) > 0
    assert classify(app, 1)["result"] == first["result"]
    loads = state.metrics.registry.get_sample_value
    assert loads("ml_platform_serving_model_loads_total", {"cache": "classifier"}) == 3
    unloads = {"cache": "classifier", "reason": "budget"}
    assert loads("ml_platform_serving_model_unloads_total", unloads) == 2
    metrics = app.client.get("/metrics").text
    assert 'ml_platform_serving_models_loaded{cache="classifier"}' in metrics


def test_a_head_reloaded_after_an_eviction_asks_the_registry_nothing(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(options=ServeOptions(refresh_interval_s=0.0))  # every answer is already old
    state = app.client.app.state.serving  # type: ignore[attr-defined]
    first = classify(app, 1)
    head = next(m.nbytes for m in state.budget.loaded() if m.key == "1")
    state.budget.limit_bytes = state.budget.total_bytes() + head // 2
    classify(app, 3)
    assert "classifier 1" not in app.client.get("/readyz").json()["loaded_models"]
    state.champions.drain()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    state.champions.client = MlflowClient(UNREACHABLE, UNREACHABLE)

    assert classify(app, 1)["result"] == first["result"]  # its location and version are known
    state.champions.drain()  # the re-check behind it found no registry: served, marked stale
    assert any("unreachable" in p for p in state.champions.problems())


def test_the_index_names_every_champion_as_the_one_by_one_lookup_does(store: Store) -> None:
    index = champion_index(store.client, MODEL_NAME_PREFIX)
    for collection_id in (1, 2, 3):
        expected = get_champion(store.client, collection_id)
        assert expected is not None
        found = index[model_name(collection_id)]
        assert (found.version, found.tags, found.aliases) == (
            expected.version, expected.tags, expected.aliases
        )  # fmt: skip


def test_models_idle_past_the_ttl_are_unloaded_and_their_next_request_reloads_them(
    make_app: AppFactory,
) -> None:
    app = make_app()
    state = app.client.app.state.serving  # type: ignore[attr-defined]
    clock = Clock()
    state.budget.clock, state.budget.ttl_s = clock, 60.0
    first = classify(app, 1)
    loaded = set(app.client.get("/readyz").json()["loaded_models"])
    assert "classifier 1" in loaded and any(m.startswith("embedder ") for m in loaded)
    clock.now += 61
    state.budget.sweep()
    assert app.client.get("/readyz").json()["loaded_models"] == {}
    sample = state.metrics.registry.get_sample_value
    for cache in ("classifier", "embedder"):
        assert sample("ml_platform_serving_model_unloads_total",
                      {"cache": cache, "reason": "idle"}) == 1  # fmt: skip
    assert classify(app, 1)["result"] == first["result"]
    assert sample("ml_platform_serving_model_loads_total", {"cache": "embedder"}) == 2
    assert sample("ml_platform_serving_models_loaded", {"cache": "classifier"}) == 1


def test_the_preload_indexes_every_champion_and_warms_the_most_used_first(
    make_app: AppFactory, tmp_path: Path
) -> None:
    only_ours = new_store(tmp_path / "registry")  # the session store holds other tests' champions
    app = make_app(mlflow_tracking_uri=only_ours.uri)
    state = app.client.app.state.serving  # type: ignore[attr-defined]
    state.budget.uses[("classifier", "3")] = 5  # used before (the counts survive unloads)
    assert state.preloader.load_all() == {}
    warmed = [m.key for m in state.budget.loaded() if m.cache == "classifier"]
    assert warmed == ["3", "2", "1"]  # 3 first (most used, CLIP), 2 (the DINO focus), then 1
    assert app.client.get("/readyz").json()["champions_known"] == 3

"""Re-checks read in bulk: the champions due at one moment are asked of the registry in one
search, not one by one; a champion moved while its model was unloaded is served once the
re-check behind its reload has run (real MLflow store, real client)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from mlflow import MlflowClient

from ml_platform.domain import DerivativeType
from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.model_registry.collection.naming import MODEL_NAME_PREFIX, model_name
from ml_platform.model_registry.collection.register import rollback
from ml_platform.serving import ServeOptions, alias_worker
from ml_platform.serving import champion_index as index_module
from ml_platform.serving import registered_champions as registered_module
from ml_platform.serving.champion_index import (
    champion_by_alias,
    champion_index,
    champion_versions_named,
)
from ml_platform.serving.dataset_models import DatasetClassifiers
from ml_platform.serving.errors import ErrorKind
from ml_platform.serving.metrics import ServingMetrics
from ml_platform.serving.model_budget import ModelBudget
from ml_platform.serving.model_cache import ChampionCache, CollectionClassifiers
from tests.serving.conftest import CLIP, CLIP_DIM, AppFactory, Store
from tests.serving.test_model_budget import Clock
from tests.serving.test_model_refresh import classify_version

COLLECTIONS = (1, 2, 3)


COUNTED = ("get_registered_model", "get_model_version", "get_model_version_by_alias",
           "search_registered_models", "search_model_versions")  # fmt: skip


class CountingClient(MlflowClient):
    """The real MLflow client, counting the registry calls the champion caches make."""

    def __init__(self, uri: str) -> None:
        super().__init__(tracking_uri=uri, registry_uri=uri)
        self.calls: Counter[str] = Counter()


def _counting(name: str) -> Any:
    def method(self: CountingClient, *args: Any, **kwargs: Any) -> Any:
        self.calls[name] += 1
        return getattr(super(CountingClient, self), name)(*args, **kwargs)

    return method


for _name in COUNTED:
    setattr(CountingClient, _name, _counting(_name))


@pytest.mark.parametrize("search_min_names", [1, 100], ids=["searches", "alias-reads"])
def test_the_champion_versions_named_are_the_ones_the_index_names(
    store: Store, monkeypatch: pytest.MonkeyPatch, search_min_names: int
) -> None:
    store.register(72, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM, champion=False)
    monkeypatch.setattr(alias_worker, "NAMES_PER_SEARCH", 2)  # 5 names: three searches
    monkeypatch.setattr(index_module, "SEARCH_MIN_NAMES", search_min_names)
    names = [model_name(c) for c in COLLECTIONS]
    others = [model_name(72), model_name(987_654), "it's gone"]  # no champion, no model
    found = champion_versions_named(store.client, [*names, *others])
    index = champion_index(store.client, MODEL_NAME_PREFIX)
    assert found == {name: index[name].version for name in names}
    assert model_name(72) not in index


def test_one_alias_read_answers_as_the_two_call_lookup_does(store: Store) -> None:
    for collection_id in COLLECTIONS:
        assert champion_by_alias(store.client, model_name(collection_id)) == get_champion(
            store.client, collection_id
        )


@pytest.mark.parametrize(
    ("search_min_names", "calls"),
    [(1, {"search_registered_models": 1}), (10, {"get_model_version_by_alias": 3})],
    ids=["one-search", "alias-reads"],
)
def test_reloads_after_an_eviction_are_rechecked_together_not_two_calls_each(
    store: Store, monkeypatch: pytest.MonkeyPatch, search_min_names: int, calls: dict[str, int]
) -> None:
    monkeypatch.setattr(index_module, "SEARCH_MIN_NAMES", search_min_names)
    monkeypatch.setattr(registered_module, "BULK_READS_IN_WORKER", False)  # counted here
    client, clock = CountingClient(store.uri), Clock()
    budget = ModelBudget(1, 0.0, ServingMetrics(), clock)  # one head at a time: the next evicts
    cache = ChampionCache(CollectionClassifiers(client), 30.0, ServingMetrics(), clock, budget)
    known = {c: get_champion(client, c) for c in COLLECTIONS}
    cache.seed({c: info for c, info in known.items() if info is not None})
    for collection_id in COLLECTIONS:  # first loads (each version's location asked once)
        cache.get(collection_id)
    assert [m.key for m in budget.loaded()] == ["3"]
    client.calls.clear()

    clock.now += 31  # every answer is now older than the refresh interval
    gate = threading.Event()  # the re-check thread waits until all three reloads are due
    cache._rechecks.background.submit(gate.wait, 30)
    served = [cache.get(collection_id).version for collection_id in COLLECTIONS]
    assert sum(client.calls.values()) == 0  # the reloads asked the registry nothing
    gate.set()
    cache.drain()

    assert served == [info.version for info in known.values() if info is not None]
    assert client.calls == Counter(calls)  # one batch: never get_registered_model per key
    client.calls.clear()
    assert cache.get(3).version == served[-1]  # checked now: nothing due, nothing asked
    cache.drain()
    assert sum(client.calls.values()) == 0


def test_a_rollback_while_the_model_was_unloaded_is_served_after_its_reload(
    make_app: AppFactory, store: Store
) -> None:
    store.register(70, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
    store.register(70, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)  # version 2 is champion
    app = make_app(options=ServeOptions(refresh_interval_s=0.0))  # every answer is old
    state = app.client.app.state.serving  # type: ignore[attr-defined]
    assert classify_version(app, 70) == "2"
    head = next(m.nbytes for m in state.budget.loaded() if m.key == "70")
    state.budget.limit_bytes = state.budget.total_bytes() + head // 2
    classify_version(app, 1)  # 70 is evicted
    state.champions.drain()
    assert "classifier 70" not in app.client.get("/readyz").json()["loaded_models"]

    rollback(store.client, 70, "bad deploy")
    assert classify_version(app, 70) == "2"  # reloaded from its last answer at once
    state.champions.drain()  # the re-check behind the reload saw the rollback
    assert classify_version(app, 70) == "1"


def test_a_champion_removed_while_loaded_is_forgotten_by_the_bulk_recheck(
    make_app: AppFactory, store: Store
) -> None:
    store.register(71, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
    app = make_app(options=ServeOptions(refresh_interval_s=0.0))
    state = app.client.app.state.serving  # type: ignore[attr-defined]
    assert classify_version(app, 71) == "1"
    store.client.delete_registered_model_alias(model_name(71), "champion")
    assert classify_version(app, 71) == "1"  # answered from memory; re-checked behind it
    state.champions.drain()
    assert 71 not in state.champions.loaded_versions()
    assert "classifier 71" not in app.client.get("/readyz").json()["loaded_models"]


def test_a_dataset_without_a_model_reads_as_none_and_its_error_names_it(store: Store) -> None:
    source = DatasetClassifiers(store.client)
    assert source.champion_versions(["no-such-dataset"]) == [None]
    error = source.missing("no-such-dataset")
    assert error.kind is ErrorKind.DATASET_NOT_FOUND
    assert "'dataset-no-such-dataset' is missing" in error.message
    assert "ml-platform finetune --dataset no-such-dataset" in error.message

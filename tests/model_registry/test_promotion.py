"""Promotion with aliases, the promotion history and rollback, against a real MLflow store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow import MlflowClient

from ml_platform.domain import DerivativeType, Focus
from ml_platform.learning.candidates import CandidateName
from ml_platform.learning.evaluation import evaluate_on
from ml_platform.learning.training import TrainingConfig, TrainingResult, train_classifier
from ml_platform.model_registry import (
    Alias,
    ClassifierProvenance,
    ModelNotFoundError,
    ModelTag,
    NoPreviousChampionError,
    decide_promotion,
    get_champion,
    model_name,
    promote,
    register_classifier,
    rollback,
    sanity_check,
)
from ml_platform.model_registry.collection.lookup import load_classifier
from ml_platform.vision.embedders.identity import EmbedderIdentity
from tests.model_registry.conftest import fresh_sqlite_uri

DIM = 8
FOCUS = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[MlflowClient, str]:
    uri, root = fresh_sqlite_uri(tmp_path_factory)
    return MlflowClient(tracking_uri=uri, registry_uri=uri), str(root / "artifacts")


def register(store: tuple[MlflowClient, str], collection_id: int, result: TrainingResult) -> str:
    client, artifacts = store
    provenance = ClassifierProvenance(
        collection_id,
        FOCUS,
        EmbedderIdentity(FOCUS.embedding_type, "openai/clip-vit-base-patch32", "r1"),
        "fp",
    )
    return register_classifier(client, result, provenance, artifact_location=artifacts).version


@pytest.fixture(scope="module")
def source(store: tuple[MlflowClient, str]) -> str:
    """One logged model; cheap extra versions of other collections point at its artifacts."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, DIM)).astype(np.float32)
    y = (np.arange(20) < 6).astype(np.int64)
    config = TrainingConfig(candidates=(CandidateName.LOGISTIC_REGRESSION,))
    version = register(store, 100, train_classifier(X, y, config))
    return store[0].get_model_version_download_uri(model_name(100), version)


def add_versions(client: MlflowClient, collection_id: int, source: str, count: int) -> list[str]:
    """Versions registered straight from an artifact directory: no extra log_model calls."""
    name = model_name(collection_id)
    client.create_registered_model(name)
    return [str(client.create_model_version(name, source).version) for _ in range(count)]


def champion_of(client: MlflowClient, collection_id: int) -> str | None:
    champion = get_champion(client, collection_id)
    return None if champion is None else champion.version


def test_promote_moves_champion_drops_challenger_and_records_history(
    store: tuple[MlflowClient, str], source: str
) -> None:
    client = store[0]
    v1, v2 = add_versions(client, 1, source, 2)
    client.set_registered_model_alias(model_name(1), Alias.CHALLENGER.value, v2)
    promote(client, 1, v1, "initial")
    promote(client, 1, v2, "better AP")
    model = client.get_registered_model(model_name(1))
    assert {k: str(v) for k, v in model.aliases.items()} == {"champion": v2}
    history = json.loads(model.tags[ModelTag.PROMOTION_HISTORY.value])
    assert [(h["version"], h["previous"], h["reason"]) for h in history] == [
        (v1, None, "initial"),
        (v2, v1, "better AP"),
    ]
    assert all(h["at"].endswith("+00:00") and h["action"] == "promote" for h in history)


def test_promoting_the_current_champion_changes_nothing(
    store: tuple[MlflowClient, str], source: str
) -> None:
    client = store[0]
    [v1] = add_versions(client, 2, source, 1)
    promote(client, 2, v1, "initial")
    promote(client, 2, v1, "again")
    tag = client.get_registered_model(model_name(2)).tags[ModelTag.PROMOTION_HISTORY.value]
    assert len(json.loads(tag)) == 1


def test_rollback_walks_back_the_chain_of_champions(
    store: tuple[MlflowClient, str], source: str
) -> None:
    client = store[0]
    v1, v2, v3 = add_versions(client, 3, source, 3)
    for version in (v1, v2, v3):
        promote(client, 3, version, f"promote {version}")
    assert rollback(client, 3).version == v2
    assert champion_of(client, 3) == v2
    assert rollback(client, 3).version == v1
    assert champion_of(client, 3) == v1
    with pytest.raises(NoPreviousChampionError, match="collection 3 has no previous champion"):
        rollback(client, 3)
    assert champion_of(client, 3) == v1


def test_rollback_without_any_champion_names_the_collection(
    store: tuple[MlflowClient, str], source: str
) -> None:
    add_versions(store[0], 4, source, 1)
    with pytest.raises(NoPreviousChampionError, match="collection 4"):
        rollback(store[0], 4)


def test_promoting_an_unknown_version_or_collection_is_a_clear_error(
    store: tuple[MlflowClient, str], source: str
) -> None:
    add_versions(store[0], 5, source, 1)
    with pytest.raises(ModelNotFoundError, match="no model version 9"):
        promote(store[0], 5, "9", "typo")
    with pytest.raises(ModelNotFoundError, match="no registered model 'crawlr-collection-404'"):
        promote(store[0], 404, "1", "typo")


def test_better_challenger_is_promoted_and_a_worse_one_kept_out(
    store: tuple[MlflowClient, str],
) -> None:
    """Same 40 labelled images, three embeddings of them: each model is scored on its own.

    v1 learnt shuffled labels on `weak`; v2 on `clear` beats it and is promoted; v3 on
    `broken` (an embedder regression) falls short of v2 and stays challenger.
    """
    client, rng = store[0], np.random.default_rng(7)
    y = (np.arange(40) < 12).astype(np.int64)
    weak = rng.normal(size=(40, DIM)).astype(np.float32)
    clear = weak.copy()
    clear[y == 1, 0] += 3.0
    broken = rng.normal(size=(40, DIM)).astype(np.float32)
    config = TrainingConfig(candidates=(CandidateName.LOGISTIC_REGRESSION,), seed=0)
    v1 = register(store, 7, train_classifier(weak, rng.permutation(y), config))
    promote(client, 7, v1, "first")
    champion_features = weak
    for X, expect_promotion in ((clear, True), (broken, False)):
        result = train_classifier(X, y, config)
        version = register(store, 7, result)
        champion = load_classifier(client, 7)
        champion_eval = evaluate_on(champion.estimator, champion_features, y, champion.threshold)
        problems = sanity_check(result.estimator, DIM, DIM, result.n_pos, result.n_neg, 5, 5)
        decision = decide_promotion(champion_eval, result.out_of_fold, 0.02, problems)
        assert decision.promote is expect_promotion, decision.reason
        if decision.promote:
            promote(client, 7, version, decision.reason)
            champion_features = X
    model = client.get_registered_model(model_name(7))
    assert {k: str(v) for k, v in model.aliases.items()} == {"champion": "2", "challenger": "3"}


def test_rollback_after_the_alias_was_moved_in_the_mlflow_ui(
    store: tuple[MlflowClient, str], source: str
) -> None:
    client = store[0]
    v1, v2, v3 = add_versions(client, 9, source, 3)
    promote(client, 9, v1, "first")
    promote(client, 9, v2, "second")
    client.set_registered_model_alias(model_name(9), "champion", v3)  # what the UI does
    entry = rollback(client, 9)
    assert (entry.previous, entry.version) == (v3, v2)
    assert champion_of(client, 9) == v2

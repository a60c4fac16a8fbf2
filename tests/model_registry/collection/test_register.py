"""register_classifier and the lookups against a real MLflow (sqlite + local artifacts)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml_platform.domain import DerivativeType, Focus, WeightsStatus
from ml_platform.learning.training import TrainingConfig, TrainingResult, train_classifier
from ml_platform.model_registry import (
    Alias,
    ClassifierProvenance,
    RegisteredVersion,
    VersionTag,
    get_champion,
    list_models,
    model_name,
    promote,
    register_classifier,
    show,
    training_data_fingerprint,
)
from ml_platform.model_registry.collection.lookup import load_classifier
from ml_platform.model_registry.tracking import fluent_tracking_uri
from ml_platform.vision.embedders.identity import EmbedderIdentity
from tests.model_registry.conftest import fresh_sqlite_uri

DIM = 8
COLLECTION = 1
FOCUS = Focus(DerivativeType.PROMINENT_FACE, "embed_dino_v2")


@dataclass(frozen=True)
class Store:
    client: MlflowClient
    artifacts: str


@dataclass(frozen=True)
class Registered:
    store: Store
    result: TrainingResult
    registered: RegisteredVersion
    X: np.ndarray  # type: ignore[type-arg]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A sqlite tracking + registry store; the env vars let models:/ URIs resolve to it."""
    uri, root = fresh_sqlite_uri(tmp_path_factory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        yield Store(MlflowClient(tracking_uri=uri, registry_uri=uri), str(root / "artifacts"))


@pytest.fixture(scope="module")
def registered(store: Store) -> Registered:
    rng = np.random.default_rng(0)
    y = (np.arange(40) < 12).astype(np.int64)
    X = rng.normal(size=(40, DIM)).astype(np.float32)
    X[y == 1, 0] += 2.5
    result = train_classifier(X, y, TrainingConfig(seed=0))
    provenance = ClassifierProvenance(
        collection_id=COLLECTION,
        focus=FOCUS,
        embedder=EmbedderIdentity(
            FOCUS.embedding_type, "facebook/dinov2-small", "rev-abc", None, WeightsStatus.RANDOM
        ),
        training_data_fingerprint=training_data_fingerprint(
            [(i, bool(label)) for i, label in enumerate(y)], FOCUS
        ),
        dagster_run_id="dagster-run-1",
        dagster_partition=str(COLLECTION),
    )
    with pytest.MonkeyPatch.context() as patch:  # registration must rely on the client alone
        patch.delenv("MLFLOW_TRACKING_URI")
        patch.delenv("MLFLOW_REGISTRY_URI")
        reg = register_classifier(
            store.client, result, provenance, artifact_location=store.artifacts
        )
    return Registered(store, result, reg, X)


def test_registered_version_carries_every_tag(registered: Registered) -> None:
    result, reg = registered.result, registered.registered
    version = registered.store.client.get_model_version(reg.name, reg.version)
    tags = version.tags
    expected = {
        VersionTag.COLLECTION_ID: "1",
        VersionTag.DERIVATIVE_TYPE: "prominent_face",
        VersionTag.EMBEDDING_TYPE: "embed_dino_v2",
        VersionTag.EMBEDDER_ID: "facebook/dinov2-small",
        VersionTag.EMBEDDER_REVISION: "rev-abc",
        VersionTag.WEIGHTS: "random",
        VersionTag.DIMENSIONALITY: str(DIM),
        VersionTag.N_POSITIVES: "12",
        VersionTag.N_NEGATIVES: "28",
        VersionTag.WINNER_CANDIDATE: result.winner.value,
        VersionTag.DAGSTER_RUN_ID: "dagster-run-1",
        VersionTag.DAGSTER_PARTITION: "1",
        VersionTag.SOURCE: "training",
    }
    assert {key.value: tags.get(key.value) for key in expected} == {
        key.value: value for key, value in expected.items()
    }
    embedder = EmbedderIdentity.from_tags(tags)
    assert embedder == EmbedderIdentity(FOCUS.embedding_type, "facebook/dinov2-small", "rev-abc",
                                        None, WeightsStatus.RANDOM)  # fmt: skip
    assert float(tags[VersionTag.THRESHOLD]) == result.threshold
    assert len(tags[VersionTag.TRAINING_DATA_FINGERPRINT]) == 64
    cv_ap = float(tags[VersionTag.CV_AVERAGE_PRECISION_MEAN])
    assert cv_ap == pytest.approx(result.winner_metrics.average_precision_mean, abs=1e-6)
    for key in (VersionTag.CV_ROC_AUC, VersionTag.CV_F1, VersionTag.CV_FOLDS):
        assert tags[key]
    assert version.run_id == reg.run_id
    assert reg.name == model_name(COLLECTION) == "crawlr-collection-1"


def test_new_version_is_the_challenger(registered: Registered) -> None:
    model = registered.store.client.get_registered_model(registered.registered.name)
    aliases = {alias: str(version) for alias, version in model.aliases.items()}
    assert aliases == {Alias.CHALLENGER.value: registered.registered.version}


def test_logged_model_has_signature_input_example_and_metadata(registered: Registered) -> None:
    info = mlflow.models.get_model_info(registered.registered.model_uri)
    spec = info.signature.inputs.inputs[0]
    assert spec.type == np.dtype(np.float32)
    assert spec.shape == (-1, DIM)
    assert info.saved_input_example_info is not None
    assert info.metadata is not None
    assert info.metadata[VersionTag.EMBEDDING_TYPE.value] == "embed_dino_v2"


def test_every_candidate_is_logged_with_its_cv_metrics(registered: Registered) -> None:
    run = registered.store.client.get_run(registered.registered.run_id)
    for candidate in registered.result.candidates:
        key = f"{candidate.name.value}/cv_average_precision_mean"
        assert run.data.metrics[key] == pytest.approx(candidate.average_precision_mean)
    assert run.data.params["winner_candidate"] == registered.result.winner.value
    assert run.data.metrics["cv_oof_threshold"] == pytest.approx(registered.result.threshold)


def test_challenger_alias_loads_and_predicts(registered: Registered) -> None:
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name(COLLECTION)}@challenger")
    out = loaded.predict(registered.X[:5])
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["probability", "is_in_collection"]
    expected = registered.result.estimator.predict_proba(registered.X[:5])[:, 1]
    np.testing.assert_allclose(out["probability"].to_numpy(), expected, rtol=1e-6)
    same_from_frame = loaded.predict(pd.DataFrame(registered.X[:5]))
    np.testing.assert_allclose(same_from_frame["probability"], out["probability"], rtol=1e-5)


def test_loaded_model_rejects_embeddings_of_the_wrong_width(registered: Registered) -> None:
    loaded = mlflow.pyfunc.load_model(registered.registered.model_uri)
    with pytest.raises(MlflowException, match=f"expected shape \\(-1, {DIM}\\)"):
        loaded.predict(np.zeros((2, DIM + 4), dtype=np.float32))


def test_lookups_report_champion_challenger_and_history(registered: Registered) -> None:
    client, reg = registered.store.client, registered.registered
    assert get_champion(client, COLLECTION) is None
    promote(client, COLLECTION, reg.version, "first model")
    champion = get_champion(client, COLLECTION)
    assert champion is not None
    assert (champion.version, champion.aliases) == (reg.version, ("champion",))
    [summary] = [s for s in list_models(client) if s.collection_id == COLLECTION]
    assert (summary.champion_version, summary.challenger_version) == (reg.version, None)
    assert summary.champion_tags[VersionTag.EMBEDDER_REVISION] == "rev-abc"
    details = show(client, COLLECTION)
    assert details is not None
    assert [v.version for v in details.versions] == [reg.version]
    assert [(h.version, h.reason, h.previous) for h in details.history] == [
        (reg.version, "first model", None)
    ]
    assert load_classifier(client, COLLECTION).threshold == registered.result.threshold
    assert show(client, 999) is None


def test_fluent_uri_is_restored_including_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = mlflow.get_tracking_uri()
    with fluent_tracking_uri(f"sqlite:///{tmp_path / 'other.db'}"):
        assert mlflow.get_tracking_uri().endswith("other.db")
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert mlflow.get_tracking_uri() == before


def test_provenance_refuses_vectors_of_another_embedding_type() -> None:
    clip = EmbedderIdentity("embed_clip_vit_b_32", "openai/clip-vit-base-patch32", "r1")
    with pytest.raises(ValueError, match="'embed_clip_vit_b_32' cannot train .*embed_dino_v2"):
        ClassifierProvenance(COLLECTION, FOCUS, clip, "fingerprint")

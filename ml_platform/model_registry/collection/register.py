"""Log and register collection classifiers in MLflow; promote and roll back by collection id.

Every function takes an explicit `MlflowClient`. Logging a model needs MLflow's fluent API,
which reads a process-wide tracking URI: `log_and_register` points it at the client's URI
for the duration of the call (`tracking.fluent_tracking_uri`) and restores it afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.models.model import ModelInfo

from ml_platform.learning.evaluation import ProbabilisticClassifier
from ml_platform.learning.training import TrainingResult
from ml_platform.model_registry.aliases import PromotionEntry, promote_model, rollback_model
from ml_platform.model_registry.artifacts import ensure_experiment
from ml_platform.model_registry.collection.naming import (
    DEFAULT_EXPERIMENT,
    ClassifierProvenance,
    ModelTag,
    VersionTag,
    model_name,
    training_metrics,
    training_params,
    training_tags,
    version_description,
)
from ml_platform.model_registry.collection.pyfunc import (
    CollectionClassifierModel,
    classifier_signature,
    input_example,
)
from ml_platform.model_registry.loading import logged_pickle_digest
from ml_platform.model_registry.requirements import model_pip_requirements
from ml_platform.model_registry.tracking import fluent_tracking_uri, owner_tags
from ml_platform.model_registry.versions import (
    Alias,
    ModelSource,
    RegisteredVersion,
    create_version,
    plain_tags,
)

log = logging.getLogger(__name__)

MODEL_ARTIFACT_NAME = "model"


@dataclass(frozen=True)
class ClassifierPayload:
    """Everything logged for one classifier: the model, its figures and its tags."""

    estimator: ProbabilisticClassifier
    threshold: float
    dimensionality: int
    collection_id: int
    tags: Mapping[str, str]
    metrics: Mapping[str, float]
    params: Mapping[str, str]


def register_classifier(
    client: MlflowClient,
    result: TrainingResult,
    provenance: ClassifierProvenance,
    *,
    experiment_name: str = DEFAULT_EXPERIMENT,
    artifact_location: str | None = None,
) -> RegisteredVersion:
    """Log a training result as a pyfunc model, register it and alias it `challenger`."""
    payload = ClassifierPayload(
        estimator=result.estimator,
        threshold=result.threshold,
        dimensionality=result.dimensionality,
        collection_id=provenance.collection_id,
        tags={
            **provenance.tags(),
            **training_tags(result),
            VersionTag.SOURCE: ModelSource.TRAINING,
        },
        metrics=training_metrics(result),
        params=training_params(result),
    )
    return log_and_register(
        client, payload, experiment_name=experiment_name, artifact_location=artifact_location
    )


def log_and_register(
    client: MlflowClient,
    payload: ClassifierPayload,
    *,
    experiment_name: str = DEFAULT_EXPERIMENT,
    artifact_location: str | None = None,
    alias: Alias | None = Alias.CHALLENGER,
) -> RegisteredVersion:
    """One MLflow run: params, metrics, the pyfunc model; then a model version with tags."""
    name = model_name(payload.collection_id)
    experiment_id = ensure_experiment(client, experiment_name, artifact_location)
    run_tags = {**plain_tags(payload.tags), **owner_tags()}  # searchable by the same tags
    # The sqlite registry resolves `models:/m-...` sources through the fluent tracking URI
    # too, so version creation stays inside the block.
    with fluent_tracking_uri(client.tracking_uri):
        with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=run_tags) as run:
            mlflow.log_params(dict(payload.params))
            mlflow.log_metrics(dict(payload.metrics))
            info = _log_pyfunc(payload)
        digest = logged_pickle_digest(client, info.model_id)
        tags = {**payload.tags, VersionTag.PYTHON_MODEL_SHA256: digest}
        version = create_version(
            client, name, info, run.info.run_id, tags,
            {ModelTag.COLLECTION_ID: str(payload.collection_id)}, version_description(payload.tags),
        )  # fmt: skip
    if alias is not None:
        client.set_registered_model_alias(name, alias.value, version)
    log.info("registered %s version %s (run %s)", name, version, run.info.run_id)
    return RegisteredVersion(name, version, run.info.run_id, experiment_id, info.model_uri,
                             client.tracking_uri)  # fmt: skip


def _log_pyfunc(payload: ClassifierPayload) -> ModelInfo:
    dim = payload.dimensionality
    info: ModelInfo = mlflow.pyfunc.log_model(
        name=MODEL_ARTIFACT_NAME,
        python_model=CollectionClassifierModel(payload.estimator, payload.threshold, dim),
        signature=classifier_signature(dim),
        input_example=input_example(dim),
        metadata=plain_tags(payload.tags),
        pip_requirements=model_pip_requirements(),
    )
    return info


def promote(client: MlflowClient, collection_id: int, version: str, reason: str) -> PromotionEntry:
    """Make `version` the champion of a collection's classifier (`aliases.promote_model`)."""
    return promote_model(client, model_name(collection_id), version, reason)


def rollback(client: MlflowClient, collection_id: int, reason: str = "rollback") -> PromotionEntry:
    """Give a collection its previous champion back (`aliases.rollback_model`)."""
    return rollback_model(client, model_name(collection_id), reason, f"collection {collection_id}")

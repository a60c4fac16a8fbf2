"""Log and register collection classifiers in MLflow.

Every function takes an explicit `MlflowClient`. Logging a model needs MLflow's fluent API,
which reads a process-wide tracking URI: `log_and_register` points it at the client's URI
for the duration of the call (`tracking.fluent_tracking_uri`) and restores it afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

from ml_platform.learning.evaluation import ProbabilisticClassifier
from ml_platform.learning.training import TrainingConfig, TrainingResult
from ml_platform.model_registry.artifacts import elsewhere
from ml_platform.model_registry.naming import (
    DEFAULT_EXPERIMENT,
    Alias,
    ClassifierProvenance,
    ModelSource,
    ModelTag,
    VersionTag,
    model_name,
)
from ml_platform.model_registry.pyfunc_model import (
    CollectionClassifierModel,
    classifier_signature,
    input_example,
)
from ml_platform.model_registry.requirements import model_pip_requirements
from ml_platform.model_registry.tracking import fluent_tracking_uri, owner_tags

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


@dataclass(frozen=True)
class RegisteredClassifier:
    """Where a registered classifier lives."""

    name: str
    version: str
    run_id: str
    experiment_id: str
    logged_model_uri: str
    tracking_uri: str

    @property
    def model_uri(self) -> str:
        """`models:/crawlr-collection-<id>/<version>`, loadable with mlflow.pyfunc.load_model."""
        return f"models:/{self.name}/{self.version}"

    @property
    def run_ui_path(self) -> str:
        """The run's path in the MLflow UI, to append to the UI's base URL."""
        return f"#/experiments/{self.experiment_id}/runs/{self.run_id}"


def register_classifier(
    client: MlflowClient,
    result: TrainingResult,
    provenance: ClassifierProvenance,
    *,
    experiment_name: str = DEFAULT_EXPERIMENT,
    artifact_location: str | None = None,
) -> RegisteredClassifier:
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
) -> RegisteredClassifier:
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
        version = _create_version(client, name, info, run.info.run_id, payload)
    if alias is not None:
        client.set_registered_model_alias(name, alias.value, version)
    log.info("registered %s version %s (run %s)", name, version, run.info.run_id)
    return RegisteredClassifier(
        name=name,
        version=version,
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        logged_model_uri=info.model_uri,
        tracking_uri=client.tracking_uri,
    )


def registered_version(client: MlflowClient, name: str, version: str) -> RegisteredClassifier:
    """A version already in the registry, described as `log_and_register` describes a new one."""
    found = client.get_model_version(name, version)
    run_id = found.run_id or ""
    experiment_id = str(client.get_run(run_id).info.experiment_id) if run_id else ""
    return RegisteredClassifier(
        name=name,
        version=str(found.version),
        run_id=run_id,
        experiment_id=experiment_id,
        logged_model_uri=str(found.source),
        tracking_uri=client.tracking_uri,
    )


def ensure_experiment(
    client: MlflowClient, name: str = DEFAULT_EXPERIMENT, artifact_location: str | None = None
) -> str:
    """The id of experiment `name`, created (with `artifact_location`) when missing.

    An experiment whose recorded local artifact location lies outside `artifact_location`
    was made by the home this one was copied or moved from: new runs would write into that
    home. It is renamed (its runs and models stay, found through `model_download_uri`) and
    `name` is created again under the current location."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None and not elsewhere(experiment.artifact_location, artifact_location):
        return str(experiment.experiment_id)
    if experiment is not None:
        retired = f"{name} (home at {experiment.artifact_location})"
        log.warning("experiment %r writes to another home; renamed to %r", name, retired)
        client.rename_experiment(experiment.experiment_id, retired)
    return str(client.create_experiment(name, artifact_location=artifact_location))


def training_tags(result: TrainingResult) -> dict[str, str]:
    """Version tags describing a training result (threshold, support, CV figures)."""
    best = result.winner_metrics
    return {
        VersionTag.DIMENSIONALITY: str(result.dimensionality),
        VersionTag.THRESHOLD: repr(result.threshold),
        VersionTag.N_POSITIVES: str(result.n_pos),
        VersionTag.N_NEGATIVES: str(result.n_neg),
        VersionTag.CV_FOLDS: str(result.folds),
        VersionTag.WINNER_CANDIDATE: result.winner.value,
        VersionTag.CV_AVERAGE_PRECISION_MEAN: f"{best.average_precision_mean:.6f}",
        VersionTag.CV_AVERAGE_PRECISION_STD: f"{best.average_precision_std:.6f}",
        VersionTag.CV_OOF_AVERAGE_PRECISION: f"{best.out_of_fold.average_precision:.6f}",
        VersionTag.CV_ROC_AUC: f"{best.roc_auc:.6f}",
        VersionTag.CV_F1: f"{best.f1_at_threshold:.6f}",
    }


def training_metrics(result: TrainingResult) -> dict[str, float]:
    """The winner's CV figures unprefixed, and every candidate's as `<candidate>/<figure>`."""
    metrics = dict(result.winner_metrics.as_metrics())
    for candidate in result.candidates:
        for key, value in candidate.as_metrics().items():
            metrics[f"{candidate.name.value}/{key}"] = value
    return metrics


def config_params(config: TrainingConfig) -> dict[str, str]:
    """Every knob of the training configuration as a plain string (MLflow params)."""

    def plain(value: object) -> str:
        if isinstance(value, tuple):
            return ",".join(plain(v) for v in value)
        return str(value.value if isinstance(value, Enum) else value)

    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def training_params(result: TrainingResult) -> dict[str, str]:
    config = result.config
    return {
        **config_params(config),
        "winner_candidate": result.winner.value,
        "cv_folds_requested": str(config.cv_folds),
        "cv_folds_used": str(result.folds),
        "threshold_rule": "max F1 on out-of-fold probabilities",
    }


def plain_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags with plain `str` keys and values (StrEnum keys confuse YAML serialisation)."""
    return {str(key): str(value) for key, value in tags.items()}


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


def _create_version(
    client: MlflowClient, name: str, info: ModelInfo, run_id: str, payload: ClassifierPayload
) -> str:
    _ensure_registered_model(client, name, payload.collection_id)
    version = client.create_model_version(
        name=name,
        source=info.model_uri,
        run_id=run_id,
        tags=plain_tags(payload.tags),
        model_id=info.model_id,
        description=version_description(payload.tags),
    )
    return str(version.version)


def version_description(tags: Mapping[str, str]) -> str:
    """The first line MLflow shows on a version's page: the weights its embeddings came from
    (a tag MLflow lists far down) and, for random weights, what that means."""
    weights = tags.get(VersionTag.WEIGHTS, "unknown")
    if weights == "random":
        return (
            "weights=random: trained on embeddings from randomly initialised weights; "
            "shows the plumbing, not quality."
        )
    return f"weights={weights}: trained on {tags.get(VersionTag.EMBEDDER_ID, 'its')} embeddings."


def _ensure_registered_model(client: MlflowClient, name: str, collection_id: int) -> None:
    """Create the registered model unless it exists (also when created concurrently)."""
    try:
        client.create_registered_model(
            name, tags={ModelTag.COLLECTION_ID.value: str(collection_id)}
        )
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
        log.debug("registered model %s exists; adding a version", name)

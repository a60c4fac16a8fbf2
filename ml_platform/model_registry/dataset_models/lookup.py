"""Read dataset classifiers from the registry: the champion, and a loaded model version."""

from __future__ import annotations

from datetime import UTC, datetime

import mlflow
from mlflow import MlflowClient

from ml_platform.model_registry.aliases import (
    ModelNotFoundError,
    alias_version,
    registered_model_or_none,
)
from ml_platform.model_registry.artifacts import model_download_uri
from ml_platform.model_registry.dataset_models.naming import (
    DATASET_MODEL_PREFIX,
    DatasetTag,
    dataset_model_name,
)
from ml_platform.model_registry.dataset_models.pyfunc import FinetunedClassifierModel
from ml_platform.model_registry.lookup import ModelSummary, ModelVersionInfo, list_models_named
from ml_platform.model_registry.naming import Alias
from ml_platform.model_registry.tracking import fluent_tracking_uri


def dataset_champion(client: MlflowClient, dataset: str) -> ModelVersionInfo | None:
    """The champion version of `dataset-<name>`, or None (no model, or no champion yet)."""
    name = dataset_model_name(dataset)
    model = registered_model_or_none(client, name)
    version = None if model is None else alias_version(model, Alias.CHAMPION)
    if model is None or version is None:
        return None
    found = client.get_model_version(name, version)
    aliases = tuple(sorted(a for a, v in model.aliases.items() if str(v) == version))
    created = datetime.fromtimestamp(found.creation_timestamp / 1000, tz=UTC)
    return ModelVersionInfo(name, version, aliases, dict(found.tags), found.run_id, created)


def list_dataset_models(client: MlflowClient) -> list[ModelSummary]:
    """Every `dataset-<name>` registered model with its champion and challenger versions."""
    return list_models_named(client, DATASET_MODEL_PREFIX)


def load_dataset_model(
    client: MlflowClient, name: str, version: str, artifact_root: str | None = None
) -> FinetunedClassifierModel:
    """The python model of one version, weights loaded. `artifact_root` finds its files after
    the home was copied or moved (`model_download_uri`), as for collection classifiers."""
    try:
        uri = model_download_uri(client, name, version, artifact_root)
    except mlflow.exceptions.MlflowException as exc:
        raise ModelNotFoundError(f"{name} has no version {version}: {exc}") from exc
    with fluent_tracking_uri(client.tracking_uri):
        python_model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    if not isinstance(python_model, FinetunedClassifierModel):
        raise TypeError(
            f"{name} version {version} is a {type(python_model).__name__}, not a "
            "FinetunedClassifierModel; re-register it with `ml-platform finetune`"
        )
    return python_model


def dataset_version_trained_on(
    client: MlflowClient, dataset: str, dataset_version: str, config_digest: str
) -> str | None:
    """The model version of `dataset-<name>` fine-tuned on exactly this dataset version with
    exactly this configuration, if any (the oldest, should there be several)."""
    name = dataset_model_name(dataset)
    if registered_model_or_none(client, name) is None:
        return None
    found = [
        int(v.version)
        for v in client.search_model_versions(filter_string=f"name = '{name}'")
        if v.tags.get(DatasetTag.DATASET_VERSION.value) == dataset_version
        and v.tags.get(DatasetTag.TRAINING_CONFIG_DIGEST.value) == config_digest
    ]
    return str(min(found)) if found else None

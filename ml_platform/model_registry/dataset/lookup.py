"""Read dataset classifiers from the registry: the champion, a loaded model version, every
model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlflow import MlflowClient

from ml_platform.model_registry.dataset.naming import (
    DATASET_MODEL_PREFIX,
    DatasetTag,
    dataset_model_name,
)
from ml_platform.model_registry.loading import load_python_model
from ml_platform.model_registry.versions import (
    ModelSummary,
    ModelVersionInfo,
    champion_version,
    registered_model_or_none,
    registered_models,
    summary,
)

if TYPE_CHECKING:  # the model imports torch: only loading one needs it (serving starts without)
    from ml_platform.model_registry.dataset.pyfunc import FinetunedClassifierModel


def dataset_champion(client: MlflowClient, dataset: str) -> ModelVersionInfo | None:
    """The champion version of `dataset-<name>`, or None (no model, or no champion yet)."""
    return champion_version(client, dataset_model_name(dataset))


def list_dataset_models(client: MlflowClient) -> list[ModelSummary]:
    """Every `dataset-<name>` registered model with its champion and challenger versions."""
    models = registered_models(client, DATASET_MODEL_PREFIX)
    return sorted((summary(client, model) for model in models), key=lambda s: s.name)


def load_dataset_model(
    client: MlflowClient, name: str, version: str, artifact_root: str | None = None
) -> FinetunedClassifierModel:
    """The python model of one version, weights loaded. `artifact_root` finds its files after
    the home was copied or moved (`loading.load_python_model`, as for collection classifiers)."""
    from ml_platform.model_registry.dataset.pyfunc import FinetunedClassifierModel

    return load_python_model(client, name, version, FinetunedClassifierModel, artifact_root)


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

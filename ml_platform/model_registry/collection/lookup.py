"""Read collection classifiers from the registry: the champion, a loaded model, every model,
one model in detail."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient

from ml_platform.model_registry.aliases import PromotionEntry, read_history
from ml_platform.model_registry.collection.naming import (
    MODEL_NAME_PREFIX,
    VersionTag,
    collection_id_of,
    model_name,
)
from ml_platform.model_registry.collection.pyfunc import CollectionClassifierModel
from ml_platform.model_registry.loading import load_python_model
from ml_platform.model_registry.versions import (
    Alias,
    ModelNotFoundError,
    ModelSummary,
    ModelVersionInfo,
    alias_version,
    champion_version,
    registered_model_or_none,
    registered_models,
    summary,
    version_infos,
)


@dataclass(frozen=True)
class ModelDetails:
    """Everything about one collection's model: summary, versions, promotion history."""

    summary: ModelSummary
    versions: tuple[ModelVersionInfo, ...]
    history: tuple[PromotionEntry, ...]


def get_champion(client: MlflowClient, collection_id: int) -> ModelVersionInfo | None:
    """The champion version of a collection, or None (no model yet, or no champion)."""
    return champion_version(client, model_name(collection_id))


def load_classifier(
    client: MlflowClient,
    collection_id: int,
    alias: Alias = Alias.CHAMPION,
    artifact_root: str | None = None,
) -> CollectionClassifierModel:
    """The python model a collection's alias points at (estimator, threshold, width).
    `artifact_root` finds its files after the home moved (`loading.load_python_model`)."""
    name = model_name(collection_id)
    model = registered_model_or_none(client, name)
    version = None if model is None else alias_version(model, alias)
    if version is None:
        raise ModelNotFoundError(f"collection {collection_id} has no {alias} model version")
    return load_python_model(client, name, version, CollectionClassifierModel, artifact_root)


def list_models(client: MlflowClient) -> list[ModelSummary]:
    """Every `crawlr-collection-*` registered model, by collection id."""
    summaries = [
        summary(client, model, collection_id_of(model.name))
        for model in registered_models(client, MODEL_NAME_PREFIX)
    ]
    return sorted(summaries, key=lambda s: (s.collection_id is None, s.collection_id, s.name))


def show(client: MlflowClient, collection_id: int) -> ModelDetails | None:
    """A collection's model in detail, or None when it has no registered model."""
    model = registered_model_or_none(client, model_name(collection_id))
    if model is None:
        return None
    return ModelDetails(
        summary(client, model, collection_id),
        version_infos(client, model),
        tuple(read_history(model)),
    )


def version_trained_on(
    client: MlflowClient, collection_id: int, fingerprint: str, config_digest: str = ""
) -> str | None:
    """The version of the collection's model trained on exactly this data with exactly this
    configuration (`config_digest`, where given), if any."""
    details = show(client, collection_id)
    for info in details.versions if details else ():
        same_data = info.tags.get(VersionTag.TRAINING_DATA_FINGERPRINT) == fingerprint
        same_config = not config_digest or (
            info.tags.get(VersionTag.TRAINING_CONFIG_DIGEST) == config_digest
        )
        if same_data and same_config:
            return str(info.version)
    return None

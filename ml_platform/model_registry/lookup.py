"""Read the registry: a collection's champion, every collection model, one model in detail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel

from ml_platform.model_registry.aliases import (
    ModelNotFoundError,
    PromotionEntry,
    alias_version,
    read_history,
    registered_model_or_none,
)
from ml_platform.model_registry.artifacts import model_download_uri
from ml_platform.model_registry.naming import (
    MODEL_NAME_PREFIX,
    Alias,
    ModelSource,
    VersionTag,
    collection_id_of,
    model_name,
)
from ml_platform.model_registry.pyfunc_model import CollectionClassifierModel
from ml_platform.model_registry.tracking import fluent_tracking_uri

PAGE_SIZE = 200


@dataclass(frozen=True)
class ModelVersionInfo:
    """One model version with its aliases and tags."""

    name: str
    version: str
    aliases: tuple[str, ...]
    tags: dict[str, str]
    run_id: str | None
    created_at: datetime

    @property
    def model_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class ModelSummary:
    """A collection's registered model: which versions the aliases point at."""

    name: str
    collection_id: int | None
    champion_version: str | None
    challenger_version: str | None
    champion_tags: dict[str, str]
    ungated_versions: tuple[str, ...] = ()  # registered, no gate decision recorded (yet)


@dataclass(frozen=True)
class ModelDetails:
    """Everything about one collection's model: summary, versions, promotion history."""

    summary: ModelSummary
    versions: tuple[ModelVersionInfo, ...]
    history: tuple[PromotionEntry, ...]


def get_champion(client: MlflowClient, collection_id: int) -> ModelVersionInfo | None:
    """The champion version of a collection, or None (no model yet, or no champion)."""
    model = registered_model_or_none(client, model_name(collection_id))
    version = None if model is None else alias_version(model, Alias.CHAMPION)
    if model is None or version is None:
        return None
    aliases = _aliases_by_version(model).get(version, ())
    return _version_info(client.get_model_version(model.name, version), aliases)


def load_classifier(
    client: MlflowClient,
    collection_id: int,
    alias: Alias = Alias.CHAMPION,
    artifact_root: str | None = None,
) -> CollectionClassifierModel:
    """The python model a collection's alias points at (estimator, threshold, width).
    `artifact_root` finds its files after the home moved (`model_download_uri`)."""
    name = model_name(collection_id)
    model = registered_model_or_none(client, name)
    version = None if model is None else alias_version(model, alias)
    if version is None:
        raise ModelNotFoundError(f"collection {collection_id} has no {alias} model version")
    uri = model_download_uri(client, name, version, artifact_root)
    with fluent_tracking_uri(client.tracking_uri):
        python_model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    if not isinstance(python_model, CollectionClassifierModel):
        raise TypeError(
            f"{name} version {version} is a {type(python_model).__name__}, not a "
            "CollectionClassifierModel; re-register it with register_classifier"
        )
    return python_model


def list_models(client: MlflowClient) -> list[ModelSummary]:
    """Every `crawlr-collection-*` registered model, by collection id."""
    summaries = [_summary(client, model) for model in _collection_models(client)]
    return sorted(summaries, key=lambda s: (s.collection_id is None, s.collection_id, s.name))


def list_models_named(client: MlflowClient, prefix: str) -> list[ModelSummary]:
    """Every registered model whose name starts with `prefix` (e.g. `dataset-`), by name."""
    return sorted((_summary(client, m) for m in _collection_models(client, prefix)),
                  key=lambda s: s.name)  # fmt: skip


def show(client: MlflowClient, collection_id: int) -> ModelDetails | None:
    """A collection's model in detail, or None when it has no registered model."""
    name = model_name(collection_id)
    model = registered_model_or_none(client, name)
    if model is None:
        return None
    versions = client.search_model_versions(filter_string=f"name = '{name}'")
    aliases = _aliases_by_version(model)
    infos = sorted(
        (_version_info(v, aliases.get(str(v.version), ())) for v in versions),
        key=lambda v: int(v.version),
    )
    return ModelDetails(_summary(client, model), tuple(infos), tuple(read_history(model)))


def _collection_models(
    client: MlflowClient, prefix: str = MODEL_NAME_PREFIX
) -> list[RegisteredModel]:
    models: list[RegisteredModel] = []
    token: str | None = None
    while True:
        page = client.search_registered_models(
            filter_string=f"name LIKE '{prefix}%'",
            max_results=PAGE_SIZE,
            page_token=token,
        )
        models.extend(page)
        token = page.token
        if not token:
            return models


def _summary(client: MlflowClient, model: RegisteredModel) -> ModelSummary:
    champion = alias_version(model, Alias.CHAMPION)
    tags = {} if champion is None else dict(client.get_model_version(model.name, champion).tags)
    versions = client.search_model_versions(filter_string=f"name = '{model.name}'")
    ungated = sorted((str(v.version) for v in versions if _awaits_gate(v.tags)), key=int)
    return ModelSummary(
        name=model.name,
        collection_id=collection_id_of(model.name),
        champion_version=champion,
        challenger_version=alias_version(model, Alias.CHALLENGER),
        champion_tags=tags,
        ungated_versions=tuple(ungated),
    )


def _awaits_gate(tags: dict[str, str]) -> bool:
    """A trained version without a recorded gate decision (legacy imports have no gate)."""
    legacy = tags.get(VersionTag.SOURCE.value) == ModelSource.LEGACY.value
    return not legacy and VersionTag.GATE_DECISION.value not in tags


def _aliases_by_version(model: RegisteredModel) -> dict[str, tuple[str, ...]]:
    """Version -> its aliases (search results do not carry aliases; the model does)."""
    by_version: dict[str, tuple[str, ...]] = {}
    for alias, version in sorted(model.aliases.items()):
        by_version[str(version)] = (*by_version.get(str(version), ()), alias)
    return by_version


def _version_info(version: ModelVersion, aliases: tuple[str, ...]) -> ModelVersionInfo:
    return ModelVersionInfo(
        name=version.name,
        version=str(version.version),
        aliases=aliases,
        tags=dict(version.tags),
        run_id=version.run_id,
        created_at=datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC),
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

"""What both model families share in the registry: aliases, model version info, the champion,
summaries, and creating a version.

A registered model is any name (`crawlr-collection-<id>`, `dataset-<name>`); the families
(`collection/`, `dataset/`) give the names and tags, this module reads and writes versions.
Loading a version is `loading.load_python_model`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode

log = logging.getLogger(__name__)

PAGE_SIZE = 200
SOURCE_TAG = "source"  # where a version came from (`ModelSource`), on versions of both families
GATE_TAG = "gate_decision"  # set last, after the aliases moved: the gate is complete
HISTORY_TAG = "promotion_history"  # on the registered model (`aliases.read_history`)
PICKLE_DIGEST_TAG = "python_model_sha256"  # of a version's python_model.pkl (`loading.load_head`)


class Alias(StrEnum):
    """Registered-model aliases; stages are never used."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"


class ModelSource(StrEnum):
    """Where a model version came from (its `source` tag)."""

    TRAINING = "training"
    LEGACY = "legacy"
    FINETUNE = "finetune"


class ModelNotFoundError(LookupError):
    """No registered model, or no such version."""


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
        return version_uri(self.name, self.version)


@dataclass(frozen=True)
class ModelSummary:
    """A registered model: which versions the aliases point at."""

    name: str
    collection_id: int | None
    champion_version: str | None
    challenger_version: str | None
    champion_tags: dict[str, str]
    ungated_versions: tuple[str, ...] = ()  # registered, no gate decision recorded (yet)


@dataclass(frozen=True)
class RegisteredVersion:
    """Where a registered model version lives (either family)."""

    name: str
    version: str
    run_id: str
    experiment_id: str
    logged_model_uri: str
    tracking_uri: str

    @property
    def model_uri(self) -> str:
        return version_uri(self.name, self.version)

    @property
    def run_ui_path(self) -> str:
        """The run's path in the MLflow UI, to append to the UI's base URL."""
        return f"#/experiments/{self.experiment_id}/runs/{self.run_id}"


def version_uri(name: str, version: str) -> str:
    """`models:/<name>/<version>`, loadable with mlflow.pyfunc.load_model."""
    return f"models:/{name}/{version}"


def registered_model_or_none(client: MlflowClient, name: str) -> RegisteredModel | None:
    """The registered model `name`, or None when it does not exist (other errors propagate)."""
    try:
        return client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise


def alias_version(model: RegisteredModel, alias: Alias) -> str | None:
    """The version an alias points at, or None."""
    version = model.aliases.get(alias.value)
    return None if version is None else str(version)


def champion_version(client: MlflowClient, name: str) -> ModelVersionInfo | None:
    """The champion version of registered model `name`, or None (no model, or no champion)."""
    model = registered_model_or_none(client, name)
    version = None if model is None else alias_version(model, Alias.CHAMPION)
    if model is None or version is None:
        return None
    aliases = aliases_by_version(model).get(version, ())
    return version_info(client.get_model_version(model.name, version), aliases)


def version_infos(client: MlflowClient, model: RegisteredModel) -> tuple[ModelVersionInfo, ...]:
    """Every version of `model`, oldest first, with its aliases."""
    versions = client.search_model_versions(filter_string=f"name = '{model.name}'")
    aliases = aliases_by_version(model)
    infos = (version_info(v, aliases.get(str(v.version), ())) for v in versions)
    return tuple(sorted(infos, key=lambda v: int(v.version)))


def aliases_by_version(model: RegisteredModel) -> dict[str, tuple[str, ...]]:
    """Version -> its aliases (search results do not carry aliases; the model does)."""
    by_version: dict[str, tuple[str, ...]] = {}
    for alias, version in sorted(model.aliases.items()):
        by_version[str(version)] = (*by_version.get(str(version), ()), alias)
    return by_version


def version_info(version: ModelVersion, aliases: tuple[str, ...]) -> ModelVersionInfo:
    return ModelVersionInfo(
        name=version.name,
        version=str(version.version),
        aliases=aliases,
        tags=dict(version.tags),
        run_id=version.run_id,
        created_at=datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC),
    )


def registered_models(client: MlflowClient, prefix: str) -> list[RegisteredModel]:
    """Every registered model whose name starts with `prefix`, all pages."""
    return list(iter_registered_models(client, prefix))


def iter_registered_models(client: MlflowClient, prefix: str) -> Iterator[RegisteredModel]:
    """`registered_models` a page at a time: a caller that keeps a little of each model lets
    the page go before the next is read."""
    token: str | None = None
    while True:
        page = client.search_registered_models(
            filter_string=f"name LIKE '{prefix}%'", max_results=PAGE_SIZE, page_token=token
        )
        token = page.token
        yield from page
        del page  # before the next page is read
        if not token:
            return


def summary(
    client: MlflowClient, model: RegisteredModel, collection_id: int | None = None
) -> ModelSummary:
    champion = alias_version(model, Alias.CHAMPION)
    tags = {} if champion is None else dict(client.get_model_version(model.name, champion).tags)
    versions = client.search_model_versions(filter_string=f"name = '{model.name}'")
    ungated = sorted((str(v.version) for v in versions if awaits_gate(v.tags)), key=int)
    return ModelSummary(
        name=model.name,
        collection_id=collection_id,
        champion_version=champion,
        challenger_version=alias_version(model, Alias.CHALLENGER),
        champion_tags=tags,
        ungated_versions=tuple(ungated),
    )


def awaits_gate(tags: Mapping[str, str]) -> bool:
    """A trained version without a recorded gate decision (legacy imports have no gate)."""
    return tags.get(SOURCE_TAG) != ModelSource.LEGACY.value and GATE_TAG not in tags


def plain_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags with plain `str` keys and values (StrEnum keys confuse YAML serialisation)."""
    return {str(key): str(value) for key, value in tags.items()}


def create_version(
    client: MlflowClient,
    name: str,
    info: ModelInfo,
    run_id: str,
    tags: Mapping[str, str],
    model_tags: Mapping[str, str],
    description: str | None = None,
) -> str:
    """A new version of `name` (created with `model_tags` when missing) from a logged model."""
    _ensure_registered_model(client, name, model_tags)
    version = client.create_model_version(
        name=name, source=info.model_uri, run_id=run_id, tags=plain_tags(tags),
        model_id=info.model_id, description=description,
    )  # fmt: skip
    return str(version.version)


def registered_version(client: MlflowClient, name: str, version: str) -> RegisteredVersion:
    """A version already in the registry, described as a new one is."""
    found = client.get_model_version(name, version)
    run_id = found.run_id or ""
    experiment_id = str(client.get_run(run_id).info.experiment_id) if run_id else ""
    return RegisteredVersion(name=name, version=str(found.version), run_id=run_id,
                             experiment_id=experiment_id, logged_model_uri=str(found.source),
                             tracking_uri=client.tracking_uri)  # fmt: skip


def _ensure_registered_model(client: MlflowClient, name: str, tags: Mapping[str, str]) -> None:
    """Create the registered model unless it exists (also when created concurrently)."""
    try:
        client.create_registered_model(name, tags=plain_tags(tags))
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
        log.debug("registered model %s exists; adding a version", name)

"""What the two kinds of champion sources share (`model_cache.CollectionClassifiers`,
`dataset_models.DatasetClassifiers`): a registered model per key, read one by one or in
bulk (`champion_index.champion_versions_named`: one search for many keys' re-checks, run in
the registry's alias worker process, `alias_reads`, unless `BULK_READS_IN_WORKER` is off)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from mlflow import MlflowClient

from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.serving.alias_reads import AliasWorker, in_worker, worker_for
from ml_platform.serving.champion_index import champion_by_alias, champion_versions_named
from ml_platform.serving.errors import ErrorKind, ServingError

K = TypeVar("K", int, str)
BULK_READS_IN_WORKER = True  # off: searches in this process (tests counting client calls)


@dataclass(frozen=True)
class ModelFamily:
    """How a family of registered models is named by key, and what is said when a key's
    champion is missing (`key_phrase` and `remedy` are formats of `key`)."""

    name_of: Callable[[Any], str]  # the registered model's name: `model_name(3)`
    not_found: ErrorKind
    model_kind: str  # what the error says is missing: "champion classifier"
    key_phrase: str  # the key in messages: "collection {key}"
    remedy: str  # what to do about it: "train, register and promote one first"


@dataclass(frozen=True)
class RegisteredChampions(Generic[K]):
    """The champion of registered model `family.name_of(key)`, for a `RegistryCache`."""

    client: MlflowClient
    artifact_root: str | None = None

    family: ClassVar[ModelFamily]

    def name_of(self, key: K) -> str:
        return self.family.name_of(key)

    def describe(self, key: K) -> str:
        return self.family.key_phrase.format(key=key)

    def champion(self, key: K) -> ModelVersionInfo | None:
        return champion_by_alias(self.client, self.name_of(key))

    def champion_versions(self, keys: Sequence[K]) -> list[str | None]:
        """The version each key's `champion` alias names, in `keys` order (None: no model or
        no champion), read in bulk."""
        names = [self.name_of(key) for key in keys]
        found = champion_versions_named(self.client, names, self.worker())
        return [found.get(name) for name in names]

    def worker(self) -> AliasWorker | None:
        uri = self.client.tracking_uri  # serving's client: the same URI for the registry
        return worker_for(uri) if BULK_READS_IN_WORKER and in_worker(uri) else None

    def missing(self, key: K) -> ServingError:
        family, remedy = self.family, self.family.remedy.format(key=key)
        return ServingError(
            family.not_found,
            f"{self.describe(key)} has no {family.model_kind} (registered model "
            f"{self.name_of(key)!r} is missing or has no `champion` alias); {remedy}",
        )

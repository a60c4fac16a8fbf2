"""What the two kinds of champion sources share (`model_cache.CollectionClassifiers`,
`dataset_models.DatasetClassifiers`): a registered model per key, read one by one or in
bulk (`champion_index.champion_versions_named`: one search for many keys' re-checks, run in
the registry's alias worker process, `alias_reads`, unless `BULK_READS_IN_WORKER` is off)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from mlflow import MlflowClient

from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.serving.alias_reads import AliasWorker, in_worker, worker_for
from ml_platform.serving.champion_index import champion_by_alias, champion_versions_named
from ml_platform.serving.errors import ErrorKind, ServingError

K = TypeVar("K", int, str)
BULK_READS_IN_WORKER = True  # off: searches in this process (tests counting client calls)


@dataclass(frozen=True)
class RegisteredChampions(Generic[K]):
    """The champion of registered model `name_of(key)`, for a `RegistryCache`."""

    client: MlflowClient
    artifact_root: str | None = None

    not_found: ClassVar[ErrorKind]
    model_kind: ClassVar[str]  # what the error says is missing: "champion classifier"

    def name_of(self, key: K) -> str:
        raise NotImplementedError

    def describe(self, key: K) -> str:
        raise NotImplementedError

    def remedy(self, key: K) -> str:
        raise NotImplementedError

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
        return ServingError(
            self.not_found,
            f"{self.describe(key)} has no {self.model_kind} (registered model "
            f"{self.name_of(key)!r} is missing or has no `champion` alias); {self.remedy(key)}",
        )

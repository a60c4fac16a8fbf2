"""Champion classifiers of collections: loaded once, re-checked against the registry at most
every N seconds (`registry_cache.RegistryCache`, whose docstring gives the refresh rule).

`ChampionCache.get(collection_id)` answers from memory; `serving.dataset_models` is the same
cache over the fine-tuned dataset classifiers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from mlflow import MlflowClient

from ml_platform.model_registry.collection.naming import model_name
from ml_platform.model_registry.collection.pyfunc import CollectionClassifierModel
from ml_platform.model_registry.loading import VersionLocations, load_head
from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.serving.champion import Champion, champion_from
from ml_platform.serving.errors import ErrorKind
from ml_platform.serving.registered_champions import ModelFamily, RegisteredChampions
from ml_platform.serving.registry_cache import REGISTRY_ERRORS, RegistryCache

__all__ = ["REGISTRY_ERRORS", "ChampionCache", "CollectionClassifiers"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectionClassifiers(RegisteredChampions[int]):
    """The collection classifiers (`crawlr-collection-<id>`) as a `ChampionSource`; a head
    is read by `loading.load_head` (its pickle directly where it can), and each version's
    location is asked of the registry once, so a head unloaded and needed again costs about a
    millisecond."""

    locations: VersionLocations = field(default_factory=VersionLocations)

    family = ModelFamily(name_of=model_name, not_found=ErrorKind.COLLECTION_NOT_FOUND,
                         model_kind="champion classifier", key_phrase="collection {key}",
                         remedy="train, register and promote one first")  # fmt: skip

    def load(self, key: int, info: ModelVersionInfo) -> Champion:
        model = load_head(self.client, info, CollectionClassifierModel, self.artifact_root,
                          self.locations)  # fmt: skip
        return champion_from(info, model)


class ChampionCache(RegistryCache[int, Champion]):
    """Champion collection classifiers by collection id (over `CollectionClassifiers`)."""

    @property
    def client(self) -> MlflowClient:
        return self._collections.client

    @client.setter
    def client(self, client: MlflowClient) -> None:
        self.source = replace(self._collections, client=client)

    @property
    def _collections(self) -> CollectionClassifiers:
        assert isinstance(self.source, CollectionClassifiers)
        return self.source

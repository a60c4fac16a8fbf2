"""Dataset champions (fine-tuned `dataset-<name>` classifiers), cached exactly like collection
classifiers (`registry_cache.RegistryCache`): the alias is re-checked in the background at
most every `refresh_interval_s`, a new champion version (promotion or rollback) is loaded
without a restart, and a loaded model keeps being served while the registry is unreachable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml_platform.model_registry.dataset.lookup import load_dataset_model
from ml_platform.model_registry.dataset.naming import dataset_model_name
from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.services.label_provenance import LabelWeights, label_weights, labels_notice
from ml_platform.serving.errors import ErrorKind
from ml_platform.serving.registered_champions import ModelFamily, RegisteredChampions
from ml_platform.serving.registry_cache import RegistryCache

if TYPE_CHECKING:  # imports torch, which only a loaded dataset model needs
    from ml_platform.model_registry.dataset.pyfunc import FinetunedClassifierModel


@dataclass(frozen=True)
class DatasetModel:
    dataset: str
    name: str
    version: str
    model: FinetunedClassifierModel
    label_weights: LabelWeights = LabelWeights.UNKNOWN  # of its training labels (its tags)
    labels: str | None = None  # said in every answer when they are not trustworthy


@dataclass(frozen=True)
class DatasetClassifiers(RegisteredChampions[str]):
    """The fine-tuned dataset classifiers (`dataset-<name>`) as a `ChampionSource`."""

    family = ModelFamily(name_of=dataset_model_name, not_found=ErrorKind.DATASET_NOT_FOUND,
                         model_kind="champion model", key_phrase="dataset {key!r}",
                         remedy="run `ml-platform finetune --dataset {key}` first")  # fmt: skip

    def load(self, key: str, info: ModelVersionInfo) -> DatasetModel:
        model = load_dataset_model(self.client, info.name, info.version, self.artifact_root)
        return DatasetModel(key, info.name, info.version, model, label_weights(info.tags),
                            labels_notice(info.tags))  # fmt: skip


class DatasetModelCache(RegistryCache[str, DatasetModel]):
    """Loaded dataset champions by dataset name (over `DatasetClassifiers`)."""

    budget_name = "dataset"

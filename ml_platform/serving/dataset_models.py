"""Dataset champions (fine-tuned `dataset-<name>` classifiers), loaded and refreshed like
collection classifiers: the alias is re-checked at most every `refresh_interval_s`, a new
champion version (promotion or rollback) is loaded without a restart, and a loaded model
keeps being served while the registry is unreachable."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mlflow import MlflowClient

from ml_platform.model_registry.dataset_models.lookup import dataset_champion, load_dataset_model
from ml_platform.model_registry.dataset_models.naming import dataset_model_name
from ml_platform.model_registry.dataset_models.pyfunc import FinetunedClassifierModel
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.metrics import CacheKind, ServingMetrics
from ml_platform.serving.model_cache import REGISTRY_ERRORS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetModel:
    dataset: str
    name: str
    version: str
    model: FinetunedClassifierModel


@dataclass
class _Entry:
    loaded: DatasetModel
    checked_at: float


class DatasetModelCache:
    """Loaded dataset champions by dataset name; one loader per dataset at a time."""

    def __init__(
        self,
        client: MlflowClient,
        refresh_interval_s: float,
        metrics: ServingMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.refresh_interval_s = refresh_interval_s
        self._metrics = metrics
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, dataset: str) -> DatasetModel:
        entry = self._entries.get(dataset)
        if entry is not None and self._clock() - entry.checked_at < self.refresh_interval_s:
            self._metrics.hit(CacheKind.CLASSIFIER)
            return entry.loaded
        with self._guard:
            lock = self._locks.setdefault(dataset, threading.Lock())
        with lock:
            return self._refresh(dataset, self._entries.get(dataset))

    def _refresh(self, dataset: str, entry: _Entry | None) -> DatasetModel:
        now = self._clock()
        if entry is not None and now - entry.checked_at < self.refresh_interval_s:
            return entry.loaded  # refreshed while this request waited for the lock
        try:
            info = dataset_champion(self.client, dataset)
        except REGISTRY_ERRORS as exc:
            self._metrics.error(ErrorKind.REGISTRY_UNAVAILABLE)
            if entry is None:
                raise ServingError(
                    ErrorKind.REGISTRY_UNAVAILABLE,
                    f"the model registry is unreachable and dataset {dataset!r}'s model is not "
                    f"loaded yet: {exc}",
                ) from exc
            log.warning("registry check for dataset %s failed: %s", dataset, exc)
            self._entries[dataset] = _Entry(entry.loaded, now)
            return entry.loaded
        if info is None:
            self._entries.pop(dataset, None)
            raise ServingError(
                ErrorKind.DATASET_NOT_FOUND,
                f"dataset {dataset!r} has no champion model (registered model "
                f"{dataset_model_name(dataset)!r} is missing or has no `champion` alias); run "
                f"`ml-platform finetune --dataset {dataset}` first",
            )
        if entry is not None and entry.loaded.version == info.version:
            self._entries[dataset] = _Entry(entry.loaded, now)
            return entry.loaded
        loaded = DatasetModel(dataset, info.name, info.version, self._load(info.name, info.version))
        self._entries[dataset] = _Entry(loaded, now)
        return loaded

    def _load(self, name: str, version: str) -> FinetunedClassifierModel:
        start = time.perf_counter()
        try:
            model = load_dataset_model(self.client, name, version)
        except Exception as exc:  # any failure to load is reported, never served around
            log.exception("loading %s version %s failed", name, version)
            self._metrics.error(ErrorKind.MODEL_UNAVAILABLE)
            raise ServingError(
                ErrorKind.MODEL_UNAVAILABLE, f"could not load {name} version {version}: {exc}"
            ) from exc
        self._metrics.loaded(CacheKind.CLASSIFIER)
        log.info("loaded %s version %s in %.2f s", name, version, time.perf_counter() - start)
        return model

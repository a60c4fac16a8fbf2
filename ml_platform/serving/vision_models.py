"""Embedders and the detector of one server: each loaded once, lazily, under a lock.

Inference on one model is serialised by that model's lock (torch modules and OpenCV
detectors are not guaranteed re-entrant); different models run concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ml_platform.serving.batching import BatchingConfig, DynamicBatcher
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.lazy import LOAD_ERRORS, LazyModels, Loaded
from ml_platform.serving.metrics import CacheKind, ServingMetrics
from ml_platform.serving.model_budget import ModelBudget
from ml_platform.settings import Settings
from ml_platform.vision.detectors import DetectionResult, get_detector
from ml_platform.vision.embedders import (
    Embedder,
    EmbedderUnavailableError,
    build_embedder,
    build_random_embedder,
    known_embedding_types,
)
from ml_platform.vision.embedders.backends import Backend
from ml_platform.vision.embedders.by_name import BUILTIN_NAMES
from ml_platform.vision.embedders.identity import EmbedderIdentity, EmbedderKey
from ml_platform.vision.embedders.options import embedder_options


class ProminentDetector(Protocol):
    """What serving needs of `vision.detectors.Detector`."""

    def detect(self, image: Image.Image) -> DetectionResult: ...


# The factory gets the key's string form (`EmbedderKey`: `<type>[@random][:<backend>]`).
EmbedderFactory = Callable[[str], Embedder]
DetectorFactory = Callable[[], ProminentDetector]
DETECTOR_KEY = "detector"


@dataclass(frozen=True)
class ModelFactories:
    """What builds a server's embedders and its detector; None: `build_embedder` with the
    settings' options, `get_detector` with the settings' detector files (tests and tuning pass
    their own)."""

    embedder: EmbedderFactory | None = None
    detector: DetectorFactory | None = None


SETTINGS_FACTORIES = ModelFactories()


class VisionModels:
    """Lazily loaded embedders (by `EmbedderKey`) and the detector. This is the app's only
    embedder cache: the default factory builds uncached embedders.

    The factories default to what the settings say (`ModelFactories`).
    """

    def __init__(
        self,
        settings: Settings,
        metrics: ServingMetrics,
        factories: ModelFactories = SETTINGS_FACTORIES,
        budget: ModelBudget | None = None,
    ) -> None:
        options = embedder_options(settings)
        self._options = options
        self._embedder_factory = factories.embedder or self._default_embedder
        self._custom_factory = factories.embedder is not None
        self._detector_factory = factories.detector or (
            lambda: get_detector(
                yunet_model=settings.yunet_model, person_onnx=settings.person_detector_onnx
            )
        )
        self._known: list[str] | None = None
        errors: tuple[type[BaseException], ...] = (EmbedderUnavailableError, *LOAD_ERRORS)
        self._metrics = metrics
        self._embedders: LazyModels[Embedder] = LazyModels(
            CacheKind.EMBEDDER, metrics, errors, budget, on_unload=self._drop_batcher
        )
        self._detectors: LazyModels[ProminentDetector] = LazyModels(
            CacheKind.DETECTOR, metrics, errors
        )
        self._batching = BatchingConfig(settings.serve_batch_max, settings.serve_batch_wait_ms)
        self._batchers: dict[str, DynamicBatcher] = {}
        self._batchers_lock = threading.Lock()

    def known_embedding_types(self) -> list[str]:
        """Built-in and configured embedding types (read once: the types file is not re-read)."""
        if self._known is None:
            self._known = sorted(known_embedding_types(self._options))
        return self._known

    def embedder(self, key: str | EmbedderKey) -> Embedder:
        """The embedder of an embedding type (or key); 422 when unknown, 503 when it cannot
        load."""
        return self._embedder(str(key)).model

    def embedder_on(self, key: EmbedderKey, backend: Backend | None) -> tuple[str, Embedder]:
        """The embedder of `key` running on `backend` (None: the type's native one), as
        (key, embedder): the configured one when it is set to, or already runs on, that
        backend; else that backend's variant (the configured one is then never loaded). A
        factory given to the constructor is asked for the configured key first."""
        native = Backend.TORCH if key.embedding_type in BUILTIN_NAMES else Backend.ONNX
        wanted = backend or native
        if self._options.backend_for(key.embedding_type) is wanted:
            return str(key), self.embedder(key)
        if self._custom_factory or str(key) in self._embedders.loaded_keys():
            configured = self.embedder(key)
            if EmbedderIdentity.of(configured).backend == backend:
                return str(key), configured
        variant = key.on(wanted)
        return str(variant), self.embedder(variant)

    def embed(self, embedding_type: str, image: Image.Image) -> NDArray[np.float32]:
        """One image's embedding, float32 `[dim]` (batched with concurrent requests)."""
        loaded = self._embedder(embedding_type)
        if self._batching.enabled:
            return self._batcher(embedding_type, loaded).embed(image)
        with loaded.lock:
            vectors = loaded.model.embed([image])
        return np.asarray(vectors[0], dtype=np.float32)

    def close(self) -> None:
        """Stop the batching threads."""
        with self._batchers_lock:
            batchers, self._batchers = list(self._batchers.values()), {}
        for batcher in batchers:
            batcher.close()

    def _batcher(self, key: str, loaded: Loaded[Embedder]) -> DynamicBatcher:
        batcher = self._batchers.get(key)
        if batcher is None or batcher.embedder is not loaded.model:
            with self._batchers_lock:
                batcher = self._batchers.get(key)
                if batcher is None or batcher.embedder is not loaded.model:
                    batcher = DynamicBatcher(
                        loaded.model, loaded.lock, self._batching, self._metrics
                    )
                    self._batchers[key] = batcher
        return batcher

    def _drop_batcher(self, key: str) -> None:
        """The embedder `key` was unloaded: its batcher stops (requests already queued
        are answered; later ones on it run alone) and lets go of the model."""
        with self._batchers_lock:
            batcher = self._batchers.pop(key, None)
        if batcher is not None:
            batcher.stop()

    def detect(self, image: Image.Image) -> DetectionResult:
        loaded = self.detector()
        with loaded.lock:
            return loaded.model.detect(image)

    def detector(self) -> Loaded[ProminentDetector]:
        """The detector, loaded on first use; 503 when it cannot load."""
        return self._detectors.get(DETECTOR_KEY, self._detector_factory)

    def problems(self) -> list[str]:
        """Models whose last load attempt failed."""
        return [*self._embedders.problems(), *self._detectors.problems()]

    def detector_problems(self) -> list[str]:
        return self._detectors.problems()

    def detector_failed(self) -> dict[str, str]:
        return self._detectors.failed()

    def embedders_failed(self) -> dict[str, str]:
        return self._embedders.failed()

    def _embedder(self, key: str) -> Loaded[Embedder]:
        known = self.known_embedding_types()
        embedding_type = EmbedderKey.parse(key).embedding_type
        if embedding_type not in known:
            raise ServingError(
                ErrorKind.UNKNOWN_EMBEDDING_TYPE,
                f"unknown embedding_type {embedding_type!r}; known: {known}",
            )
        return self._embedders.get(key, lambda: self._embedder_factory(key))

    def _default_embedder(self, key: str) -> Embedder:
        """`build_embedder`, or for a random key the seeded random-weight embedder; a key's
        backend pins the backend."""
        wanted = EmbedderKey.parse(key)
        options = self._options
        if wanted.backend is not None:
            options = options.with_backend(wanted.embedding_type, wanted.backend)
        if not wanted.random:
            return build_embedder(wanted.embedding_type, options)
        try:
            return build_random_embedder(wanted.embedding_type, options=options)
        except ValueError as exc:
            raise EmbedderUnavailableError(str(exc)) from exc

"""Embedders and the detector of one server: each loaded once, lazily, under a lock.

Inference on one model is serialised by that model's lock (torch modules and OpenCV
detectors are not guaranteed re-entrant); different models run concurrently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ml_platform.defs.resources.models import embedder_options
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.lazy import LOAD_ERRORS, LazyModels, Loaded
from ml_platform.serving.metrics import CacheKind, ServingMetrics
from ml_platform.settings import Settings
from ml_platform.vision.detectors import DetectionResult, get_detector
from ml_platform.vision.embedders import (
    Embedder,
    EmbedderUnavailableError,
    build_random_embedder,
    get_embedder,
    known_embedding_types,
)


class ProminentDetector(Protocol):
    """What serving needs of `vision.detectors.Detector`."""

    def detect(self, image: Image.Image) -> DetectionResult: ...


EmbedderFactory = Callable[[str], Embedder]
# "<embedding type>@random": the seeded random-weight embedder a weights=random champion was
# trained on (e.g. by the offline demo); its answers are consistent with it and labelled so.
RANDOM_VARIANT = "@random"


def random_variant(embedding_type: str) -> str:
    return f"{embedding_type}{RANDOM_VARIANT}"


DetectorFactory = Callable[[], ProminentDetector]
DETECTOR_KEY = "detector"


class VisionModels:
    """Lazily loaded embedders (by embedding type) and the detector.

    The factories default to `vision.embedders.get_embedder` with the settings' options and
    `vision.detectors.get_detector` with the settings' detector files.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: ServingMetrics,
        embedder_factory: EmbedderFactory | None = None,
        detector_factory: DetectorFactory | None = None,
    ) -> None:
        options = embedder_options(settings)
        self._options = options
        self._embedder_factory = embedder_factory or self._default_embedder
        self._detector_factory = detector_factory or (
            lambda: get_detector(
                yunet_model=settings.yunet_model, person_onnx=settings.person_detector_onnx
            )
        )
        self._known: list[str] | None = None
        errors: tuple[type[BaseException], ...] = (EmbedderUnavailableError, *LOAD_ERRORS)
        self._embedders: LazyModels[Embedder] = LazyModels(CacheKind.EMBEDDER, metrics, errors)
        self._detectors: LazyModels[ProminentDetector] = LazyModels(
            CacheKind.DETECTOR, metrics, errors
        )

    def known_embedding_types(self) -> list[str]:
        """Built-in and configured embedding types (read once: the types file is not re-read)."""
        if self._known is None:
            self._known = sorted(known_embedding_types(self._options))
        return self._known

    def embedder(self, embedding_type: str) -> Embedder:
        """The embedder of `embedding_type`; 422 when unknown, 503 when it cannot load."""
        return self._embedder(embedding_type).model

    def embed(self, embedding_type: str, image: Image.Image) -> NDArray[np.float32]:
        """One image's embedding, float32 `[dim]`."""
        loaded = self._embedder(embedding_type)
        with loaded.lock:
            vectors = loaded.model.embed([image])
        return np.asarray(vectors[0], dtype=np.float32)

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

    def embedder_problems(self) -> list[str]:
        return self._embedders.problems()

    def _embedder(self, key: str) -> Loaded[Embedder]:
        known = self.known_embedding_types()
        embedding_type = key.removesuffix(RANDOM_VARIANT)
        if embedding_type not in known:
            raise ServingError(
                ErrorKind.UNKNOWN_EMBEDDING_TYPE,
                f"unknown embedding_type {embedding_type!r}; known: {known}",
            )
        return self._embedders.get(key, lambda: self._embedder_factory(key))

    def _default_embedder(self, key: str) -> Embedder:
        """`get_embedder`, or for `<type>@random` the seeded random-weight embedder."""
        embedding_type = key.removesuffix(RANDOM_VARIANT)
        if embedding_type == key:
            return get_embedder(key, self._options)
        try:
            return build_random_embedder(embedding_type, options=self._options)
        except ValueError as exc:
            raise EmbedderUnavailableError(str(exc)) from exc

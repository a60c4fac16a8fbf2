"""Heavy models (embedders, detectors): configured from settings; each embedder is built once
per resource instance (its `EmbedderCache`, not a process global)."""

from __future__ import annotations

from pydantic import PrivateAttr

from ml_platform.defs.resources.base import PlatformResource
from ml_platform.settings import Settings
from ml_platform.vision.detectors import Detector, get_detector
from ml_platform.vision.embedders import (
    Embedder,
    EmbedderCache,
    known_embedding_types,
)
from ml_platform.vision.embedders.options import embedder_options


class ModelsResource(PlatformResource):
    """Embedders and detectors. `allow_random_weights` overrides the setting when given."""

    allow_random_weights: bool | None = None
    _embedders: EmbedderCache = PrivateAttr(default_factory=EmbedderCache)

    def effective_settings(self) -> Settings:
        settings = self.settings()
        if self.allow_random_weights is not None:
            settings = settings.model_copy(
                update={"allow_random_weights": self.allow_random_weights}
            )
        return settings

    def known_embedding_types(self) -> list[str]:
        return known_embedding_types(embedder_options(self.effective_settings()))

    def embedder(self, name: str) -> Embedder:
        return self._embedders.get(name, embedder_options(self.effective_settings()))

    def detector(self) -> Detector:
        settings = self.settings()
        return get_detector(
            yunet_model=settings.yunet_model, person_onnx=settings.person_detector_onnx
        )

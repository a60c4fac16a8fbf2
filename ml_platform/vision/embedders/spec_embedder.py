"""What the torch and ONNX Runtime embedders share: identity, preprocessing, batching."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from ml_platform.vision.embedders.base import embed_in_batches
from ml_platform.vision.embedders.identity import EmbedderIdentity
from ml_platform.vision.preprocess import PreprocessSpec, preprocess_images


class SpecEmbedder:
    """An embedder whose preprocessing is its ``PreprocessSpec``, run ``batch_size`` images
    at a time; subclasses give ``dim`` and ``embed_preprocessed``."""

    # preprocess() is exactly preprocess_images(images, self.spec): the pipeline may fill its
    # batch buffer with preprocess_into itself (wrappers that change the input do not say so)
    PREPROCESS_BY_SPEC = True
    dim: int

    def __init__(self, identity: EmbedderIdentity, spec: PreprocessSpec, batch_size: int) -> None:
        self.name = identity.embedding_type
        self.model_id = identity.model_id
        self.revision = identity.revision
        self.weights = identity.weights
        self.spec = spec
        self.batch_size = batch_size

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        return preprocess_images(images, self.spec)

    def embed_preprocessed(self, pixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define embed_preprocessed")

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return embed_in_batches(
            images, self.batch_size, self.dim, self.preprocess, self.embed_preprocessed
        )

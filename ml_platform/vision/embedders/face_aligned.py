"""Custom ONNX face models with ``align: five_point``: ArcFace alignment before the model.

The wrapped embedder is unchanged; this only replaces each face crop by its aligned chip
(eye centres, nose tip and mouth corners from dlib's 68-point predictor on the face box,
warped onto the standard ArcFace reference scaled to ``input_size``) before the type's own
preprocessing. Needs the ``[faces]`` extra for the landmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from ml_platform.vision.embedders.base import embed_in_batches
from ml_platform.vision.embedders.custom_types import AlignMode, CustomEmbeddingType
from ml_platform.vision.embedders.identity import EmbedderIdentity
from ml_platform.vision.embedders.onnx import OnnxEmbedder
from ml_platform.vision.faces.landmarks import arcface_chip, crop_face_box
from ml_platform.vision.faces.model_files import FaceModelFile, load_model

REVISION_SUFFIX = "+align-five-point"


class FivePointAlignedEmbedder:
    """An ONNX embedder fed ArcFace-aligned chips of face crops."""

    def __init__(self, inner: OnnxEmbedder) -> None:
        load_model(FaceModelFile.LANDMARKS_68)  # fail at load time without the extra
        self.inner = inner
        self.name, self.model_id, self.dim = inner.name, inner.model_id, inner.dim
        # aligned vectors differ: the suffix is part of the checkpoint (before any backend)
        inner_identity = EmbedderIdentity.of(inner)
        checkpoint = f"{inner_identity.checkpoint}{REVISION_SUFFIX}"
        self.revision = replace(inner_identity, checkpoint=checkpoint).revision
        self.weights = inner.weights
        self.spec = inner.spec
        self.batch_size = inner.batch_size

    def __repr__(self) -> str:
        return f"FivePointAlignedEmbedder({self.inner!r})"

    def aligned(self, image: Image.Image) -> Image.Image:
        """The ArcFace-aligned chip of one face crop, at the model's input size."""
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        height, width = self.spec.crop_height, self.spec.crop_width
        return Image.fromarray(arcface_chip(rgb, crop_face_box(rgb), height, width).chip)

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.inner.preprocess([self.aligned(image) for image in images])

    def embed_preprocessed(self, pixels: np.ndarray) -> np.ndarray:
        return self.inner.embed_preprocessed(pixels)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return embed_in_batches(
            images, self.batch_size, self.dim, self.preprocess, self.embed_preprocessed
        )


def with_alignment(
    embedder: OnnxEmbedder, custom: CustomEmbeddingType
) -> OnnxEmbedder | FivePointAlignedEmbedder:
    """``embedder`` as declared: wrapped when the type asks for five-point alignment."""
    if custom.align is AlignMode.FIVE_POINT:
        return FivePointAlignedEmbedder(embedder)
    return embedder

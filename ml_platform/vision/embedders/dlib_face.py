"""``embed_face_dlib_resnet_v1``: dlib's face-recognition ResNet, 128-d, L2-normalised.

Input: a ``prominent_face`` crop as the platform cuts it (the detected face box grown by
``vision.crops.DEFAULT_MARGIN`` per side). ``preprocess`` finds dlib's 5 landmarks on the
face box inside the crop (twice: the second time on the box dlib's own detector would draw
around the first points, ``faces.landmarks.dlib_five_points``) and warps the face onto dlib's
150x150 chip; ``embed_preprocessed`` runs the ResNet (``dlib_face_recognition_resnet_model_v1``,
99.38% on LFW per dlib with 100 random jitters) on fixed views of each chip
(``faces.views``: the chip and its mirror by default) and averages the unit descriptors
(a deterministic test-time jitter: LFW figures in docs/embedding_types.md).
Needs the ``[faces]`` extra (dlib-bin, face-recognition-models).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np
from PIL import Image

from ml_platform.domain import BuiltinEmbeddingType, WeightsStatus
from ml_platform.vision.embedders.base import (
    EmbedderOptions,
    embed_in_batches,
    file_sha256,
    l2_normalize,
)
from ml_platform.vision.faces.align import DLIB_CHIP_SIZE
from ml_platform.vision.faces.landmarks import crop_face_box, dlib_chip
from ml_platform.vision.faces.model_files import FaceModelFile, load_model, model_path
from ml_platform.vision.faces.views import view_chips, view_set

log = logging.getLogger(__name__)

NAME = BuiltinEmbeddingType.FACE_DLIB_RESNET_V1.value
MODEL_ID = "dlib/dlib_face_recognition_resnet_model_v1"
DIM = 128
# Part of the revision: vectors of an older alignment differ, so they are not reused. v2: the
# 5 points found again on a box in the predictor's own convention, dlib's get_face_chip.
ALIGNMENT = "align-v2"
# Part of the revision too: a face's vector is the mean of the unit descriptors of the views
# of its chip (``faces.views.VIEW_SETS``). "mirror" (the chip and its mirror) keeps its old
# suffix ``+mirror``; "plain" (the network once per face) adds none; another set adds
# ``+views-<name>``.
DEFAULT_VIEWS = "mirror"
_net_lock = threading.Lock()  # a dlib network is not re-entrant; one forward pass at a time


class DlibFaceEmbedder:
    """Face crops -> aligned 150 px chips -> 128-d unit vectors (pretrained, CPU)."""

    name = NAME
    model_id = MODEL_ID
    weights = WeightsStatus.PRETRAINED
    dim = DIM

    def __init__(self, options: EmbedderOptions, views: str = DEFAULT_VIEWS) -> None:
        files = [model_path(FaceModelFile.RESNET_V1), model_path(FaceModelFile.LANDMARKS_5)]
        self.views, self.view_set = views, view_set(views)
        self.revision = "+".join([f"sha256:{file_sha256(files)}", ALIGNMENT, *views_suffix(views)])
        self.batch_size = options.batch_size
        self._net = load_model(FaceModelFile.RESNET_V1)
        load_model(FaceModelFile.LANDMARKS_5)
        if options.device != "cpu":
            log.info("%s runs on the CPU (dlib-bin has no CUDA); device=%s ignored", NAME,
                     options.device)  # fmt: skip

    def __repr__(self) -> str:
        return f"DlibFaceEmbedder({self.revision})"

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Aligned chips, [n, 150, 150, 3] uint8 RGB."""
        chips = [_chip(image) for image in images]
        if not chips:
            return np.zeros((0, DLIB_CHIP_SIZE, DLIB_CHIP_SIZE, 3), dtype=np.uint8)
        return np.stack(chips)

    def embed_preprocessed(self, pixels: np.ndarray) -> np.ndarray:
        """[n, 128] float32 unit vectors for [n, 150, 150, 3] uint8 chips: the views of
        ``view_set`` L2-normalised, averaged, L2-normalised."""
        return l2_normalize(l2_normalize(self.view_descriptors(pixels)).mean(axis=0))

    def view_descriptors(self, pixels: np.ndarray) -> np.ndarray:
        """[views, n, 128] float32 raw descriptors of each view of ``view_set`` (in its
        order) of each chip; one network call for all of them."""
        if pixels.ndim != 4 or pixels.shape[1:] != (DLIB_CHIP_SIZE, DLIB_CHIP_SIZE, 3):
            raise ValueError(f"{NAME} takes [n, 150, 150, 3] chips, got {pixels.shape}")
        views = view_chips(np.asarray(pixels, np.uint8), self.view_set)
        raw = self.descriptors(list(views.reshape(-1, *pixels.shape[1:])))
        return raw.reshape(len(self.view_set), len(pixels), DIM)

    def descriptors(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """[k, 128] float32 raw descriptors of ``k`` 150 px chips, one network call."""
        if not chips:
            return np.zeros((0, DIM), dtype=np.float32)
        contiguous = [np.ascontiguousarray(c, dtype=np.uint8) for c in chips]
        with _net_lock:
            found = self._net.compute_face_descriptor(contiguous)
        return np.asarray([np.asarray(d) for d in found], np.float32).reshape(len(chips), DIM)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return embed_in_batches(
            images, self.batch_size, self.dim, self.preprocess, self.embed_preprocessed
        )


def views_suffix(views: str) -> list[str]:
    """The revision's suffix for a view set: none for one run, ``mirror`` for the chip and its
    mirror (the suffix before other sets existed), ``views-<name>`` for the others."""
    view_set(views)  # known, or a ValueError naming the known sets
    return {"plain": [], "mirror": ["mirror"]}.get(views, [f"views-{views}"])


def _chip(image: Image.Image) -> np.ndarray:
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return dlib_chip(rgb, crop_face_box(rgb)).chip


def load_dlib_face(options: EmbedderOptions) -> DlibFaceEmbedder:
    """The pretrained dlib face embedder (``DEFAULT_VIEWS`` averaged); FacesExtraMissingError
    without the extra."""
    return DlibFaceEmbedder(options)

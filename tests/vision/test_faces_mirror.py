"""Test-time mirroring in embed_face_dlib_resnet_v1: the chip and its mirror, averaged.

Real dlib models (the [faces] extra: dlib-bin, face-recognition-models) on real shared photos;
skips with the reason when either is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml_platform.vision.decode import load_rgb
from ml_platform.vision.embedders import EmbedderOptions
from ml_platform.vision.embedders.backends import split_revision
from ml_platform.vision.embedders.dlib_face import DlibFaceEmbedder
from ml_platform.vision.embedders.identity import EmbedderIdentity
from ml_platform.vision.faces.model_files import FaceModelFile, FacesExtraMissingError, model_path

pytest.importorskip("dlib", reason="the [faces] extra (dlib-bin) is not installed")

FACE = "embed_face_dlib_resnet_v1"
# Prominent-face crops (YuNet box grown by 20 %) of two photos of the same person.
CROPS = {"img1.jpg": (293, 36, 1148, 1184), "img2.jpg": (505, 65, 1052, 802)}


@pytest.fixture(scope="module")
def models() -> None:
    for file in (FaceModelFile.RESNET_V1, FaceModelFile.LANDMARKS_5):
        try:
            model_path(file)
        except FacesExtraMissingError as exc:
            pytest.skip(f"dlib's model files are not installed: {exc}")


@pytest.fixture(scope="module")
def mirrored(models: None) -> DlibFaceEmbedder:
    return DlibFaceEmbedder(EmbedderOptions(), views="mirror")


@pytest.fixture(scope="module")
def plain(models: None) -> DlibFaceEmbedder:
    return DlibFaceEmbedder(EmbedderOptions(), views="plain")


@pytest.fixture
def chips(shared_dir: Path, mirrored: DlibFaceEmbedder) -> np.ndarray:
    faces = shared_dir / "data" / "faces"
    crops = [load_rgb(faces / name).crop(box) for name, box in CROPS.items()]
    return mirrored.preprocess(crops)


def test_mirror_vectors_are_unit_length(mirrored: DlibFaceEmbedder, chips: np.ndarray) -> None:
    assert mirrored.views == "mirror"
    vectors = mirrored.embed_preprocessed(chips)
    assert vectors.shape == (2, 128) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert mirrored.embed_preprocessed(chips[:0]).shape == (0, 128)


def test_the_mirror_average_differs_from_the_plain_chip_but_not_by_much(
    mirrored: DlibFaceEmbedder, plain: DlibFaceEmbedder, chips: np.ndarray
) -> None:
    cosines = np.sum(mirrored.embed_preprocessed(chips) * plain.embed_preprocessed(chips), axis=1)
    assert np.all(cosines < 1 - 1e-4), cosines
    assert np.all(cosines > 0.95), cosines  # the same face, well inside same-person distance


def test_the_mirror_average_is_invariant_to_mirroring_the_chip(
    mirrored: DlibFaceEmbedder, plain: DlibFaceEmbedder, chips: np.ndarray
) -> None:
    flipped = np.ascontiguousarray(chips[:, :, ::-1])
    assert np.allclose(mirrored.embed_preprocessed(flipped), mirrored.embed_preprocessed(chips),
                       atol=1e-6)  # fmt: skip
    # the plain chip is not: the invariance above is the averaging's doing
    gap = np.abs(plain.embed_preprocessed(flipped) - plain.embed_preprocessed(chips)).max()
    assert gap > 1e-3


def test_the_views_are_the_chip_and_its_mirror_and_their_unit_mean_is_the_vector(
    mirrored: DlibFaceEmbedder, plain: DlibFaceEmbedder, chips: np.ndarray
) -> None:
    views = mirrored.view_descriptors(chips)
    assert views.shape == (2, 2, 128)
    assert np.allclose(views[0], plain.view_descriptors(chips)[0], atol=1e-6)
    flipped = plain.view_descriptors(np.ascontiguousarray(chips[:, :, ::-1]))[0]
    assert np.allclose(views[1], flipped, atol=1e-6)
    mean = (views / np.linalg.norm(views, axis=2, keepdims=True)).mean(axis=0)
    expected = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    assert np.allclose(mirrored.embed_preprocessed(chips), expected, atol=1e-6)


def test_mirroring_is_part_of_the_identity(
    mirrored: DlibFaceEmbedder, plain: DlibFaceEmbedder
) -> None:
    new, old = EmbedderIdentity.of(mirrored), EmbedderIdentity.of(plain)
    assert new != old and new.revision != old.revision
    assert new.revision.endswith("+align-v2+mirror") and old.revision.endswith("+align-v2")
    assert new.backend is None and split_revision(new.revision).checkpoint == new.revision
    assert EmbedderIdentity.from_tags(new.to_tags()) == new

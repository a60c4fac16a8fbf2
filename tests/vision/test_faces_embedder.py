"""embed_face_dlib_resnet_v1 on real photos, the [faces] extra, and align: five_point."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml_platform.domain import DerivativeType
from ml_platform.vision.crops import crop_for
from ml_platform.vision.decode import load_rgb
from ml_platform.vision.detectors import get_detector
from ml_platform.vision.embedders import (
    Embedder,
    EmbedderOptions,
    EmbedderUnavailableError,
    build_embedder,
    known_embedding_types,
)
from ml_platform.vision.faces import model_files as models

pytest.importorskip("dlib", reason="the [faces] extra (dlib-bin) is not installed")

FACE = "embed_face_dlib_resnet_v1"
# Crops of the prominent face (YuNet box grown by 20%) and golden values of the unit vector
# (alignment v2: landmarks re-seated on dlib's box convention, dlib's get_face_chip; the chip
# and its mirror averaged).
GOLDEN = {
    "img1.jpg": ((293, 36, 1148, 1184), [-0.0917, 0.0226, 0.0839, -0.0629, -0.0708, -0.0438]),
    "img2.jpg": ((505, 65, 1052, 802), [-0.0931, 0.0328, 0.1021, -0.0531, -0.0657, -0.0374]),
}
GOLDEN_COSINE = 0.9782  # img1 and img2 show the same person
TOLERANCE = 3e-3
SUBSET = ["img1.jpg", "img2.jpg", "img10.jpg", "img13.jpg", "img14.jpg", "img16.jpg",
          "img17.jpg", "img20.jpg", "img21.jpg", "img25.jpg"]  # fmt: skip


@pytest.fixture
def faces_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "faces"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return build_embedder(FACE, EmbedderOptions())


def golden_crops(faces_dir: Path) -> list[Image.Image]:
    return [load_rgb(faces_dir / name).crop(box) for name, (box, _) in GOLDEN.items()]


def test_face_type_is_listed_with_the_builtins() -> None:
    assert FACE in known_embedding_types(EmbedderOptions())


def test_vectors_are_128_d_float32_and_unit_length(embedder: Embedder, faces_dir: Path) -> None:
    crops = golden_crops(faces_dir)
    chips = embedder.preprocess(crops)
    assert chips.shape == (2, 150, 150, 3) and chips.dtype == np.uint8
    vectors = embedder.embed(crops)
    assert vectors.shape == (2, 128) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 128)
    assert embedder.weights.value == "pretrained" and embedder.revision.startswith("sha256:")


def test_golden_vectors_on_two_shared_photos(embedder: Embedder, faces_dir: Path) -> None:
    vectors = embedder.embed(golden_crops(faces_dir))
    for vector, (_, leading) in zip(vectors, GOLDEN.values(), strict=True):
        assert np.allclose(vector[: len(leading)], leading, atol=TOLERANCE), vector[:6]
    assert float(vectors[0] @ vectors[1]) == pytest.approx(GOLDEN_COSINE, abs=TOLERANCE)


def test_same_person_is_closer_than_different_people(
    embedder: Embedder, faces_dir: Path, yunet_onnx: Path
) -> None:
    detector = get_detector(yunet_model=yunet_onnx, person_onnx=None)
    vectors = {}
    for name in SUBSET:
        image = load_rgb(faces_dir / name)
        crop = crop_for(image, DerivativeType.PROMINENT_FACE, detector.detect(image))
        assert crop is not None, f"no face found in {name}"
        vectors[name] = embedder.embed([crop])[0]
    with (faces_dir / "pairs.csv").open() as handle:
        pairs = [r for r in csv.DictReader(handle) if {r["file_x"], r["file_y"]} <= set(SUBSET)]

    def distance(row: dict[str, str]) -> float:
        return float(np.linalg.norm(vectors[row["file_x"]] - vectors[row["file_y"]]))

    same = [distance(r) for r in pairs if r["Decision"] == "Yes"]
    different = [distance(r) for r in pairs if r["Decision"] == "No"]
    assert len(same) >= 4 and len(different) >= 20
    assert max(same) < min(different)


def test_without_the_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` now raises ImportError
    monkeypatch.setattr(models, "_loaded", {})
    with pytest.raises(EmbedderUnavailableError, match=r"ml_platform\[faces\]"):
        build_embedder(FACE, EmbedderOptions())


def test_without_the_model_files_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == models.MODELS_PACKAGE else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(models.FacesExtraMissingError, match=r"face_recognition_models.*\[faces\]"):
        models.model_path(models.FaceModelFile.RESNET_V1)

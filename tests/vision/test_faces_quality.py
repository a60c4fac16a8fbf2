"""Face quality parts and score: pure functions on chips and landmarks."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ml_platform.domain import Box
from ml_platform.learning.hero import (
    HeroCandidate,
    HeroPart,
    HeroWeights,
    QualityParts,
    score_candidate,
)
from ml_platform.services.perception import face_quality_or_none
from ml_platform.settings import Settings
from ml_platform.store.detections_table import DetectionRow, read_detections, write_detections
from ml_platform.store.layout import Layout
from ml_platform.vision.detectors import DetectionResult
from ml_platform.vision.faces import model_files as models
from ml_platform.vision.faces.align import dlib_chip_reference
from ml_platform.vision.faces.quality import (
    FaceQuality,
    face_quality,
    frontal_from_dlib_five,
    laplacian_variance,
    size_part,
)


def textured_chip(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (150, 150, 3), dtype=np.uint8)


def test_blur_lowers_sharpness() -> None:
    sharp = textured_chip()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 4)
    assert laplacian_variance(blurred) < laplacian_variance(sharp) / 50


def test_sharpness_is_measured_on_the_face_region_only() -> None:
    flat = np.full((150, 150, 3), 128, np.uint8)
    flat[:, :20] = 0  # in the chip's padding, outside the face region
    assert laplacian_variance(flat) == 0.0


@pytest.mark.parametrize(
    ("side", "expected"), [(10, 0.0), (16, 0.0), (48, 0.5), (80, 1.0), (400, 1.0)]
)
def test_size_part_rises_from_tiny_to_full_faces(side: float, expected: float) -> None:
    assert size_part(Box(0, 0, side, side * 1.3)) == pytest.approx(expected)


def test_the_reference_face_is_frontal_and_a_turned_one_is_not() -> None:
    points = dlib_chip_reference()
    assert frontal_from_dlib_five(points) > 0.95
    eye_distance = np.linalg.norm(points[0:2].mean(0) - points[2:4].mean(0))
    turned = points.copy()
    turned[4, 0] += 0.3 * eye_distance  # the nose moves towards one eye as the head turns
    assert 0.3 < frontal_from_dlib_five(turned) < 0.5
    turned[4, 0] += 0.3 * eye_distance
    assert frontal_from_dlib_five(turned) == 0.0


def test_score_is_the_geometric_mean_and_zero_when_a_part_is_zero() -> None:
    good = FaceQuality(0.9, 1.0, 0.95, 0.9, 900.0, 200.0)
    assert good.score == pytest.approx((0.9 * 1.0 * 0.95 * 0.9) ** 0.25)
    assert FaceQuality(0.9, 0.0, 0.95, 0.9, 900.0, 10.0).score == 0.0


def test_face_quality_combines_chip_landmarks_and_box() -> None:
    box = Box(0, 0, 200, 240, 0.92)
    sharp = face_quality(textured_chip(), dlib_chip_reference(), box)
    blurred = face_quality(cv2.GaussianBlur(textured_chip(), (0, 0), 4), dlib_chip_reference(), box)
    assert sharp.detector == pytest.approx(0.92) and sharp.size == 1.0 and sharp.face_px == 200
    assert sharp.score > 0.9 > blurred.score


def test_detection_rows_keep_quality_and_old_files_read_as_unmeasured(tmp_path: Path) -> None:
    face = Box(1, 2, 30, 40, 0.9)
    rows = [
        DetectionRow(1, "ok", face=face, face_quality=0.8, face_sharpness=0.7, face_frontal=0.9),
        DetectionRow(2, "ok"),
    ]
    layout = Layout.for_settings(Settings(home=tmp_path))
    write_detections(layout, "b1", rows)
    assert read_detections(layout, "b1") == {1: rows[0], 2: rows[1]}
    path = layout.store.url_of(layout.detections("b1"))
    old = pd.read_parquet(path).drop(columns=["face_quality", "face_sharpness", "face_frontal"])
    old.to_parquet(path)  # a file written before quality columns existed
    assert read_detections(layout, "b1")[1].face_quality is None


def test_face_quality_scales_the_hero_prominence() -> None:
    def prominence(face_quality: float | None) -> float:
        candidate = HeroCandidate(
            image_id=1, embedding=np.ones(4), quality=QualityParts(0.5, 0.5, 0.5, 100.0, 1.0),
            created_at=datetime(2025, 1, 1), detection_score=0.9, box_area_fraction=0.5,
            face_quality=face_quality,
        )  # fmt: skip
        parts = score_candidate(candidate, np.ones(4), HeroWeights(), datetime(2025, 1, 2))[1]
        return parts[HeroPart.PROMINENCE].value

    assert prominence(None) == pytest.approx(0.9)  # not measured: unchanged
    assert prominence(0.25) == pytest.approx(0.9 * 0.25)


def test_without_the_extra_detection_stores_quality_as_unmeasured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)
    monkeypatch.setattr(models, "_loaded", {})
    image = Image.fromarray(textured_chip())
    result = DetectionResult(None, Box(20, 20, 120, 120, 0.9), "hog", "yunet", 1)
    assert face_quality_or_none(image, result) is None
    no_face = DetectionResult(None, None, "hog", "yunet", 0)
    assert face_quality_or_none(image, no_face) is None


def test_sharpness_counts_only_pixels_from_inside_the_image() -> None:
    chip = np.full((150, 150, 3), 128, np.uint8)
    chip[:, :60] = 0  # the zero border of a face cut by the image edge
    covered = np.ones((150, 150), bool)
    covered[:, :60] = False
    assert laplacian_variance(chip) > 100  # the border edge looks sharp...
    assert laplacian_variance(chip, covered) == 0.0  # ...but is not part of the face
    mostly_outside = np.zeros((150, 150), bool)
    mostly_outside[:, :40] = True
    assert laplacian_variance(textured_chip(), mostly_outside) == 0.0

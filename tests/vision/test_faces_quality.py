"""Face quality parts and score: pure functions on chips and landmarks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ml_platform.domain import Box
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


def test_sharpness_ignores_the_black_border_outside_the_face_region() -> None:
    flat = np.full((150, 150, 3), 128, np.uint8)
    flat[:, :20] = 0  # a warp that ran past the crop
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

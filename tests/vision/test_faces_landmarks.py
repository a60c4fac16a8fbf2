"""dlib's 5 landmarks on another detector's box: re-seated on the box dlib's detector draws."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ml_platform.domain import Box
from ml_platform.vision.decode import load_rgb
from ml_platform.vision.detectors import get_detector
from ml_platform.vision.faces.landmarks import (
    DLIB_BOX_FIVE_POINTS,
    dlib_chip,
    dlib_five_points,
    landmarks,
    predictor_box,
)
from ml_platform.vision.faces.model_files import FaceModelFile

# dlib's HOG detector (get_frontal_face_detector, no upsampling) on ../shared/data/faces.
HOG_BOXES = {
    "img2.jpg": Box(534, 286, 980, 732),
    "img17.jpg": Box(376, 161, 591, 376),
    "img19.jpg": Box(285, 344, 820, 879),
}
AGREEMENT = 0.025  # in eye distances: the landmarks from YuNet's box and from dlib's box


def rotate(points: np.ndarray, degrees: float, centre: np.ndarray) -> np.ndarray:
    a = math.radians(degrees)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.asarray((points - centre) @ rotation.T + centre)


@pytest.mark.parametrize(("x0", "y0", "side"), [(0, 0, 1), (40, 25, 120), (300.5, 12, 37)])
def test_predictor_box_is_the_box_the_mean_shape_sits_in(x0: float, y0: float, side: float) -> None:
    box = predictor_box(DLIB_BOX_FIVE_POINTS * side + [x0, y0], score=0.8)
    assert (box.x0, box.y0, box.x1, box.y1) == pytest.approx((x0, y0, x0 + side, y0 + side))
    assert box.score == 0.8


def test_predictor_box_of_a_tilted_face_is_upright_same_centre_and_size() -> None:
    points = DLIB_BOX_FIVE_POINTS * 100 + [50, 60]
    box = predictor_box(rotate(points, 25, np.array([100.0, 110.0])))
    assert ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2) == pytest.approx((100, 110))
    assert box.width == pytest.approx(100) and box.height == pytest.approx(100)


@pytest.mark.parametrize("name", sorted(HOG_BOXES))
def test_landmarks_on_yunets_box_match_those_on_dlibs_own_box(
    shared_dir: Path, yunet_onnx: Path, name: str
) -> None:
    pytest.importorskip("dlib", reason="the [faces] extra (dlib-bin) is not installed")
    image = load_rgb(shared_dir / "data" / "faces" / name)
    rgb = np.asarray(image, dtype=np.uint8)
    yunet_box = get_detector(yunet_model=yunet_onnx, person_onnx=None).detect_faces(image)[0]
    reference = landmarks(rgb, HOG_BOXES[name], FaceModelFile.LANDMARKS_5)
    eyes = float(np.linalg.norm(reference[0:2].mean(axis=0) - reference[2:4].mean(axis=0)))
    points = dlib_five_points(rgb, yunet_box)
    assert float(np.abs(points - reference).max()) / eyes < AGREEMENT
    aligned = dlib_chip(rgb, yunet_box)
    assert aligned.chip.shape == (150, 150, 3) and aligned.chip.dtype == np.uint8
    assert np.array_equal(aligned.landmarks, points)

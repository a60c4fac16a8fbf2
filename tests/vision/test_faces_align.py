"""Five-point alignment geometry: pure numpy/OpenCV, no face model."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from ml_platform.domain import Box
from ml_platform.vision.detectors.frames import expand_box
from ml_platform.vision.faces.align import (
    ARCFACE_REFERENCE_112,
    align,
    apply_transform,
    arcface_reference,
    dlib_chip_reference,
    face_box_in_crop,
    similarity_transform,
    warp_to_chip,
)


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    rotation = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.hstack([rotation, [[tx], [ty]]])


@pytest.mark.parametrize(
    ("angle", "scale", "tx", "ty"), [(0, 1, 0, 0), (30, 2.5, 40, -7), (-75, 0.4, 3, 90)]
)
def test_similarity_transform_recovers_a_known_transform(
    angle: float, scale: float, tx: float, ty: float
) -> None:
    src = dlib_chip_reference()
    truth = similarity(angle, scale, tx, ty)
    fitted = similarity_transform(src, apply_transform(truth, src))
    assert np.allclose(fitted, truth, atol=1e-9)


def test_similarity_transform_never_mirrors() -> None:
    src = arcface_reference()
    mirrored = src * np.array([-1.0, 1.0])
    fitted = similarity_transform(src, mirrored)
    assert np.linalg.det(fitted[:, :2]) > 0  # best rotation, not a reflection
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform(np.ones((5, 2)), src)
    with pytest.raises(ValueError, match="matching"):
        similarity_transform(src[:3], src)


def synthetic_face(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A grey image with a distinct coloured disc on each landmark and a textured blob."""
    height, width = size
    image = np.full((height, width, 3), 90, np.uint8)
    centre = points.mean(axis=0)
    cv2.ellipse(
        image, (round(centre[0]), round(centre[1])), (60, 80), 0, 0, 360, (180, 150, 120), -1
    )
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    for (x, y), colour in zip(points, colours, strict=True):
        cv2.circle(image, (round(x), round(y)), 6, colour, -1)
    return image


def disc_centres(chip: np.ndarray) -> np.ndarray:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    out = []
    for colour in colours:
        mask = np.all(np.abs(chip.astype(int) - colour) < 60, axis=-1)
        ys, xs = np.nonzero(mask)
        out.append((xs.mean(), ys.mean()))
    return np.array(out)


def test_a_rotated_face_aligns_back_onto_the_reference() -> None:
    reference = arcface_reference(112, 112)
    upright = reference * 2.2 + np.array([150.0, 120.0])  # a face at 2.2x in a 500 px image
    tilt = similarity(35.0, 1.0, 0.0, 0.0)
    pivot = upright.mean(axis=0)
    rotated = apply_transform(tilt, upright - pivot) + pivot
    image = synthetic_face(rotated, (500, 500))
    chip = align(image, rotated, reference, 112, 112)
    assert chip.shape == (112, 112, 3) and chip.dtype == np.uint8
    assert np.abs(disc_centres(chip) - reference).max() < 1.5  # pixels in the 112 px chip
    straight = align(synthetic_face(upright, (500, 500)), upright, reference, 112, 112)
    assert np.mean(np.abs(chip.astype(float) - straight.astype(float))) < 6.0


def test_strong_downscale_is_smoothed_not_aliased() -> None:
    stripes = np.zeros((1200, 1200, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: any aliasing shows as false contrast
    shrink = np.array([[0.1, 0.0, 0.0], [0.0, 0.1, 0.0]])
    chip = warp_to_chip(stripes, shrink, 100, 100)
    assert abs(float(chip.mean()) - 127.5) < 3 and float(chip.std()) < 5


def test_arcface_reference_scales_with_the_input_size() -> None:
    assert np.allclose(arcface_reference(112, 112), ARCFACE_REFERENCE_112)
    assert np.allclose(arcface_reference(224, 224), ARCFACE_REFERENCE_112 * 2)
    assert np.allclose(arcface_reference(112, 96)[:, 0], ARCFACE_REFERENCE_112[:, 0] * 96 / 112)


def test_dlib_reference_sits_inside_its_padded_chip() -> None:
    points = dlib_chip_reference(150, 0.25)
    assert points.min() > 150 * 0.25 / 1.5 and points.max() < 150 * (1 - 0.25 / 1.5) + 50
    assert points[0, 0] > points[1, 0] > points[4, 0] > points[3, 0] > points[2, 0]


@pytest.mark.parametrize("margin", [0.0, 0.2, 0.5])
def test_face_box_in_crop_inverts_the_crop_margin(margin: float) -> None:
    face = Box(300.0, 200.0, 420.0, 360.0)
    crop = expand_box(face, margin, 2000, 2000)
    inside = face_box_in_crop(round(crop.width), round(crop.height), margin)
    assert np.allclose(
        [inside.x0, inside.y0, inside.x1, inside.y1],
        [face.x0 - crop.x0, face.y0 - crop.y0, face.x1 - crop.x0, face.y1 - crop.y0],
        atol=0.5,
    )

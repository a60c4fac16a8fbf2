"""Face landmarks from dlib's shape predictors, run on a face box, and the aligned chips.

The face box is the platform's own detection (YuNet or Haar): inside a ``prominent_face``
crop it is the crop shrunk by the crop margin (``align.face_box_in_crop``).
benchmarks/face_verification.py measured dlib's 5 points on that box against YuNet's own 5
points as the alignment source: dlib's align better (see docs/embedding_types.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ml_platform.domain import Box
from ml_platform.vision.crops import DEFAULT_MARGIN
from ml_platform.vision.faces.align import (
    DLIB_CHIP_SIZE,
    Points,
    align,
    arcface_reference,
    dlib_chip_reference,
    face_box_in_crop,
)
from ml_platform.vision.faces.models import FaceModelFile, import_dlib, load_model

# shape_predictor_68 indices: eye on the image's left, eye on the right, nose tip, mouth.
LEFT_EYE_68, RIGHT_EYE_68 = slice(36, 42), slice(42, 48)
NOSE_TIP_68, MOUTH_LEFT_68, MOUTH_RIGHT_68 = 30, 48, 54


@dataclass(frozen=True)
class AlignedFace:
    """A face chip and the landmarks (in the source image's pixels) it was aligned by."""

    chip: NDArray[np.uint8]
    landmarks: Points


def landmarks(rgb: NDArray[np.uint8], box: Box, file: FaceModelFile) -> Points:
    """The shape predictor ``file``'s landmarks for the face in ``box``, [n, 2] pixels."""
    dlib = import_dlib()
    predictor = load_model(file)
    rect = dlib.rectangle(round(box.x0), round(box.y0), round(box.x1), round(box.y1))
    shape = predictor(np.ascontiguousarray(rgb), rect)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def arcface_points(rgb: NDArray[np.uint8], box: Box) -> Points:
    """Eye centres, nose tip and mouth corners (the ArcFace order) from the 68-point model."""
    points = landmarks(rgb, box, FaceModelFile.LANDMARKS_68)
    return np.stack(
        [
            points[LEFT_EYE_68].mean(axis=0),
            points[RIGHT_EYE_68].mean(axis=0),
            points[NOSE_TIP_68],
            points[MOUTH_LEFT_68],
            points[MOUTH_RIGHT_68],
        ]
    )


def crop_face_box(rgb: NDArray[np.uint8], margin: float = DEFAULT_MARGIN) -> Box:
    """The face box inside a platform face crop."""
    height, width = rgb.shape[:2]
    return face_box_in_crop(width, height, margin)


def dlib_chip(rgb: NDArray[np.uint8], box: Box, size: int = DLIB_CHIP_SIZE) -> AlignedFace:
    """dlib's 5-point landmarks on ``box`` and the chip the ResNet expects."""
    points = landmarks(rgb, box, FaceModelFile.LANDMARKS_5)
    return AlignedFace(align(rgb, points, dlib_chip_reference(size), size, size), points)


def arcface_chip(rgb: NDArray[np.uint8], box: Box, height: int, width: int) -> AlignedFace:
    """The ArcFace-aligned ``height`` x ``width`` chip of the face in ``box``."""
    points = arcface_points(rgb, box)
    return AlignedFace(align(rgb, points, arcface_reference(height, width), height, width), points)

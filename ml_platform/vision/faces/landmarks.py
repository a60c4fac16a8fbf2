"""Face landmarks from dlib's shape predictors, run on a face box, and the aligned chips.

The face box is the platform's own detection (YuNet or Haar): inside a ``prominent_face``
crop it is the crop shrunk by the crop margin (``align.face_box_in_crop``).
benchmarks/face_verification.py measured dlib's 5 points on that box against YuNet's own 5
points as the alignment source: dlib's align better (see docs/embedding_types.md).

dlib's 5-point predictor starts from its mean shape placed in the box it is given, and was
trained on the boxes of dlib's own face detector. Another detector's box (YuNet's is taller
and narrower, and sits higher) starts it off-centre and it converges to biased points, so
``dlib_five_points`` runs it twice: once on the given box, then on the box dlib's detector
would have drawn around the points found (``predictor_box``). The ResNet's chip is cut by
dlib's own ``get_face_chip``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml_platform.domain import Box
from ml_platform.vision.crops import DEFAULT_MARGIN
from ml_platform.vision.faces.align import (
    DLIB_CHIP_PADDING,
    DLIB_CHIP_SIZE,
    Points,
    align,
    arcface_reference,
    face_box_in_crop,
    similarity_transform,
)
from ml_platform.vision.faces.model_files import FaceModelFile, import_dlib, load_model

# shape_predictor_68 indices: eye on the image's left, eye on the right, nose tip, mouth.
LEFT_EYE_68, RIGHT_EYE_68 = slice(36, 42), slice(42, 48)
NOSE_TIP_68, MOUTH_LEFT_68, MOUTH_RIGHT_68 = 30, 48, 54


# Where shape_predictor_5_face_landmarks puts its 5 points inside the box of dlib's HOG face
# detector (x, y in box widths and heights from the top-left corner): the mean over the 31
# faces of ../shared/data/faces, the deepface test photos (not LFW).
DLIB_BOX_FIVE_POINTS = np.array(
    [
        [0.7943, 0.2733],
        [0.6281, 0.2851],
        [0.2107, 0.2846],
        [0.3777, 0.2898],
        [0.5166, 0.6045],
    ]
)


@dataclass(frozen=True)
class AlignedFace:
    """A face chip and the landmarks (in the source image's pixels) it was aligned by."""

    chip: NDArray[np.uint8]
    landmarks: Points


def landmarks(rgb: NDArray[np.uint8], box: Box, file: FaceModelFile) -> Points:
    """The shape predictor ``file``'s landmarks for the face in ``box``, [n, 2] pixels."""
    return _points(_shape(rgb, box, file))


def _shape(rgb: NDArray[np.uint8], box: Box, file: FaceModelFile) -> Any:
    """dlib's ``full_object_detection`` of the predictor ``file`` on ``box``."""
    dlib = import_dlib()
    predictor = load_model(file)
    rect = dlib.rectangle(round(box.x0), round(box.y0), round(box.x1), round(box.y1))
    return predictor(np.ascontiguousarray(rgb), rect)


def _points(shape: Any) -> Points:
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def predictor_box(points: Points, score: float = 1.0) -> Box:
    """The square box dlib's face detector draws around a face whose 5 dlib landmarks are
    ``points``: the similarity that best takes ``DLIB_BOX_FIVE_POINTS`` onto them, applied to
    the unit box (its rotation dropped: dlib's boxes are upright)."""
    matrix = similarity_transform(DLIB_BOX_FIVE_POINTS, points)
    side = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    cx, cy = matrix[:, :2] @ np.array([0.5, 0.5]) + matrix[:, 2]
    return Box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, score)


def _five_point_shape(rgb: NDArray[np.uint8], box: Box) -> Any:
    first = landmarks(rgb, box, FaceModelFile.LANDMARKS_5)
    return _shape(rgb, predictor_box(first, box.score), FaceModelFile.LANDMARKS_5)


def dlib_five_points(rgb: NDArray[np.uint8], box: Box) -> Points:
    """dlib's 5 landmarks of the face in ``box`` (any detector's): a first estimate on
    ``box``, then the predictor again on ``predictor_box`` of that estimate, the kind of box
    it was trained on."""
    return _points(_five_point_shape(rgb, box))


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
    """dlib's 5-point landmarks of the face in ``box`` and the chip the ResNet expects, cut by
    dlib's own ``get_face_chip`` as the network's training chips were (OpenCV's warp onto the
    same reference maps pixel centres, dlib's maps the chip's corners: half a pixel and 1/size
    of scale apart, which moved the vectors measurably: docs/embedding_types.md)."""
    shape = _five_point_shape(rgb, box)
    chip = import_dlib().get_face_chip(np.ascontiguousarray(rgb), shape, size, DLIB_CHIP_PADDING)
    return AlignedFace(np.ascontiguousarray(chip, dtype=np.uint8), _points(shape))


def arcface_chip(rgb: NDArray[np.uint8], box: Box, height: int, width: int) -> AlignedFace:
    """The ArcFace-aligned ``height`` x ``width`` chip of the face in ``box``."""
    points = arcface_points(rgb, box)
    return AlignedFace(align(rgb, points, arcface_reference(height, width), height, width), points)

"""Face quality: is a detected face good enough to learn an identity from?

Four parts, each in [0, 1], and their geometric mean as the score (any part at 0 makes the
face useless, whatever the others are):

- sharpness: variance of the Laplacian of the grey aligned chip's face region (its central
  part, without the padding that may run past the crop), ``v / (v + HALF)``; a face blown
  up from few pixels or out of focus has little high-frequency energy;
- size: the face box's shorter side, 0 at ``MIN_FACE_PX`` rising to 1 at ``FULL_FACE_PX``
  (the chip covers the face at about 100 px, so more pixels add nothing);
- detector: the face detector's confidence (YuNet's score; Haar gives 1.0 / 0.9);
- frontal: a yaw proxy from the landmarks, the nose's offset from the eyes' midpoint along
  the eye line in units of the eye distance, 1 at 0 down to 0 at ``PROFILE_OFFSET``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from ml_platform.domain import Box
from ml_platform.vision.faces.align import Points

SHARPNESS_HALF = 100.0  # Laplacian variance of a chip that scores 0.5
MIN_FACE_PX, FULL_FACE_PX = 16.0, 80.0
PROFILE_OFFSET = 0.5  # nose this many eye distances off the midpoint: a profile
FACE_REGION = (1 / 6, 5 / 6)  # the unpadded face inside dlib's chip (padding 0.25 per side)
MIN_COVERED = 0.25  # less of the face region inside the image: no sharpness to measure


@dataclass(frozen=True)
class FaceQuality:
    """The parts of one face's quality and their combined score."""

    sharpness: float
    size: float
    detector: float
    frontal: float
    laplacian_variance: float
    face_px: float

    @property
    def score(self) -> float:
        parts = (self.sharpness, self.size, self.detector, self.frontal)
        return float(math.prod(max(0.0, p) for p in parts) ** (1 / len(parts)))


def laplacian_variance(chip: NDArray[np.uint8], covered: NDArray[np.bool_] | None = None) -> float:
    """Variance of the Laplacian of the grey levels of the chip's face region, over the
    pixels ``covered`` by the source image (the zero border past an image edge would count
    as sharp edges); 0 when less than ``MIN_COVERED`` of the region is covered."""
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY) if chip.ndim == 3 else chip
    lap = cv2.Laplacian(grey, cv2.CV_64F)
    inside = np.ones(grey.shape, bool) if covered is None else _eroded(covered)
    lo, hi = FACE_REGION
    rows, cols = grey.shape
    region = (slice(round(rows * lo), round(rows * hi)), slice(round(cols * lo), round(cols * hi)))
    values = lap[region][inside[region]]
    if values.size < MIN_COVERED * lap[region].size:
        return 0.0
    return float(values.var())


def _eroded(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``mask`` without its edge pixels (the Laplacian there sees the border)."""
    eroded = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=1)
    return np.asarray(eroded > 0)


def size_part(box: Box) -> float:
    side = min(box.width, box.height)
    return float(np.clip((side - MIN_FACE_PX) / (FULL_FACE_PX - MIN_FACE_PX), 0.0, 1.0))


def frontal_part(left_eye: NDArray[np.float64], right_eye: NDArray[np.float64],
                 nose: NDArray[np.float64]) -> float:  # fmt: skip
    """1 for a nose on the perpendicular through the eyes' midpoint, 0 for a profile."""
    axis = right_eye - left_eye
    distance = float(np.linalg.norm(axis))
    if distance <= 0:
        return 0.0
    offset = float((nose - (left_eye + right_eye) / 2) @ axis) / distance**2
    return float(np.clip(1.0 - abs(offset) / PROFILE_OFFSET, 0.0, 1.0))


def frontal_from_dlib_five(points: Points) -> float:
    """The frontal part from dlib's 5 landmarks (eye corners 0-1 and 2-3, nose base 4)."""
    right_eye, left_eye = points[0:2].mean(axis=0), points[2:4].mean(axis=0)
    return frontal_part(left_eye, right_eye, points[4])


def face_quality(
    chip: NDArray[np.uint8],
    landmarks: Points,
    box: Box,
    covered: NDArray[np.bool_] | None = None,
) -> FaceQuality:
    """The quality of the face in ``box`` (source pixels) aligned as ``chip`` by dlib's 5
    ``landmarks``; ``covered`` marks the chip pixels inside the source image."""
    variance = laplacian_variance(chip, covered)
    return FaceQuality(
        sharpness=variance / (variance + SHARPNESS_HALF),
        size=size_part(box),
        detector=float(np.clip(box.score, 0.0, 1.0)),
        frontal=frontal_from_dlib_five(landmarks),
        laplacian_variance=variance,
        face_px=min(box.width, box.height),
    )

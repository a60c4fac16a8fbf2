"""Five-point face alignment: a similarity transform onto reference landmarks, then a warp.

Pure geometry (numpy and OpenCV's warp); no model here. Two references:

- dlib's 150x150 face chip (``dlib.get_face_chip``, padding 0.25) for the landmarks of
  ``shape_predictor_5_face_landmarks``: outer and inner corner of the eye on the image's
  right, the same for the eye on the image's left, and the base of the nose.
- the standard ArcFace 112x112 reference (insightface ``arcface_dst``) for eye centres,
  nose tip and mouth corners, used by custom ONNX face models (``align: five_point``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from ml_platform.domain import Box

Points = NDArray[np.float64]  # [n, 2] x, y in pixels

# dlib's get_face_chip_details for 5-point shapes, in [0, 1] of the unpadded chip.
DLIB_FIVE_POINT_REFERENCE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25
# ArcFace 112x112: eye on the image's left, eye on the right, nose tip, mouth left, right.
ARCFACE_REFERENCE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
ARCFACE_SIDE = 112.0
MIN_WARP_SCALE = 0.8  # a warp shrinking more than this is split: INTER_AREA resize, then warp


def dlib_chip_reference(size: int = DLIB_CHIP_SIZE, padding: float = DLIB_CHIP_PADDING) -> Points:
    """Where dlib's 5 landmarks land in a ``size`` px chip with ``padding``."""
    return (DLIB_FIVE_POINT_REFERENCE + padding) / (1 + 2 * padding) * size


def arcface_reference(height: int = 112, width: int = 112) -> Points:
    """The ArcFace reference landmarks scaled to a ``height`` x ``width`` model input."""
    scale = np.array([width / ARCFACE_SIDE, height / ARCFACE_SIDE], dtype=np.float64)
    return np.asarray(ARCFACE_REFERENCE_112 * scale, dtype=np.float64)


def similarity_transform(src: Points, dst: Points) -> NDArray[np.float64]:
    """The 2x3 rotation + uniform scale + translation taking ``src`` closest to ``dst``
    (least squares, Umeyama 1991; no reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need two matching [n>=2, 2] point sets, got {src.shape}, {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    variance = float((src_c**2).sum()) / len(src)
    if variance <= 0:
        raise ValueError("the source points coincide; no transform fits them")
    u, s, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    d = np.diag([1.0, float(np.sign(np.linalg.det(u) * np.linalg.det(vt))) or 1.0])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(s) @ d)) / variance
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def apply_transform(matrix: NDArray[np.float64], points: Points) -> Points:
    """``points`` mapped by a 2x3 affine ``matrix``."""
    pts = np.asarray(points, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def warp_to_chip(
    rgb: NDArray[np.uint8], matrix: NDArray[np.float64], height: int, width: int
) -> NDArray[np.uint8]:
    """The ``height`` x ``width`` chip ``matrix`` maps ``rgb`` onto (zeros outside it).

    A downscale is done with INTER_AREA first (the warp then only rotates and shifts) so that
    the bilinear warp does not alias.
    """
    scale = math.sqrt(abs(float(np.linalg.det(matrix[:, :2]))))
    source: np.ndarray = rgb
    warp = matrix
    if 0 < scale < MIN_WARP_SCALE:
        factor = scale
        source = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        warp = np.hstack([matrix[:, :2] / factor, matrix[:, 2:]])
    chip = cv2.warpAffine(
        np.ascontiguousarray(source),
        warp,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return np.ascontiguousarray(chip, dtype=np.uint8)


def coverage(
    source_shape: tuple[int, ...], matrix: NDArray[np.float64], height: int, width: int
) -> NDArray[np.bool_]:
    """Which chip pixels come from inside the source image (the rest are the zero border)."""
    ones = np.ones(source_shape[:2], dtype=np.uint8)
    warped = cv2.warpAffine(ones, matrix, (width, height), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
    return np.asarray(warped > 0)


def align(
    rgb: NDArray[np.uint8], landmarks: Points, reference: Points, height: int, width: int
) -> NDArray[np.uint8]:
    """The chip in which ``landmarks`` of ``rgb`` sit as close as possible to ``reference``."""
    return warp_to_chip(rgb, similarity_transform(landmarks, reference), height, width)


def face_box_in_crop(width: int, height: int, margin: float) -> Box:
    """The face box inside a crop cut as the box grown by ``margin`` of its size per side
    (``vision.crops.crop_for``); exact unless the crop was clamped at the image border."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    inset = margin / (1 + 2 * margin)
    return Box(width * inset, height * inset, width * (1 - inset), height * (1 - inset))

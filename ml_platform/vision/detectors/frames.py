"""Small array helpers the detectors share: PIL to RGB arrays, downscaling, box clamping."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from ml_platform.domain import Box


def rgb_array(image: Image.Image) -> np.ndarray:
    """An HxWx3 uint8 RGB array of ``image``."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.asarray(rgb, dtype=np.uint8)


def downscale(pixels: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``pixels`` shrunk so the long side is at most ``max_side``, and the factor used."""
    height, width = pixels.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale >= 1.0:
        return pixels, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), scale


def clamp_box(box: Box, width: float, height: float) -> Box:
    """``box`` limited to the frame ``[0, width] x [0, height]``."""
    return Box(
        min(max(box.x0, 0.0), width),
        min(max(box.y0, 0.0), height),
        min(max(box.x1, 0.0), width),
        min(max(box.y1, 0.0), height),
        box.score,
    )


def expand_box(box: Box, margin: float, width: float, height: float) -> Box:
    """``box`` grown by ``margin`` times its width/height on each side, clamped to the frame."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    dx, dy = box.width * margin, box.height * margin
    grown = Box(box.x0 - dx, box.y0 - dy, box.x1 + dx, box.y1 + dy, box.score)
    return clamp_box(grown, width, height)


def box_from_xywh(xywh: Sequence[float] | np.ndarray, score: float, scale: float) -> Box:
    """A box from ``x, y, w, h`` measured on an image downscaled by ``scale``."""
    x, y, w, h = (float(v) for v in xywh[:4])
    return Box(x / scale, y / scale, (x + w) / scale, (y + h) / scale, float(score))


def pixel_bounds(box: Box) -> tuple[int, int, int, int]:
    """Integer ``(x0, y0, x1, y1)`` covering ``box`` (rounded outwards)."""
    return (
        int(np.floor(box.x0)),
        int(np.floor(box.y0)),
        int(np.ceil(box.x1)),
        int(np.ceil(box.y1)),
    )


def nms(boxes: list[Box], iou_threshold: float) -> list[Box]:
    """Greedy non-maximum suppression: highest score first, drop overlaps above the IoU."""
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: b.score, reverse=True):
        if all(iou(box, other) <= iou_threshold for other in kept):
            kept.append(box)
    return kept


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    inter = Box(max(a.x0, b.x0), max(a.y0, b.y0), min(a.x1, b.x1), min(a.y1, b.y1)).area
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0

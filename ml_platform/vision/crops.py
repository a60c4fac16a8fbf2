"""Derivative crops: the whole image, or the prominent person / face with a margin."""

from __future__ import annotations

from PIL import Image

from ml_platform.domain import Box, DerivativeType
from ml_platform.vision.detectors.detector import DetectionResult
from ml_platform.vision.detectors.frames import expand_box, pixel_bounds

DEFAULT_MARGIN = 0.2


def derivative_box(derivative: DerivativeType, result: DetectionResult) -> Box | None:
    """The detection a derivative is cut from (None for the whole image or when absent)."""
    if derivative is DerivativeType.PROMINENT_PERSON:
        return result.person
    if derivative is DerivativeType.PROMINENT_FACE:
        return result.face
    return None


def crop_for(
    image: Image.Image,
    derivative: DerivativeType,
    result: DetectionResult,
    margin: float = DEFAULT_MARGIN,
) -> Image.Image | None:
    """The derivative image, or None when the image has no such derivative (e.g. no face).

    WHOLE_IMAGE returns ``image`` itself. Person and face boxes are grown by ``margin``
    times their width/height on each side and clamped to the image.
    """
    if derivative is DerivativeType.WHOLE_IMAGE:
        return image
    box = derivative_box(derivative, result)
    if box is None:
        return None
    grown = expand_box(box, margin, image.width, image.height)
    x0, y0, x1, y1 = pixel_bounds(grown)
    if x1 <= x0 or y1 <= y0:
        return None
    return image.crop((x0, y0, x1, y1))

"""Quality of the prominent face of an image, measured on the chip the embedder would see."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ml_platform.domain import Box
from ml_platform.vision.crops import DEFAULT_MARGIN
from ml_platform.vision.detectors.frames import expand_box, pixel_bounds
from ml_platform.vision.faces.align import coverage, dlib_chip_reference, similarity_transform
from ml_platform.vision.faces.landmarks import dlib_chip
from ml_platform.vision.faces.quality import FaceQuality, face_quality


def quality_of_face(image: Image.Image, face: Box, margin: float = DEFAULT_MARGIN) -> FaceQuality:
    """The quality of ``face`` in ``image``: the same margin crop as ``prominent_face``, dlib's
    landmarks on the exact face box inside it, the aligned chip's sharpness.

    Raises FacesExtraMissingError without the ``[faces]`` extra.
    """
    x0, y0, x1, y1 = pixel_bounds(expand_box(face, margin, image.width, image.height))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"face box {face} is empty inside the {image.width}x{image.height} image")
    rgb = np.asarray(image.convert("RGB").crop((x0, y0, x1, y1)), dtype=np.uint8)
    aligned = dlib_chip(rgb, face.offset(-x0, -y0))
    side = aligned.chip.shape[0]
    matrix = similarity_transform(aligned.landmarks, dlib_chip_reference(side))
    covered = coverage(rgb.shape, matrix, side, side)
    return face_quality(aligned.chip, aligned.landmarks, face, covered)

"""Faces: five-point alignment, dlib landmarks and models, face quality (docs/embedding_types.md).

dlib is imported only when a landmark or embedding is first computed (the ``[faces]`` extra).
"""

from ml_platform.vision.faces.align import (
    align,
    arcface_reference,
    dlib_chip_reference,
    face_box_in_crop,
    similarity_transform,
)
from ml_platform.vision.faces.model_files import FacesExtraMissingError
from ml_platform.vision.faces.quality import FaceQuality, face_quality

__all__ = [
    "FaceQuality",
    "FacesExtraMissingError",
    "align",
    "arcface_reference",
    "dlib_chip_reference",
    "face_box_in_crop",
    "face_quality",
    "similarity_transform",
]

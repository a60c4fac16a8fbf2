"""The Detector: prominent person, then the prominent face inside it, per image."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from ml_platform.domain import Box
from ml_platform.vision.detectors.faces import HaarFaceDetector, YuNetFaceDetector
from ml_platform.vision.detectors.frames import clamp_box, expand_box, pixel_bounds, rgb_array
from ml_platform.vision.detectors.persons import (
    HOG_SCORE_THRESHOLD,
    YOLO_SCORE_THRESHOLD,
    HogPersonDetector,
    YoloOnnxPersonDetector,
)
from ml_platform.vision.detectors.prominence import FACE_CUT_FACTOR, pick_prominent

log = logging.getLogger(__name__)

PERSON_SEARCH_MARGIN = 0.1  # the face is searched in the person box grown by this much


class BoxDetector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[Box]: ...


@dataclass(frozen=True)
class DetectionResult:
    """Prominent boxes of one image, in pixels of the EXIF-oriented image."""

    person: Box | None
    face: Box | None
    person_detector: str
    face_detector: str
    faces_found: int


FACE_EXTRAPOLATED = "face-extrapolated"
# An upper body around a face, in face sizes: half-width, above the face, below its bottom.
BODY_HALF_WIDTH, BODY_ABOVE, BODY_BELOW = 1.5, 0.6, 4.0
EXTRAPOLATED_SCORE_FACTOR = 0.5


def person_from_face(face: Box, width: float, height: float) -> Box:
    """The upper-body box a face implies, used when the person detector finds nobody.

    Flagged by the detector name suffix ``+face-extrapolated``; scored at half the face's
    score so a real person detection of similar size always ranks above it.
    """
    centre = (face.x0 + face.x1) / 2
    body = Box(
        centre - BODY_HALF_WIDTH * face.width,
        face.y0 - BODY_ABOVE * face.height,
        centre + BODY_HALF_WIDTH * face.width,
        face.y1 + BODY_BELOW * face.height,
        face.score * EXTRAPOLATED_SCORE_FACTOR,
    )
    return clamp_box(body, width, height)


@dataclass(eq=False, kw_only=True)
class Detector:
    """Person and face detection with models loaded once, lazily, under a lock.

    ``person_score_threshold`` None keeps each person detector's own default (YOLO 0.35,
    HOG 0.8).
    """

    yunet_model: Path | None
    person_onnx: Path | None
    face_score_threshold: float = 0.7
    person_score_threshold: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _faces: BoxDetector | None = field(default=None, init=False, repr=False)
    _persons: BoxDetector | None = field(default=None, init=False, repr=False)

    @property
    def face_detector_name(self) -> str:
        return YuNetFaceDetector.name if self.yunet_model else HaarFaceDetector.name

    @property
    def person_detector_name(self) -> str:
        return YoloOnnxPersonDetector.name if self.person_onnx else HogPersonDetector.name

    def detect(self, image: Image.Image) -> DetectionResult:
        """The prominent person, and the prominent face inside it; in the whole image when
        there is no person or no face inside the person's box."""
        rgb = rgb_array(image)
        height, width = rgb.shape[:2]
        person = pick_prominent(self._person_model().detect(rgb), width, height)
        whole = Box(0.0, 0.0, float(width), float(height))
        region = whole
        if person is not None:
            region = expand_box(person, PERSON_SEARCH_MARGIN, width, height)
        faces = self._faces_in(rgb, region)
        if not faces and region != whole:  # the person box missed the face (HOG fires on
            region = whole  # background at the border): a portrait's face is still found
            faces = self._faces_in(rgb, region)
        local = [f.offset(-region.x0, -region.y0) for f in faces]  # ranked within the region
        best = pick_prominent(local, region.width, region.height, cut_factor=FACE_CUT_FACTOR)
        face = faces[local.index(best)] if best is not None else None
        person_detector = self.person_detector_name
        if person is None and face is not None:  # e.g. a portrait: HOG needs whole bodies
            person = person_from_face(face, width, height)
            person_detector = f"{person_detector}+{FACE_EXTRAPOLATED}"
        return DetectionResult(
            person=person,
            face=face,
            person_detector=person_detector,
            face_detector=self.face_detector_name,
            faces_found=len(faces),
        )

    def detect_faces(self, image: Image.Image) -> list[Box]:
        """Every face in the whole image, highest score first."""
        return self._face_model().detect(rgb_array(image))

    def detect_persons(self, image: Image.Image) -> list[Box]:
        """Every person in the whole image, highest score first."""
        return self._person_model().detect(rgb_array(image))

    def _faces_in(self, rgb: np.ndarray, region: Box) -> list[Box]:
        x0, y0, x1, y1 = pixel_bounds(region)
        faces = self._face_model().detect(rgb[y0:y1, x0:x1])
        return [f.offset(x0, y0) for f in faces]

    def _face_model(self) -> BoxDetector:
        with self._lock:
            if self._faces is None:
                self._faces = (
                    YuNetFaceDetector(self.yunet_model, score_threshold=self.face_score_threshold)
                    if self.yunet_model
                    else HaarFaceDetector()
                )
            return self._faces

    def _person_model(self) -> BoxDetector:
        with self._lock:
            if self._persons is None:
                self._persons = self._build_person_model()
            return self._persons

    def _build_person_model(self) -> BoxDetector:
        threshold = self.person_score_threshold
        if self.person_onnx:
            yolo_threshold = YOLO_SCORE_THRESHOLD if threshold is None else threshold
            return YoloOnnxPersonDetector(self.person_onnx, score_threshold=yolo_threshold)
        hog_threshold = HOG_SCORE_THRESHOLD if threshold is None else threshold
        return HogPersonDetector(score_threshold=hog_threshold)


_detectors: dict[tuple[Path | None, Path | None, float, float | None], Detector] = {}
_detectors_lock = threading.Lock()


def get_detector(
    *,
    yunet_model: Path | None,
    person_onnx: Path | None,
    face_score_threshold: float = 0.7,
    person_score_threshold: float | None = None,
) -> Detector:
    """One Detector per distinct arguments per process."""
    key = (yunet_model, person_onnx, face_score_threshold, person_score_threshold)
    with _detectors_lock:
        if key not in _detectors:
            _detectors[key] = Detector(
                yunet_model=yunet_model,
                person_onnx=person_onnx,
                face_score_threshold=face_score_threshold,
                person_score_threshold=person_score_threshold,
            )
        return _detectors[key]

"""Face detectors: YuNet (cv2.FaceDetectorYN) when a model file is given, else a Haar cascade."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import cv2
import numpy as np

from ml_platform.domain import Box
from ml_platform.vision.detectors.frames import box_from_xywh, clamp_box, downscale, nms

log = logging.getLogger(__name__)

MAX_SIDE = 640
MIN_SIDE = 16  # regions smaller than this cannot show a detectable face
YUNET_SCORE_COLUMN = 14
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
HAAR_PROFILE_CASCADE = "haarcascade_profileface.xml"  # faces turned to one side; mirrored too
PROFILE_SCORE = 0.9  # ranks a profile below a frontal face of the same size
HAAR_NMS_IOU = 0.3


class YuNetFaceDetector:
    """YuNet on the image downscaled to at most ``MAX_SIDE`` px; boxes in input pixels."""

    name = "yunet"

    def __init__(self, model: Path, *, score_threshold: float, nms_threshold: float = 0.3):
        if not model.is_file():
            raise FileNotFoundError(
                f"YuNet model {model} not found: point ML_PLATFORM_YUNET_MODEL at "
                "face_detection_yunet_2023mar.onnx, or unset it to use the Haar cascade"
            )
        self._detector = cv2.FaceDetectorYN.create(
            str(model), "", (320, 320), score_threshold, nms_threshold, 5000
        )
        self._lock = threading.Lock()  # setInputSize + detect mutate the detector
        log.info("loaded YuNet face detector from %s", model)

    def detect(self, rgb: np.ndarray) -> list[Box]:
        """Faces in an HxWx3 RGB array, highest score first."""
        height, width = rgb.shape[:2]
        if min(height, width) < MIN_SIDE:
            return []
        small, scale = downscale(rgb, MAX_SIDE)
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        with self._lock:
            self._detector.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, faces = self._detector.detect(bgr)
        if faces is None:
            return []
        boxes = [
            clamp_box(box_from_xywh(row[:4], float(row[YUNET_SCORE_COLUMN]), scale), width, height)
            for row in faces
        ]
        return sorted(boxes, key=lambda b: b.score, reverse=True)


class HaarFaceDetector:
    """OpenCV's frontal and profile Haar cascades: the fallback without a YuNet file.

    Haar gives no calibrated confidence, so frontal boxes score 1.0 and profile boxes 0.9
    (``min_neighbors`` is the threshold). The profile cascade finds faces turned to one side;
    it runs on the mirrored image too for the other side. It still misses small faces.
    """

    name = "haar"

    def __init__(self, *, min_neighbors: int = 5, cascade: Path | None = None) -> None:
        data = Path(cv2.__file__).parent / "data"  # cv2.data.haarcascades
        path = cascade or data / HAAR_CASCADE
        self._cascade = _load_cascade(path)
        self._profile = _load_cascade(data / HAAR_PROFILE_CASCADE) if cascade is None else None
        self._min_neighbors = min_neighbors
        self._lock = threading.Lock()
        log.info("using the Haar cascade face detector (%s)", path.name)

    def detect(self, rgb: np.ndarray) -> list[Box]:
        height, width = rgb.shape[:2]
        if min(height, width) < MIN_SIDE:
            return []
        small, scale = downscale(rgb, MAX_SIDE)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        with self._lock:
            boxes = [box_from_xywh(r, 1.0, scale) for r in self._run(self._cascade, gray)]
            if self._profile is not None:
                boxes += self._profiles(gray, scale)
        kept = nms(boxes, HAAR_NMS_IOU)
        return [clamp_box(b, width, height) for b in kept]

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray) -> list[tuple[int, ...]]:
        rects = cascade.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=self._min_neighbors, minSize=(24, 24)
        )
        return [tuple(int(v) for v in r) for r in rects]

    def _profiles(self, gray: np.ndarray, scale: float) -> list[Box]:
        assert self._profile is not None
        side = gray.shape[1]
        boxes = [box_from_xywh(r, PROFILE_SCORE, scale) for r in self._run(self._profile, gray)]
        for x, y, w, h in self._run(self._profile, cv2.flip(gray, 1)):
            boxes.append(box_from_xywh((side - x - w, y, w, h), PROFILE_SCORE, scale))
        return boxes


def _load_cascade(path: Path) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"cannot load the Haar cascade {path}; is opencv installed fully?")
    return cascade

"""Person and face detection: prominent boxes per image (see docs/detection.md)."""

from ml_platform.vision.detectors.detector import DetectionResult, Detector, get_detector
from ml_platform.vision.detectors.faces import HaarFaceDetector, YuNetFaceDetector
from ml_platform.vision.detectors.persons import (
    HogPersonDetector,
    YoloOnnxPersonDetector,
    decode_yolo,
    letterbox,
)
from ml_platform.vision.detectors.prominence import pick_prominent, prominence

__all__ = [
    "DetectionResult",
    "Detector",
    "HaarFaceDetector",
    "HogPersonDetector",
    "YoloOnnxPersonDetector",
    "YuNetFaceDetector",
    "decode_yolo",
    "get_detector",
    "letterbox",
    "pick_prominent",
    "prominence",
]

"""Person detectors: a YOLO-layout ONNX model when configured, else OpenCV's HOG people SVM."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from ml_platform.domain import Box
from ml_platform.vision.detectors.frames import box_from_xywh, clamp_box, downscale, nms

log = logging.getLogger(__name__)

HOG_MAX_SIDE = 480
HOG_PYRAMID_SCALE = 1.1  # 1.05 finds no more here at 1.7x the cost (42 vs 25 ms/img)
HOG_SCORE_THRESHOLD = 0.8
YOLO_SCORE_THRESHOLD = 0.35
HOG_WINDOW = (64, 128)  # width, height of the people detector window
DEFAULT_YOLO_SIZE = 640
LETTERBOX_FILL = 114
COCO_CLASSES = 80


class HogPersonDetector:
    """Dalal-Triggs HOG + linear SVM (cv2): upright, mostly full-body people only.

    Scores are the SVM margins mapped to [0, 1) with ``1 - exp(-margin)``. The default
    threshold 0.8 (margin 1.6) drops the weak hits HOG produces on pets and close-up
    portraits (all below 0.86 on ../shared/data, which has no full-body people).
    """

    name = "hog"

    def __init__(
        self, *, score_threshold: float = HOG_SCORE_THRESHOLD, iou_threshold: float = 0.45
    ) -> None:
        self._hog = cv2.HOGDescriptor()
        people = np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), dtype=np.float32)
        self._hog.setSVMDetector(people)
        self._score_threshold = score_threshold
        self._iou_threshold = iou_threshold
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[Box]:
        """People in an HxWx3 RGB array, highest score first."""
        height, width = rgb.shape[:2]
        small, scale = downscale(rgb, HOG_MAX_SIDE)
        if small.shape[1] < HOG_WINDOW[0] or small.shape[0] < HOG_WINDOW[1]:
            return []
        with self._lock:
            rects, weights = self._hog.detectMultiScale(
                small, winStride=(8, 8), padding=(8, 8), scale=HOG_PYRAMID_SCALE
            )
        boxes = [
            box_from_xywh(rect, 1.0 - math.exp(-float(weight)), scale)
            for rect, weight in zip(rects, np.ravel(weights), strict=True)
        ]
        confident = [clamp_box(b, width, height) for b in boxes if b.score >= self._score_threshold]
        return nms(confident, self._iou_threshold)


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the model input: ``input = image * scale + pad``."""

    scale: float
    pad_x: float
    pad_y: float

    def to_image(self, box: Box) -> Box:
        return Box(
            (box.x0 - self.pad_x) / self.scale,
            (box.y0 - self.pad_y) / self.scale,
            (box.x1 - self.pad_x) / self.scale,
            (box.y1 - self.pad_y) / self.scale,
            box.score,
        )


def letterbox(rgb: np.ndarray, height: int, width: int) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio, pad centred with grey; a 1x3xHxW float tensor in 0..1."""
    src_h, src_w = rgb.shape[:2]
    scale = min(height / src_h, width / src_w)
    new_w, new_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    canvas = np.full((height, width, 3), LETTERBOX_FILL, dtype=np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    tensor = canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    return np.ascontiguousarray(tensor), Letterbox(scale, float(pad_x), float(pad_y))


def decode_yolo(
    output: np.ndarray,
    *,
    class_id: int = 0,
    score_threshold: float,
    num_classes: int = COCO_CLASSES,
) -> list[Box]:
    """Boxes of ``class_id`` from a YOLO head, in model-input pixels.

    Accepts YOLOv8-style ``[1, 4 + classes, N]`` (no objectness) and YOLOv5-style
    ``[1, N, 5 + classes]`` (objectness times class score), either orientation.
    """
    pred = output[0] if output.ndim == 3 else output
    if pred.ndim != 2:
        raise ValueError(f"YOLO output must be [1, C, N] or [1, N, C], got {output.shape}")
    valid = (4 + num_classes, 5 + num_classes)
    if pred.shape[0] in valid and pred.shape[1] not in valid:
        pred = pred.T
    channels = pred.shape[1]
    if channels == 4 + num_classes:
        scores = pred[:, 4 + class_id]
    elif channels == 5 + num_classes:
        scores = pred[:, 4] * pred[:, 5 + class_id]
    else:
        raise ValueError(
            f"YOLO output {output.shape} has {channels} channels per box; expected "
            f"{4 + num_classes} (v8) or {5 + num_classes} (v5) for {num_classes} classes"
        )
    keep = np.flatnonzero(scores >= score_threshold)
    return [_cxcywh_box(pred[i, :4], float(scores[i])) for i in keep]


def _cxcywh_box(values: np.ndarray, score: float) -> Box:
    cx, cy, w, h = (float(v) for v in values)
    return Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score)


class YoloOnnxPersonDetector:
    """A YOLO-layout ONNX detector (COCO class 0 = person) with letterbox input and NMS."""

    name = "yolo-onnx"

    def __init__(
        self,
        model: Path,
        *,
        score_threshold: float = YOLO_SCORE_THRESHOLD,
        iou_threshold: float = 0.45,
        class_id: int = 0,
        num_classes: int = COCO_CLASSES,
    ) -> None:
        if not model.is_file():
            raise FileNotFoundError(
                f"person detector {model} not found: point ML_PLATFORM_PERSON_DETECTOR_ONNX "
                "at a YOLO ONNX export, or unset it to use the HOG fallback"
            )
        self._session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        model_input = self._session.get_inputs()[0]
        self._input_name = model_input.name
        self._height, self._width = _input_hw(model_input.shape)
        self._score_threshold = score_threshold
        self._iou_threshold = iou_threshold
        self._class_id = class_id
        self._num_classes = num_classes
        log.info("loaded YOLO person detector %s (input %dx%d)", model, self._width, self._height)

    def detect(self, rgb: np.ndarray) -> list[Box]:
        height, width = rgb.shape[:2]
        tensor, fit = letterbox(rgb, self._height, self._width)
        output = self._session.run(None, {self._input_name: tensor})[0]
        boxes = decode_yolo(
            np.asarray(output),
            class_id=self._class_id,
            score_threshold=self._score_threshold,
            num_classes=self._num_classes,
        )
        in_image = [clamp_box(fit.to_image(b), width, height) for b in boxes]
        return nms([b for b in in_image if b.area > 0], self._iou_threshold)


def _input_hw(shape: list[int | str | None]) -> tuple[int, int]:
    if len(shape) != 4:
        raise ValueError(f"YOLO input must be [1, 3, H, W], got {shape}")
    height, width = shape[2], shape[3]
    if isinstance(height, int) and isinstance(width, int):
        return height, width
    return DEFAULT_YOLO_SIZE, DEFAULT_YOLO_SIZE

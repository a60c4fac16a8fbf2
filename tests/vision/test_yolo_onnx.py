"""The YOLO-layout ONNX person detector, end to end through onnxruntime.

No YOLO weights ship here, so the test writes a tiny ONNX graph whose output is a constant
YOLOv8 head ([1, 84, N]); the detector's letterboxing, decoding, mapping back and NMS all
run for real. The ONNX protobuf is encoded by hand (the ``onnx`` package is not a dependency).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml_platform.domain import Box
from ml_platform.vision.decode import load_rgb
from ml_platform.vision.detectors import Detector, YoloOnnxPersonDetector

INPUT_H, INPUT_W = 64, 96
FLOAT, TENSOR_ATTRIBUTE = 1, 4


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, shape: tuple[int, ...]) -> bytes:
    dims = b"".join(_bytes(1, _int(1, d)) for d in shape)
    tensor_type = _int(1, FLOAT) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def constant_model(output: np.ndarray) -> bytes:
    """An ONNX model: input ``images`` [1,3,H,W] float, output ``output0`` = ``output``."""
    tensor = b"".join(_int(1, d) for d in output.shape) + _int(2, FLOAT)
    tensor += _bytes(9, output.astype("<f4").tobytes())
    attribute = _bytes(1, "value") + _bytes(5, tensor) + _int(20, TENSOR_ATTRIBUTE)
    node = _bytes(2, "output0") + _bytes(4, "Constant") + _bytes(5, attribute)
    graph = _bytes(1, node) + _bytes(2, "fake_yolo")
    graph += _bytes(11, _value_info("images", (1, 3, INPUT_H, INPUT_W)))
    graph += _bytes(12, _value_info("output0", output.shape))
    opset = _bytes(1, "") + _int(2, 17)
    return _int(1, 8) + _bytes(8, opset) + _bytes(7, graph)


def yolo_head(boxes: list[tuple[float, float, float, float, float]]) -> np.ndarray:
    """[1, 84, N] from (cx, cy, w, h, person score) rows in model-input pixels."""
    head = np.zeros((1, 84, len(boxes)), dtype=np.float32)
    head[0, :5] = np.array(boxes, dtype=np.float32).T
    return head


def write_model(directory: Path, boxes: list[tuple[float, float, float, float, float]]) -> Path:
    path = directory / "yolo.onnx"
    path.write_bytes(constant_model(yolo_head(boxes)))
    return path


def test_handwritten_model_round_trips_through_onnxruntime(tmp_path: Path) -> None:
    detector = YoloOnnxPersonDetector(write_model(tmp_path, [(48, 32, 48, 24, 0.9)]))
    assert detector.detect(np.zeros((INPUT_H, INPUT_W, 3), dtype=np.uint8)) == [
        Box(24, 20, 72, 44, pytest.approx(0.9))
    ]


def test_boxes_are_mapped_back_through_the_letterbox(tmp_path: Path) -> None:
    # 200x100 image -> scale 0.48, drawn at y 8..56 of the 96x64 input.
    detector = YoloOnnxPersonDetector(write_model(tmp_path, [(48, 32, 48, 24, 0.9)]))
    (box,) = detector.detect(np.zeros((100, 200, 3), dtype=np.uint8))
    assert (box.x0, box.y0, box.x1, box.y1) == pytest.approx((50, 25, 150, 75))


def test_overlapping_and_weak_boxes_are_suppressed(tmp_path: Path) -> None:
    rows = [(48, 32, 48, 24, 0.9), (49, 32, 48, 24, 0.8), (10, 10, 8, 8, 0.2), (80, 20, 8, 8, 0.6)]
    detector = YoloOnnxPersonDetector(write_model(tmp_path, rows))
    scores = [b.score for b in detector.detect(np.zeros((INPUT_H, INPUT_W, 3), np.uint8))]
    assert scores == pytest.approx([0.9, 0.6])


def test_detector_uses_the_onnx_person_model_when_configured(tmp_path: Path) -> None:
    model = write_model(tmp_path, [(48, 32, 96, 64, 0.9)])
    result = Detector(yunet_model=None, person_onnx=model).detect(Image.new("RGB", (96, 64)))
    assert result.person_detector == "yolo-onnx"
    assert result.person == Box(0, 0, 96, 64, pytest.approx(0.9))


@pytest.mark.parametrize(
    ("person", "inside"),
    [((48, 32, 96, 64, 0.9), True), ((30, 6, 6, 12, 0.9), False)],  # img5 spans x 27..68
    ids=["person-covers-the-face", "person-in-a-corner"],
)
def test_the_face_is_searched_inside_the_prominent_person_then_in_the_whole_image(
    tmp_path: Path, yunet_onnx: Path, shared_dir: Path, person: tuple[float, ...], inside: bool
) -> None:
    """A person box without a face (a detector firing on the background) must not hide the
    portrait's face: the whole image is searched then (docs/detection.md)."""
    image = load_rgb(shared_dir / "data" / "faces" / "img5.jpg")
    model = write_model(tmp_path, [person])  # type: ignore[list-item]
    result = Detector(yunet_model=yunet_onnx, person_onnx=model).detect(image)
    assert result.person is not None and result.face is not None
    assert result.faces_found == 1
    within = result.person.x0 <= result.face.x0 and result.face.x1 <= result.person.x1
    assert within is inside

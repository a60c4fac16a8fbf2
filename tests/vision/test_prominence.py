"""Pure box geometry: prominence, the prominent pick, IoU/NMS, expansion, YOLO decoding."""

from __future__ import annotations

import numpy as np
import pytest

from ml_platform.domain import Box
from ml_platform.vision.detectors import decode_yolo, letterbox, pick_prominent, prominence
from ml_platform.vision.detectors.frames import clamp_box, expand_box, iou, nms, pixel_bounds
from ml_platform.vision.detectors.prominence import centre_weight, cut_by_frame

W, H = 100.0, 100.0
CENTRE_SMALL = Box(45, 45, 55, 55, 0.9)
CORNER_BIG = Box(0, 0, 40, 40, 0.9)
CENTRE_BIG_WEAK = Box(30, 30, 70, 70, 0.2)
CENTRE_BIG = Box(30, 30, 70, 70, 0.9)


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        (Box(40, 40, 60, 60), 1.0),
        (Box(0, 0, 0, 0), 0.5),
        (Box(0, 40, 20, 60), 1 - 0.5 * (40 / np.hypot(50, 50))),
    ],
)
def test_centre_weight_falls_from_one_at_the_centre_to_half_in_a_corner(
    box: Box, expected: float
) -> None:
    assert centre_weight(box, W, H) == pytest.approx(expected)


def test_prominence_is_area_fraction_times_score_times_centre_weight() -> None:
    assert prominence(CENTRE_BIG, W, H) == pytest.approx(0.16 * 0.9 * 1.0)


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([], None),
        ([CENTRE_SMALL], CENTRE_SMALL),
        ([CENTRE_SMALL, CORNER_BIG], CORNER_BIG),  # 16x the area beats the centre bias
        ([CORNER_BIG, CENTRE_BIG], CENTRE_BIG),  # same size and score: the centred one
        ([CENTRE_BIG_WEAK, Box(20, 20, 50, 50, 0.9)], Box(20, 20, 50, 50, 0.9)),  # score counts
        ([CENTRE_BIG, Box(30, 30, 70, 70, 0.9)], CENTRE_BIG),  # ties keep the first
    ],
)
def test_pick_prominent(boxes: list[Box], expected: Box | None) -> None:
    assert pick_prominent(boxes, W, H) == expected


def test_prominence_needs_a_frame_with_area() -> None:
    with pytest.raises(ValueError, match="positive area"):
        prominence(CENTRE_BIG, 0, 10)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (Box(0, 0, 10, 10), Box(0, 0, 10, 10), 1.0),
        (Box(0, 0, 10, 10), Box(5, 0, 15, 10), 50 / 150),
        (Box(0, 0, 10, 10), Box(20, 20, 30, 30), 0.0),
        (Box(0, 0, 0, 0), Box(0, 0, 0, 0), 0.0),
    ],
)
def test_iou(a: Box, b: Box, expected: float) -> None:
    assert iou(a, b) == pytest.approx(expected)


def test_nms_keeps_the_best_of_overlapping_boxes_and_separate_ones() -> None:
    best, overlapping, apart = (
        Box(0, 0, 10, 10, 0.9),
        Box(1, 1, 11, 11, 0.8),
        Box(50, 50, 60, 60, 0.5),
    )
    assert nms([overlapping, apart, best], 0.45) == [best, apart]


def test_expand_box_grows_each_side_and_clamps_to_the_frame() -> None:
    assert expand_box(Box(10, 20, 30, 60, 0.7), 0.5, 100, 70) == Box(0, 0, 40, 70, 0.7)
    with pytest.raises(ValueError, match="margin"):
        expand_box(CENTRE_BIG, -0.1, W, H)


def test_clamp_and_pixel_bounds_round_outwards() -> None:
    assert clamp_box(Box(-5, 2, 120, 50), W, H) == Box(0, 2, 100, 50)
    assert pixel_bounds(Box(1.2, 2.8, 10.1, 11.0)) == (1, 2, 11, 11)


def _yolo_v8(boxes: list[tuple[float, float, float, float]], person: list[float]) -> np.ndarray:
    """[1, 84, N]: cx, cy, w, h, then 80 class scores; class 0 is person."""
    out = np.zeros((1, 84, len(boxes)), dtype=np.float32)
    out[0, :4] = np.array(boxes, dtype=np.float32).T
    out[0, 4] = person
    out[0, 5] = 0.99  # a confident non-person class must not count
    return out


def test_decode_yolo_v8_layout_keeps_confident_person_boxes() -> None:
    output = _yolo_v8([(50, 50, 20, 40), (10, 10, 4, 4)], [0.9, 0.1])
    assert decode_yolo(output, score_threshold=0.35) == [Box(40, 30, 60, 70, pytest.approx(0.9))]


def test_decode_yolo_accepts_the_transposed_layout() -> None:
    output = _yolo_v8([(50, 50, 20, 40)] * 100, [0.9] * 100)
    assert len(decode_yolo(output.transpose(0, 2, 1), score_threshold=0.5)) == 100


def test_decode_yolo_v5_multiplies_objectness_and_class_score() -> None:
    out = np.zeros((1, 2, 85), dtype=np.float32)
    out[0, :, :4] = [[50, 50, 10, 10], [20, 20, 10, 10]]
    out[0, :, 4] = [0.9, 0.3]  # objectness
    out[0, :, 5] = [0.8, 0.9]  # person
    boxes = decode_yolo(out, score_threshold=0.5)
    assert len(boxes) == 1
    assert boxes[0].score == pytest.approx(0.72)


def test_decode_yolo_rejects_unknown_channel_counts() -> None:
    with pytest.raises(ValueError, match="channels per box"):
        decode_yolo(np.zeros((1, 7, 3), dtype=np.float32), score_threshold=0.5)


def test_letterbox_pads_centred_and_maps_boxes_back() -> None:
    rgb = np.zeros((100, 200, 3), dtype=np.uint8)
    tensor, fit = letterbox(rgb, 64, 64)
    assert tensor.shape == (1, 3, 64, 64)
    assert (fit.scale, fit.pad_x, fit.pad_y) == (0.32, 0.0, 16.0)
    assert tensor[0, 0, 0, 0] == pytest.approx(114 / 255)  # padding
    assert tensor[0, 0, 32, 32] == 0.0  # image
    assert fit.to_image(Box(0, 16, 64, 48, 0.5)) == Box(0, 0, 200, 100, 0.5)


def test_a_face_cut_by_the_frame_ranks_below_a_whole_centred_one() -> None:
    """A portrait (250 px) with a bystander cut by the right edge, bigger than the subject."""
    subject, bystander = Box(74, 64, 171, 185, 0.93), Box(137, 34, 250, 199, 0.90)
    assert pick_prominent([subject, bystander], 250, 250) == bystander  # persons: area wins
    assert pick_prominent([subject, bystander], 250, 250, cut_factor=0.5) == subject
    assert pick_prominent([bystander], 250, 250, cut_factor=0.5) == bystander  # the only face


@pytest.mark.parametrize(
    ("box", "cut"),
    [(Box(10, 10, 90, 90), False), (Box(0, 10, 50, 50), True), (Box(10, 10, 50, 100), True)],
)
def test_cut_by_frame(box: Box, cut: bool) -> None:
    assert cut_by_frame(box, W, H) is cut

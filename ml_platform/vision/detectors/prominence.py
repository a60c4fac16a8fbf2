"""Which box is *the* prominent one: big, confident and near the centre.

``prominence = area_fraction * score * centre_weight`` where ``area_fraction`` is the box
area over the frame area, ``score`` the detector confidence in [0, 1], and
``centre_weight = 1 - CENTRE_BIAS * d`` with ``d`` the distance from the box centre to the
frame centre divided by the half-diagonal (0 at the centre, 1 in a corner). See
docs/detection.md.

Faces are ranked with one more factor (``pick_prominent(..., cut_factor=FACE_CUT_FACTOR)``):
a face box that runs into the frame's edge is a face cut by the frame, rarely the subject
(a bystander at the side of a portrait), so its value is multiplied by ``FACE_CUT_FACTOR``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ml_platform.domain import Box

CENTRE_BIAS = 0.5
FACE_CUT_FACTOR = 0.5
EDGE_PX = 1.0  # a box side this close to the frame's edge runs into it


def centre_weight(box: Box, width: float, height: float) -> float:
    """1 for a box centred in the frame, down to ``1 - CENTRE_BIAS`` in a corner."""
    half_diagonal = math.hypot(width, height) / 2
    if half_diagonal <= 0:
        return 1.0
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    distance = math.hypot(cx - width / 2, cy - height / 2) / half_diagonal
    return 1.0 - CENTRE_BIAS * min(distance, 1.0)


def prominence(box: Box, width: float, height: float) -> float:
    """The ranking value of ``box`` in a ``width`` x ``height`` frame (higher wins)."""
    frame_area = width * height
    if frame_area <= 0:
        raise ValueError(f"frame must have a positive area, got {width}x{height}")
    area_fraction = min(box.area / frame_area, 1.0)
    return area_fraction * max(box.score, 0.0) * centre_weight(box, width, height)


def cut_by_frame(box: Box, width: float, height: float) -> bool:
    """Whether ``box`` (clamped to the frame) runs into the frame's edge."""
    return (
        box.x0 <= EDGE_PX
        or box.y0 <= EDGE_PX
        or box.x1 >= width - EDGE_PX
        or box.y1 >= height - EDGE_PX
    )


def pick_prominent(
    boxes: Sequence[Box], width: float, height: float, cut_factor: float = 1.0
) -> Box | None:
    """The most prominent box (the first one on ties), None when there are none; the value of
    a box cut by the frame is multiplied by ``cut_factor``."""
    best: Box | None = None
    best_value = -1.0
    for box in boxes:
        value = prominence(box, width, height)
        if cut_factor != 1.0 and cut_by_frame(box, width, height):
            value *= cut_factor
        if value > best_value:
            best, best_value = box, value
    return best

"""Which box is *the* prominent one: big, confident and near the centre.

``prominence = area_fraction * score * centre_weight`` where ``area_fraction`` is the box
area over the frame area, ``score`` the detector confidence in [0, 1], and
``centre_weight = 1 - CENTRE_BIAS * d`` with ``d`` the distance from the box centre to the
frame centre divided by the half-diagonal (0 at the centre, 1 in a corner). See
docs/detection.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ml_platform.domain import Box

CENTRE_BIAS = 0.5


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


def pick_prominent(boxes: Sequence[Box], width: float, height: float) -> Box | None:
    """The most prominent box (the first one on ties), None when there are none."""
    best: Box | None = None
    best_value = -1.0
    for box in boxes:
        value = prominence(box, width, height)
        if value > best_value:
            best, best_value = box, value
    return best

"""Fixed views of an aligned face chip, for a deterministic test-time jitter.

dlib publishes its face ResNet at 99.38 % on LFW with ``num_jitters=100``: each face run on
100 random views of its 150 px chip (dlib's ``jitter_image``: a window of 0.96-0.99 of the
chip, shifted up to 2 %, rotated up to 3 degrees, mirrored half the time, cut again to
150 px) and the descriptors averaged. Its seed cannot be set, so a stored vector would not
be reproducible. Here a view is fixed instead: a window of ``scale`` chip sides around the
chip's centre, rotated by ``angle`` degrees, cut by dlib's ``extract_image_chip`` (as
``jitter_image`` does), then mirrored when ``mirror``. The same chip always gives the same
views. A named view set is part of the embedder's revision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ml_platform.vision.faces.model_files import import_dlib


@dataclass(frozen=True)
class ChipView:
    """One fixed view of a chip: a centred window of ``scale`` chip sides (below 1 zooms in),
    rotated by ``angle`` degrees, mirrored left-right when ``mirror``."""

    scale: float = 1.0
    angle: float = 0.0
    mirror: bool = False

    def __post_init__(self) -> None:
        if not 0.5 <= self.scale <= 1.5 or abs(self.angle) > 45:
            raise ValueError(f"a chip view is a small change: scale in [0.5, 1.5] and |angle| "
                             f"<= 45 degrees, got {self.scale}, {self.angle}")  # fmt: skip

    @property
    def name(self) -> str:
        angle = f"r{self.angle:+g}" if self.angle else ""
        return f"s{self.scale:g}{angle}{'m' if self.mirror else ''}"

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.angle == 0.0

    def mirrored(self) -> ChipView:
        return ChipView(self.scale, self.angle, not self.mirror)


def with_mirrors(*views: ChipView) -> tuple[ChipView, ...]:
    """Each view followed by its mirror."""
    return tuple(v for view in views for v in (view, view.mirrored()))


# dlib's jitter window is 0.96-0.99 of the chip (middle 0.975), its rotation uniform in +-3
# degrees (standard deviation 1.7): the fixed sets take the middle and about one deviation.
ZOOM = 0.975
TURN = 2.0
VIEW_SETS: dict[str, tuple[ChipView, ...]] = {
    "plain": (ChipView(),),
    "mirror": with_mirrors(ChipView()),
    "zoom4": with_mirrors(ChipView(), ChipView(ZOOM)),
    "turn8": with_mirrors(ChipView(), ChipView(ZOOM), ChipView(ZOOM, TURN), ChipView(ZOOM, -TURN)),
}


def view_set(name: str) -> tuple[ChipView, ...]:
    """The views of the named set (``VIEW_SETS``)."""
    if name not in VIEW_SETS:
        raise ValueError(f"unknown face view set {name!r}; known: {sorted(VIEW_SETS)}")
    return VIEW_SETS[name]


def view_chip(chip: NDArray[np.uint8], view: ChipView) -> NDArray[np.uint8]:
    """``view`` of one [size, size, 3] uint8 chip, the same size (the identity is the chip)."""
    out = chip if view.is_identity else _window(chip, view.scale, view.angle)
    return np.ascontiguousarray(out[:, ::-1] if view.mirror else out, dtype=np.uint8)


def view_chips(chips: NDArray[np.uint8], views: tuple[ChipView, ...]) -> NDArray[np.uint8]:
    """[views, n, size, size, 3]: each view of each chip of ``chips`` [n, size, size, 3]."""
    return np.asarray([[view_chip(c, view) for c in chips] for view in views], dtype=np.uint8)


def _window(chip: NDArray[np.uint8], scale: float, angle: float) -> NDArray[np.uint8]:
    """The centred ``scale`` window of ``chip`` rotated by ``angle`` degrees, resampled to the
    chip's size by dlib (a window of scale 1 and angle 0 is the chip, pixel for pixel)."""
    dlib = import_dlib()
    size = chip.shape[0]
    centre, half = (size - 1) / 2, (size * scale - 1) / 2
    rect = dlib.drectangle(centre - half, centre - half, centre + half, centre + half)
    details = dlib.chip_details(rect, dlib.chip_dims(size, size), float(np.deg2rad(angle)))
    (out,) = dlib.extract_image_chips(np.ascontiguousarray(chip), [details])
    return np.asarray(out, dtype=np.uint8)

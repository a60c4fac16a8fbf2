"""Pure preprocessing: sizes, crops, normalisation and layouts on synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ml_platform.vision.preprocess import (
    ChannelOrder,
    Layout,
    PreprocessSpec,
    Resample,
    center_crop,
    preprocess_images,
    resize_and_crop,
    short_side_size,
)


def _spec(**overrides: object) -> PreprocessSpec:
    values: dict[str, object] = {
        "crop_height": 4,
        "crop_width": 4,
        "resize_short_side": None,
        "mean": (127.0, 127.0, 127.0),
        "std": (128.0, 128.0, 128.0),
        "rescale": 1.0,
    }
    values.update(overrides)
    return PreprocessSpec(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size", "short", "expected"),
    [
        ((500, 375), 224, (298, 224)),
        ((375, 500), 224, (224, 298)),
        ((333, 500), 256, (256, 384)),
        ((224, 224), 224, (224, 224)),
        ((1000, 1), 10, (10000, 10)),
    ],
)
def test_short_side_size_truncates_the_long_side_like_transformers(
    size: tuple[int, int], short: int, expected: tuple[int, int]
) -> None:
    assert short_side_size(*size, short) == expected


def test_center_crop_takes_the_middle_with_floor_rounding() -> None:
    pixels = np.arange(7 * 5, dtype=np.uint8).reshape(5, 7)
    cropped = np.asarray(center_crop(Image.fromarray(pixels), height=2, width=3))
    assert cropped.tolist() == pixels[1:3, 2:5].tolist()


def test_resize_and_crop_gives_the_crop_size_for_any_aspect() -> None:
    spec = _spec(crop_height=224, crop_width=224, resize_short_side=256)
    for size in [(500, 375), (375, 500), (100, 900)]:
        assert resize_and_crop(Image.new("RGB", size), spec).size == (224, 224)


def test_stretch_resize_ignores_the_aspect_ratio() -> None:
    spec = _spec(crop_height=30, crop_width=20, resize_short_side=None)
    assert resize_and_crop(Image.new("RGB", (500, 100)), spec).size == (20, 30)


def test_pixel_offset_and_scale_normalisation_is_exact() -> None:
    image = Image.new("RGB", (4, 4), (255, 127, 0))
    batch = preprocess_images([image], _spec())
    assert batch.shape == (1, 3, 4, 4)
    assert batch.dtype == np.float32
    assert np.allclose(batch[0, :, 0, 0], [128 / 128, 0.0, -127 / 128])


def test_bgr_and_nhwc_reorder_channels_and_axes() -> None:
    image = Image.new("RGB", (4, 4), (255, 127, 0))
    spec = _spec(channel_order=ChannelOrder.BGR, layout=Layout.NHWC)
    batch = preprocess_images([image, image], spec)
    assert batch.shape == (2, 4, 4, 3)
    assert np.allclose(batch[1, 2, 2], [-127 / 128, 0.0, 1.0])


def test_grayscale_input_is_converted_to_rgb() -> None:
    batch = preprocess_images([Image.new("L", (8, 8), 127)], _spec())
    assert np.allclose(batch, 0.0)


@pytest.mark.parametrize(
    "overrides",
    [
        {"crop_height": 0},
        {"resize_short_side": -1},
        {"std": (1.0, 0.0, 1.0)},
        {"mean": (1.0, 1.0)},
    ],
)
def test_invalid_specs_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _spec(**overrides)


def test_resample_maps_to_pil_and_back() -> None:
    assert Resample.BICUBIC.pil is Image.Resampling.BICUBIC
    assert Resample.from_pil(int(Image.Resampling.BILINEAR)) is Resample.BILINEAR


def test_draft_size_covers_the_resize_target() -> None:
    assert _spec(resize_short_side=256, crop_height=224, crop_width=224).draft_size == (256, 256)
    assert _spec(resize_short_side=None, crop_height=224, crop_width=300).draft_size == (300, 300)

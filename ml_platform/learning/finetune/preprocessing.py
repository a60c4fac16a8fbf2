"""How each architecture expects its pixels: resize, crop and normalisation (PreprocessSpec).

The spec travels with a registered model (`spec_to_json` / `spec_from_json`), so serving
prepares images exactly as training did.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from ml_platform.learning.finetune.config import ModelName
from ml_platform.vision.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ChannelOrder,
    Layout,
    PreprocessSpec,
    Resample,
)

log = logging.getLogger(__name__)

HALF = (0.5, 0.5, 0.5)
# EfficientNet-Lite was trained on (pixel - 127) / 128 (../shared/models/README.md).
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3
CROP_FRACTION = 224 / 256


def preprocess_spec(model_name: ModelName, size: int, source: str | None = None) -> PreprocessSpec:
    """The architecture's preprocessing at `size`; a checkpoint's own mean/std when it has one."""
    if model_name.is_lite:
        return _spec(size, round(size / CROP_FRACTION), LITE_MEAN, LITE_STD)
    vit = model_name is ModelName.VIT_BASE_PATCH16_224
    mean: tuple[float, ...] = HALF if vit else IMAGENET_MEAN
    std: tuple[float, ...] = HALF if vit else IMAGENET_STD
    if source is not None:
        mean, std = _processor_stats(source, mean, std)
    short = round(size / CROP_FRACTION) if model_name is ModelName.CONVNEXT_TINY else None
    return _spec(size, short, mean, std)


def _spec(
    size: int, short: int | None, mean: tuple[float, ...], std: tuple[float, ...]
) -> PreprocessSpec:
    return PreprocessSpec.square(size, short, (mean[0], mean[1], mean[2]), (std[0], std[1], std[2]))


def _processor_stats(
    source: str, mean: tuple[float, ...], std: tuple[float, ...]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(source)  # type: ignore[no-untyped-call]
    except (OSError, ValueError):
        log.info("%r has no image processor config; using the architecture's defaults", source)
        return mean, std
    found_mean = getattr(processor, "image_mean", None) or mean
    found_std = getattr(processor, "image_std", None) or std
    return tuple(float(v) for v in found_mean), tuple(float(v) for v in found_std)


def spec_to_json(spec: PreprocessSpec) -> str:
    return json.dumps(dataclasses.asdict(spec), sort_keys=True)


def spec_from_json(raw: str) -> PreprocessSpec:
    data: dict[str, Any] = json.loads(raw)
    return PreprocessSpec(
        crop_height=int(data["crop_height"]), crop_width=int(data["crop_width"]),
        resize_short_side=data["resize_short_side"],
        mean=tuple(data["mean"]), std=tuple(data["std"]),  # type: ignore[arg-type]
        rescale=float(data["rescale"]), resample=Resample(data["resample"]),
        channel_order=ChannelOrder(data["channel_order"]), layout=Layout(data["layout"]),
    )  # fmt: skip

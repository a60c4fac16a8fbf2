"""Read a checkpoint's ``preprocessor_config.json`` into a PreprocessSpec.

A loaded checkpoint's own image processor settings win over the built-in defaults, so a
variant with another input size (e.g. a 336 px CLIP) is preprocessed the way it was trained.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from transformers.utils.hub import cached_file

from ml_platform.vision.preprocess import PreprocessSpec, Resample

log = logging.getLogger(__name__)

PROCESSOR_FILE = "preprocessor_config.json"


def spec_for_checkpoint(model_id: str, default: PreprocessSpec) -> PreprocessSpec:
    """The checkpoint's preprocessing, or ``default`` when it has no readable processor file."""
    try:
        path = cached_file(model_id, PROCESSOR_FILE, _raise_exceptions_for_missing_entries=False)
    except OSError as exc:
        log.warning("%s: no %s (%s); using default preprocessing", model_id, PROCESSOR_FILE, exc)
        return default
    if path is None:
        return default
    config = json.loads(Path(path).read_text())
    try:
        return spec_from_processor_dict(config, default)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("%s: unsupported %s (%s); using defaults", model_id, PROCESSOR_FILE, exc)
        return default


def spec_from_processor_dict(config: dict[str, Any], default: PreprocessSpec) -> PreprocessSpec:
    """Map transformers image-processor keys onto ``default``; ValueError when unsupported."""
    spec = replace(
        default,
        mean=_triple(config.get("image_mean", default.mean)),
        std=_triple(config.get("image_std", default.std)),
        rescale=float(config.get("rescale_factor", default.rescale)),
        resample=Resample.from_pil(int(config.get("resample", default.resample.pil))),
    )
    crop = config.get("crop_size")
    if crop is not None:
        height, width = _hw(crop)
        spec = replace(spec, crop_height=height, crop_width=width)
    size = config.get("size")
    if isinstance(size, dict) and "shortest_edge" in size:
        if config.get("do_center_crop") is False:
            raise ValueError("shortest_edge resize without a centre crop")
        return replace(spec, resize_short_side=int(size["shortest_edge"]))
    if size is not None:
        height, width = _hw(size)
        if config.get("do_center_crop") and crop is not None and _hw(crop) != (height, width):
            raise ValueError("a square resize followed by a smaller centre crop")
        return replace(spec, resize_short_side=None, crop_height=height, crop_width=width)
    return spec


def _hw(size: Any) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    if isinstance(size, dict) and {"height", "width"} <= size.keys():
        return int(size["height"]), int(size["width"])
    raise ValueError(f"size {size!r} is neither an int nor {{height, width}}")


def _triple(values: Any) -> tuple[float, float, float]:
    items = [float(v) for v in (values if isinstance(values, list | tuple) else [values] * 3)]
    if len(items) != 3:
        raise ValueError(f"expected 3 channel values, got {values!r}")
    return items[0], items[1], items[2]

"""Our PIL/numpy preprocessing against transformers' own PIL image processors, on real photos.

Tolerance: max |ours - transformers| < 1e-3 after normalisation (values span about
[-2.1, 2.6]); both resize with the same PIL call, so the only differences are float
rounding (observed about 1e-6).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import BitImageProcessorPil, CLIPImageProcessorPil
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from ml_platform.vision.decode import load_rgb
from ml_platform.vision.embedders.clip import CLIP_SPEC
from ml_platform.vision.embedders.dino import DINO_SPEC
from ml_platform.vision.embedders.processor_config import spec_from_processor_dict
from ml_platform.vision.preprocess import PreprocessSpec, preprocess_images

TOLERANCE = 1e-3
# facebook/dinov2-* preprocessor_config.json (a BitImageProcessor), as published on the hub.
DINOV2_PROCESSOR = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": list(IMAGENET_DEFAULT_MEAN),
    "image_std": list(IMAGENET_DEFAULT_STD),
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 256},
}


@pytest.fixture(scope="module")
def photos(shared_dir: Path, pet_photos: dict[str, list[Path]]) -> list[Image.Image]:
    """Portrait and landscape photos of people and pets, small and large."""
    faces = shared_dir / "data" / "faces"
    paths = [faces / n for n in ("img1.jpg", "img17.jpg", "img25.jpg", "couple.jpg")]
    paths += [files[0] for files in list(pet_photos.values())[::3]]
    return [load_rgb(p) for p in paths]


def _max_diff(spec: PreprocessSpec, processor: object, images: list[Image.Image]) -> float:
    ours = preprocess_images(images, spec)
    theirs = processor(images=images, return_tensors="np")["pixel_values"]  # type: ignore[operator]
    assert ours.shape == theirs.shape
    return float(np.abs(ours - theirs).max())


def test_clip_preprocessing_matches_clip_image_processor(photos: list[Image.Image]) -> None:
    assert _max_diff(CLIP_SPEC, CLIPImageProcessorPil(), photos) < TOLERANCE


def test_dino_preprocessing_matches_dinov2_bit_image_processor(
    photos: list[Image.Image],
) -> None:
    processor = BitImageProcessorPil(**DINOV2_PROCESSOR)
    assert _max_diff(DINO_SPEC, processor, photos) < TOLERANCE


def test_spec_read_from_the_dinov2_processor_config_equals_the_builtin() -> None:
    assert spec_from_processor_dict(DINOV2_PROCESSOR, CLIP_SPEC) == DINO_SPEC


def test_spec_from_a_336px_clip_processor_config_matches_its_processor(
    photos: list[Image.Image],
) -> None:
    config = {"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336}}
    spec = spec_from_processor_dict(config, CLIP_SPEC)
    assert (spec.resize_short_side, spec.crop_height) == (336, 336)
    assert _max_diff(spec, CLIPImageProcessorPil(**config), photos[:3]) < TOLERANCE

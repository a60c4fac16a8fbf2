"""Training-time augmentation with PIL and numpy only (no torchvision).

Each policy is a random resized crop (area fraction from `min_scale` to 1, aspect 3/4..4/3),
then optionally a horizontal flip, a small rotation, brightness/contrast/saturation jitter,
grayscale and random erasing; `mix_p` is the chance a training batch is blended by mixup or
CutMix (`recipe.mix_batch`). `none` is the evaluation transform: resize and centre-crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageEnhance, ImageOps

from ml_platform.learning.finetune.config import Augmentation
from ml_platform.vision.preprocess import PreprocessSpec, resize_and_crop, to_array

ASPECT_RANGE = (3 / 4, 4 / 3)
CROP_TRIES = 10


@dataclass(frozen=True)
class AugmentPolicy:
    min_scale: float
    flip: bool = False
    rotate_degrees: float = 0.0
    jitter: float = 0.0
    grayscale_p: float = 0.0
    erase_p: float = 0.0
    mix_p: float = 0.0

    @property
    def identity(self) -> bool:
        return self == AugmentPolicy(1.0)


POLICIES: dict[Augmentation, AugmentPolicy] = {
    Augmentation.NONE: AugmentPolicy(1.0),
    Augmentation.LIGHT: AugmentPolicy(0.7, flip=True, jitter=0.1),
    Augmentation.MEDIUM: AugmentPolicy(0.35, flip=True, rotate_degrees=10, jitter=0.25,
                                       grayscale_p=0.05, mix_p=0.3),
    Augmentation.HEAVY: AugmentPolicy(0.25, flip=True, rotate_degrees=20, jitter=0.4,
                                      grayscale_p=0.1, erase_p=0.5, mix_p=0.6),
}  # fmt: skip


def evaluation_pixels(image: Image.Image, spec: PreprocessSpec) -> NDArray[np.float32]:
    return to_array(resize_and_crop(image, spec), spec)


def augmented_pixels(
    image: Image.Image, spec: PreprocessSpec, policy: AugmentPolicy, rng: np.random.Generator
) -> NDArray[np.float32]:
    """One augmented view of `image` as normalised CHW float32 pixels."""
    if policy.identity:
        return evaluation_pixels(image, spec)
    view = random_resized_crop(image, spec, policy.min_scale, rng)
    if policy.flip and rng.random() < 0.5:
        view = ImageOps.mirror(view)
    if policy.rotate_degrees:
        angle = float(rng.uniform(-policy.rotate_degrees, policy.rotate_degrees))
        view = view.rotate(angle, resample=Image.Resampling.BILINEAR)
    if policy.jitter:
        view = color_jitter(view, policy.jitter, rng)
    if policy.grayscale_p and rng.random() < policy.grayscale_p:
        view = ImageOps.grayscale(view).convert("RGB")
    pixels = to_array(view, spec)
    if policy.erase_p and rng.random() < policy.erase_p:
        random_erase(pixels, rng)
    return pixels


def random_resized_crop(
    image: Image.Image, spec: PreprocessSpec, min_scale: float, rng: np.random.Generator
) -> Image.Image:
    """A random region of `min_scale`..1 of the area, resized to the spec's crop size."""
    width, height = image.size
    size = (spec.crop_width, spec.crop_height)
    for _ in range(CROP_TRIES):
        area = width * height * rng.uniform(min_scale, 1.0)
        aspect = math.exp(rng.uniform(*np.log(ASPECT_RANGE)))
        w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return image.resize(size, spec.resample.pil, box=(left, top, left + w, top + h))
    return resize_and_crop(image, spec)


def color_jitter(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast and saturation each scaled by a factor in 1 +- strength."""
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(float(rng.uniform(1 - strength, 1 + strength)))
    return image


def random_erase(pixels: NDArray[np.float32], rng: np.random.Generator) -> None:
    """Zero (the normalised mean) a random rectangle of 2-20 % of the area, in place."""
    _, height, width = pixels.shape
    area = height * width * rng.uniform(0.02, 0.2)
    aspect = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
    h = min(height, max(1, round(math.sqrt(area * aspect))))
    w = min(width, max(1, round(math.sqrt(area / aspect))))
    top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    pixels[:, top : top + h, left : left + w] = 0.0

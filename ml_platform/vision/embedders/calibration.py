"""The calibration sample: the platform's own images when it has some, else synthetic ones.

Used for the drift check of an exported/quantised model and for static INT8 calibration.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from ml_platform.vision.decode import ImageDecodeError, load_rgb
from ml_platform.vision.preprocess import PreprocessSpec, preprocess_images

log = logging.getLogger(__name__)

SAMPLE_SIZE = 32
MIN_REAL_IMAGES = 8
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
SYNTHETIC = "synthetic"


def sample_images(
    directory: Path | None, count: int = SAMPLE_SIZE
) -> tuple[list[Image.Image], str]:
    """Up to ``count`` images spread over ``directory``, and a description of the source."""
    real = _real_images(directory, count) if directory is not None else []
    if len(real) >= MIN_REAL_IMAGES:
        return real, f"{len(real)} images from {directory}"
    log.info(
        "calibrating on synthetic images (fewer than %d images under %s)",
        MIN_REAL_IMAGES,
        directory,
    )
    return synthetic_images(count), f"{count} {SYNTHETIC} images"


def sample_pixels(
    spec: PreprocessSpec, directory: Path | None, count: int = SAMPLE_SIZE
) -> tuple[np.ndarray, str]:
    images, source = sample_images(directory, count)
    return preprocess_images(images, spec), source


def synthetic_images(count: int, side: int = 256, seed: int = 0) -> list[Image.Image]:
    """Smooth random colour fields with some texture: photo-like statistics, reproducible."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC))
        grain = rng.normal(0.0, 12.0, smooth.shape)
        images.append(Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)))
    return images


def _real_images(directory: Path, count: int) -> list[Image.Image]:
    if not directory.is_dir():
        return []
    paths = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    step = max(1, len(paths) // count)
    images = []
    for path in paths[::step][:count]:
        try:
            images.append(load_rgb(path, draft_size=(256, 256)))
        except (ImageDecodeError, OSError) as exc:
            log.debug("calibration: skipping %s: %s", path, exc)
    return images

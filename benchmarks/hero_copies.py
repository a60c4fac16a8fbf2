"""The hero case of `cluster_pets.py`: degraded copies of some photos added to a pet.

Each chosen photo gets four copies: blurred (Gaussian radius 4), dark (x 0.25), over-exposed
(x 2.5 + 60, clipped) and tiny (64 px on the long side). The copies are embedded like the
photos, the pet is clustered with the default config, and every cluster's heroes are picked
with the default weights; the figure is the share of heroes that are not copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageEnhance, ImageFilter

from ml_platform.learning.clustering import ClusterConfig, cluster_pet
from ml_platform.learning.hero import (
    HeroCandidate,
    HeroWeights,
    QualityParts,
    hero_sets,
    image_quality,
)
from ml_platform.vision.decode import load_rgb
from ml_platform.vision.embedders import Embedder

NOW = datetime(2025, 1, 1, tzinfo=UTC)
TOP_N = 3
DUPLICATE_THRESHOLD = 0.97


def blurred(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(4))


def dark(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(0.25)


def over_exposed(image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32) * 2.5 + 60.0
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def tiny(image: Image.Image) -> Image.Image:
    scale = 64 / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))


DEGRADE = (blurred, dark, over_exposed, tiny)


@dataclass(frozen=True)
class Shots:
    """Photos and their degraded copies: embedding and pixel quality of each, copy flags."""

    vectors: NDArray[np.float32]
    quality: tuple[QualityParts, ...]
    is_copy: NDArray[np.bool_]
    source: NDArray[np.int64]  # the photo row each shot comes from

    @classmethod
    def make(cls, paths: list[Path], embedder: Embedder) -> Shots:
        photos = [load_rgb(p) for p in paths]
        copies = [degrade(photo) for photo in photos for degrade in DEGRADE]
        images = photos + copies
        vectors = np.asarray(embedder.embed(images), dtype=np.float32)
        source = np.concatenate([np.arange(len(photos)), np.repeat(np.arange(len(photos)), 4)])
        is_copy = np.arange(len(images)) >= len(photos)
        return cls(vectors, tuple(image_quality(i) for i in images), is_copy, source)

    def rows(self, photo_rows: NDArray[np.int64], with_copies: NDArray[np.int64]) -> list[int]:
        """The shots of `photo_rows`, plus the copies of `with_copies`."""
        copies = np.flatnonzero(self.is_copy & np.isin(self.source, with_copies))
        return [*photo_rows.tolist(), *copies.tolist()]


def hero_precision(shots: Shots, rows: list[int], config: ClusterConfig) -> tuple[int, int]:
    """(heroes that are not copies, heroes) for one pet made of the shots `rows`."""
    clusters = cluster_pet(rows, shots.vectors[rows], config)
    candidates = {
        r: HeroCandidate(r, shots.vectors[r], shots.quality[r], created_at=NOW) for r in rows
    }
    heroes = hero_sets(clusters, candidates, HeroWeights(), TOP_N, DUPLICATE_THRESHOLD, NOW)
    picked = [p.image_id for picks in heroes.values() for p in picks]
    return sum(not shots.is_copy[i] for i in picked), len(picked)

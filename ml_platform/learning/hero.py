"""Hero sets: the top images of a cluster by a composite score whose parts are kept.

Every part is in [0, 1]: sharpness, exposure and resolution from the pixels
(`image_quality`), subject prominence from a detection (score and box area, times the
face quality of `vision.faces.quality` where it was measured), centrality
(cosine to the cluster centroid) and recency (capture time, else crawlr's created_at,
halving every `recency_half_life_days`). The score is the weighted mean of the parts.
Ranking is greedy: an image whose cosine to an already chosen hero exceeds the duplicate
threshold is skipped, so a hero set is not five shots of the same moment. An image under a
`HeroFloor` (blurred, dark, blown out or tiny) is never a hero, however central: a cluster
made only of such images has no heroes rather than bad ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ml_platform.learning.ann_index import FloatArray, l2_normalise
from ml_platform.learning.cluster_store import PetClusters

MAX_SIDE = 512
# Variance of the Laplacian (8-bit grey, <= 512 px) that scores 0.5. On the shared pet photos:
# 5th percentile 140, median 730, 95th 2900; a Gaussian blur of radius 4 brings a texture to ~5.
SHARPNESS_HALF = 300.0
RESOLUTION_SCALE_MP = 2.0  # 1 - exp(-mp / 2): 2 MP -> 0.63, 8 MP -> 0.98
CLIP_LOW, CLIP_HIGH = 5, 250  # grey levels counted as crushed shadows / blown highlights
CLIP_TOLERANCE = 0.25  # this share of clipped pixels or more zeroes the exposure part
FULL_AREA_FRACTION = 0.5  # a subject box covering half the image is fully prominent
SECONDS_PER_DAY = 86_400.0


class HeroPart(StrEnum):
    SHARPNESS = "sharpness"
    EXPOSURE = "exposure"
    RESOLUTION = "resolution"
    PROMINENCE = "prominence"
    CENTRALITY = "centrality"
    RECENCY = "recency"


@dataclass(frozen=True)
class QualityParts:
    """Pixel quality of one image: normalised parts in [0, 1] and the raw figures."""

    sharpness: float
    exposure: float
    resolution: float
    laplacian_variance: float
    megapixels: float


@dataclass(frozen=True)
class HeroWeights:
    """Weight of each part in the score (any non-negative scale) and the recency half-life."""

    sharpness: float = 1.0
    exposure: float = 0.5
    resolution: float = 0.5
    prominence: float = 1.0
    centrality: float = 1.0
    recency: float = 0.5
    recency_half_life_days: float = 365.0

    def __post_init__(self) -> None:
        weights = self.by_part()
        if any(w < 0 or not math.isfinite(w) for w in weights.values()) or not sum(
            weights.values()
        ):
            raise ValueError(f"hero weights must be finite, >= 0 and not all 0, got {weights}")
        if not self.recency_half_life_days > 0:
            raise ValueError(
                f"recency_half_life_days must be > 0, got {self.recency_half_life_days}"
            )

    def by_part(self) -> dict[HeroPart, float]:
        return {part: float(getattr(self, part.value)) for part in HeroPart}


@dataclass(frozen=True, eq=False)
class HeroCandidate:
    """One image of a cluster. Naive datetimes are taken as UTC.

    `detection_score` and `box_area_fraction` describe the subject detection the image was
    cropped or chosen by; None (no detection) scores prominence 0. `face_quality` (0-1, None
    when not measured) scales the prominence: a blurred or turned-away face is less of a hero.
    """

    image_id: int
    embedding: NDArray[np.floating]
    quality: QualityParts
    created_at: datetime
    captured_at: datetime | None = None
    detection_score: float | None = None
    box_area_fraction: float | None = None
    face_quality: float | None = None


@dataclass(frozen=True)
class PartScore:
    value: float  # in [0, 1]
    weight: float
    contribution: float  # weight * value / sum of weights; contributions sum to the score


@dataclass(frozen=True)
class HeroPick:
    """A chosen hero; `suppressed` lists the near-duplicates skipped in its favour."""

    image_id: int
    score: float
    parts: Mapping[HeroPart, PartScore]
    suppressed: tuple[int, ...] = ()


@dataclass(frozen=True)
class HeroFloor:
    """The least pixel quality a hero needs. Of the 120 shared pet photos 5 fall under it (the
    exposure part zeroes photos with a quarter of their pixels crushed, e.g. a black cat on
    black); of their blurred (radius 4), dark (x 0.25), over-exposed and 64 px copies, 12 of
    480 pass it (benchmarks/cluster_pets.py, hero case)."""

    sharpness: float = 0.03
    exposure: float = 0.3
    megapixels: float = 0.01

    def admits(self, quality: QualityParts) -> bool:
        return (
            quality.sharpness >= self.sharpness
            and quality.exposure >= self.exposure
            and quality.megapixels >= self.megapixels
        )


def image_quality(image: Image.Image) -> QualityParts:
    """Sharpness, exposure and resolution of an image. Sharpness is measured with the long
    side scaled to 512 px, up or down, so a tiny copy looks as soft as it would on screen."""
    megapixels = image.width * image.height / 1e6
    grey = np.asarray(_at_scale(image).convert("L"), dtype=np.uint8)
    lap_var = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return QualityParts(
        sharpness=lap_var / (lap_var + SHARPNESS_HALF),
        exposure=_exposure(grey),
        resolution=1.0 - math.exp(-megapixels / RESOLUTION_SCALE_MP),
        laplacian_variance=lap_var,
        megapixels=megapixels,
    )


def _at_scale(image: Image.Image) -> Image.Image:
    scale = MAX_SIDE / max(image.width, image.height, 1)
    if abs(scale - 1.0) < 0.05:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)


def _exposure(grey: NDArray[np.uint8]) -> float:
    """1 for a mid-grey mean with nothing clipped; falls with distance from mid-grey and with
    the share of crushed or blown pixels."""
    if grey.size == 0:
        raise ValueError("cannot score the exposure of an empty image")
    clipped = float(np.mean((grey <= CLIP_LOW) | (grey >= CLIP_HIGH)))
    brightness = 1.0 - abs(float(grey.mean()) / 255.0 - 0.5) * 2.0
    return brightness * (1.0 - min(1.0, clipped / CLIP_TOLERANCE))


def score_candidate(
    candidate: HeroCandidate, centroid: NDArray[np.floating], weights: HeroWeights, now: datetime
) -> tuple[float, dict[HeroPart, PartScore]]:
    """The composite score of one candidate and its parts."""
    values = {
        HeroPart.SHARPNESS: candidate.quality.sharpness,
        HeroPart.EXPOSURE: candidate.quality.exposure,
        HeroPart.RESOLUTION: candidate.quality.resolution,
        HeroPart.PROMINENCE: _prominence(candidate),
        HeroPart.CENTRALITY: _cosine(candidate.embedding, centroid),
        HeroPart.RECENCY: _recency(candidate, now, weights.recency_half_life_days),
    }
    by_part = weights.by_part()
    total = sum(by_part.values())
    parts = {
        part: PartScore(v, by_part[part], by_part[part] * v / total)
        for part, v in ((p, min(1.0, max(0.0, v))) for p, v in values.items())
    }
    return sum(p.contribution for p in parts.values()), parts


def rank_heroes(
    candidates: Sequence[HeroCandidate],
    centroid: NDArray[np.floating],
    weights: HeroWeights,
    top_n: int,
    dup_threshold: float,
    now: datetime,
    floor: HeroFloor = HeroFloor(),
) -> list[HeroPick]:
    """Up to `top_n` heroes, best first, among the candidates `floor` admits. A candidate
    whose cosine to a chosen hero is above `dup_threshold` is skipped and listed in that
    hero's `suppressed` (also when it would have ranked below the top `top_n` anyway). Ties
    break on the lower image id."""
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")
    scored = sorted(
        (
            (*score_candidate(c, centroid, weights, now), c)
            for c in candidates
            if floor.admits(c.quality)
        ),
        key=lambda s: (-s[0], s[2].image_id),
    )
    picks: list[HeroPick] = []
    chosen: list[FloatArray] = []
    for score, parts, cand in scored:
        unit = l2_normalise(cand.embedding.reshape(1, -1))[0]
        sims = [float(unit @ c) for c in chosen]
        if sims and max(sims) > dup_threshold:
            best = int(np.argmax(sims))
            picks[best] = _with_suppressed(picks[best], cand.image_id)
        elif len(picks) < top_n:
            picks.append(HeroPick(cand.image_id, score, parts))
            chosen.append(unit)
    return picks


def hero_sets(
    clusters: PetClusters,
    candidates: Mapping[int, HeroCandidate],
    weights: HeroWeights,
    top_n: int,
    dup_threshold: float,
    now: datetime,
    floor: HeroFloor = HeroFloor(),
) -> dict[int, list[HeroPick]]:
    """Heroes of every cluster of a pet (outliers never); `candidates` keyed by image id."""
    missing = [
        i
        for i, lab in zip(clusters.image_ids, clusters.labels, strict=True)
        if lab >= 0 and i not in candidates
    ]
    if missing:
        raise KeyError(f"pet {clusters.pet_id}: no hero candidate for images {missing[:10]}")
    return {
        c.label: rank_heroes(
            [candidates[i] for i in clusters.members(c.label)],
            c.centroid,
            weights,
            top_n,
            dup_threshold,
            now,
            floor,
        )
        for c in clusters.clusters
    }


def _with_suppressed(pick: HeroPick, image_id: int) -> HeroPick:
    return HeroPick(pick.image_id, pick.score, pick.parts, (*pick.suppressed, image_id))


def _prominence(c: HeroCandidate) -> float:
    if c.detection_score is None or c.box_area_fraction is None:
        return 0.0
    area = min(1.0, max(0.0, c.box_area_fraction) / FULL_AREA_FRACTION)
    face = 1.0 if c.face_quality is None else min(1.0, max(0.0, c.face_quality))
    return c.detection_score * math.sqrt(area) * face


def _cosine(embedding: NDArray[np.floating], centroid: NDArray[np.floating]) -> float:
    if embedding.shape != centroid.shape:
        raise ValueError(f"embedding shape {embedding.shape} != centroid shape {centroid.shape}")
    both = l2_normalise(np.stack([embedding.reshape(-1), centroid.reshape(-1)]))
    return float(both[0] @ both[1])


def _recency(c: HeroCandidate, now: datetime, half_life_days: float) -> float:
    taken = c.captured_at or c.created_at
    age_days = (_utc(now) - _utc(taken)).total_seconds() / SECONDS_PER_DAY
    return float(0.5 ** (max(0.0, age_days) / half_life_days))


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t

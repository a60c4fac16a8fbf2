"""Hero scoring: pixel quality parts, composite ranking, near-duplicate suppression."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from ml_platform.learning.clustering import ClusterConfig, cluster_pet
from ml_platform.learning.hero import (
    HeroCandidate,
    HeroFloor,
    HeroPart,
    HeroWeights,
    QualityParts,
    hero_sets,
    image_quality,
    rank_heroes,
    score_candidate,
)

NO_FLOOR = HeroFloor(sharpness=0.0, exposure=0.0, megapixels=0.0)
NOW = datetime(2025, 6, 1, tzinfo=UTC)
DIM = 32


def textured(seed: int = 0, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """Mid-grey random blocks: plenty of edges, nothing clipped."""
    blocks = np.random.default_rng(seed).integers(40, 216, (48, 64, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST)


def blurred(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(4))


def unit(seed: int) -> NDArray[np.float32]:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def candidate(
    image_id: int,
    embedding: NDArray[np.float32],
    quality: QualityParts,
    *,
    age_days: float = 0.0,
    prominence: tuple[float, float] | None = (0.9, 0.5),
) -> HeroCandidate:
    score, area = prominence if prominence else (None, None)
    return HeroCandidate(
        image_id=image_id,
        embedding=embedding,
        quality=quality,
        created_at=NOW - timedelta(days=age_days),
        detection_score=score,
        box_area_fraction=area,
    )


def test_blur_lowers_sharpness_but_not_exposure_or_resolution() -> None:
    sharp, soft = image_quality(textured()), image_quality(blurred(textured()))
    assert sharp.sharpness > 0.6 > 0.1 > soft.sharpness
    assert sharp.exposure == pytest.approx(soft.exposure, abs=0.02)
    assert sharp.resolution == soft.resolution
    assert sharp.megapixels == pytest.approx(0.3072)


@pytest.mark.parametrize("level", [0, 255])
def test_clipped_images_score_no_exposure(level: int) -> None:
    flat = Image.new("RGB", (300, 200), (level, level, level))
    assert image_quality(flat).exposure == 0.0
    assert image_quality(textured()).exposure > 0.9


def test_large_images_are_downscaled_and_score_high_resolution() -> None:
    big = textured(size=(4000, 3000))
    quality = image_quality(big)
    assert quality.megapixels == pytest.approx(12.0)
    assert quality.resolution > 0.99
    assert image_quality(Image.new("L", (100, 100), 128)).resolution < 0.01


def test_sharp_recent_prominent_image_beats_its_blurred_duplicate() -> None:
    base, other = unit(1), unit(2)
    centroid = (base + other) / 2
    sharp = candidate(1, base, image_quality(textured()))
    dup = candidate(
        2,
        base + 0.001 * unit(3),
        image_quality(blurred(textured())),
        age_days=900,
        prominence=(0.5, 0.05),
    )
    distinct = candidate(3, other, image_quality(textured(seed=4)), age_days=30)
    picks = rank_heroes([dup, distinct, sharp], centroid, HeroWeights(), 2, 0.95, NOW, NO_FLOOR)
    assert [p.image_id for p in picks] == [1, 3]
    assert picks[0].suppressed == (2,)
    assert picks[0].score > score_candidate(dup, centroid, HeroWeights(), NOW)[0]


def dark(image: Image.Image) -> Image.Image:
    return Image.fromarray((np.asarray(image) // 4).astype(np.uint8))


def tiny(image: Image.Image) -> Image.Image:
    return image.resize((64, 48))


@pytest.mark.parametrize("spoil", [blurred, dark, tiny])
def test_degraded_image_is_never_a_hero_even_when_most_central(spoil: object) -> None:
    assert callable(spoil)
    bad = candidate(1, unit(1), image_quality(spoil(textured())))
    good = candidate(2, unit(2), image_quality(textured(seed=3)))
    assert not HeroFloor().admits(bad.quality)
    assert [p.image_id for p in rank_heroes([bad, good], unit(1), HeroWeights(), 3, 0.99, NOW)] == [
        2
    ]
    assert rank_heroes([bad], unit(1), HeroWeights(), 3, 0.99, NOW) == []


def test_blurred_duplicate_is_kept_when_it_is_not_near_identical() -> None:
    sharp = candidate(1, unit(1), image_quality(textured()))
    soft = candidate(2, unit(5), image_quality(blurred(textured())), age_days=900)
    picks = rank_heroes([soft, sharp], unit(1), HeroWeights(), 5, 0.95, NOW, NO_FLOOR)
    assert [p.image_id for p in picks] == [1, 2]
    assert picks[0].suppressed == ()


# (age in days, (detection score, box area fraction)) of a sharp old and a soft new image
SHARP_OLD: tuple[float, tuple[float, float]] = (2000.0, (0.5, 0.1))
SOFT_NEW: tuple[float, tuple[float, float]] = (0.0, (1.0, 0.6))


@pytest.mark.parametrize(
    ("weights", "expected_first"),
    [
        (HeroWeights(sharpness=1, exposure=0, resolution=0, prominence=0, recency=0), "sharp"),
        (HeroWeights(sharpness=0, recency=1), "soft"),
        (HeroWeights(sharpness=0.1, prominence=2), "soft"),
        (HeroWeights(sharpness=3, prominence=0.1, recency=0.1), "sharp"),
        (HeroWeights(prominence=0, recency=2, recency_half_life_days=30), "soft"),
        (HeroWeights(prominence=0, recency=2, recency_half_life_days=100_000), "sharp"),
    ],
)
def test_weights_change_the_ordering(weights: HeroWeights, expected_first: str) -> None:
    qualities = {"sharp": image_quality(textured()), "soft": image_quality(blurred(textured()))}
    names = {1: "sharp", 2: "soft"}
    cands = [
        candidate(i, unit(i), qualities[names[i]], age_days=age, prominence=prominence)
        for i, age, prominence in ((1, *SHARP_OLD), (2, *SOFT_NEW))
    ]
    centroid = unit(1) + unit(2)
    picks = rank_heroes(cands, centroid, weights, 2, 0.99, NOW, NO_FLOOR)
    assert names[picks[0].image_id] == expected_first


def test_parts_are_in_unit_interval_and_contributions_sum_to_the_score() -> None:
    cand = candidate(1, unit(1), image_quality(textured()), age_days=365, prominence=None)
    weights = HeroWeights(recency_half_life_days=365)
    score, parts = score_candidate(cand, unit(1), weights, NOW)
    assert set(parts) == set(HeroPart)
    assert all(0.0 <= p.value <= 1.0 for p in parts.values())
    assert sum(p.contribution for p in parts.values()) == pytest.approx(score)
    assert parts[HeroPart.RECENCY].value == pytest.approx(0.5)
    assert parts[HeroPart.CENTRALITY].value == pytest.approx(1.0)
    assert parts[HeroPart.PROMINENCE].value == 0.0


def test_capture_time_wins_over_created_at_and_naive_times_are_utc() -> None:
    quality = image_quality(textured())
    cand = HeroCandidate(
        1, unit(1), quality, created_at=NOW, captured_at=datetime(2024, 6, 1)
    )  # naive: UTC
    _, parts = score_candidate(cand, unit(1), HeroWeights(recency_half_life_days=365), NOW)
    assert parts[HeroPart.RECENCY].value == pytest.approx(0.5, abs=0.01)


def test_hero_sets_rank_each_cluster_and_skip_outliers() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, DIM))
    x = np.vstack([centres[i % 2] + 0.05 * rng.normal(size=DIM) for i in range(20)])
    x = np.vstack([x, rng.normal(size=(1, DIM)) * 5])
    clusters = cluster_pet(list(range(21)), x, ClusterConfig(max_k=3))
    quality = image_quality(textured())
    cands = {i: candidate(i, x[i].astype(np.float32), quality, age_days=i) for i in range(21)}
    heroes = hero_sets(clusters, cands, HeroWeights(), top_n=3, dup_threshold=0.999, now=NOW)
    assert sorted(heroes) == [c.label for c in clusters.clusters] == [0, 1]
    for label, picks in heroes.items():
        assert len(picks) == 3
        assert {p.image_id for p in picks} <= set(clusters.members(label))
    with pytest.raises(KeyError, match="no hero candidate"):
        hero_sets(clusters, {0: cands[0]}, HeroWeights(), 3, 0.99, NOW)


@pytest.mark.parametrize(
    "kwargs",
    [{"sharpness": -1.0}, {"recency_half_life_days": 0.0}, {p.value: 0.0 for p in HeroPart}],
)
def test_hero_weights_reject_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        HeroWeights(**kwargs)


def test_rank_heroes_rejects_a_zero_top_n() -> None:
    with pytest.raises(ValueError, match="top_n"):
        rank_heroes([], unit(1), HeroWeights(), 0, 0.9, NOW)

"""The fresh-AP bootstrap resamples near-duplicate groups: copies of one photo are one draw."""

from __future__ import annotations

import numpy as np

from ml_platform.learning.health_metrics import (
    HealthLimits,
    HealthStatus,
    bootstrap_ap,
    decide_health,
    health_figures,
    near_duplicate_groups,
)

LIMITS = HealthLimits(max_ap_drop=0.05, ap_floor=0.5)
DIM = 32


def photos(n: int, rng: np.random.Generator) -> np.ndarray:
    """n unrelated embeddings (random directions in DIM dimensions: cosines near 0)."""
    return rng.standard_normal((n, DIM))


def copies(x: np.ndarray, times: int, rng: np.random.Generator) -> np.ndarray:
    """Each row `times` times, slightly perturbed (a re-upload or a mirror image: cosine > 0.9)."""
    repeated = np.repeat(x, times, axis=0)
    return repeated + 0.05 * rng.standard_normal(repeated.shape)


def few_members_labelled_often() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A clean fresh set: 4 member photos labelled 10 times each (two of them hard for the
    champion), 120 distinct rejections. Its AP (about 0.7) says little about the champion."""
    rng = np.random.default_rng(0)
    X = np.concatenate([copies(photos(4, rng), 10, rng), photos(120, rng)])
    member_scores = np.repeat([0.15, 0.2, 0.7, 0.95], 10) + 0.01 * rng.random(40)
    p = np.concatenate([member_scores, 0.6 * rng.random(120)])
    y = np.r_[np.ones(40), np.zeros(120)].astype(np.int64)
    return X, y, p


def test_copies_of_a_photo_share_a_group_and_distinct_photos_do_not() -> None:
    rng = np.random.default_rng(1)
    groups = near_duplicate_groups(copies(photos(5, rng), 3, rng))
    assert len(np.unique(groups)) == 5
    assert all(len(np.unique(groups[3 * k : 3 * k + 3])) == 1 for k in range(5))


def test_a_clean_fresh_set_of_few_member_photos_no_longer_warns() -> None:
    X, y, p = few_members_labelled_often()
    rows = health_figures(y, p, 0.5)  # 40 member rows counted as 40 draws: a narrow interval
    assert decide_health(rows, 0.976, LIMITS).status is HealthStatus.WARN
    photos_ = health_figures(y, p, 0.5, embeddings=X)  # 4 member photos: a wide one
    assert photos_.average_precision == rows.average_precision
    assert photos_.ap_high > 0.976 - LIMITS.max_ap_drop > rows.ap_high
    assert decide_health(photos_, 0.976, LIMITS).status is HealthStatus.OK


def test_a_real_drop_on_many_distinct_photos_still_warns_when_each_is_labelled_twice() -> None:
    rng = np.random.default_rng(2)
    n = 150
    y = (np.arange(n) % 3 == 0).astype(np.int64)
    p = 1 / (1 + np.exp(-(rng.standard_normal(n) + 0.6 * (2 * y - 1))))  # a weak ranking
    X = copies(photos(n, rng), 2, rng)
    figures = health_figures(np.repeat(y, 2), np.repeat(p, 2), 0.5, embeddings=X)
    decision = decide_health(figures, 0.95, LIMITS)
    assert decision.status is HealthStatus.WARN
    assert "beyond noise" in decision.reason


def test_rows_as_their_own_groups_give_the_row_bootstrap() -> None:
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(8), np.zeros(22)].astype(np.int64)
    p = rng.random(30)
    assert bootstrap_ap(y, p, groups=np.arange(30)) == bootstrap_ap(y, p)


def test_a_group_holding_a_member_and_a_rejection_keeps_both_classes_in_every_resample() -> None:
    y = np.array([1, 0, 1, 0, 0, 0], np.int64)
    p = np.array([0.9, 0.8, 0.4, 0.3, 0.2, 0.1])
    low, high = bootstrap_ap(y, p, groups=np.array([0, 0, 1, 2, 3, 4]))
    assert 0.0 < low <= high <= 1.0

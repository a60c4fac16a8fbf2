"""Grouped folds: copies of one source photo never straddle a training and a test fold."""

from __future__ import annotations

import numpy as np
import pytest

from ml_platform.learning.folds import merge_near_duplicates
from ml_platform.learning.training import (
    InsufficientTrainingDataError,
    TrainingConfig,
    cv_splits,
    train_classifier,
)


def copies_of_noise(
    n_photos: int, copies: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random photos with random labels, each repeated `copies` times with tiny jitter: only a
    model that has seen a copy of the test photo can score above chance."""
    rng = np.random.default_rng(seed)
    photos = rng.normal(size=(n_photos, 32))
    labels = rng.permutation(np.arange(n_photos) % 2)
    groups = np.repeat(np.arange(n_photos), copies)
    X = photos[groups] + rng.normal(size=(len(groups), 32)) * 0.01
    return X.astype(np.float32), labels[groups].astype(np.int64), groups


def test_no_group_is_split_across_folds() -> None:
    _, y, groups = copies_of_noise(30, 4, seed=0)
    for train, test in cv_splits(y, 5, 0, groups):
        assert not set(groups[train]) & set(groups[test])


def test_grouped_cv_does_not_flatter_copies_of_noise() -> None:
    X, y, groups = copies_of_noise(40, 4, seed=1)
    config = TrainingConfig(seed=0)
    leaky = train_classifier(X, y, config).out_of_fold.average_precision
    honest = train_classifier(X, y, config, groups).out_of_fold.average_precision
    assert leaky > 0.9
    assert honest < 0.75


def test_too_few_source_photos_for_grouped_folds_is_an_error() -> None:
    X, y, groups = copies_of_noise(4, 5, seed=2)
    with pytest.raises(InsufficientTrainingDataError, match="distinct source photos"):
        train_classifier(X, y, TrainingConfig(), groups)


def test_near_duplicate_rows_join_one_group_transitively() -> None:
    rng = np.random.default_rng(3)
    photos = rng.normal(size=(6, 64))
    a_flip = photos[0] + rng.normal(size=64) * 0.05  # near copy of photo 0
    a_crop = a_flip + rng.normal(size=64) * 0.05  # near copy of the copy
    X = np.vstack([photos, a_flip, a_crop])
    merged = merge_near_duplicates(X, np.arange(8, dtype=np.int64), cosine=0.99)
    assert merged[0] == merged[6] == merged[7]
    assert len(set(merged[:6].tolist())) == 6  # distinct photos stay apart
    assert sorted(set(merged.tolist())) == list(range(6))


def test_near_duplicate_merge_keeps_existing_groups_together() -> None:
    X = np.random.default_rng(4).normal(size=(6, 32))
    groups = np.array([5, 5, 9, 9, 7, 7], dtype=np.int64)
    merged = merge_near_duplicates(X, groups, cosine=0.999)
    assert merged[0] == merged[1] and merged[2] == merged[3] and len(set(merged.tolist())) == 3


def test_near_duplicate_cosine_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="near_duplicate_cosine"):
        TrainingConfig(near_duplicate_cosine=0.0)

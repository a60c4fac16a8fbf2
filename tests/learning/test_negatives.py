"""Negatives: rejections weigh 1; unlabelled rows are kept, down-weighted or filtered."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from ml_platform.learning.negatives import (
    MAX_FILTERED_SHARE,
    NegativeTreatment,
    UnlabelledNegatives,
    likely_positives,
)
from ml_platform.learning.training import TrainingConfig, train_classifier

DIM = 24


def planted(seed: int) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.bool_]]:
    """10 positives around one direction, 5 rejections and 40 unlabelled rows around
    another; the last 6 unlabelled rows are hidden positives (drawn like the positives)."""
    rng = np.random.default_rng(seed)
    pos_dir, neg_dir = np.eye(DIM)[0] * 3.0, np.eye(DIM)[1] * 3.0
    positives = pos_dir + rng.normal(size=(10, DIM))
    negatives = neg_dir + rng.normal(size=(39, DIM))
    hidden = pos_dir + rng.normal(size=(6, DIM))
    X = np.vstack([positives, negatives, hidden]).astype(np.float32)
    y = np.r_[np.ones(10), np.zeros(45)].astype(np.int64)
    unlabelled = np.r_[np.zeros(15), np.ones(40)].astype(bool)
    return X, y, unlabelled


def test_keep_weighs_every_row_one() -> None:
    X, y, unlabelled = planted(0)
    assert (NegativeTreatment().weights(X, y, unlabelled) == 1.0).all()


def test_weight_applies_to_unlabelled_rows_only() -> None:
    X, y, unlabelled = planted(0)
    weights = NegativeTreatment(UnlabelledNegatives.WEIGHT, 0.25).weights(X, y, unlabelled)
    assert (weights[unlabelled] == 0.25).all()
    assert (weights[~unlabelled] == 1.0).all()  # positives and explicit rejections


def test_filter_drops_hidden_positives_and_never_a_rejection() -> None:
    X, y, unlabelled = planted(1)
    X[10] = X[0]  # a rejection identical to a positive stays: it is a real label
    dropped = likely_positives(X, y, unlabelled, quantile=0.1)
    assert dropped[-6:].sum() >= 5  # the hidden positives
    assert dropped[15:-6].sum() <= 1  # true negatives
    assert not dropped[:15].any()


def test_filter_leaves_at_least_half_of_the_unlabelled_rows() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, DIM)).astype(np.float32)  # nothing separates the classes
    y = np.r_[np.ones(10), np.zeros(20)].astype(np.int64)
    unlabelled = np.r_[np.zeros(10), np.ones(20)].astype(bool)
    dropped = likely_positives(X, y, unlabelled, quantile=0.0)
    assert dropped.sum() <= MAX_FILTERED_SHARE * 20


@pytest.mark.parametrize(
    "kwargs", [{"unlabelled_weight": 0.0}, {"unlabelled_weight": 1.5},
               {"unlabelled_filter_quantile": -0.1}],
)  # fmt: skip
def test_bad_negative_knobs_are_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="unlabelled_weight|filter_quantile"):
        TrainingConfig(**kwargs)  # type: ignore[arg-type]


def test_unlabelled_mask_over_a_positive_is_an_error() -> None:
    X, y, unlabelled = planted(0)
    unlabelled[0] = True
    with pytest.raises(ValueError, match="negatives only"):
        NegativeTreatment(UnlabelledNegatives.FILTER).weights(X, y, unlabelled)


def test_keep_trains_exactly_as_without_a_mask() -> None:
    X, y, unlabelled = planted(3)
    config = TrainingConfig(seed=0, unlabelled=UnlabelledNegatives.KEEP)
    plain, masked = train_classifier(X, y, config), train_classifier(X, y, config, None, unlabelled)
    np.testing.assert_array_equal(
        plain.estimator.predict_proba(X), masked.estimator.predict_proba(X)
    )


def test_filter_scores_every_row_and_ranks_hidden_positives_higher() -> None:
    X, y, unlabelled = planted(4)
    keep_config = TrainingConfig(seed=0, unlabelled=UnlabelledNegatives.KEEP)
    keep = train_classifier(X, y, keep_config, None, unlabelled)
    config = TrainingConfig(seed=0, unlabelled=UnlabelledNegatives.FILTER)
    filtered = train_classifier(X, y, config, None, unlabelled)
    assert filtered.out_of_fold.n_neg == keep.out_of_fold.n_neg == 45  # nothing hidden from CV
    hidden = X[-6:]
    kept_scores = keep.estimator.predict_proba(hidden)[:, 1]
    assert filtered.estimator.predict_proba(hidden)[:, 1].mean() > kept_scores.mean()


def test_the_default_filters_unlabelled_rows() -> None:
    treatment = TrainingConfig().negatives()
    assert treatment.mode is UnlabelledNegatives.FILTER and treatment.filter_quantile == 0.5

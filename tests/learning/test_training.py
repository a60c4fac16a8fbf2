"""Classifier training: candidates, cross-validation, threshold, determinism, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from ml_platform.learning.candidates import CandidateName
from ml_platform.learning.evaluation import evaluate_on, evaluate_scores, max_f1_threshold
from ml_platform.learning.training import (
    InsufficientTrainingDataError,
    TrainingConfig,
    TrainingResult,
    cv_fold_count,
    train_classifier,
)

DIM = 16


def separable(
    n: int, n_pos: int, seed: int, shift: float = 1.2
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Gaussian blobs: positives shifted along one random direction of DIM dimensions."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(1234).normal(size=DIM).astype(np.float32)
    y = np.zeros(n, dtype=np.int64)
    y[:n_pos] = 1
    X = rng.normal(size=(n, DIM)).astype(np.float32)
    X[y == 1] += shift * direction
    return X, y


@pytest.fixture(scope="module")
def separable_result() -> TrainingResult:
    X, y = separable(60, 15, seed=0)
    return train_classifier(X, y, TrainingConfig(seed=0))


def test_separable_problem_reaches_high_cross_validated_average_precision(
    separable_result: TrainingResult,
) -> None:
    result = separable_result
    assert {m.name for m in result.candidates} == set(CandidateName)
    assert result.winner_metrics.average_precision_mean >= max(
        m.average_precision_mean for m in result.candidates
    )
    assert result.winner_metrics.average_precision_mean > 0.95
    assert result.out_of_fold.roc_auc > 0.95
    assert (result.n_pos, result.n_neg, result.folds, result.dimensionality) == (15, 45, 5, DIM)
    assert 0.0 < result.threshold < 1.0


def test_refitted_winner_generalises_to_fresh_samples(separable_result: TrainingResult) -> None:
    X_new, y_new = separable(80, 20, seed=99)
    held_out = evaluate_on(separable_result.estimator, X_new, y_new, separable_result.threshold)
    assert held_out.average_precision > 0.9
    assert held_out.f1 > 0.8


def test_random_labels_score_near_the_base_rate() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, DIM)).astype(np.float32)
    y = np.zeros(200, dtype=np.int64)
    y[:50] = 1  # base rate 0.25, features carry no information
    result = train_classifier(X, y, TrainingConfig(seed=3))
    assert result.out_of_fold.average_precision < 0.25 + 0.15
    assert result.out_of_fold.roc_auc < 0.65


def test_training_is_deterministic_given_the_seed() -> None:
    X, y = separable(40, 10, seed=5, shift=0.6)
    config = TrainingConfig(seed=11)
    first, second = train_classifier(X, y, config), train_classifier(X, y, config)
    assert first.candidates == second.candidates
    assert first.threshold == second.threshold
    np.testing.assert_array_equal(
        first.estimator.predict_proba(X), second.estimator.predict_proba(X)
    )


def test_folds_shrink_to_the_minority_class_size() -> None:
    X, y = separable(30, 4, seed=2)
    config = TrainingConfig(candidates=(CandidateName.LOGISTIC_REGRESSION,), min_positives=3)
    result = train_classifier(X, y, config)
    assert result.folds == 4
    assert result.winner_metrics.folds == 4


@pytest.mark.parametrize(("n_pos", "n_neg"), [(4, 50), (50, 2)])
def test_too_few_examples_of_a_class_is_a_clear_error(n_pos: int, n_neg: int) -> None:
    with pytest.raises(InsufficientTrainingDataError, match="label more images"):
        cv_fold_count(n_pos, n_neg, TrainingConfig())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"candidates": ()},
        {"candidates": (CandidateName.MLP, CandidateName.MLP)},
        {"cv_folds": 1},
        {"min_positives": 2},
    ],
)
def test_invalid_config_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="TrainingConfig|min_positives"):
        TrainingConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("labels", "message"),
    [([0, 1, 2] * 10, "0/1"), ([1] * 30, "both positives")],
)
def test_labels_must_be_binary_with_both_classes(labels: list[int], message: str) -> None:
    X = np.zeros((30, DIM), dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        train_classifier(X, np.array(labels))


def test_non_finite_embeddings_are_rejected() -> None:
    X, y = separable(30, 10, seed=0)
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_classifier(X, y)


def test_max_f1_threshold_picks_the_best_cut() -> None:
    y = np.array([0, 0, 1, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9])
    # cut at 0.8: precision 1, recall 2/3 -> F1 0.8; at 0.3: P 0.75, R 1 -> F1 0.857
    assert max_f1_threshold(y, scores) == pytest.approx(0.3)
    evaluation = evaluate_scores(y, scores, 0.3)
    assert evaluation.f1 == pytest.approx(6 / 7)
    assert (evaluation.n_pos, evaluation.n_neg) == (3, 3)

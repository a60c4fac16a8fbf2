"""The pure curation functions: suggestions, label audit, review queue, score matrix."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from ml_platform.learning.curation.audit import IssueKind, find_label_issues
from ml_platform.learning.curation.geometry import Pool
from ml_platform.learning.curation.review_queue import QueueReason, review_queue, uncertainty
from ml_platform.learning.curation.scores import prefer_out_of_fold, score_matrix
from ml_platform.learning.curation.suggestions import rank_suggestions
from ml_platform.learning.training import TrainingConfig, train_classifier


def _unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    x = rng.normal(size=(n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_suggestions_rank_unlabelled_by_probability_and_collapse_near_duplicates() -> None:
    rng = np.random.default_rng(0)
    X = _unit(rng, 6)
    X[2] = X[1] + 0.01 * rng.normal(size=16)  # a near-copy of image 11
    ids = np.arange(10, 16)
    p = np.array([0.99, 0.9, 0.85, 0.2, 0.7, 0.6])
    labelled = np.array([True, False, False, False, False, False])
    found = rank_suggestions(Pool(ids, p, X, labelled), limit=3, min_probability=0.5)
    assert [s.image_id for s in found] == [11, 14, 15]
    assert found[0].duplicates == (12,)
    assert found[0].probability == pytest.approx(0.9)


def test_suggestions_reject_a_bad_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        rank_suggestions(Pool(np.arange(2), np.zeros(2), np.eye(2), np.zeros(2, bool)), limit=0)


def test_audit_flags_a_planted_member_and_a_planted_rejection() -> None:
    rng = np.random.default_rng(1)
    y = np.array([1] * 20 + [0] * 40)
    p = np.where(y == 1, rng.uniform(0.7, 0.99, 60), rng.uniform(0.01, 0.3, 60))
    p[3], p[30] = 0.02, 0.97  # a member that looks out, a rejection that looks in
    issues = find_label_issues(np.arange(60) + 100, y, p)
    assert {(i.image_id, i.kind) for i in issues} == {
        (103, IssueKind.LIKELY_NOT_MEMBER),
        (130, IssueKind.LIKELY_MEMBER),
    }
    assert all(0 < i.score <= 1 for i in issues)


def test_audit_finds_nothing_when_probabilities_agree_with_labels() -> None:
    y = np.array([1] * 10 + [0] * 10)
    p = np.where(y == 1, 0.9, 0.1)
    assert find_label_issues(np.arange(20), y, p) == []


def test_audit_rejects_values_that_are_not_probabilities() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        find_label_issues(np.arange(4), np.array([1, 1, 0, 0]), np.array([2.0, 1, 0, 0]))


def test_audit_reads_training_out_of_fold_probabilities_not_the_refit() -> None:
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(2, 1, (20, 8)), rng.normal(-2, 1, (20, 8))]).astype(np.float32)
    y = np.array([1] * 20 + [0] * 20)
    y[0] = 0  # a planted wrong rejection: the point sits among the members
    config = TrainingConfig(candidates=(TrainingConfig().candidates[0],))
    result = train_classifier(X, y, config)
    assert result.out_of_fold_probabilities.shape == (40,)
    issues = find_label_issues(np.arange(40), y, result.out_of_fold_probabilities)
    assert (0, IssueKind.LIKELY_MEMBER) in {(i.image_id, i.kind) for i in issues}


def test_uncertainty_peaks_at_the_threshold() -> None:
    u = uncertainty(np.array([0.0, 0.3, 0.65, 1.0]), 0.3)
    assert u.tolist() == pytest.approx([0.0, 1.0, 0.5, 0.0])


def test_review_queue_puts_suspects_first_and_skips_copies_of_one_uncertain_image() -> None:
    rng = np.random.default_rng(3)
    X = _unit(rng, 8)
    X[1] = X[0]  # two copies of the most uncertain look
    p = np.array([0.5, 0.5, 0.45, 0.9, 0.1, 0.55, 0.99, 0.5])
    labelled = np.array([False] * 7 + [True])
    suspect = find_label_issues(
        np.arange(20), np.array([1] * 10 + [0] * 10), np.r_[0.01, [0.9] * 9, [0.1] * 10]
    )
    queue = review_queue(
        Pool(np.arange(8), p, X, labelled), threshold=0.5, limit=4, suspects=suspect
    )
    assert queue[0].reason is QueueReason.LABEL_ISSUE and queue[0].image_id == 0
    assert (queue[1].reason, queue[1].image_id) == (QueueReason.PROBABLE_MEMBER, 6)
    uncertain = [e.image_id for e in queue if e.reason is QueueReason.UNCERTAIN]
    assert len(uncertain) == 2 and not {0, 1} <= set(uncertain) and 7 not in uncertain


def test_review_queue_without_probable_members_is_uncertainty_and_diversity() -> None:
    rng = np.random.default_rng(5)
    X = _unit(rng, 6)
    X[1] = X[0]
    p = np.array([0.5, 0.5, 0.3, 0.95, 0.7, 0.05])
    pool = Pool(np.arange(6), p, X, np.zeros(6, bool))
    queue = review_queue(pool, threshold=0.5, limit=3, probable_share=0.0)
    assert [e.reason for e in queue] == [QueueReason.UNCERTAIN] * 3
    assert queue[0].image_id in (0, 1) and not {0, 1} <= {e.image_id for e in queue}


def test_score_matrix_has_one_row_per_model() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 4)).astype(np.float32)
    models = [LogisticRegression().fit(X, (X[:, k] > 0).astype(int)) for k in range(3)]
    scores = score_matrix(models, X[:5])
    assert scores.shape == (3, 5)
    assert np.allclose(scores[1], models[1].predict_proba(X[:5])[:, 1])


def test_prefer_out_of_fold_replaces_only_the_images_the_champion_trained_on() -> None:
    p = prefer_out_of_fold(
        np.array([5, 6, 7]), np.array([0.1, 0.2, 0.3]), np.array([7, 99]), np.array([0.9, 0.5])
    )
    assert p.tolist() == pytest.approx([0.1, 0.2, 0.9])


def test_audit_scores_stay_finite_when_every_member_scores_zero() -> None:
    p = np.array([0.0, 0.0, 0.0, 0.5, 0.0, 0.0])
    issues = find_label_issues(np.arange(6), np.array([1, 1, 1, 0, 0, 0]), p)
    members = [i for i in issues if i.kind is IssueKind.LIKELY_NOT_MEMBER]
    assert len(members) == 3 and all(i.score == 1.0 for i in members)

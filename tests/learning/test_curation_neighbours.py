"""The audit's second view: the labels of an image's nearest labelled images."""

import numpy as np
import pytest

from ml_platform.learning.curation.audit import IssueKind, find_label_issues
from ml_platform.learning.curation.neighbours import neighbour_probability, pooled_probability


def _two_clusters(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """Members around one direction, rejections around an orthogonal one (16-d)."""
    centre_in, centre_out = np.eye(16)[0], np.eye(16)[1]
    noise = 0.12 * rng.normal(size=(n_in + n_out, 16))
    return np.vstack([centre_in + noise[:n_in], centre_out + noise[n_in:]])


def test_neighbour_probability_is_the_members_share_among_the_other_rows() -> None:
    X = _two_clusters(np.random.default_rng(0), 12, 12)
    y = np.array([1] * 12 + [0] * 12)
    y[20] = 1  # a member among the rejections
    share = neighbour_probability(X, y, k=5)
    assert share[:12].min() == 1.0  # every neighbour of a member is a member
    assert share[20] == 0.0  # its own label does not count
    assert share[12:20].max() <= 0.2  # at most itself among a rejection's 5 neighbours


def test_neighbour_probability_leaves_near_duplicates_out() -> None:
    X = _two_clusters(np.random.default_rng(1), 10, 10)
    X[11] = X[10]  # a copy of a rejection, both labelled members
    y = np.array([1] * 12 + [0] * 8)
    assert neighbour_probability(X, y, k=3)[10] == 0.0
    assert neighbour_probability(X, y, k=3, duplicate_cosine=2.0)[10] > 0.0  # copies kept


def test_neighbour_probability_without_neighbours_is_the_members_share() -> None:
    X = np.ones((3, 4))  # three copies of one photo
    assert neighbour_probability(X, np.array([1, 0, 0]), k=2).tolist() == pytest.approx([1 / 3] * 3)


def test_pooled_probability_averages_log_odds() -> None:
    pooled = pooled_probability(np.array([0.9, 0.8, 0.5]), np.array([0.1, 0.8, 0.2]))
    assert pooled.tolist() == pytest.approx([0.5, 0.8, 1 / 3])


def test_audit_with_vectors_flags_a_member_that_sits_among_the_rejections() -> None:
    rng = np.random.default_rng(2)
    X = _two_clusters(rng, 20, 40)
    y = np.array([1] * 20 + [0] * 40)
    p = np.where(y == 1, rng.uniform(0.6, 0.99, 60), rng.uniform(0.01, 0.4, 60))
    X[3] = X[30] + 0.05 * rng.normal(size=16)  # member 3 looks like the rejections ...
    p[3] = 0.45  # ... but its out-of-fold probability alone is not conclusive
    assert find_label_issues(np.arange(60), y, p) == []
    issues = find_label_issues(np.arange(60), y, p, X)
    assert [(i.image_id, i.kind) for i in issues] == [(3, IssueKind.LIKELY_NOT_MEMBER)]


def test_audit_rejects_vectors_of_another_length() -> None:
    with pytest.raises(ValueError, match="labels"):
        find_label_issues(np.arange(4), np.array([1, 1, 0, 0]), np.full(4, 0.5), np.eye(3))


def test_neighbour_probability_smoothed_towards_the_members_share() -> None:
    X = _two_clusters(np.random.default_rng(3), 12, 12)
    y = np.array([1] * 12 + [0] * 12)
    y[20] = 1  # a member among the rejections: none of its 5 neighbours is a member
    raw = neighbour_probability(X, y, k=5)
    smooth = neighbour_probability(X, y, k=5, prior_weight=2.0)
    pi = y.mean()
    assert raw[20] == 0.0
    assert smooth[20] == pytest.approx(2.0 * pi / 7.0)  # (0 + m pi) / (k + m)
    assert smooth[0] == pytest.approx((5 + 2.0 * pi) / 7.0)  # a member's 5 member neighbours


def test_neighbour_probability_weighted_by_cosine_favours_the_closer_neighbour() -> None:
    X = np.array([[1.0, 0.0], [1.0, 0.1], [0.2, 1.0], [-1.0, 0.05]])  # row 0's neighbours
    y = np.array([0, 1, 0, 0])  # row 1 (close to row 0) a member, row 2 (far) not
    plain = neighbour_probability(X, y, k=2, duplicate_cosine=2.0)
    weighted = neighbour_probability(X, y, k=2, duplicate_cosine=2.0, weighted=True)
    assert plain[0] == pytest.approx(0.5)
    assert weighted[0] > 0.75  # cosines 0.995 and 0.196


def test_neighbour_probability_rejects_a_negative_prior_weight() -> None:
    with pytest.raises(ValueError, match="prior_weight"):
        neighbour_probability(np.eye(3), np.array([1, 0, 0]), prior_weight=-1.0)

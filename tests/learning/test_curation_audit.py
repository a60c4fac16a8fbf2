"""The audit's rule with two views: the base-rate test for members and the issue tiers."""

import numpy as np

from ml_platform.learning.curation.audit import (
    IssueKind,
    IssueTier,
    below_base_rate,
    confident_joint_issues,
    find_label_issues,
)
from ml_platform.learning.curation.neighbours import neighbour_probability, pooled_probability


def _planted(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20 members around one direction, 40 rejections around another (16-d); member 3 sits
    among the rejections (both views see it), member 5 between the two clusters with an
    out-of-fold probability that is low but not conclusive."""
    rng = np.random.default_rng(seed)
    centre_in, centre_out = np.eye(16)[0], np.eye(16)[1]
    X = np.vstack([centre_in + 0.12 * rng.normal(size=(20, 16)),
                   centre_out + 0.12 * rng.normal(size=(40, 16))])  # fmt: skip
    y = np.array([1] * 20 + [0] * 40)
    p = np.where(y == 1, rng.uniform(0.8, 0.99, 60), rng.uniform(0.005, 0.05, 60))
    X[3], p[3] = centre_out + 0.12 * rng.normal(size=16), 0.01
    X[5], p[5] = centre_in + centre_out, 0.05  # as close to either cluster
    return X, y, p


def test_base_rate_flags_a_member_the_views_rate_below_an_average_image() -> None:
    y = np.array([1, 1, 1, 0, 0, 0])
    p = np.array([0.9, 0.9, 0.2, 0.1, 0.1, 0.1])
    nb = np.array([0.8, 0.8, 0.2, 0.2, 0.2, 0.2])  # base: pool of means 0.383 and 0.4
    flagged = below_base_rate(y, p, nb, pooled_probability(p, nb))
    assert flagged.tolist() == [False, False, True, False, False, False]  # rejections never


def test_base_rate_never_flags_a_member_the_pooled_views_favour() -> None:
    y = np.array([1] * 8 + [0, 0])  # mostly members: the average labelled image is a member
    p = np.array([0.95] * 7 + [0.7, 0.2, 0.2])
    nb = np.array([0.9] * 7 + [0.7, 0.6, 0.6])
    pooled = pooled_probability(p, nb)
    assert pooled[7] < pooled_probability(np.array([p.mean()]), np.array([nb.mean()]))[0]
    assert not below_base_rate(y, p, nb, pooled).any()


def test_audit_flags_a_member_between_the_classes_that_confident_learning_misses() -> None:
    X, y, p = _planted(0)
    pooled = pooled_probability(p, neighbour_probability(X, y))
    assert {i.image_id for i in confident_joint_issues(np.arange(60), y, pooled)} == {3}
    issues = find_label_issues(np.arange(60), y, p, X)
    assert {(i.image_id, i.kind) for i in issues} == {
        (3, IssueKind.LIKELY_NOT_MEMBER),
        (5, IssueKind.LIKELY_NOT_MEMBER),
    }


def test_audit_tier_is_likely_only_where_both_views_contradict_the_label() -> None:
    X, y, p = _planted(1)
    tiers = {i.image_id: i.tier for i in find_label_issues(np.arange(60), y, p, X)}
    assert tiers == {3: IssueTier.LIKELY, 5: IssueTier.SUSPECTED}
    assert [i.image_id for i in find_label_issues(np.arange(60), y, p, X)] == [3, 5]


def test_audit_without_vectors_marks_every_issue_suspected() -> None:
    _, y, p = _planted(2)
    issues = find_label_issues(np.arange(60), y, p)
    assert issues and {i.tier for i in issues} == {IssueTier.SUSPECTED}


def test_audit_lets_no_neighbour_count_of_zero_overrule_a_confident_out_of_fold_view() -> None:
    """Member 3 sits among the rejections (none of its 10 neighbours is a member) but its
    out-of-fold probability is confident: the raw share's 0 (log-odds -13.8) would flag it,
    the smoothed view (m = 2 towards the members' share) does not; member 5, which both
    views doubt, is still flagged."""
    X, y, p = _planted(3)
    p[3] = 0.97
    raw_share = neighbour_probability(X, y)
    assert raw_share[3] == 0.0
    assert below_base_rate(y, p, raw_share, pooled_probability(p, raw_share))[[3, 5]].all()
    assert [i.image_id for i in find_label_issues(np.arange(60), y, p, X)] == [5]

"""The label-shift test: calibrated when fresh labels look like the OOF labels, powerful when
members are scored like rejections, one-sided, blind to how many members people label, and
how it turns the AP rule's decision."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from ml_platform.learning.health_metrics import HealthDecision, HealthStatus
from ml_platform.learning.label_shift import (
    label_shift_decision,
    label_shift_test,
    log_loss_terms,
    since_evaluation_before_last,
    since_evaluation_before_last_with_new_labels,
    split_newest,
)


def scores(rng: np.random.Generator, y: NDArray[np.int64]) -> NDArray[np.float64]:
    """Probabilities of a decent champion: members around 0.8, rejections around 0.15."""
    logits = np.where(y == 1, 1.5, -1.8) + rng.standard_normal(y.size)
    return 1.0 / (1.0 + np.exp(-logits))


def labels(n_pos: int, n_neg: int) -> NDArray[np.int64]:
    return np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(np.int64)


OOF_Y = labels(12, 60)


def test_log_loss_terms_charge_each_label_by_its_own_class() -> None:
    terms = log_loss_terms(np.array([1, 0, 1]), np.array([0.9, 0.9, 0.0]))
    assert terms[0] == pytest.approx(-np.log(0.9)) and terms[1] == pytest.approx(-np.log(0.1))
    assert np.isfinite(terms[2]) and terms[2] > 13  # clipped, not infinite


def test_the_newest_labels_are_the_last_ones_and_the_older_the_rest() -> None:
    y, p = np.arange(5), np.linspace(0, 1, 5)
    (wy, wp), (oy, op) = split_newest(y, p, 3)
    assert wy.tolist() == [2, 3, 4] and wp.tolist() == [0.5, 0.75, 1.0]
    assert oy.tolist() == [0, 1] and op.tolist() == [0.0, 0.25]
    (all_y, _), (none_y, _) = split_newest(y, p, 9)
    assert all_y.size == 5 and none_y.size == 0
    with pytest.raises(ValueError, match="window"):
        split_newest(y, p, 0)


def test_without_a_shift_the_p_value_is_calibrated() -> None:
    rng = np.random.default_rng(0)
    p_values = []
    for _ in range(200):
        fresh_y = labels(5, 15)
        test = label_shift_test(fresh_y, scores(rng, fresh_y), OOF_Y, scores(rng, OOF_Y),
                                permutations=199, seed=int(rng.integers(1000)))  # fmt: skip
        p_values.append(test.p_value)
    rejected = np.mean(np.asarray(p_values) < 0.05)
    assert rejected <= 0.09  # 0.05 expected; 200 draws
    assert np.mean(p_values) > 0.4


def test_members_scored_like_rejections_are_a_shift() -> None:
    rng = np.random.default_rng(1)
    fresh_y = labels(4, 16)
    p = scores(rng, fresh_y)
    p[:4] = scores(rng, np.zeros(4, np.int64))  # members from another class
    test = label_shift_test(fresh_y, p, OOF_Y, scores(rng, OOF_Y))
    assert test.p_value < 0.005
    assert test.statistic > test.expected and (test.n_members, test.n_rejections) == (4, 16)


def test_the_test_is_one_sided_and_blind_to_the_share_of_members() -> None:
    rng = np.random.default_rng(2)
    oof_p = scores(rng, OOF_Y)
    confident = labels(10, 10)
    p = np.where(confident == 1, 0.999, 0.001)
    assert label_shift_test(confident, p, OOF_Y, oof_p).p_value > 0.5
    members_only = labels(20, 0)  # people labelled only members, as the champion would
    assert label_shift_test(members_only, scores(rng, members_only), OOF_Y, oof_p).p_value > 0.01


def test_a_class_without_oof_labels_is_left_out() -> None:
    rng = np.random.default_rng(3)
    oof_y = labels(12, 0)
    fresh_y = labels(3, 5)
    test = label_shift_test(fresh_y, scores(rng, fresh_y), oof_y, scores(rng, oof_y))
    assert (test.n_members, test.n_rejections) == (3, 0)
    with pytest.raises(ValueError, match="no fresh label"):
        label_shift_test(labels(0, 5), np.full(5, 0.1), oof_y, scores(rng, oof_y))


def test_the_smallest_p_value_is_one_over_permutations_plus_one() -> None:
    fresh_y = labels(10, 0)
    test = label_shift_test(fresh_y, np.full(10, 1e-4), OOF_Y, np.full(72, 0.9), permutations=99)
    assert test.p_value == pytest.approx(1 / 100)


def test_a_shift_warns_an_ok_champion_and_never_softens_an_error() -> None:
    rng = np.random.default_rng(4)
    fresh_y = labels(4, 16)
    shifted = label_shift_test(fresh_y, np.r_[np.full(4, 0.02), scores(rng, labels(0, 16))],
                               OOF_Y, scores(rng, OOF_Y))  # fmt: skip
    ok, error = HealthDecision(HealthStatus.OK, "AP fine"), HealthDecision(HealthStatus.ERROR, "x")
    warned = label_shift_decision(ok, shifted, 0.005)
    assert warned.status is HealthStatus.WARN and "labels shifted" in warned.reason
    assert warned.reason.startswith("AP fine; newest 4 members and 16 rejections")
    assert label_shift_decision(error, shifted, 0.005).status is HealthStatus.ERROR
    assert label_shift_decision(ok, shifted, shifted.p_value / 2).status is HealthStatus.OK
    assert label_shift_decision(ok, None, 0.005) == ok


def test_the_window_is_the_labels_since_the_evaluation_before_last() -> None:
    times = np.repeat(np.arange(6.0), 8)  # 8 labels made at each of times 0..5
    # evaluations at 2, 3 and 4, now one after 5: the one before last is at 3
    assert since_evaluation_before_last(times, [4.0, 2.0, 3.0], floor=1, fallback=20) == 16
    assert since_evaluation_before_last(times, [1.0, 2.0], floor=1, fallback=20) == 32
    # at least `floor`: 16 since the evaluation before last are raised to the newest 20
    assert since_evaluation_before_last(times, [2.0, 3.0, 4.0], floor=20, fallback=20) == 20


def test_without_an_evaluation_before_last_or_a_label_since_it_the_newest_fallback() -> None:
    times = np.repeat(np.arange(6.0), 8)
    assert since_evaluation_before_last(times, [], floor=1, fallback=20) == 20
    assert since_evaluation_before_last(times, [4.0], floor=1, fallback=20) == 20
    # evaluations outpaced labels: none made since the one before last
    assert since_evaluation_before_last(times, [5.0, 6.0, 7.0], floor=1, fallback=20) == 20
    # a few since it: at least `floor`
    assert since_evaluation_before_last(times, [4.5, 6.0], floor=1, fallback=20) == 8
    assert since_evaluation_before_last(times, [4.5, 6.0], floor=10, fallback=20) == 10


def test_an_evaluation_with_no_new_label_does_not_shrink_the_window() -> None:
    times = np.repeat(np.arange(6.0), 8)  # 8 labels made at each of times 0..5
    once = [2.0, 3.0, 4.0]  # one evaluation after each labelling session, now one after 5
    twice = [2.0, 2.5, 3.0, 3.5, 4.0, 4.5]  # and one more between sessions, no label since
    assert since_evaluation_before_last_with_new_labels(times, once, 1, 20) == 16
    assert since_evaluation_before_last_with_new_labels(times, twice, 1, 20) == 16
    # counting every evaluation, the second of a session leaves only the newest session
    assert since_evaluation_before_last(times, twice, floor=1, fallback=20) == 8
    # now right after the evaluation at 5 (no label since): the same window as that one's
    after = [*twice, 5.0]
    assert since_evaluation_before_last_with_new_labels(times, after, 1, 20) == 16
    assert since_evaluation_before_last(times, after, floor=1, fallback=20) == 8


def test_with_fewer_than_two_rounds_of_labels_after_evaluations_the_newest_fallback() -> None:
    times = np.repeat(np.arange(6.0), 8)
    assert since_evaluation_before_last_with_new_labels(times, [], 1, 20) == 20
    assert since_evaluation_before_last_with_new_labels(times, [4.0], 1, 20) == 20
    # evaluations at 4, 4.2 and 4.4 saw no label between them: one round (5's) follows them
    assert since_evaluation_before_last_with_new_labels(times, [4.0, 4.2, 4.4], 1, 20) == 20
    # a label made at an evaluation's time is that evaluation's, not the next round's
    assert since_evaluation_before_last_with_new_labels(times, [3.0, 4.0], 1, 20) == 16
    assert since_evaluation_before_last_with_new_labels(times, [3.0, 4.0], 30, 20) == 30

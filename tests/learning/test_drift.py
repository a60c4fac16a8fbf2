"""The two-sample tests of `learning.drift`: calibrated under no drift, powerful under a shift,
and the level arithmetic the `batch_drift` check relies on."""

from __future__ import annotations

import numpy as np
import pytest

from ml_platform.learning.drift import (
    check_levels,
    classifier_test,
    distinct_rows,
    mmd_agg_test,
    mmd_test,
    normalised,
    permutations_for,
    share_test,
    window_mmd_test,
)


def sample(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    return np.asarray(rng.standard_normal((n, 16)) + shift * np.eye(16)[0] + 2.0 * np.eye(16)[1])


def test_mmd_finds_a_shifted_batch_with_the_smallest_p_value_it_can_give() -> None:
    rng = np.random.default_rng(0)
    result = mmd_test(sample(rng, 12, shift=3.0), sample(rng, 80), permutations=499)
    assert result.statistic > 0
    assert result.p_value == pytest.approx(1 / 500)


def test_mmd_p_values_of_clean_batches_are_not_small() -> None:
    rng = np.random.default_rng(1)
    reference = sample(rng, 80)
    p = [mmd_test(sample(rng, 12), reference, permutations=199, seed=s).p_value for s in range(40)]
    assert min(p) >= 1 / 200 and sum(v < 0.05 for v in p) <= 6  # about 2 of 40 expected
    assert np.mean(p) == pytest.approx(0.5, abs=0.15)


def copies(rng: np.random.Generator, photos: np.ndarray) -> np.ndarray:
    """Each row and a near-identical copy of it (a re-upload, a flip): cosine above 0.99."""
    return np.concatenate([photos, photos * 1.01 + 0.01 * rng.standard_normal(photos.shape)])


def test_a_clean_batch_of_copies_is_not_drifted_when_each_photo_counts_once() -> None:
    rng = np.random.default_rng(5)
    reference = sample(rng, 80)
    batches = [copies(rng, sample(rng, 6)) for _ in range(40)]
    once = np.array([mmd_test(b, reference, 199, seed=s).p_value for s, b in enumerate(batches)])
    twice = np.array([mmd_test(b, reference, 199, seed=s, near_duplicate=None).p_value
                      for s, b in enumerate(batches)])  # fmt: skip
    assert sum(twice < 0.05) >= 20  # copies counted as draws: clean batches look drifted
    assert sum(once < 0.05) <= 6 and np.mean(once) == pytest.approx(0.5, abs=0.15)


def test_a_shifted_batch_of_copies_is_still_found() -> None:
    rng = np.random.default_rng(6)
    shifted = copies(rng, sample(rng, 6, shift=3.0))
    assert mmd_test(shifted, sample(rng, 80), permutations=499).p_value == pytest.approx(1 / 500)


def test_distinct_rows_keeps_the_first_of_each_near_duplicate_group_in_order() -> None:
    rng = np.random.default_rng(7)
    photos = sample(rng, 5)
    rows = np.concatenate([photos[:3], photos[:1] * 2.0, photos[3:], photos[2:3] + 1e-3])
    kept = distinct_rows(rows)
    assert kept.tolist() == photos.tolist()
    assert len(distinct_rows(rows, cosine=1.0 - 1e-12)) == 6  # only the 2x copy joins


def test_mmd_is_the_same_for_the_same_seed_and_ignores_vector_length() -> None:
    rng = np.random.default_rng(2)
    batch, reference = sample(rng, 10), sample(rng, 30)
    first = mmd_test(batch, reference, permutations=99, seed=4)
    assert mmd_test(batch, reference, permutations=99, seed=4) == first
    scaled = mmd_test(batch * 7.0, reference, permutations=99, seed=4)  # L2-normalised first
    assert scaled.statistic == pytest.approx(first.statistic)


def test_the_domain_classifier_separates_a_shifted_batch_and_not_a_clean_one() -> None:
    rng = np.random.default_rng(3)
    reference = sample(rng, 80)
    shifted = classifier_test(sample(rng, 40, shift=3.0), reference)
    clean = classifier_test(sample(rng, 40), reference)
    assert shifted.statistic > 0.9 and shifted.p_value < 1e-4
    assert clean.p_value > 1e-3


def test_share_test_compares_the_predicted_positive_shares() -> None:
    same = share_test(3, 30, 30, 300)
    assert same.statistic == pytest.approx(0.0) and same.p_value == pytest.approx(1.0)
    more = share_test(25, 30, 30, 300)
    assert more.statistic == pytest.approx(25 / 30 - 0.1) and more.p_value < 1e-10


@pytest.mark.parametrize("counts", [(5, 4, 1, 10), (-1, 4, 1, 10), (0, 0, 1, 10)])
def test_share_test_refuses_impossible_counts(counts: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        share_test(*counts)


def test_a_test_needs_two_rows_on_each_side_and_one_dimensionality() -> None:
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="2 rows on each side"):
        mmd_test(sample(rng, 1), sample(rng, 10))
    with pytest.raises(ValueError, match="dimensions"):
        mmd_test(sample(rng, 5), sample(rng, 10)[:, :8])


def test_levels_split_alpha_over_the_families_and_their_tests() -> None:
    assert check_levels(0.01, 2, 4) == pytest.approx((0.0025, 0.00125))
    assert check_levels(0.01, 1, 0) == pytest.approx((0.01, 0.01))
    with pytest.raises(ValueError, match="alpha"):
        check_levels(1.0, 1, 1)


def test_enough_permutations_to_reach_a_tenth_of_the_level() -> None:
    assert permutations_for(0.05) == 1000
    n = permutations_for(0.0025)
    assert 1 / (1 + n) <= 0.00025


def test_normalised_rows_have_unit_length_and_zero_rows_stay_zero() -> None:
    rows = normalised(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert rows.tolist() == [[0.6, 0.8], [0.0, 0.0]]


def test_the_aggregated_mmd_finds_a_shift_and_keeps_its_level_on_clean_batches() -> None:
    rng = np.random.default_rng(8)
    reference = sample(rng, 80)
    shifted = mmd_agg_test(sample(rng, 12, shift=3.0), reference, permutations=499)
    assert shifted.statistic > 0 and shifted.p_value == pytest.approx(1 / 500)
    p = [mmd_agg_test(sample(rng, 12), reference, 199, seed=s).p_value for s in range(40)]
    # the smallest p-value over 5 bandwidths, calibrated again: about 2 of 40 under 0.05
    assert sum(v < 0.05 for v in p) <= 6 and np.mean(p) == pytest.approx(0.5, abs=0.15)


def test_the_aggregated_mmd_at_one_bandwidth_is_the_mmd_test() -> None:
    rng = np.random.default_rng(9)
    batch, reference = sample(rng, 10, shift=1.0), sample(rng, 40)
    one = mmd_agg_test(batch, reference, 199, seed=3, exponents=(0,))
    assert one == mmd_test(batch, reference, 199, seed=3)


def test_a_lasting_shift_shows_in_the_batch_with_the_one_before_it() -> None:
    rng = np.random.default_rng(10)
    reference = sample(rng, 80)
    previous, batch = sample(rng, 6, shift=2.0), sample(rng, 6, shift=2.0)
    alone = mmd_test(batch, reference, 1999)
    union = mmd_test(np.concatenate([previous, batch]), reference, 1999)
    window = window_mmd_test(batch, previous, reference, 1999)
    assert alone.p_value > 0.01 and union.p_value < 0.001  # twice the photos: a level of 0.005
    assert 2 * union.p_value < alone.p_value  # found after Bonferroni over the two
    assert window.p_value == pytest.approx(2 * union.p_value)
    assert window.statistic == union.statistic
    assert window_mmd_test(batch, None, reference, 1999) == alone


def test_clean_batches_with_the_one_before_keep_the_level() -> None:
    rng = np.random.default_rng(11)
    reference = sample(rng, 80)
    p = [window_mmd_test(sample(rng, 8), sample(rng, 8), reference, 199, seed=s).p_value
         for s in range(40)]  # fmt: skip
    assert sum(v < 0.05 for v in p) <= 4  # Bonferroni over 2 tests: at most about 2 of 40

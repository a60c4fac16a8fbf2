"""Champion-health figures and the OK / WARN / ERROR decision, as pure functions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from ml_platform.learning.health_metrics import (
    HealthLimits,
    HealthStatus,
    average_precision,
    bootstrap_ap,
    decide_health,
    expected_calibration_error,
    health_figures,
)

LIMITS = HealthLimits(max_ap_drop=0.05, ap_floor=0.5)


def scored(n: int, separation: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n labels (a third members) and probabilities that separate them by `separation`."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3 == 0).astype(np.int64)
    logits = rng.standard_normal(n) + separation * (2 * y - 1)
    return y, 1 / (1 + np.exp(-logits))


def test_perfect_scores_have_ap_one_and_full_recall_at_the_threshold() -> None:
    y = np.array([1, 1, 0, 0, 0])
    figures = health_figures(y, np.array([0.9, 0.8, 0.2, 0.1, 0.3]), threshold=0.5)
    assert figures.average_precision == 1.0
    assert (figures.precision, figures.recall) == (1.0, 1.0)
    assert figures.ap_low == figures.ap_high == 1.0
    assert figures.brier == pytest.approx((0.01 + 0.04 + 0.04 + 0.01 + 0.09) / 5)
    assert (figures.n_pos, figures.n_neg) == (2, 3)


def test_precision_and_recall_use_the_champions_own_threshold() -> None:
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.6, 0.7, 0.1])
    assert health_figures(y, p, 0.65).precision == 0.5  # 0.9 and 0.7 predicted
    assert health_figures(y, p, 0.65).recall == 0.5
    assert health_figures(y, p, 0.95).precision == 0.0  # nothing predicted positive


def test_ece_is_zero_when_calibrated_and_large_when_overconfident() -> None:
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    assert expected_calibration_error(y, np.full(10, 0.5)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(10, 0.99)) == pytest.approx(0.49)


def test_the_bootstrap_interval_holds_the_estimate_and_narrows_with_more_labels() -> None:
    small_y, small_p = scored(24, 1.0)
    large_y, large_p = scored(600, 1.0)
    small, large = bootstrap_ap(small_y, small_p), bootstrap_ap(large_y, large_p)
    figures = health_figures(small_y, small_p, 0.5)
    assert figures.ap_low <= figures.average_precision <= figures.ap_high
    assert large[1] - large[0] < (small[1] - small[0]) / 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_fast_average_precision_is_scikit_learns_ties_included(seed: int) -> None:
    y, p = scored(200, 0.8, seed)
    p = np.round(p, 1)  # many ties
    assert average_precision(y, p) == pytest.approx(average_precision_score(y, p))


def test_labels_with_one_class_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="both positives"):
        health_figures(np.ones(5, np.int64), np.full(5, 0.7), 0.5)


def test_a_small_noisy_drop_stays_ok_and_a_confirmed_drop_warns() -> None:
    y, p = scored(15, 0.6, seed=3)  # a weak champion on 15 fresh images: wide interval
    few = health_figures(y, p, 0.5)
    assert few.average_precision < 0.95 - LIMITS.max_ap_drop  # the point estimate fell...
    assert few.ap_high > 0.95 - LIMITS.max_ap_drop  # ...but within noise
    assert decide_health(few, 0.95, LIMITS).status is HealthStatus.OK
    y, p = scored(900, 0.6, seed=3)
    many = health_figures(y, p, 0.5)
    decision = decide_health(many, 0.95, LIMITS)
    assert decision.status is HealthStatus.WARN
    assert "beyond noise" in decision.reason


def test_ap_below_the_floor_is_an_error_and_a_legacy_version_is_held_to_the_floor_only() -> None:
    y, p = scored(300, -1.0)  # scores that rank rejections first
    figures = health_figures(y, p, 0.5)
    assert decide_health(figures, 0.95, LIMITS).status is HealthStatus.ERROR
    y, p = scored(300, 0.5)
    fair = health_figures(y, p, 0.5)
    assert fair.ap_high > LIMITS.ap_floor
    assert decide_health(fair, None, LIMITS).status is HealthStatus.OK
    assert decide_health(fair, 0.99, LIMITS).status is HealthStatus.WARN

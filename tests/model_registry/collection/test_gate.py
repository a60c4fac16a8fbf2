"""Promotion decision and sanity checks (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml_platform.learning.evaluation import Evaluation
from ml_platform.model_registry.collection.gate import decide_promotion, input_width, sanity_check


def evaluation(ap: float, n_pos: int = 10, n_neg: int = 30) -> Evaluation:
    return Evaluation(ap, 0.9, 0.8, 0.8, 0.8, 0.5, n_pos, n_neg)


@pytest.fixture(scope="module")
def fitted() -> LogisticRegression:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    return LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))


def test_challenger_is_promoted_when_there_is_no_champion() -> None:
    decision = decide_promotion(None, evaluation(0.6), tolerance=0.02, sanity=[])
    assert decision.promote
    assert decision.reason.startswith("first champion") and "out-of-fold AP" in decision.reason


@pytest.mark.parametrize(
    ("champion_ap", "challenger_ap", "promote"),
    [(0.80, 0.90, True), (0.80, 0.79, True), (0.80, 0.78, True), (0.80, 0.77, False)],
)
def test_challenger_is_kept_out_only_when_worse_beyond_tolerance(
    champion_ap: float, challenger_ap: float, promote: bool
) -> None:
    decision = decide_promotion(
        evaluation(champion_ap), evaluation(challenger_ap), tolerance=0.02, sanity=[]
    )
    assert decision.promote is promote
    assert f"{challenger_ap:.4f}" in decision.reason
    assert decision.reason.startswith("challenger is worse") is not promote


def test_failed_sanity_checks_block_even_a_better_challenger() -> None:
    decision = decide_promotion(
        evaluation(0.5), evaluation(0.99), tolerance=0.0, sanity=["only 2 positives (minimum 5)"]
    )
    assert not decision.promote
    assert "only 2 positives" in decision.reason


def test_evaluations_on_different_data_cannot_be_compared() -> None:
    with pytest.raises(ValueError, match="different data"):
        decide_promotion(evaluation(0.8, n_pos=10), evaluation(0.9, n_pos=12), 0.02, [])


def test_sane_model_has_no_problems(fitted: LogisticRegression) -> None:
    assert sanity_check(fitted, 4, 4, n_pos=10, n_neg=20, min_pos=5, min_neg=5) == []


def test_sanity_check_reports_every_problem(fitted: LogisticRegression) -> None:
    broken = LogisticRegression().fit(np.eye(4), [0, 1, 0, 1])
    broken.coef_[0, 1] = np.nan
    problems = sanity_check(broken, 4, 8, n_pos=2, n_neg=3, min_pos=5, min_neg=5)
    joined = " | ".join(problems)
    assert "embedder dimensionality 8" in joined
    assert "non-finite parameters in model.coef_" in joined
    assert "only 2 positives" in joined
    assert "only 3 negatives" in joined


def test_non_finite_parameters_are_found_inside_pipelines() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 3))
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, X[:, 0] > 0)
    pipeline[0].mean_[2] = np.inf
    problems = sanity_check(pipeline, 3, 3, 10, 10, 1, 1)
    assert any("mean_" in problem for problem in problems)
    assert input_width(pipeline) == 3

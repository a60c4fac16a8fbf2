"""Train a collection classifier: cross-validate candidates, pick one, choose a threshold, refit.

Protocol (deterministic given `TrainingConfig.seed`):
1. Stratified k-fold, k = min(cv_folds, n_pos, n_neg): every test fold holds a positive.
2. Each candidate is fitted fresh on each training fold; its test-fold probabilities are
   collected as out-of-fold (OOF) predictions and its per-fold average precision recorded.
3. The winner is the candidate with the highest mean fold average precision (ties go to the
   earlier candidate in `TrainingConfig.candidates`).
4. The decision threshold is the OOF probability that maximises F1 (`p >= threshold` means
   "in the collection"); OOF predictions never come from a model that saw the image.
5. The winner is refitted on all data; that estimator and threshold are the result.

Every fit (each training fold, and the refit) weighs its rows by `TrainingConfig.negatives()`:
explicit rejections 1, sampled unlabelled negatives kept, down-weighted or filtered
(`learning/negatives.py`); every evaluation scores all rows, unweighted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import average_precision_score
from sklearn.pipeline import Pipeline

from ml_platform.learning.candidates import CandidateName
from ml_platform.learning.evaluation import (
    CandidateMetrics,
    Evaluation,
    evaluate_on,
    evaluate_scores,
    max_f1_threshold,
    validate_labels,
)
from ml_platform.learning.fitting import fit_candidate, fit_rows, one_blas_thread, row_weights
from ml_platform.learning.folds import (
    HARD_MIN_PER_CLASS,
    NEAR_DUPLICATE_COSINE,
    InsufficientTrainingDataError,
    cv_splits,
    fold_count,
    group_counts,
)
from ml_platform.learning.negatives import NegativeTreatment, UnlabelledNegatives

__all__ = [
    "CandidateMetrics",
    "CandidateName",
    "InsufficientTrainingDataError",
    "TrainingConfig",
    "TrainingResult",
    "UnlabelledNegatives",
    "cross_validate_estimator",
    "cv_fold_count",
    "cv_splits",
    "evaluate_on",
    "train_classifier",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingConfig:
    """Knobs for `train_classifier`; the defaults suit collections of tens of images."""

    candidates: tuple[CandidateName, ...] = (
        CandidateName.LOGISTIC_REGRESSION,
        CandidateName.CALIBRATED_LINEAR_SVM,
        CandidateName.MLP,
    )
    cv_folds: int = 5
    min_positives: int = 5
    min_negatives: int = 5
    seed: int = 0
    # Sampled unlabelled negatives (explicit rejections always weigh 1): learning/negatives.py.
    # The default filter measured best (benchmarks/unlabelled_negatives.py, docs/model_registry.md)
    unlabelled: UnlabelledNegatives = UnlabelledNegatives.FILTER
    unlabelled_weight: float = 0.5  # used by `weight` and `filter_weight` only
    unlabelled_filter_quantile: float = 0.5
    # Rows this similar share a CV group (flips, crops; services.training_data, folds.py)
    near_duplicate_cosine: float = NEAR_DUPLICATE_COSINE

    def __post_init__(self) -> None:
        if not self.candidates:
            raise ValueError("TrainingConfig.candidates is empty; name at least one candidate")
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError(f"TrainingConfig.candidates repeats a name: {self.candidates}")
        if self.cv_folds < 2:
            raise ValueError(f"TrainingConfig.cv_folds must be >= 2, got {self.cv_folds}")
        if min(self.min_positives, self.min_negatives) < HARD_MIN_PER_CLASS:
            raise ValueError(
                f"min_positives and min_negatives must be >= {HARD_MIN_PER_CLASS}, got "
                f"{self.min_positives} and {self.min_negatives}"
            )
        self.negatives()  # its own checks
        if not 0.0 < self.near_duplicate_cosine <= 1.0:
            raise ValueError(
                f"near_duplicate_cosine must be in (0, 1], got {self.near_duplicate_cosine}"
            )

    def negatives(self) -> NegativeTreatment:
        """The three `unlabelled*` knobs as the treatment that weighs the training rows."""
        return NegativeTreatment(
            self.unlabelled, self.unlabelled_weight, self.unlabelled_filter_quantile
        )


@dataclass(frozen=True)
class TrainingResult:
    """The refitted winner, its threshold and every candidate's cross-validated figures."""

    winner: CandidateName
    estimator: Pipeline
    threshold: float
    candidates: tuple[CandidateMetrics, ...]
    dimensionality: int
    n_pos: int
    n_neg: int
    folds: int
    config: TrainingConfig

    @property
    def winner_metrics(self) -> CandidateMetrics:
        return next(m for m in self.candidates if m.name == self.winner)

    @property
    def out_of_fold(self) -> Evaluation:
        """The winner's OOF evaluation: the challenger's side of a promotion comparison."""
        return self.winner_metrics.out_of_fold

    @property
    def out_of_fold_probabilities(self) -> NDArray[np.float64]:
        """The winner's probability for each training row from the fold that did not see
        it (row order of X): what the label audit reads, never the refit's."""
        return self.winner_metrics.probabilities


def cv_fold_count(
    n_pos: int, n_neg: int, config: TrainingConfig, n_groups: tuple[int, int] | None = None
) -> int:
    """Folds to use: `cv_folds`, reduced to the minority count (of groups, when the rows are
    grouped: (positive groups, negative groups)); an error below the minimum."""
    minimums = (config.min_positives, config.min_negatives)
    return fold_count(n_pos, n_neg, cv_folds=config.cv_folds, minimums=minimums, n_groups=n_groups)


@one_blas_thread
def train_classifier(
    X: NDArray[np.floating],
    y: NDArray[np.generic],
    config: TrainingConfig | None = None,
    groups: NDArray[np.int64] | None = None,
    unlabelled: NDArray[np.bool_] | None = None,
) -> TrainingResult:
    """Cross-validate `config.candidates` on (X, y), pick the winner, refit it on all data.
    `groups` (one source photo or pet per row) keeps each group inside one fold; `unlabelled`
    marks the sampled negatives, which `config.negatives()` weighs or filters when fitting."""
    config = config or TrainingConfig()
    data = _validate_features(X)
    labels = validate_labels(y)
    if data.shape[0] != labels.shape[0]:
        raise ValueError(f"X has {data.shape[0]} rows but y has {labels.shape[0]} labels")
    n_pos = int(labels.sum())
    n_neg = int(labels.size - n_pos)
    folds = cv_fold_count(n_pos, n_neg, config, group_counts(labels, groups))
    splits = cv_splits(labels, folds, config.seed, groups)
    treatment = config.negatives()
    weights = [row_weights(treatment, data, labels, unlabelled, train) for train, _ in splits]
    metrics = tuple(
        _cross_validate(name, data, labels, list(zip(splits, weights, strict=True)), config.seed)
        for name in config.candidates
    )
    best = max(metrics, key=lambda m: m.average_precision_mean)  # first maximum wins ties
    threshold = best.out_of_fold.threshold
    log.info(
        "winner %s: CV AP %.3f +/- %.3f, threshold %.3f (n_pos=%d, n_neg=%d, folds=%d)",
        best.name, best.average_precision_mean, best.average_precision_std, threshold,
        n_pos, n_neg, folds,
    )  # fmt: skip
    every = np.arange(labels.shape[0])
    refit = row_weights(treatment, data, labels, unlabelled, every)
    estimator = fit_candidate(best.name, config.seed, data, labels, refit)
    return TrainingResult(
        winner=best.name,
        estimator=estimator,
        threshold=threshold,
        candidates=metrics,
        dimensionality=int(data.shape[1]),
        n_pos=n_pos,
        n_neg=n_neg,
        folds=folds,
        config=config,
    )


@one_blas_thread
def cross_validate_estimator(
    estimator: BaseEstimator,
    X: NDArray[np.floating],
    y: NDArray[np.generic],
    *,
    folds: int,
    seed: int,
    groups: NDArray[np.int64] | None = None,
    unlabelled: NDArray[np.bool_] | None = None,
    treatment: NegativeTreatment | None = None,
) -> Evaluation:
    """Out-of-fold evaluation of fresh clones of `estimator` on the folds that
    `train_classifier` uses for the same `folds`, `seed` and `groups` (and the same
    negative `treatment` of the `unlabelled` rows: the filter always; the weights when the
    estimator is a pipeline with a `classifier` step).

    This is how a champion is compared with a challenger on the same protocol: the champion's
    recipe and the challenger's winner are both scored only on images their fold did not see.
    """
    data, labels = _validate_features(X), validate_labels(y)
    treatment = treatment or NegativeTreatment()
    oof = np.zeros(labels.shape[0], dtype=np.float64)
    for train_idx, test_idx in cv_splits(labels, folds, seed, groups):
        weights = row_weights(treatment, data, labels, unlabelled, train_idx)
        model = fit_rows(clone(estimator), data[train_idx], labels[train_idx], weights)
        oof[test_idx] = model.predict_proba(data[test_idx])[:, 1]
    return evaluate_scores(labels, oof, max_f1_threshold(labels, oof))


def _validate_features(X: NDArray[np.floating]) -> NDArray[np.float32]:
    data = np.asarray(X, dtype=np.float32)
    if data.ndim != 2 or data.shape[1] == 0:
        raise ValueError(f"X must be a 2-D array [n, dim] with dim > 0, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError("X contains NaN or infinite values; re-embed the affected images")
    return data


def _cross_validate(
    name: CandidateName,
    X: NDArray[np.float32],
    y: NDArray[np.int64],
    folds: list[tuple[tuple[NDArray[np.intp], NDArray[np.intp]], NDArray[np.float64]]],
    seed: int,
) -> CandidateMetrics:
    oof = np.zeros(y.shape[0], dtype=np.float64)
    fold_ap: list[float] = []
    for (train_idx, test_idx), weights in folds:
        model = fit_candidate(name, seed, X[train_idx], y[train_idx], weights)
        oof[test_idx] = model.predict_proba(X[test_idx])[:, 1]
        fold_ap.append(float(average_precision_score(y[test_idx], oof[test_idx])))
    threshold = max_f1_threshold(y, oof)
    log.debug("candidate %s: fold AP %s", name, [round(a, 3) for a in fold_ap])
    return CandidateMetrics(
        name=name,
        average_precision_mean=float(np.mean(fold_ap)),
        average_precision_std=float(np.std(fold_ap)),
        out_of_fold=evaluate_scores(y, oof, threshold),
        folds=len(folds),
        probabilities=oof,
    )

"""Cross-validation folds for a collection classifier: how many, and which rows go where.

Stratified k-fold, k = min(cv_folds, n_pos, n_neg) (of groups, when rows are grouped), so
every test fold holds a positive; with groups (a source photo or pet per row) no group is
split across folds, so crops and copies of one photo never sit in both train and test.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

log = logging.getLogger(__name__)

HARD_MIN_PER_CLASS = 3  # 3 outer folds, each training fold with 2 per class for calibration
Splits = list[tuple[NDArray[np.intp], NDArray[np.intp]]]


class InsufficientTrainingDataError(ValueError):
    """Too few positives or negatives to cross-validate a classifier."""


def fold_count(
    n_pos: int,
    n_neg: int,
    *,
    cv_folds: int,
    minimums: tuple[int, int],
    n_groups: tuple[int, int] | None = None,
) -> int:
    """Folds to use: `cv_folds`, reduced to the minority count (of groups, when the rows are
    grouped: (positive groups, negative groups)); an error below the minimums."""
    min_positives, min_negatives = minimums
    if n_pos < min_positives or n_neg < min_negatives:
        raise InsufficientTrainingDataError(
            f"need at least {min_positives} positives and {min_negatives} "
            f"negatives to train, got {n_pos} and {n_neg}; label more images"
        )
    folds = min(cv_folds, *(n_groups or (n_pos, n_neg)))
    if folds < HARD_MIN_PER_CLASS:
        raise InsufficientTrainingDataError(
            f"positives and negatives come from only {n_groups} distinct source photos or "
            f"pets; {HARD_MIN_PER_CLASS} of each are needed for grouped folds; label more"
        )
    if folds < cv_folds:
        log.info("reducing CV folds from %d to %d (minority class size)", cv_folds, folds)
    return folds


def cv_splits(
    labels: NDArray[np.int64], folds: int, seed: int, groups: NDArray[np.int64] | None
) -> Splits:
    """Stratified folds; with `groups` (a source photo or pet per row) no group is split
    across folds, so crops and flips of one photo never sit in both train and test."""
    rows = np.zeros((labels.shape[0], 1))
    if groups is None:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(rows, labels))
    if groups.shape != labels.shape:
        raise ValueError(f"{groups.shape[0]} groups for {labels.shape[0]} labels; pair them up")
    grouped = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(grouped.split(rows, labels, groups))


def group_counts(
    labels: NDArray[np.int64], groups: NDArray[np.int64] | None
) -> tuple[int, int] | None:
    """Distinct groups among positives and among negatives (None without groups)."""
    if groups is None:
        return None
    return len(np.unique(groups[labels == 1])), len(np.unique(groups[labels == 0]))

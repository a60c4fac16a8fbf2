"""Cross-validation folds for a collection classifier: how many, and which rows go where.

Stratified k-fold, k = min(cv_folds, n_pos, n_neg) (of groups, when rows are grouped), so
every test fold holds a positive; with groups (a source photo or pet per row) no group is
split across folds, so crops and copies of one photo never sit in both train and test.
`merge_near_duplicates` joins the groups of rows whose embeddings are near-identical (a flip
or crop of one photo has a new sha256 but nearly the same embedding).
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

log = logging.getLogger(__name__)

HARD_MIN_PER_CLASS = 3  # 3 outer folds, each training fold with 2 per class for calibration
Splits = list[tuple[NDArray[np.intp], NDArray[np.intp]]]
# Cosine (raw L2-normalised EfficientNet-Lite0 embeddings of ../shared's pet photos) of a
# horizontal flip to its original: min 0.94; a 80 % crop: median 0.92; two distinct photos:
# max 0.83. dHash (64 bits) misses both: flips differ by median 29 bits, 80 % crops by 20.
NEAR_DUPLICATE_COSINE = 0.9
ROW_BLOCK = 2048  # rows of the similarity matrix held at once


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


def merge_near_duplicates(
    X: NDArray[np.floating], groups: NDArray[np.int64], cosine: float = NEAR_DUPLICATE_COSINE
) -> NDArray[np.int64]:
    """`groups` with every two groups joined that hold rows of cosine >= `cosine` (and, in
    turn, what those join), renumbered 0 .. g - 1."""
    if not 0.0 < cosine <= 1.0:
        raise ValueError(f"near-duplicate cosine must be in (0, 1], got {cosine}")
    x = np.asarray(X, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    parent = np.unique(groups, return_inverse=True)[1].astype(np.int64)
    roots = np.arange(int(parent.max()) + 1 if parent.size else 0)
    for start in range(0, len(x), ROW_BLOCK):
        sims = x[start : start + ROW_BLOCK] @ x.T
        for a, b in zip(*np.nonzero(sims >= cosine), strict=True):
            _join(roots, int(parent[start + a]), int(parent[b]))
    merged = np.asarray([_root(roots, int(g)) for g in parent], dtype=np.int64)
    return np.unique(merged, return_inverse=True)[1].astype(np.int64)


def _root(roots: NDArray[np.int64], g: int) -> int:
    while roots[g] != g:
        roots[g] = roots[roots[g]]
        g = int(roots[g])
    return g


def _join(roots: NDArray[np.int64], a: int, b: int) -> None:
    ra, rb = _root(roots, a), _root(roots, b)
    if ra != rb:
        roots[max(ra, rb)] = min(ra, rb)

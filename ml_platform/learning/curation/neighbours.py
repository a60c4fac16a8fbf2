"""A second view of a label for the audit: what an image's nearest labelled images say.

The out-of-fold probability is one classifier's view; the labels of an image's k most similar
labelled images (cosine over the embeddings, the image itself left out) are another, and the
two err on different images. Near-duplicates of the image (cosine >= the threshold the
training folds use to keep copies of one photo together) are left out as well: a copy does
not vouch for its twin. The two views are pooled by averaging their log-odds (a log-linear
pool of two experts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.curation.geometry import check_rows, unit_rows
from ml_platform.learning.folds import NEAR_DUPLICATE_COSINE, ROW_BLOCK

NEIGHBOURS = 10
# The audit's neighbour view: cosine-weighted and smoothed towards the members' share with the
# pseudo-count of Laplace's rule (m = 2, not tuned), so 0 of 10 is not a certainty; chosen by a
# rule fixed before the runs (benchmarks/curation_audit.py, docs/api.md).
AUDIT_PRIOR_WEIGHT = 2.0
_EDGE = 1e-6  # probabilities are clipped to [EDGE, 1 - EDGE] before their log-odds


def neighbour_probability(
    vectors: NDArray[np.floating],
    labels: NDArray[np.int64],
    k: int = NEIGHBOURS,
    duplicate_cosine: float = NEAR_DUPLICATE_COSINE,
    prior_weight: float = 0.0,
    weighted: bool = False,
) -> NDArray[np.float64]:
    """Per row, the share of members (label 1) among its k most similar other rows, its
    near-duplicates left out; a row with no such neighbour gets the members' overall share.
    `prior_weight` m smooths the share towards the members' overall share pi (an m-estimate:
    (members + m pi) / (count + m)); `weighted` weighs each neighbour by its cosine (>= 0)."""
    unit = unit_rows(vectors)
    y = np.asarray(labels, dtype=np.float64)
    check_rows("labels", y, unit.shape[0])
    if k < 1 or prior_weight < 0:
        raise ValueError(f"need k >= 1 and prior_weight >= 0, got {k} and {prior_weight}")
    share = _Share(k, duplicate_cosine, prior_weight, weighted)
    out = np.empty(unit.shape[0], dtype=np.float64)
    for start in range(0, unit.shape[0], ROW_BLOCK):
        rows = np.arange(start, min(start + ROW_BLOCK, unit.shape[0]))
        out[rows] = share.of_block(unit, y, rows)
    return out


@dataclass(frozen=True)
class _Share:
    k: int
    duplicate_cosine: float
    prior_weight: float
    weighted: bool

    def of_block(
        self, unit: NDArray[np.float32], y: NDArray[np.float64], rows: NDArray[np.intp]
    ) -> NDArray[np.float64]:
        sims = unit[rows] @ unit.T
        sims[np.arange(rows.size), rows] = -np.inf  # not its own neighbour
        sims[sims >= self.duplicate_cosine] = -np.inf  # nor its copies
        k = min(self.k, unit.shape[0] - 1)
        if k < 1:
            return np.full(rows.size, y.mean())
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        near_sims = np.take_along_axis(sims, nearest, axis=1)
        valid = np.isfinite(near_sims)
        count = valid.sum(axis=1)
        w = valid.astype(np.float64)
        if self.weighted:  # cosine weights, rescaled to sum to the neighbour count
            w = np.where(valid, np.maximum(near_sims, 1e-6), 0.0)
            w *= count[:, None] / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        members = (y[nearest] * w).sum(axis=1)
        m, pi = self.prior_weight, y.mean()
        share = (members + m * pi) / np.maximum(count + m, 1e-12)
        return np.asarray(np.where(count > 0, share, pi), np.float64)


def audit_neighbour_probability(
    vectors: NDArray[np.floating], labels: NDArray[np.int64]
) -> NDArray[np.float64]:
    """The neighbour view the audit uses (k = 10, cosine-weighted, m = 2)."""
    return neighbour_probability(vectors, labels, prior_weight=AUDIT_PRIOR_WEIGHT, weighted=True)


def pooled_probability(
    first: NDArray[np.floating], second: NDArray[np.floating]
) -> NDArray[np.float64]:
    """The probability whose log-odds is the mean of the two views' log-odds."""
    a = _logit(np.asarray(first, dtype=np.float64))
    b = _logit(np.asarray(second, dtype=np.float64))
    return np.asarray(1.0 / (1.0 + np.exp(-(a + b) / 2.0)), dtype=np.float64)


def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    q = np.clip(p, _EDGE, 1.0 - _EDGE)
    return np.asarray(np.log(q / (1.0 - q)), dtype=np.float64)

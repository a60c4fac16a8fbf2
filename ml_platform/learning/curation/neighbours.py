"""A second view of a label for the audit: what an image's nearest labelled images say.

The out-of-fold probability is one classifier's view; the labels of an image's k most similar
labelled images (cosine over the embeddings, the image itself left out) are another, and the
two err on different images. Near-duplicates of the image (cosine >= the threshold the
training folds use to keep copies of one photo together) are left out as well: a copy does
not vouch for its twin. The two views are pooled by averaging their log-odds (a log-linear
pool of two experts).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.curation.geometry import check_rows, unit_rows
from ml_platform.learning.folds import NEAR_DUPLICATE_COSINE, ROW_BLOCK

NEIGHBOURS = 10
_EDGE = 1e-6  # probabilities are clipped to [EDGE, 1 - EDGE] before their log-odds


def neighbour_probability(
    vectors: NDArray[np.floating],
    labels: NDArray[np.int64],
    k: int = NEIGHBOURS,
    duplicate_cosine: float = NEAR_DUPLICATE_COSINE,
) -> NDArray[np.float64]:
    """Per row, the share of members (label 1) among its k most similar other rows, its
    near-duplicates left out; a row with no such neighbour gets the members' overall share."""
    unit = unit_rows(vectors)
    y = np.asarray(labels, dtype=np.float64)
    check_rows("labels", y, unit.shape[0])
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    out = np.empty(unit.shape[0], dtype=np.float64)
    for start in range(0, unit.shape[0], ROW_BLOCK):
        rows = np.arange(start, min(start + ROW_BLOCK, unit.shape[0]))
        out[rows] = _block_share(unit, y, rows, k, duplicate_cosine)
    return out


def _block_share(
    unit: NDArray[np.float32],
    y: NDArray[np.float64],
    rows: NDArray[np.intp],
    k: int,
    duplicate_cosine: float,
) -> NDArray[np.float64]:
    sims = unit[rows] @ unit.T
    sims[np.arange(rows.size), rows] = -np.inf  # not its own neighbour
    sims[sims >= duplicate_cosine] = -np.inf  # nor its copies
    k = min(k, unit.shape[0] - 1)
    if k < 1:
        return np.full(rows.size, y.mean())
    nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    valid = np.isfinite(np.take_along_axis(sims, nearest, axis=1))
    count = valid.sum(axis=1)
    members = (y[nearest] * valid).sum(axis=1)
    return np.asarray(np.where(count > 0, members / np.maximum(count, 1), y.mean()), np.float64)


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

"""Suggestions: images that are neither members nor rejected, by the champion's probability.

Near-duplicates (a flip, a crop, a re-upload of one photo) are collapsed to one entry, the
most probable; the others are listed on it as `duplicates`. "Near" is the cosine the training
folds use to keep copies of one photo together (`learning.folds.NEAR_DUPLICATE_COSINE`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.curation.geometry import Pool, unit_rows
from ml_platform.learning.folds import NEAR_DUPLICATE_COSINE


@dataclass(frozen=True)
class Suggestion:
    image_id: int
    probability: float
    duplicates: tuple[int, ...] = ()  # near-duplicates collapsed into this entry


def rank_suggestions(
    pool: Pool,
    *,
    limit: int,
    min_probability: float = 0.0,
    duplicate_cosine: float = NEAR_DUPLICATE_COSINE,
) -> list[Suggestion]:
    """The `limit` most probable unlabelled images of `pool`, each with probability >=
    `min_probability`, best first, near-duplicates collapsed."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if not 0.0 < duplicate_cosine <= 1.0:
        raise ValueError(f"duplicate_cosine must be in (0, 1], got {duplicate_cosine}")
    p = np.asarray(pool.probabilities, dtype=np.float64)
    open_rows = np.flatnonzero(~np.asarray(pool.labelled, dtype=bool) & (p >= min_probability))
    order = open_rows[np.argsort(-p[open_rows], kind="stable")]
    return _collapse(pool, order, limit, duplicate_cosine)


def _collapse(pool: Pool, order: NDArray[np.intp], limit: int, cosine: float) -> list[Suggestion]:
    """The first `limit` rows of `order` unlike the ones kept before them, each with the rows
    of `order` that are near-duplicates of it."""
    ids, p, unit = pool.image_ids, pool.probabilities, unit_rows(pool.vectors)
    kept: list[int] = []
    duplicates: list[list[int]] = []
    for row in order:
        if kept:
            sims = unit[kept] @ unit[row]
            best = int(np.argmax(sims))
            if sims[best] >= cosine:
                duplicates[best].append(int(ids[row]))
                continue
        if len(kept) == limit:
            break
        kept.append(int(row))
        duplicates.append([])
    return [
        Suggestion(int(ids[r]), float(p[r]), tuple(d))
        for r, d in zip(kept, duplicates, strict=True)
    ]

"""Scoring images with many collections' champions at once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.evaluation import ProbabilisticClassifier


def score_matrix(
    models: Sequence[ProbabilisticClassifier], X: NDArray[np.floating]
) -> NDArray[np.float32]:
    """[collections, images]: each model's probability of "in the collection" per row."""
    data = np.asarray(X, dtype=np.float32)
    if data.ndim != 2:
        raise ValueError(f"X must be a 2-D array [n, dim], got shape {data.shape}")
    out = np.zeros((len(models), data.shape[0]), dtype=np.float32)
    if data.shape[0] == 0:
        return out
    for row, model in enumerate(models):
        out[row] = np.asarray(model.predict_proba(data))[:, 1]
    return out


def prefer_out_of_fold(
    image_ids: NDArray[np.int64],
    probabilities: NDArray[np.floating],
    trained_ids: NDArray[np.int64],
    out_of_fold: NDArray[np.floating],
) -> NDArray[np.float64]:
    """`probabilities` with each image the champion trained on replaced by its out-of-fold
    probability. An unlabelled image sampled as a negative was fitted towards 0 by the refit,
    so its refit probability hides it when it is in fact a member; its fold's model never
    saw it. (Pets, 40 % of members hidden, all others as unlabelled negatives: recall of the
    hidden members 0.84 with refit probabilities, 0.87 with these; benchmarks/curation.py.)"""
    p = np.asarray(probabilities, dtype=np.float64).copy()
    if len(trained_ids) != len(out_of_fold):
        raise ValueError(f"{len(trained_ids)} trained ids for {len(out_of_fold)} probabilities")
    where = {int(i): k for k, i in enumerate(np.asarray(image_ids).tolist())}
    oof = np.asarray(out_of_fold, dtype=np.float64)
    for i, value in zip(np.asarray(trained_ids).tolist(), oof.tolist(), strict=True):
        row = where.get(int(i))
        if row is not None:
            p[row] = value
    return p

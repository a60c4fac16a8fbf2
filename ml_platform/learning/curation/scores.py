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

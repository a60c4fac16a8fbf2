"""Cosine geometry shared by the curation functions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


def unit_rows(X: NDArray[np.floating]) -> NDArray[np.float32]:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    x = np.asarray(X, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array [n, dim], got shape {x.shape}")
    norms = np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return np.asarray(x / norms, dtype=np.float32)


def check_rows(name: str, values: NDArray[np.generic], n: int) -> None:
    """An error naming `name` when it does not hold one value per row."""
    if values.shape[:1] != (n,):
        raise ValueError(f"{name} has shape {values.shape}; expected one value per row ({n})")


@dataclass(frozen=True)
class Pool:
    """One collection's view of its focus: each image's id, the champion's probability, the
    embedding vector and whether a person labelled it (member or rejected)."""

    image_ids: NDArray[np.int64]
    probabilities: NDArray[np.float64]
    vectors: NDArray[np.floating]
    labelled: NDArray[np.bool_]

    def __post_init__(self) -> None:
        n = len(self.image_ids)
        check_rows("probabilities", np.asarray(self.probabilities), n)
        check_rows("vectors", np.asarray(self.vectors), n)
        check_rows("labelled", np.asarray(self.labelled), n)

"""How a classifier treats its negatives: explicit rejections first, unlabelled ones with care.

A collection's negatives are of two kinds. An explicit rejection ("not in this collection")
is a real label: weight 1, always kept. A sampled unlabelled image is only probably a
negative: some are members nobody has labelled yet. `NegativeTreatment.weights` gives one
fitting weight per training row (0 = left out of the fit):

- `keep`: unlabelled rows count like rejections (weight 1).
- `weight`: unlabelled rows get `unlabelled_weight` (0 < w <= 1).
- `filter`: unlabelled rows that look like positives are left out. "Look like": after
  L2-normalising and centring the rows, an unlabelled row's cosine to the positives'
  centroid is at least the `filter_quantile` quantile of the positives' own leave-one-out
  cosines to their centroid (so a row more typical of the collection than the least typical
  tenth of its members, at 0.1). At most `MAX_FILTERED_SHARE` of the unlabelled rows go.
- `filter_weight`: both.

Weights are computed on the rows a model is fitted on (each CV training fold, then all
rows for the refit), never on a test fold: evaluation always scores every row with its
label, so a filter cannot make the cross-validated figures look better by hiding rows.
`benchmarks/unlabelled_negatives.py` measures the effect (docs/clusters.md has the table).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

# Never leave out more than this share of a fold's unlabelled rows: when most of them look
# like positives the centroid is not telling members apart, and the negatives would go.
MAX_FILTERED_SHARE = 0.5


class UnlabelledNegatives(StrEnum):
    """What to do with sampled unlabelled images used as negatives."""

    KEEP = "keep"
    WEIGHT = "weight"
    FILTER = "filter"
    FILTER_WEIGHT = "filter_weight"

    @property
    def filters(self) -> bool:
        return self in (UnlabelledNegatives.FILTER, UnlabelledNegatives.FILTER_WEIGHT)

    @property
    def weighs(self) -> bool:
        return self in (UnlabelledNegatives.WEIGHT, UnlabelledNegatives.FILTER_WEIGHT)


@dataclass(frozen=True)
class NegativeTreatment:
    """The three negative knobs of `TrainingConfig`, and the weights they give."""

    mode: UnlabelledNegatives = UnlabelledNegatives.KEEP
    unlabelled_weight: float = 1.0
    filter_quantile: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.unlabelled_weight <= 1.0:
            raise ValueError(
                f"unlabelled_weight must be in (0, 1], got {self.unlabelled_weight}; "
                "use mode='filter' to leave unlabelled rows out instead"
            )
        if not 0.0 <= self.filter_quantile <= 1.0:
            raise ValueError(f"filter_quantile must be in [0, 1], got {self.filter_quantile}")

    def weights(
        self,
        X: NDArray[np.floating],
        y: NDArray[np.int64],
        unlabelled: NDArray[np.bool_] | None,
    ) -> NDArray[np.float64]:
        """One fitting weight per row: 1 for positives and rejections, the treatment's weight
        for unlabelled rows, 0 for unlabelled rows the filter leaves out."""
        weights = np.ones(y.shape[0], dtype=np.float64)
        if unlabelled is None or not unlabelled.any():
            return weights
        if unlabelled.shape != y.shape or (unlabelled & (y == 1)).any():
            raise ValueError("unlabelled must be a boolean mask over the rows, negatives only")
        if self.mode.weighs:
            weights[unlabelled] = self.unlabelled_weight
        if self.mode.filters:
            weights[likely_positives(X, y, unlabelled, self.filter_quantile)] = 0.0
        return weights


def likely_positives(
    X: NDArray[np.floating], y: NDArray[np.int64], unlabelled: NDArray[np.bool_], quantile: float
) -> NDArray[np.bool_]:
    """Unlabelled rows at least as close to the positives' centroid as the `quantile`
    quantile of the positives' leave-one-out closeness (the most similar first, capped at
    `MAX_FILTERED_SHARE` of the unlabelled rows)."""
    z = _centred_directions(X)
    positives = z[y == 1]
    if positives.shape[0] < 2:
        return np.zeros(y.shape[0], dtype=bool)
    total = positives.sum(axis=0)
    loo = (total[None, :] - positives) / (positives.shape[0] - 1)
    own = _cosine(positives, loo)
    threshold = float(np.quantile(own, quantile))
    rows = np.flatnonzero(unlabelled)
    closeness = _cosine(z[rows], np.broadcast_to(total, z[rows].shape))
    order = np.argsort(-closeness, kind="stable")
    cap = int(MAX_FILTERED_SHARE * rows.size)
    dropped = [r for r in order[:cap] if closeness[r] >= threshold]
    mask = np.zeros(y.shape[0], dtype=bool)
    mask[rows[np.asarray(dropped, dtype=np.int64)]] = True
    return mask


def _centred_directions(X: NDArray[np.floating]) -> NDArray[np.float64]:
    """Rows L2-normalised, centred on their mean, normalised again (embeddings with
    non-negative features all point one way; centring makes cosines discriminate)."""
    z = _unit(np.asarray(X, dtype=np.float64))
    return _unit(z - z.mean(axis=0, keepdims=True))


def _unit(a: NDArray[np.float64]) -> NDArray[np.float64]:
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norms > 0, norms, 1.0)


def _cosine(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray((_unit(a) * _unit(np.asarray(b))).sum(axis=1), dtype=np.float64)

"""The drift detectors `champion_health.py` runs on each arriving batch (not on its labels).

Every detector judges one batch of embeddings against the champions' training embeddings of
the focus (the reference), as the `batch_drift` asset does, at the platform's false-alarm
level `alpha` per clean batch:

- **drift check (method)**: `batch_drift`'s rule: `learning.drift.mmd_test` on the batch's
  embeddings, and every champion's predicted-positive share (`share_test`), Bonferroni over
  both families (`check_levels`);
- **MMD only** and **share only**: its two halves, each at the whole `alpha`
  (Bonferroni over the champions for the shares);
- **before** peers: the check and MMD only with every row counted (`near_duplicate=None`),
  as before `mmd_test` counted copies, flips and crops of one photo once;
- **domain classifier AUC**: the alternative measured against MMD
  (`learning.drift.classifier_test`: held-out AUC of a batch-vs-reference classifier).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.drift import (
    check_levels,
    classifier_test,
    mmd_test,
    permutations_for,
    share_test,
)

Vectors = NDArray[np.float32]


@dataclass(frozen=True)
class Champion:
    """A trained champion and how many of the reference it predicts positive."""

    estimator: object
    threshold: float
    reference_positive: int
    reference_size: int

    @classmethod
    def of(cls, estimator: object, threshold: float, reference: Vectors) -> Champion:
        return cls(estimator, threshold, positives(estimator, threshold, reference), len(reference))


def positives(estimator: object, threshold: float, x: Vectors) -> int:
    proba = np.asarray(estimator.predict_proba(x), np.float64)[:, 1]  # type: ignore[attr-defined]
    return int(np.sum(proba >= threshold))


@dataclass(frozen=True)
class BatchTests:
    """One batch's p-values: MMD (and MMD counting every row, as before), each champion's
    share, the domain classifier's AUC."""

    mmd: float
    mmd_before: float
    shares: tuple[float, ...]
    classifier: float

    @classmethod
    def of(cls, batch: Vectors, reference: Vectors, champions: Sequence[Champion],
           alpha: float) -> BatchTests:  # fmt: skip
        level = min(check_levels(alpha, 1, len(champions)))
        shares = tuple(
            share_test(positives(c.estimator, c.threshold, batch), len(batch),
                       c.reference_positive, c.reference_size).p_value
            for c in champions
        )  # fmt: skip
        permutations = permutations_for(level)
        mmd = mmd_test(batch, reference, permutations).p_value
        before = mmd_test(batch, reference, permutations, near_duplicate=None).p_value
        return cls(mmd, before, shares, classifier_test(batch, reference).p_value)


DriftDetector = Callable[[BatchTests, float], bool]


def drift_check(tests: BatchTests, alpha: float) -> bool:
    embed_level, share_level = check_levels(alpha, 1, len(tests.shares))
    return tests.mmd < embed_level or min(tests.shares) < share_level


def drift_check_before(tests: BatchTests, alpha: float) -> bool:
    embed_level, share_level = check_levels(alpha, 1, len(tests.shares))
    return tests.mmd_before < embed_level or min(tests.shares) < share_level


DRIFT_DETECTORS: dict[str, DriftDetector] = {
    "drift check: MMD + share (method)": drift_check,
    "drift check before: MMD counting copies": drift_check_before,
    "drift: MMD only": lambda t, alpha: t.mmd < alpha,
    "drift: MMD only, counting copies (before)": lambda t, alpha: t.mmd_before < alpha,
    "drift: share only": lambda t, alpha: min(t.shares) < alpha / len(t.shares),
    "drift: domain classifier AUC": lambda t, alpha: t.classifier < alpha,
}


def drift_alarms(
    run: Sequence[tuple[Vectors, object]],
    reference: Vectors,
    champions: Sequence[Champion],
    alpha: float,
) -> dict[str, list[bool]]:
    """Per drift detector, whether it alarmed on each batch of `run` (each batch alone)."""
    tests = [BatchTests.of(x, reference, champions, alpha) for x, _ in run]
    return {name: [detect(t, alpha) for t in tests] for name, detect in DRIFT_DETECTORS.items()}

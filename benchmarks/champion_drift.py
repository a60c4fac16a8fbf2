"""The drift detectors `champion_health.py` runs on each arriving batch (not on its labels).

Every detector judges one batch of embeddings against the champions' training embeddings of
the focus (the reference), as the `batch_drift` asset does, at the platform's false-alarm
level `alpha` per clean batch:

- **drift check (method)**: `batch_drift`'s rule: `learning.drift.mmd_test` on the batch's
  embeddings, and every champion's predicted-positive share (`share_test`), Bonferroni over
  both families (`check_levels`);
- **MMD only** and **share only**: its two halves, each at the whole `alpha`;
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


DriftDetector = Callable[[Vectors, Vectors, Sequence[Champion], float], bool]


def mmd_drifted(batch: Vectors, reference: Vectors, level: float) -> bool:
    return mmd_test(batch, reference, permutations_for(level)).p_value < level


def share_drifted(batch: Vectors, champions: Sequence[Champion], level: float) -> bool:
    return any(
        share_test(positives(c.estimator, c.threshold, batch), len(batch),
                   c.reference_positive, c.reference_size).p_value < level
        for c in champions
    )  # fmt: skip


def drift_check(batch: Vectors, reference: Vectors, champions: Sequence[Champion],
                alpha: float) -> bool:  # fmt: skip
    embed_level, share_level = check_levels(alpha, 1, len(champions))
    return mmd_drifted(batch, reference, embed_level) or share_drifted(
        batch, champions, share_level
    )


def mmd_only(batch: Vectors, reference: Vectors, _: Sequence[Champion], alpha: float) -> bool:
    return mmd_drifted(batch, reference, alpha)


def share_only(batch: Vectors, _: Vectors, champions: Sequence[Champion], alpha: float) -> bool:
    return share_drifted(batch, champions, alpha / max(1, len(champions)))


def domain_classifier(batch: Vectors, reference: Vectors, _: Sequence[Champion],
                      alpha: float) -> bool:  # fmt: skip
    return classifier_test(batch, reference).p_value < alpha


DRIFT_DETECTORS: dict[str, DriftDetector] = {
    "drift check: MMD + share (method)": drift_check,
    "drift: MMD only": mmd_only,
    "drift: share only": share_only,
    "drift: domain classifier AUC": domain_classifier,
}


def drift_alarms(
    run: Sequence[tuple[Vectors, object]],
    reference: Vectors,
    champions: Sequence[Champion],
    alpha: float,
) -> dict[str, list[bool]]:
    """Per drift detector, whether it alarmed on each batch of `run` (each batch alone)."""
    return {
        name: [detect(x, reference, champions, alpha) for x, _ in run]
        for name, detect in DRIFT_DETECTORS.items()
    }

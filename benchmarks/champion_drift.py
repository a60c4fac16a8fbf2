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
  (`learning.drift.classifier_test`: held-out AUC of a batch-vs-reference classifier);
- **candidates for more power** (the rule fixed before their runs is in docs/model_registry.md):
  W, the MMD half of the level split between the batch alone and the batch with the focus's
  previous batch; A, `learning.drift.mmd_agg_test` (MMD aggregated over 5 bandwidths) in
  place of `mmd_test`. `--no-label` runs only these, the check and MMD alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.drift import (
    check_levels,
    classifier_test,
    mmd_agg_test,
    mmd_test,
    permutations_for,
    share_test,
    window_mmd_test,
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
    """One batch's p-values, each computed when a detector first asks: MMD (and MMD counting
    every row, as before), each champion's share, the domain classifier's AUC, and the
    candidates: MMD of the batch with the focus's previous batch, MMD aggregated over
    bandwidths."""

    batch: Vectors
    previous: Vectors | None  # the focus's batch before this one
    reference: Vectors
    champions: Sequence[Champion]
    alpha: float

    @cached_property
    def permutations(self) -> int:  # the smallest level's count, as in the earlier tables
        return permutations_for(min(check_levels(self.alpha, 1, len(self.champions))))

    @cached_property
    def mmd(self) -> float:
        return mmd_test(self.batch, self.reference, self.permutations).p_value

    @cached_property
    def mmd_before(self) -> float:
        return mmd_test(self.batch, self.reference, self.permutations, near_duplicate=None).p_value

    @cached_property
    def shares(self) -> tuple[float, ...]:
        return tuple(
            share_test(positives(c.estimator, c.threshold, self.batch), len(self.batch),
                       c.reference_positive, c.reference_size).p_value
            for c in self.champions
        )  # fmt: skip

    @cached_property
    def classifier(self) -> float:
        return classifier_test(self.batch, self.reference).p_value

    @cached_property
    def union(self) -> float:
        """MMD of this batch and the previous one together (1.0: no previous batch)."""
        if self.previous is None:
            return 1.0
        window = np.concatenate([self.previous, self.batch])
        return mmd_test(window, self.reference, permutations_for(self.alpha / 4)).p_value

    @cached_property
    def window(self) -> float:
        """`window_mmd_test` as `batch_drift` runs it at the embedding level."""
        level = check_levels(self.alpha, 1, len(self.champions))[0]
        count = permutations_for(level / (1 if self.previous is None else 2))
        return window_mmd_test(self.batch, self.previous, self.reference, count).p_value

    @cached_property
    def aggregated(self) -> float:
        return mmd_agg_test(self.batch, self.reference, permutations_for(self.alpha / 2)).p_value


DriftDetector = Callable[[BatchTests, float], bool]


def share_alarm(tests: BatchTests, alpha: float) -> bool:
    return min(tests.shares) < check_levels(alpha, 1, len(tests.shares))[1]


def drift_check(tests: BatchTests, alpha: float) -> bool:
    return tests.mmd < check_levels(alpha, 1, len(tests.shares))[0] or share_alarm(tests, alpha)


def drift_check_before(tests: BatchTests, alpha: float) -> bool:
    embed_level = check_levels(alpha, 1, len(tests.shares))[0]
    return tests.mmd_before < embed_level or share_alarm(tests, alpha)


def window_check(tests: BatchTests, alpha: float) -> bool:
    """Candidate W: the embedding half of the level split between the batch alone and the
    batch with the focus's previous batch."""
    level = check_levels(alpha, 1, len(tests.shares))[0] / 2
    return tests.mmd < level or tests.union < level or share_alarm(tests, alpha)


def aggregated_check(tests: BatchTests, alpha: float) -> bool:
    """Candidate A: the aggregated MMD in place of the MMD at the median bandwidth."""
    embed_level = check_levels(alpha, 1, len(tests.shares))[0]
    return tests.aggregated < embed_level or share_alarm(tests, alpha)


def platform_window_check(tests: BatchTests, alpha: float) -> bool:
    """W as `batch_drift` runs it: `window_mmd_test` (Bonferroni over the tests run: the batch
    alone at the whole embedding level when there is no batch before)."""
    embed_level = check_levels(alpha, 1, len(tests.shares))[0]
    return tests.window < embed_level or share_alarm(tests, alpha)


DRIFT_DETECTORS: dict[str, DriftDetector] = {
    "drift check: MMD + share (method)": drift_check,
    "drift check W: MMD of the batch, and of it with the previous batch + share": window_check,
    "drift check A: aggregated MMD (5 bandwidths) + share": aggregated_check,
    "drift check W as batch_drift runs it (window_mmd_test) + share": platform_window_check,
    "drift check before: MMD counting copies": drift_check_before,
    "drift: MMD only": lambda t, alpha: t.mmd < alpha,
    "drift: MMD only, counting copies (before)": lambda t, alpha: t.mmd_before < alpha,
    "drift: share only": lambda t, alpha: min(t.shares) < alpha / len(t.shares),
    "drift: domain classifier AUC": lambda t, alpha: t.classifier < alpha,
}
CANDIDATE_RUN = [*list(DRIFT_DETECTORS)[:4], "drift: MMD only"]  # what --no-label runs


def drift_alarms(
    run: Sequence[tuple[Vectors, object]],
    reference: Vectors,
    champions: Sequence[Champion],
    alpha: float,
    names: Sequence[str] = tuple(DRIFT_DETECTORS),
) -> dict[str, list[bool]]:
    """Per drift detector in `names`, whether it alarmed on each batch of `run` (each batch
    against the reference; the window candidate with the batch before it too)."""
    tests = [BatchTests(x, run[i - 1][0] if i else None, reference, champions, alpha)
             for i, (x, _) in enumerate(run)]  # fmt: skip
    return {name: [DRIFT_DETECTORS[name](t, alpha) for t in tests] for name in names}

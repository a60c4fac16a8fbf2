"""Where the audit cuts its members (benchmarks/curation_audit.py, issue 22, Q2).

Every variant ranks members by the pooled probability (out-of-fold and neighbour views) and
audits rejections as the service does (confident learning on the pooled probability); only
the count of members flagged changes. Fixed before the runs, with the rule that would adopt
one (docs/curation.md): member F1 above the service's on both sets, and member recall not below
cleanlab's on either.
- `cut: mean member pooled`: confident learning's per-class threshold, pooled < t_c with t_c
  the mean pooled probability of the collection's members;
- `cut: confident-joint count`: the calibrated off-diagonal count of the confident joint on
  the pooled probability (cleanlab's `prune_by_noise_rate` count), the least pooled first;
- `cut: expected count`: round(sum of 1 - pooled over the members), the least pooled first
  (the number of wrong members if the pooled probability is calibrated);
- `cut: pooled < 0.5`: the Bayes decision on the pooled probability.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.curation.audit import (
    confident_joint_mask,
    off_diagonal,
    per_class_thresholds,
)

CUT_PEERS = (
    "cut: mean member pooled",
    "cut: confident-joint count",
    "cut: expected count",
    "cut: pooled < 0.5",
)
Sides = tuple[set[int], set[int]]


def cut_flags(y: NDArray[np.int64], pooled: NDArray[np.float64]) -> dict[str, Sides]:
    """Each variant's flagged members and rejections for one collection."""
    rejections = _rows(confident_joint_mask(y, pooled) & (y == 0))
    members = y == 1
    counts = (_joint_count(y, pooled), round(float((1 - pooled[members]).sum())))
    cuts = (
        _rows(members & (pooled < per_class_thresholds(y, pooled).member)),
        *(_least_pooled(y, pooled, n) for n in counts),
        _rows(members & (pooled < 0.5)),
    )
    return {name: (flagged, rejections) for name, flagged in zip(CUT_PEERS, cuts, strict=True)}


def _joint_count(y: NDArray[np.int64], pooled: NDArray[np.float64]) -> int:
    """The members' off-diagonal count of the confident joint, calibrated to their number."""
    off = off_diagonal(y, pooled) & (y == 1)
    on = (pooled >= per_class_thresholds(y, pooled).member) & (y == 1) & ~off
    total = int(off.sum() + on.sum())
    return 0 if total == 0 else round(int(off.sum()) * int((y == 1).sum()) / total)


def _least_pooled(y: NDArray[np.int64], pooled: NDArray[np.float64], n: int) -> set[int]:
    rows = np.flatnonzero(y == 1)
    return set(rows[np.argsort(pooled[rows], kind="stable")[:n]].tolist())


def _rows(mask: NDArray[np.bool_]) -> set[int]:
    return set(np.flatnonzero(mask).tolist())

"""The label-audit part of benchmarks/curation.py: planted label errors, flagged labels.

10 % of the images moved to a random wrong class; each collection's champion OOF
probabilities (members vs every other image as rejections) are audited by:
- `ours`: `find_label_issues` with the embeddings (as the service), every issue;
- `ours likely`: only its `likely` tier (both views contradict the label);
- `ours @cleanlab n`: per collection and side, as many labels as cleanlab flags there, the
  least self-confident by the pooled probability (a ranking at equal effort);
- `pooled CJ (before)`: confident learning on the pooled probability (the rule before);
- `OOF only`: `find_label_issues` without the embeddings;
- `cleanlab`: `cleanlab.filter.find_label_issues` on the same OOF probabilities.
Precision and recall of flagged members (moved in) and flagged rejections (moved out), pooled
over collections and seeds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from curation_data import LabelledSet
from curation_peers import cleanlab_issues
from numpy.typing import NDArray

from ml_platform.learning.curation.audit import (
    IssueKind,
    IssueTier,
    LabelIssue,
    confident_joint_issues,
    find_label_issues,
)
from ml_platform.learning.curation.neighbours import neighbour_probability, pooled_probability
from ml_platform.learning.training import TrainingConfig, train_classifier

NOT_MEMBER = IssueKind.LIKELY_NOT_MEMBER
PEERS = ("ours", "ours likely", "ours @cleanlab n", "pooled CJ (before)", "OOF only", "cleanlab")
Flags = dict[str, tuple[set[int], set[int]]]  # peer -> (flagged members, flagged rejections)


def planted(data: LabelledSet, seed: int) -> NDArray[np.int64]:
    """The labels with 10 % of the images moved to a random wrong class."""
    rng = np.random.default_rng(100 + seed)
    ids = np.arange(len(data.labels))
    moved = np.sort(rng.choice(ids, size=max(1, round(0.1 * ids.size)), replace=False))
    k = len(data.classes)
    noisy = data.labels.copy()
    noisy[moved] = (data.labels[moved] + rng.integers(1, k, moved.size)) % k
    return noisy


def audit(data: LabelledSet, seeds: int, config: Callable[[int], TrainingConfig]) -> None:
    """`config`: the champion's training configuration for a seed."""
    counts = {f"{who} {side}": np.zeros(3) for side in ("members", "rejections") for who in PEERS}
    for seed in range(seeds):
        noisy = planted(data, seed)
        for c in range(len(data.classes)):
            y = (noisy == c).astype(np.int64)
            p = train_classifier(data.X, y, config(seed)).out_of_fold_probabilities
            wrong_in = set(np.flatnonzero((y == 1) & (data.labels != c)).tolist())
            wrong_out = set(np.flatnonzero((y == 0) & (data.labels == c)).tolist())
            for who, (members, rejections) in flags(data.X, y, p).items():
                _count(counts[f"{who} members"], members, wrong_in)
                _count(counts[f"{who} rejections"], rejections, wrong_out)
    for name, (tp, flagged, truth) in counts.items():
        precision = tp / flagged if flagged else float("nan")
        print(f"  audit {name:29s} precision {precision:.3f}  recall {tp / truth:.3f}  "
              f"(flagged {int(flagged)}, wrong {int(truth)}, {seeds} seeds)")  # fmt: skip


def flags(X: NDArray[np.float32], y: NDArray[np.int64], p: NDArray[np.float64]) -> Flags:
    ids = np.arange(len(y))
    pooled = pooled_probability(p, neighbour_probability(X, y))
    ours = find_label_issues(ids, y, p, X)
    likely = [i for i in ours if i.tier is IssueTier.LIKELY]
    theirs = set(cleanlab_issues(y, p).tolist())
    their_members = {i for i in theirs if y[i] == 1}
    matched = (_least_confident(pooled, y, 1, len(their_members)),
               _least_confident(pooled, y, 0, len(theirs) - len(their_members)))  # fmt: skip
    return {
        "ours": _sides(ours),
        "ours likely": _sides(likely),
        "ours @cleanlab n": matched,
        "pooled CJ (before)": _sides(confident_joint_issues(ids, y, pooled)),
        "OOF only": _sides(find_label_issues(ids, y, p)),
        "cleanlab": (their_members, theirs - their_members),
    }


def _least_confident(pooled: NDArray[np.float64], y: NDArray[np.int64], given: int,
                     n: int) -> set[int]:  # fmt: skip
    rows = np.flatnonzero(y == given)
    self_p = pooled[rows] if given == 1 else 1 - pooled[rows]
    return set(rows[np.argsort(self_p, kind="stable")[:n]].tolist())


def _sides(issues: list[LabelIssue]) -> tuple[set[int], set[int]]:
    members = {i.image_id for i in issues if i.kind is NOT_MEMBER}
    return members, {i.image_id for i in issues if i.kind is not NOT_MEMBER}


def _count(acc: NDArray[np.float64], flagged: set[int], truth: set[int]) -> None:
    acc += (len(flagged & truth), len(flagged), len(truth))

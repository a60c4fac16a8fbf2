"""The label-audit part of benchmarks/curation.py: planted label errors, flagged labels.

10 % of the images moved to a random wrong class; each collection's champion OOF
probabilities (members vs every other image as rejections) are audited by:
- `ours`: `find_label_issues` with the embeddings (as the service), every issue; its
  neighbour view cosine-weighted and smoothed towards the members' share (m = 2);
- `nb raw share (before)` / `nb smoothed m=2, unweighted`: the same rule with the neighbour
  view's plain share of members (the rule before), or smoothed but not weighted;
- `ours likely`: only its `likely` tier (both views contradict the label);
- `ours @cleanlab n`: per collection and side, as many labels as cleanlab flags there, the
  least self-confident by the pooled probability (a ranking at equal effort);
- `pooled CJ (before)`: confident learning on the pooled probability (the rule before);
- `OOF only`: `find_label_issues` without the embeddings;
- `cleanlab`: `cleanlab.filter.find_label_issues` on the same OOF probabilities;
- `cut: ...`: where the members are cut, other counts on the same pooled ranking
  (`curation_audit_cuts.py`).
Precision and recall of flagged members (moved in) and flagged rejections (moved out), pooled
over collections and seeds. Each seed's OOF matrix is cached (CACHE_DIR), so a rerun with
other audit rules does not retrain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
from curation_audit_cross import (
    CROSS_PEERS,
    brier_and_log_loss,
    calibration_views,
    cleanlab_multiclass,
    cross_flags,
)
from curation_audit_cuts import CUT_PEERS, cut_flags
from curation_data import CACHE_DIR, LabelledSet
from curation_peers import cleanlab_issues
from numpy.typing import NDArray

from ml_platform.learning.curation.audit import (
    IssueKind,
    IssueTier,
    LabelIssue,
    below_base_rate,
    confident_joint_issues,
    confident_joint_mask,
    find_label_issues,
)
from ml_platform.learning.curation.neighbours import (
    audit_neighbour_probability,
    neighbour_probability,
    pooled_probability,
)
from ml_platform.learning.training import TrainingConfig, train_classifier

NOT_MEMBER = IssueKind.LIKELY_NOT_MEMBER
VARIANTS = {"nb raw share (before)": {},
            "nb smoothed m=2, unweighted": {"prior_weight": 2.0}}  # fmt: skip
PEERS = (
    "ours",
    *VARIANTS,
    "ours likely",
    "ours @cleanlab n",
    "pooled CJ (before)",
    "OOF only",
    "cleanlab",
    *CUT_PEERS,
    *CROSS_PEERS,
)
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
    calibration: dict[str, NDArray[np.float64]] = {}
    for seed in range(seeds):
        noisy = planted(data, seed)
        P = oof_matrix(data, noisy, config(seed))
        multi = cleanlab_multiclass(P, noisy)
        for c in range(len(data.classes)):
            y = (noisy == c).astype(np.int64)
            p = P[:, c]
            wrong_in = set(np.flatnonzero((y == 1) & (data.labels != c)).tolist())
            wrong_out = set(np.flatnonzero((y == 0) & (data.labels == c)).tolist())
            for view, q in calibration_views(data.X, noisy, P, c).items():
                calibration[view] = calibration.get(view, 0) + brier_and_log_loss(
                    q, data.labels == c
                )
            found = flags(data.X, y, p) | cross_flags(data.X, noisy, P, c, multi)
            for who, (members, rejections) in found.items():
                _count(counts[f"{who} members"], members, wrong_in)
                _count(counts[f"{who} rejections"], rejections, wrong_out)
    _print(calibration, counts, seeds)


def _print(calibration: dict[str, NDArray[np.float64]], counts: dict[str, NDArray[np.float64]],
           seeds: int) -> None:  # fmt: skip
    for view, (sq, ll, n) in calibration.items():
        print(f"  audit calibration vs true labels, {view:32s} Brier {sq / n:.4f}  "
              f"log loss {ll / n:.4f}")  # fmt: skip
    for name, (tp, flagged, truth) in counts.items():
        precision = tp / flagged if flagged else float("nan")
        f1 = 2 * tp / (flagged + truth)
        tally = f"flagged {int(flagged)}, found {int(tp)}, wrong {int(truth)}, {seeds} seeds"
        print(f"  audit {name:32s} precision {precision:.3f}  recall {tp / truth:.3f}  "
              f"F1 {f1:.3f}  ({tally})")  # fmt: skip


def oof_matrix(
    data: LabelledSet, noisy: NDArray[np.int64], config: TrainingConfig
) -> NDArray[np.float64]:
    """Each collection's OOF probabilities (one column each) on the noisy labels, cached."""
    key = hashlib.sha256(data.X.tobytes() + noisy.tobytes() + repr(config).encode()).hexdigest()
    cache = CACHE_DIR / f"oof-{data.name}-{key[:16]}.npy"
    if cache.exists():
        return np.asarray(np.load(cache), np.float64)
    P = np.column_stack([train_classifier(data.X, (noisy == c).astype(np.int64), config)
                         .out_of_fold_probabilities for c in range(len(data.classes))])  # fmt: skip
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(cache, P)
    return np.asarray(P, np.float64)


def flags(X: NDArray[np.float32], y: NDArray[np.int64], p: NDArray[np.float64]) -> Flags:
    ids = np.arange(len(y))
    pooled = pooled_probability(p, audit_neighbour_probability(X, y))
    ours = find_label_issues(ids, y, p, X)
    likely = [i for i in ours if i.tier is IssueTier.LIKELY]
    theirs = set(cleanlab_issues(y, p).tolist())
    their_members = {i for i in theirs if y[i] == 1}
    matched = (_least_confident(pooled, y, 1, len(their_members)),
               _least_confident(pooled, y, 0, len(theirs) - len(their_members)))  # fmt: skip
    return {
        "ours": _sides(ours),
        **{name: _rule(X, y, p, options) for name, options in VARIANTS.items()},
        "ours likely": _sides(likely),
        "ours @cleanlab n": matched,
        "pooled CJ (before)": _sides(confident_joint_issues(ids, y, pooled)),
        "OOF only": _sides(find_label_issues(ids, y, p)),
        "cleanlab": (their_members, theirs - their_members),
        **cut_flags(y, pooled),
    }


def _rule(X: NDArray[np.float32], y: NDArray[np.int64], p: NDArray[np.float64],
          options: dict[str, float]) -> tuple[set[int], set[int]]:  # fmt: skip
    """The service's rule with another neighbour estimate."""
    nb = neighbour_probability(X, y, **options)  # type: ignore[arg-type]
    pooled = pooled_probability(p, nb)
    flagged = below_base_rate(y, p, nb, pooled) | (confident_joint_mask(y, pooled) & (y == 0))
    return (set(np.flatnonzero(flagged & (y == 1)).tolist()),
            set(np.flatnonzero(flagged & (y == 0)).tolist()))  # fmt: skip


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

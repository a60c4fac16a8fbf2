"""Label audit: members that probably do not belong, rejections that probably do.

Input: one collection's labels (1 member, 0 rejected) and out-of-fold probabilities (each
from a model whose training fold did not hold the image; never the refit's, which saw it).

Confident learning (Northcutt, Jiang and Chuang, JAIR 2021) with per-class thresholds:
t_member is the mean probability of the members, t_rejected the mean probability of "not
in" of the rejections. A label whose other class's probability reaches that class's threshold
(and is more beyond it than its own is beyond its own) falls in the confident joint's
off-diagonal cell; that cell's calibrated size (the joint scaled to the label counts) says how
many labels are wrong, and that many, least self-confident first, are issues (cleanlab's
`prune_by_noise_rate`, restricted to the rows the joint itself counts).

With the images' embeddings, a second view (`neighbours.py`: what each image's 10 nearest
labelled images say, cosine-weighted and smoothed towards the members' share, so that 0 of
10 is not a certainty) is pooled with the out-of-fold probability. Rejections are audited by
confident learning on the pooled probability. Members are flagged when the pooled
probability falls below the pooled view of an average audited image (both views' means over
the audited rows) and below 0.5: the two views together rate the member less likely to
belong than a labelled image picked at random. In one-vs-rest the rejections' threshold is
the mean over every other class, mostly easy ones, so confident learning's "confidently not
in" is too strict for a wrongly added member (pets: flagged members precision 1.00, recall
0.81). Each issue's tier is `likely` when both views, each by its own per-class thresholds,
put it in the off-diagonal cell, else `suspected`. Rule chosen on the pets (10 seeds),
confirmed on the clothing; figures in docs/api.md and benchmarks/curation_audit.py. Each
issue's score is 1 - its self-confidence divided by its class threshold, in (0, 1], so
scores compare across collections.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.curation.geometry import check_rows
from ml_platform.learning.curation.neighbours import (
    audit_neighbour_probability,
    pooled_probability,
)
from ml_platform.learning.evaluation import validate_labels

Mask = NDArray[np.bool_]


class IssueKind(StrEnum):
    LIKELY_NOT_MEMBER = "likely_not_member"
    LIKELY_MEMBER = "likely_member"


class IssueTier(StrEnum):
    LIKELY = "likely"  # both views (out-of-fold, neighbours) contradict the label
    SUSPECTED = "suspected"  # the pooled evidence, or the out-of-fold view alone


@dataclass(frozen=True)
class LabelIssue:
    image_id: int
    kind: IssueKind
    score: float  # in (0, 1]: higher is surer
    tier: IssueTier = IssueTier.SUSPECTED


@dataclass(frozen=True)
class AuditThresholds:
    member: float  # mean probability of the members
    rejected: float  # mean "not in" probability of the rejections


def per_class_thresholds(y: NDArray[np.int64], p: NDArray[np.float64]) -> AuditThresholds:
    return AuditThresholds(member=float(p[y == 1].mean()), rejected=float((1 - p[y == 0]).mean()))


def find_label_issues(
    image_ids: NDArray[np.int64],
    labels: NDArray[np.generic],
    out_of_fold: NDArray[np.floating],
    vectors: NDArray[np.floating] | None = None,
) -> list[LabelIssue]:
    """Issues of one collection, surest first. `labels`: 1 member, 0 rejected (explicit
    labels only; unlabelled images are not audited). `vectors`, the images' embeddings
    (one row each), add the nearest labelled images' view."""
    y, p = _checked(image_ids, labels, out_of_fold)
    if vectors is None:
        return confident_joint_issues(image_ids, y, p)
    neighbours = audit_neighbour_probability(vectors, y)
    pooled = pooled_probability(p, neighbours)
    flagged = below_base_rate(y, p, neighbours, pooled) | (
        confident_joint_mask(y, pooled) & (y == 0)
    )
    likely = off_diagonal(y, p) & off_diagonal(y, neighbours)
    return _issues(image_ids, y, pooled, flagged, likely)


def confident_joint_issues(
    image_ids: NDArray[np.int64], labels: NDArray[np.generic], probability: NDArray[np.floating]
) -> list[LabelIssue]:
    """Confident learning alone on one probability (every issue `suspected`)."""
    y, p = _checked(image_ids, labels, probability)
    none = np.zeros(y.shape[0], dtype=bool)
    return _issues(image_ids, y, p, confident_joint_mask(y, p), none)


def below_base_rate(
    y: NDArray[np.int64],
    out_of_fold: NDArray[np.float64],
    neighbours: NDArray[np.float64],
    pooled: NDArray[np.float64],
) -> Mask:
    """Members whose pooled probability is below the pool of the two views' means, and below
    0.5: a member the pooled views favour is never flagged (where most audited labels are
    members, the average labelled image is a member)."""
    base = pooled_probability(np.array([out_of_fold.mean()]), np.array([neighbours.mean()]))
    return np.asarray((y == 1) & (pooled < min(float(base[0]), 0.5)), dtype=bool)


def off_diagonal(y: NDArray[np.int64], p: NDArray[np.float64]) -> Mask:
    """Rows in the confident joint's off-diagonal cell of their label: beyond the other
    class's threshold, and more so than beyond their own."""
    past_own, past_other = _past(y, p)
    return (past_other >= 0) & (past_other > past_own)


def confident_joint_mask(y: NDArray[np.int64], p: NDArray[np.float64]) -> Mask:
    """Per label, its calibrated off-diagonal count of rows, least self-confident first."""
    off = off_diagonal(y, p)
    on = (_past(y, p)[0] >= 0) & ~off
    self_p = np.where(y == 1, p, 1 - p)
    out = np.zeros(y.shape[0], dtype=bool)
    for given in (0, 1):
        rows = np.flatnonzero(off & (y == given))
        n_wrong = _calibrated(rows.size, int((on & (y == given)).sum()), int((y == given).sum()))
        out[rows[np.argsort(self_p[rows], kind="stable")][:n_wrong]] = True
    return out


def _past(y: NDArray[np.int64], p: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """How far each row's own and other class's probabilities pass their thresholds."""
    t = per_class_thresholds(y, p)
    self_p = np.where(y == 1, p, 1 - p)
    own = np.where(y == 1, t.member, t.rejected)
    other = np.where(y == 1, t.rejected, t.member)
    return self_p - own, (1 - self_p) - other


def _calibrated(off: int, on: int, n_given: int) -> int:
    """The confident joint's off-diagonal count for one label, calibrated so that label's
    row sums to its count (Northcutt et al. 2021, eq. 3)."""
    total = on + off
    return 0 if total == 0 else round(off * n_given / total)


def _issues(
    ids: NDArray[np.int64],
    y: NDArray[np.int64],
    p: NDArray[np.float64],
    flagged: Mask,
    likely: Mask,
) -> list[LabelIssue]:
    t = per_class_thresholds(y, p)
    issues = [_issue(int(ids[r]), int(y[r]), float(p[r]), t, bool(likely[r]))
              for r in np.flatnonzero(flagged)]  # fmt: skip
    return sorted(issues, key=lambda i: (-i.score, i.image_id))


def _issue(image_id: int, given: int, p: float, t: AuditThresholds, likely: bool) -> LabelIssue:
    self_p, own = (p, t.member) if given == 1 else (1 - p, t.rejected)
    kind = IssueKind.LIKELY_NOT_MEMBER if given == 1 else IssueKind.LIKELY_MEMBER
    score = float(np.clip(1 - self_p / max(own, 1e-12), 1e-6, 1.0))
    return LabelIssue(image_id, kind, score, IssueTier.LIKELY if likely else IssueTier.SUSPECTED)


def _checked(
    image_ids: NDArray[np.int64], labels: NDArray[np.generic], probability: NDArray[np.floating]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    y = validate_labels(labels)
    p = np.asarray(probability, dtype=np.float64)
    check_rows("out_of_fold", p, y.shape[0])
    check_rows("image_ids", np.asarray(image_ids), y.shape[0])
    if not ((p >= 0) & (p <= 1)).all():
        raise ValueError("out_of_fold holds values outside [0, 1]; pass probabilities")
    return y, p

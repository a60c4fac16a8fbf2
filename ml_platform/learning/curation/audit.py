"""Label audit: members that probably do not belong, rejections that probably do.

Input: one collection's labels (1 member, 0 rejected) and out-of-fold probabilities (each
from a model whose training fold did not hold the image; never the refit's, which saw it).
Confident learning (Northcutt, Jiang and Chuang, JAIR 2021) with per-class thresholds:
t_member is the mean probability of the members, t_rejected the mean probability of "not
in" of the rejections. A member whose "not in" probability reaches t_rejected (and is more
beyond it than its "in" probability is beyond t_member) falls in the confident joint's
off-diagonal cell; that cell's calibrated size (the joint scaled to the label counts) says
how many members are wrong, and that many members, least self-confident first, are issues
(cleanlab's `prune_by_noise_rate`, restricted to the rows the joint itself counts). Each
issue's score is how far it passes the other class's threshold, scaled to [0, 1]: 1 - the
self-confidence divided by the class threshold, so scores compare across collections.

With the images' embeddings, the probability audited is the out-of-fold probability pooled
with what each image's nearest labelled images say (`neighbours.py`): the two views err on
different images. benchmarks/curation.py (10 % of labels moved; pets 10 seeds, clothing 3),
flagged members, precision / recall: pets 0.84 / 0.85 from the out-of-fold probability
alone, 1.00 / 0.81 pooled; clothing 0.50 / 0.91 alone, 0.63 / 0.89 pooled (flagged
rejections: pets 0.51 / 0.64 -> 0.70 / 0.68, clothing 0.44 / 0.68 -> 0.55 / 0.66).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.curation.geometry import check_rows
from ml_platform.learning.curation.neighbours import neighbour_probability, pooled_probability
from ml_platform.learning.evaluation import validate_labels


class IssueKind(StrEnum):
    LIKELY_NOT_MEMBER = "likely_not_member"
    LIKELY_MEMBER = "likely_member"


@dataclass(frozen=True)
class LabelIssue:
    image_id: int
    kind: IssueKind
    score: float  # in (0, 1]: higher is surer


@dataclass(frozen=True)
class AuditThresholds:
    member: float  # mean OOF probability of the members
    rejected: float  # mean OOF "not in" probability of the rejections


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
    y = validate_labels(labels)
    p = np.asarray(out_of_fold, dtype=np.float64)
    check_rows("out_of_fold", p, y.shape[0])
    check_rows("image_ids", np.asarray(image_ids), y.shape[0])
    if not ((p >= 0) & (p <= 1)).all():
        raise ValueError("out_of_fold holds values outside [0, 1]; pass probabilities")
    if vectors is not None:
        p = pooled_probability(p, neighbour_probability(vectors, y))
    t = per_class_thresholds(y, p)
    issues = [
        *_side(image_ids, y, p, t, IssueKind.LIKELY_NOT_MEMBER),
        *_side(image_ids, y, p, t, IssueKind.LIKELY_MEMBER),
    ]
    return sorted(issues, key=lambda i: (-i.score, i.image_id))


def _side(
    ids: NDArray[np.int64],
    y: NDArray[np.int64],
    p: NDArray[np.float64],
    t: AuditThresholds,
    kind: IssueKind,
) -> list[LabelIssue]:
    """Issues among the members (LIKELY_NOT_MEMBER) or among the rejections."""
    given = 1 if kind is IssueKind.LIKELY_NOT_MEMBER else 0
    self_p = p if given == 1 else 1 - p  # probability of the given label
    own, other = (t.member, t.rejected) if given == 1 else (t.rejected, t.member)
    rows = np.flatnonzero(y == given)
    # confident joint: beyond the other class's threshold, and more so than beyond its own
    past_own, past_other = self_p[rows] - own, (1 - self_p[rows]) - other
    off = (past_other >= 0) & (past_other > past_own)
    on = (past_own >= 0) & ~off
    counted = rows[off]
    n_wrong = _calibrated(int(off.sum()), int(on.sum()), rows.size)
    ranked = counted[np.argsort(self_p[counted], kind="stable")][:n_wrong]
    return [
        LabelIssue(int(ids[r]), kind, float(np.clip(1 - self_p[r] / max(own, 1e-12), 1e-6, 1.0)))
        for r in ranked
    ]


def _calibrated(off: int, on: int, n_given: int) -> int:
    """The confident joint's off-diagonal count for one label, calibrated so that label's
    row sums to its count (Northcutt et al. 2021, eq. 3)."""
    total = on + off
    return 0 if total == 0 else round(off * n_given / total)

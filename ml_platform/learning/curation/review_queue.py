"""The review queue: the unlabelled images whose labels would teach the classifier most.

Uncertainty is closeness of the champion's probability to its decision threshold (1 at the
threshold, 0 at 0 or 1). The `pool_factor * n` most uncertain unlabelled images form the
pool; k-center greedy over it (cosine distance, the labelled images as the first centres)
then takes, each step, the image with the largest uncertainty x distance to its nearest
centre, so the queue does not spend its labels on copies of one uncertain look. The
audit's suspects go first (reason `label_issue`), at most `suspect_share` of the queue; then
up to `probable_share` of it are the most probable unlabelled images (reason
`probable_member`): a collection's members are rare among all images, and a classifier
learns little from labels that are all negatives (continuous active learning's relevance
feedback, Cormack and Grossman 2014).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.curation.audit import LabelIssue
from ml_platform.learning.curation.geometry import Pool, unit_rows

POOL_FACTOR = 4
SUSPECT_SHARE = 0.25
PROBABLE_SHARE = 0.25


class QueueReason(StrEnum):
    UNCERTAIN = "uncertain"  # near the threshold and unlike what is already labelled
    LABEL_ISSUE = "label_issue"  # the audit's suspect: its label looks wrong
    PROBABLE_MEMBER = "probable_member"  # the most probable unlabelled: confirm or reject


@dataclass(frozen=True)
class QueueEntry:
    image_id: int
    reason: QueueReason
    score: float  # in [0, 1]


def uncertainty(p: NDArray[np.floating], threshold: float) -> NDArray[np.float64]:
    """1 at the threshold, falling linearly to 0 at probability 0 and 1."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    q = np.asarray(p, dtype=np.float64)
    span = np.where(q >= threshold, 1.0 - threshold, threshold)
    return np.asarray(1.0 - np.abs(q - threshold) / span, dtype=np.float64)


def review_queue(
    pool: Pool,
    *,
    threshold: float,
    limit: int,
    suspects: list[LabelIssue] | tuple[LabelIssue, ...] = (),
    pool_factor: int = POOL_FACTOR,
    suspect_share: float = SUSPECT_SHARE,
    probable_share: float = PROBABLE_SHARE,
) -> list[QueueEntry]:
    """`limit` entries: the surest audit suspects, then uncertain and diverse images."""
    shares = (suspect_share, probable_share)
    if limit < 1 or pool_factor < 1 or not all(0.0 <= s <= 1.0 for s in shares):
        raise ValueError(
            f"need limit >= 1, pool_factor >= 1 and shares in [0, 1]; got {limit}, "
            f"{pool_factor} and {shares}"
        )
    ids = pool.image_ids
    first = [
        QueueEntry(s.image_id, QueueReason.LABEL_ISSUE, s.score)
        for s in sorted(suspects, key=lambda s: -s.score)[: int(limit * suspect_share)]
    ]
    mask = np.asarray(pool.labelled, dtype=bool) | np.isin(ids, [e.image_id for e in first])
    p = np.asarray(pool.probabilities, dtype=np.float64)
    open_rows = np.flatnonzero(~mask)
    probable = open_rows[np.argsort(-p[open_rows], kind="stable")]
    probable = probable[: min(int(limit * probable_share), limit - len(first))]
    first += [QueueEntry(int(ids[r]), QueueReason.PROBABLE_MEMBER, float(p[r])) for r in probable]
    mask[probable] = True
    u = uncertainty(p, threshold)
    rows = k_center_uncertain(u, unit_rows(pool.vectors), mask, limit - len(first), pool_factor)
    return first + [QueueEntry(int(ids[r]), QueueReason.UNCERTAIN, float(u[r])) for r in rows]


def k_center_uncertain(
    u: NDArray[np.float64],
    unit: NDArray[np.float32],
    labelled: NDArray[np.bool_],
    k: int,
    pool_factor: int,
) -> list[int]:
    """Rows of the uncertain pool chosen greedily by uncertainty x distance to the nearest
    centre (labelled rows and the rows chosen so far)."""
    open_rows = np.flatnonzero(~labelled)
    if k <= 0 or open_rows.size == 0:
        return []
    pool = open_rows[np.argsort(-u[open_rows], kind="stable")[: k * pool_factor]]
    centres = np.flatnonzero(labelled)
    distance = (
        1.0 - (unit[pool] @ unit[centres].T).max(axis=1)
        if centres.size
        else np.ones(pool.size, dtype=np.float64)
    )
    chosen: list[int] = []
    available = np.ones(pool.size, dtype=bool)
    for _ in range(min(k, pool.size)):
        gain = np.where(available, u[pool] * np.maximum(distance, 0.0), -np.inf)
        best = int(np.argmax(gain))
        chosen.append(int(pool[best]))
        available[best] = False
        distance = np.minimum(distance, 1.0 - unit[pool] @ unit[pool[best]])
    return chosen

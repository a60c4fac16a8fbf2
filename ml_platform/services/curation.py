"""What a collection's moderators should look at next: suggestions, label issues, a review
queue, each from the collection's champion (one function per question; the routes and the
`ml-platform suggest | audit | review-queue` commands call these).

Probabilities come from the `collection_scores` table of the champion version; images it
has not scored yet (a batch newer than the last materialization) are scored here, not
written; the sampled negatives the champion was fitted on get their out-of-fold probability
instead (`prefer_out_of_fold`). The audit reads the out-of-fold probabilities stored with
the champion version. Labels are the ones training reads (the image catalog). Everything
found is a suggestion for a person: nothing here changes a label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.curation.audit import LabelIssue, find_label_issues
from ml_platform.learning.curation.geometry import Pool
from ml_platform.learning.curation.review_queue import QueueEntry, review_queue
from ml_platform.learning.curation.scores import prefer_out_of_fold
from ml_platform.learning.curation.suggestions import Suggestion, rank_suggestions
from ml_platform.services.curation_scores import (
    ChampionView,
    CurationError,
    CurationProblem,
    probabilities,
)
from ml_platform.services.training_data import load_focus, load_images
from ml_platform.services.training_rows import is_rejected
from ml_platform.store.blobs import MissingInputError
from ml_platform.store.curation_tables import read_out_of_fold, read_scores
from ml_platform.store.layout import Layout

log = logging.getLogger(__name__)

MAX_LIMIT = 500
DEFAULT_SUGGESTIONS = 20
DEFAULT_QUEUE = 20


@dataclass(frozen=True)
class FocusScores:
    """Every embedded image of the collection's focus, its champion probability and label."""

    image_ids: NDArray[np.int64]
    vectors: NDArray[np.float32]
    probabilities: NDArray[np.float64]
    member: NDArray[np.bool_]
    rejected: NDArray[np.bool_]

    @property
    def labelled(self) -> NDArray[np.bool_]:
        return np.asarray(self.member | self.rejected, dtype=bool)

    def pool(self) -> Pool:
        return Pool(self.image_ids, self.probabilities, self.vectors, self.labelled)


@dataclass(frozen=True)
class SuggestionsAnswer:
    collection_id: int
    model_version: str
    suggestions: tuple[Suggestion, ...]


@dataclass(frozen=True)
class AuditAnswer:
    collection_id: int
    model_version: str
    issues: tuple[LabelIssue, ...]


@dataclass(frozen=True)
class QueueAnswer:
    collection_id: int
    model_version: str
    queue: tuple[QueueEntry, ...]


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise CurationError(
            CurationProblem.BAD_PARAMETER, f"limit must be in 1..{MAX_LIMIT}, got {limit}"
        )
    return limit


def focus_scores(layout: Layout, view: ChampionView) -> FocusScores:
    focus, cid = view.collection.focus, view.collection.id
    assert focus is not None  # champion_view checked it
    embedded = load_focus(layout, focus)
    stored = read_scores(layout, cid, view.version)
    p = np.asarray([stored.get(int(i), np.nan) for i in embedded.ids], dtype=np.float64)
    missing = np.isnan(p)
    if missing.any():
        log.info(
            "collection %s: scoring %d images not in collection_scores yet", cid, missing.sum()
        )
        p[missing] = probabilities(view.model, embedded.vectors[missing])
    p = _unseen(layout, view, embedded.ids, p)
    images = {e.image.id: e for e in load_images(layout)}
    member = np.asarray(
        [i in images and cid in images[i].image.collection_ids for i in embedded.ids.tolist()]
    )
    rejected = np.asarray(
        [i in images and is_rejected(cid, images[i]) for i in embedded.ids.tolist()]
    )
    return FocusScores(
        embedded.ids, embedded.vectors, p, member.astype(bool), rejected.astype(bool)
    )


def _unseen(
    layout: Layout, view: ChampionView, ids: NDArray[np.int64], p: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The sampled negatives the champion trained on get their out-of-fold probability (the
    refit pushed them towards 0, members or not); unchanged without stored OOF."""
    try:
        oof = read_out_of_fold(layout, view.collection.id, view.version)
    except MissingInputError:
        return p
    sampled = oof.unlabelled
    return prefer_out_of_fold(ids, p, oof.image_ids[sampled], oof.probabilities[sampled])


def suggestions(
    layout: Layout,
    view: ChampionView,
    limit: int = DEFAULT_SUGGESTIONS,
    min_probability: float = 0.0,
) -> SuggestionsAnswer:
    """Neither members nor rejected, by probability, near-duplicates collapsed."""
    if not 0.0 <= min_probability <= 1.0:
        raise CurationError(
            CurationProblem.BAD_PARAMETER,
            f"min_probability must be in [0, 1], got {min_probability}",
        )
    s = focus_scores(layout, view)
    found = rank_suggestions(s.pool(), limit=check_limit(limit), min_probability=min_probability)
    return SuggestionsAnswer(view.collection.id, view.version, tuple(found))


def label_issues(layout: Layout, view: ChampionView) -> AuditAnswer:
    """Members and rejections the champion's out-of-fold probabilities and the images'
    nearest labelled neighbours contradict."""
    focus = view.collection.focus
    assert focus is not None  # champion_view checked it
    embedded = load_focus(layout, focus)
    issues = _issues(layout, view, embedded.ids, embedded.vectors)
    return AuditAnswer(view.collection.id, view.version, tuple(issues))


def _issues(
    layout: Layout,
    view: ChampionView,
    focus_ids: NDArray[np.int64],
    focus_vectors: NDArray[np.float32],
) -> list[LabelIssue]:
    cid = view.collection.id
    try:
        oof = read_out_of_fold(layout, cid, view.version)
    except MissingInputError as exc:
        raise CurationError(
            CurationProblem.NO_OUT_OF_FOLD,
            f"collection {cid}'s champion (version {view.version}) has no stored out-of-fold "
            "probabilities (trained before they were kept); retrain it to audit its labels",
        ) from exc
    explicit = ~oof.unlabelled  # sampled negatives are not labels a person gave
    ids, labels = oof.image_ids[explicit], oof.labels[explicit]
    if labels.min(initial=1) == labels.max(initial=0):
        return []  # only members (or only rejections): nothing to compare them with
    vectors = _rows_of(ids, focus_ids, focus_vectors, cid)
    return find_label_issues(ids, labels, oof.probabilities[explicit], vectors)


def _rows_of(
    ids: NDArray[np.int64],
    focus_ids: NDArray[np.int64],
    focus_vectors: NDArray[np.float32],
    cid: int,
) -> NDArray[np.float32] | None:
    """The vectors of `ids`; None (the audit then reads the probabilities alone) when one of
    them is no longer embedded in the focus."""
    where = {int(i): r for r, i in enumerate(focus_ids.tolist())}
    rows = [where.get(int(i), -1) for i in ids.tolist()]
    if min(rows, default=0) < 0:
        log.warning(
            "collection %s: %d audited images have no vector; auditing without neighbours",
            cid, rows.count(-1),
        )  # fmt: skip
        return None
    return np.asarray(focus_vectors[rows], dtype=np.float32)


def review(layout: Layout, view: ChampionView, limit: int = DEFAULT_QUEUE) -> QueueAnswer:
    """Uncertain, diverse unlabelled images, after the audit's surest suspects."""
    s = focus_scores(layout, view)
    try:
        suspects = _issues(layout, view, s.image_ids, s.vectors)
    except CurationError:
        suspects = []  # no OOF for this version: the queue is uncertainty and diversity only
    threshold = min(max(view.model.threshold, 1e-6), 1 - 1e-6)  # uncertainty needs (0, 1)
    queue = review_queue(s.pool(), threshold=threshold, limit=check_limit(limit), suspects=suspects)
    return QueueAnswer(view.collection.id, view.version, tuple(queue))

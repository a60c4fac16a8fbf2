"""Which collections need (re)training: never trained, a focus change, or changed labels.

Planning is a cheap comparison, not a re-read of the tables: the metadata database gives
each collection's label counts and checksum in one grouped query, and every
`collection_classifier` materialization carries, as its data version, the token of the labels
and focus it was decided on (trained, kept the champion, or skipped for too few labels).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ml_platform.domain import Collection

LabelCounts = tuple[int, int, int]  # members, rejections, id checksum
NO_LABELS: LabelCounts = (0, 0, 0)


@dataclass(frozen=True)
class RetrainReason:
    collection_id: int
    reason: str


@dataclass(frozen=True)
class RetrainPolicy:
    """The one policy the nightly schedule and `ml-platform run` plan with."""

    min_positives: int = 5


def label_token(focus_key: str, counts: LabelCounts) -> str:
    """`<focus digest>.<members>.<rejections>.<checksum>`: short and plain, as Dagster's data
    versions must be."""
    focus = hashlib.sha1(focus_key.encode()).hexdigest()[:10]
    members, rejected, checksum = counts
    return f"{focus}.{members}.{rejected}.{checksum}"


def retrain_reason(collection: Collection, counts: LabelCounts, trained: str | None) -> str | None:
    """Why `collection` must be (re)trained, or None when its last decision is current."""
    assert collection.focus is not None
    now = label_token(collection.focus.key, counts)
    if trained is None:
        return "never trained"
    if trained == now:
        return None
    if trained.split(".")[0] != now.split(".")[0]:
        return f"focus changed: now {collection.focus.key}"
    return "training data changed since the last training"


ReasonOf = Callable[[Collection, LabelCounts], str | None]


def plan_retraining(
    collections: list[Collection],
    labels: Mapping[int, LabelCounts],
    policy: RetrainPolicy,
    reason_of: ReasonOf,
) -> list[RetrainReason]:
    """The collections the classifier asset would train that `reason_of` (collection, its
    label counts) gives a reason to retrain."""
    out = []
    for collection in _trainable(collections, labels, policy):
        reason = reason_of(collection, labels.get(collection.id, NO_LABELS))
        if reason is not None:
            out.append(RetrainReason(collection.id, reason))
    return out


def labels_changed(trained: Mapping[int, str]) -> ReasonOf:
    """Retrain where the last decision (`trained`: collection -> its label token) is not
    current: never trained, a focus change, or changed labels."""
    return lambda collection, counts: retrain_reason(collection, counts, trained.get(collection.id))


def batch_drifted(drifted: Mapping[int, str]) -> ReasonOf:
    """Retrain the collections in `drifted` (collection -> a drifted batch its last training
    did not see): a retrain is not a repeat even with the same labels, since the batch's
    images are in its sample of the focus now."""

    def reason(collection: Collection, _counts: LabelCounts) -> str | None:
        if collection.id not in drifted:
            return None
        return f"batch {drifted[collection.id]} drifted after the last training saw the focus"

    return reason


def _trainable(
    collections: list[Collection], labels: Mapping[int, LabelCounts], policy: RetrainPolicy
) -> list[Collection]:
    """The collections the classifier asset would train; it skips the others (too few
    labelled members: planned again once labels land)."""
    return [
        c
        for c in collections
        if c.usable and labels.get(c.id, NO_LABELS)[0] >= policy.min_positives
    ]

"""One label and one CV group per training row of a collection.

Labels: members 1; explicit rejections 0; a seeded sample of the other images 0 (the
unlabelled negatives). Groups: by pet when both classes span `MIN_GROUPS` pets, else by
source-photo sha256, so copies of one photo (or one pet) stay inside one fold; then groups
holding near-identical embeddings are joined (`joined_groups`).
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from ml_platform.domain import DerivativeType, Focus, IngestedImage, WeightsStatus
from ml_platform.learning.folds import merge_near_duplicates

log = logging.getLogger(__name__)


def labels_for(
    collection_id: int, images: list[IngestedImage], negative_sample_size: int, seed: int
) -> dict[int, int]:
    """image id -> 1 (member) or 0 (rejected, or sampled from the rest of `images`)."""
    labels = {e.image.id: 1 for e in images if collection_id in e.image.collection_ids}
    for e in images:
        if is_rejected(collection_id, e):
            labels[e.image.id] = 0
    others = sorted(e.image.id for e in images if e.image.id not in labels)
    rng = np.random.default_rng(seed + collection_id)
    take = min(negative_sample_size, len(others))
    for image_id in rng.choice(others, size=take, replace=False) if take else []:
        labels[int(image_id)] = 0
    return labels


MIN_GROUPS = 3  # HARD_MIN_PER_CLASS of learning.training: fewer groups cannot make folds


def row_groups(entries: list[IngestedImage], y: NDArray[np.int64]) -> NDArray[np.int64]:
    """One group number per row: by pet when positives and negatives each span MIN_GROUPS
    pets, else by source-photo sha256 (else image id)."""
    pets = [e.image.pet_id for e in entries]
    by_pet = all(p is not None for p in pets) and all(
        len({p for p, label in zip(pets, y, strict=True) if label == c}) >= MIN_GROUPS
        for c in (0, 1)
    )
    keys = [
        f"pet:{e.image.pet_id}" if by_pet else f"photo:{e.sha256 or e.image.id}" for e in entries
    ]
    codes = {k: i for i, k in enumerate(sorted(set(keys)))}
    return np.asarray([codes[k] for k in keys], dtype=np.int64)


def is_rejected(collection_id: int, entry: IngestedImage) -> bool:
    """An explicit "not in this collection" label (a member is never a rejection)."""
    image = entry.image
    return collection_id in image.rejected_collection_ids and collection_id not in (
        image.collection_ids
    )


def merges_near_duplicates(weights: WeightsStatus, focus: Focus) -> bool:
    """Near-identical embeddings mean "one photo" only for a pretrained, non-face embedder:
    random-weight vectors all look alike, and a face embedder maps every photo of a person
    together (that is its job), so there it would merge a class's photos into one group."""
    return (
        weights is WeightsStatus.PRETRAINED
        and focus.derivative_type is not DerivativeType.PROMINENT_FACE
    )


def joined_groups(
    collection_id: int,
    X: NDArray[np.float32],
    y: NDArray[np.int64],
    groups: NDArray[np.int64],
    cosine: float,
) -> NDArray[np.int64]:
    """`groups` with near-duplicate rows joined. When joining would take either class below
    MIN_GROUPS groups, the embedder is not telling photos apart at `cosine` (a tiny or
    untrained checkpoint, say): the photo groups are kept and a warning says so."""
    merged = merge_near_duplicates(X, groups, cosine)
    counts = [len(np.unique(merged[y == c])) for c in (0, 1)]
    before = [len(np.unique(groups[y == c])) for c in (0, 1)]
    if min(counts) >= MIN_GROUPS or counts == before:
        return merged
    log.warning(
        "collection %s: near-duplicate grouping at cosine %.2f would leave %s (negative, "
        "positive) groups of %s; the embeddings do not tell photos apart, grouped by photo",
        collection_id, cosine, counts, before,
    )  # fmt: skip
    return groups

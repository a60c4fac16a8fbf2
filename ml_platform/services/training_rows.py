"""One label and one CV group per training row of a collection.

Labels: members 1; explicit rejections 0; a seeded sample of the other images 0 (the
unlabelled negatives). Groups: by pet when both classes span `MIN_GROUPS` pets, else by
source-photo sha256, so copies of one photo (or one pet) stay inside one fold.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ml_platform.domain import IngestedImage


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

"""The reference a batch of a focus is compared to: a seeded sample of at most `size` of the
focus's embeddings from the batches registered before the newest of its champions was created
(what those champions could have trained on).

The sample is cached per (focus, champion versions, embedder, size) as one immutable store
object (`store.drift_table.reference_key`): a batch reads its own embeddings, the cached
sample and the batch before it (`previous_batch`, for the window test), so its cost does not
grow with history; a new champion version gets a new sample.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ml_platform.domain import Focus
from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.services.training_data import load_focus
from ml_platform.store.drift_table import (
    batches_registered_before,
    read_reference,
    reference_key,
    write_reference,
)
from ml_platform.store.layout import Layout

SEED = 0  # the reference sample's


def training_reference(
    layout: Layout,
    focus: Focus,
    batch: str,
    champions: dict[int, ModelVersionInfo],
    embedder_id: str,
    size: int,
) -> NDArray[np.float32] | None:
    """The reference sample for `champions`, read from its cached object, or sampled from
    the batches registered before the newest of them and cached (None: under 2 vectors).
    A batch the champions could have trained on is left out of its own reference, so its
    reference is sampled afresh and not cached."""
    cutoff = max(v.created_at for v in champions.values())
    before = batches_registered_before(layout.metadata(), cutoff)
    if batch in before:
        return sample_reference(layout, focus, [b for b in before if b != batch], embedder_id,
                                size)  # fmt: skip
    versions = {cid: v.version for cid, v in champions.items()}
    key = reference_key(focus, versions, embedder_id, size)
    cached = read_reference(layout, key)
    if cached is not None:
        return cached
    sample = sample_reference(layout, focus, before, embedder_id, size)
    if sample is not None:
        write_reference(layout, key, sample)
    return sample


def sample_reference(
    layout: Layout, focus: Focus, before: list[str], embedder_id: str, size: int
) -> NDArray[np.float32] | None:
    """At most `size` of the focus's vectors of `before` (seeded), if made by `embedder_id`."""
    seen = load_focus(layout, focus, before) if before else None
    if seen is None or seen.embedder.model_id != embedder_id or len(seen.ids) < 2:
        return None
    rng = np.random.default_rng(SEED)
    take = np.sort(rng.permutation(len(seen.ids))[:size])
    return np.asarray(seen.vectors[take], np.float32)


def previous_batch(
    layout: Layout,
    focus: Focus,
    batch: str,
    champions: dict[int, ModelVersionInfo],
    embedder_id: str,
) -> NDArray[np.float32] | None:
    """The focus's vectors of the batch registered just before `batch`, if the champions
    never saw it (registered after the newest of them was created) and `embedder_id` made
    at least 2 of them; else None."""
    db = layout.metadata()
    keys = db.batch_keys()
    if batch not in keys:
        return None
    seen = set(batches_registered_before(db, max(v.created_at for v in champions.values())))
    earlier = keys[: keys.index(batch)]
    if not earlier or earlier[-1] in seen:
        return None
    found = load_focus(layout, focus, [earlier[-1]])
    if found.embedder.model_id != embedder_id or len(found.ids) < 2:
        return None
    return np.asarray(found.vectors, np.float32)

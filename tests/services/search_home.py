"""A small catalog for search tests: clustered vectors in batches, pets and collection labels.

Each batch goes through what its run writes (catalog, embeddings, metadata, and its exact
shard as `similarity_index` writes it); `exact_top` is brute-force cosine search to compare.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from ml_platform.defs.resources import StorageResource
from ml_platform.domain import DerivativeType, Focus
from ml_platform.learning.ann_index import AnnIndex, l2_normalise
from ml_platform.store.ann import write_shard
from tests.synthetic_home import SyntheticImage, add_batch

FOCUS = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")
DIM = 16
PER_BATCH = 30
MEMBERS_OF = 7  # collection 7: images with id % 5 == 0 are members, id % 5 == 1 rejected
BASE = datetime(2025, 1, 1, tzinfo=UTC)  # image i was created at BASE + i days


def image(i: int, centres: NDArray[np.float64], rng: np.random.Generator) -> SyntheticImage:
    vector = centres[i % len(centres)] + 0.4 * rng.standard_normal(centres.shape[1])
    members = (MEMBERS_OF,) if i % 5 == 0 else ()
    rejected = (MEMBERS_OF,) if i % 5 == 1 else ()
    return SyntheticImage(i, vector, pet_id=i % 4, members=members, rejected=rejected)


def add_indexed_batch(
    storage: StorageResource, key: str, ids: range, seed: int = 0, dim: int = DIM
) -> None:
    """Catalog, embeddings and the batch's shard (what its run writes)."""
    centres = np.random.default_rng(99).standard_normal((6, dim)) * 2
    images = [image(i, centres, np.random.default_rng(seed * 100_000 + i)) for i in ids]
    add_batch(storage, key, images, [FOCUS])
    shard = AnnIndex.create(dim)
    shard.add([im.id for im in images], np.stack([im.vector for im in images]))
    write_shard(storage.layout(), FOCUS, key, shard)


def vectors_by_id(storage: StorageResource, batches: list[str]) -> dict[int, NDArray[np.float32]]:
    from ml_platform.store.vectors import read_table, vectors_of

    layout = storage.layout()
    ids, vectors, _ = vectors_of([read_table(layout, FOCUS, b) for b in batches])
    return dict(zip(ids.tolist(), l2_normalise(vectors), strict=True))


def exact_top(
    table: dict[int, NDArray[np.float32]], query: NDArray[np.float32], k: int, keep: set[int]
) -> list[int]:
    """Brute-force cosine top-k among `keep`, ties by id."""
    q = l2_normalise(query.reshape(1, -1))[0]
    scored = sorted((-float(v @ q), i) for i, v in table.items() if i in keep)
    return [i for _, i in scored[:k]]


def created(i: int) -> datetime:
    return BASE + timedelta(days=i)

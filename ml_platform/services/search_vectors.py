"""The vectors a search starts from: an image's stored vector, a collection's centroid.

Also the two values every part of search shares: `SearchError` (a client-facing failure with
its HTTP status) and `Encoded` (a query vector and what made it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ml_platform.domain import Focus
from ml_platform.learning.ann_index import FloatArray, l2_normalise
from ml_platform.store.blobs import MissingInputError
from ml_platform.store.label_sets import labelled_ids
from ml_platform.store.layout import Layout
from ml_platform.store.search_cache import IndexCache
from ml_platform.store.vectors import read_table, vectors_of


class SearchError(ValueError):
    """A search that cannot be answered; `status` is its HTTP status (400, 404, 409, 422 or 503)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Encoded:
    """A query vector and what made it (model ids, weights: random output is labelled)."""

    vector: FloatArray
    details: Mapping[str, object] = field(default_factory=dict)


def stored_vector(
    layout: Layout, focus: Focus, image_id: int, indexes: IndexCache | None = None
) -> FloatArray:
    """The image's embedding of `focus`: the index's copy when it holds the image (float16
    in a compacted segment by default), else the embeddings asset's table."""
    for segment in indexes.segments(focus) if indexes else []:
        vector = segment.vector_of(image_id)
        if vector is not None:
            return vector
    batch = layout.metadata().batch_of(image_id)
    if batch is None:
        raise SearchError(f"image {image_id} is unknown: no ingestion batch holds it", 404)
    table = _embeddings(layout, focus, batch, [image_id])
    ids, vectors, _ = vectors_of([table])
    if not len(ids):
        raise SearchError(
            f"image {image_id} has no {focus.key} embedding (batch {batch}: no such crop, or "
            "embedding failed); search another focus", 404,
        )  # fmt: skip
    return vectors[:1]


def centroid(layout: Layout, focus: Focus, collection_id: int) -> Encoded:
    """The mean direction of a collection's members' stored vectors of `focus`."""
    members, _ = labelled_ids(layout.metadata(), collection_id)
    if not len(members):
        raise SearchError(f"collection {collection_id} has no champion and no members", 404)
    batches = layout.metadata().batches_of_collections([collection_id])
    tables = [_embeddings(layout, focus, b, members.tolist()) for b in batches]
    ids, vectors, _ = vectors_of(tables)
    if not len(ids):
        raise SearchError(
            f"no member of collection {collection_id} has a {focus.key} embedding yet", 404
        )
    mean = l2_normalise(vectors).mean(axis=0, keepdims=True)
    return Encoded(mean.astype(np.float32), {"direction": "centroid", "members": len(ids)})


def _embeddings(layout: Layout, focus: Focus, batch: str, ids: list[int]) -> pa.Table:
    try:
        table = read_table(layout, focus, batch)
    except MissingInputError as exc:
        raise SearchError(f"batch {batch} has no {focus.key} embeddings: {exc}", 404) from exc
    keep = pa.compute.is_in(table.column("image_id"), pa.array(ids, pa.int64()))
    return table.filter(keep)

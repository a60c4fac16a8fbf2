"""The similarity index in the Store: one immutable faiss shard per (focus, batch).

A batch's run writes only its own shard, so concurrent batches never read, change and
rewrite a shared index file (locally or on S3). Searching "everything indexed so far" loads
the shards and merges them in memory.
"""

from __future__ import annotations

from ml_platform.domain import Focus
from ml_platform.learning.ann_index import AnnIndex
from ml_platform.store.layout import Layout

SUFFIX = ".faiss"


def write_shard(layout: Layout, focus: Focus, batch: str, index: AnnIndex) -> None:
    layout.store.write_bytes(layout.ann_shard(focus, batch), index.to_bytes())


def read_shard(layout: Layout, focus: Focus, batch: str) -> AnnIndex:
    key = layout.ann_shard(focus, batch)
    return AnnIndex.from_bytes(layout.store.read_bytes(key), layout.store.url_of(key))


def shard_batches(layout: Layout, focus: Focus) -> list[str]:
    """Batches with a shard of `focus`, sorted (none yet: empty)."""
    names = layout.store.children(layout.ann_prefix(focus))
    return [n.removesuffix(SUFFIX) for n in names if n.endswith(SUFFIX)]


def load_index(layout: Layout, focus: Focus, dim: int, leave_out: str | None = None) -> AnnIndex:
    """Every shard of `focus` but `leave_out`'s merged into one index (empty when none)."""
    merged = AnnIndex.create(dim)
    for batch in shard_batches(layout, focus):
        if batch != leave_out:
            merged.merge(read_shard(layout, focus, batch))
    return merged

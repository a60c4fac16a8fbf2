"""The search index of a focus in the Store: one compacted IVF segment plus the batch shards
it does not cover yet.

```
data/ann/<focus>/<batch>.faiss                      similarity_index: one exact shard per batch
data/ann/<focus>/compacted/<generation>.faiss       search_compaction: IVF over many batches
data/ann/<focus>/compacted/<generation>.parquet     ... its rows' image id, pet, time, batch
data/ann/<focus>/compacted/<generation>.json        ... its manifest, written last
```
A generation is complete once its manifest exists (written after its index and attributes),
so a reader never sees half of one; the newest complete generation wins. Batches it does not
list are searched from their own shards, with their attributes read from the batch's catalog:
a batch is searchable as soon as its `similarity_index` run has written its shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from ml_platform.domain import Focus
from ml_platform.learning.ann_search import NO_PET, NO_TIME, Attributes, Segment, flat_segment
from ml_platform.store.ann import read_shard, shard_batches
from ml_platform.store.blobs import Key
from ml_platform.store.layout import DATA, Layout

if TYPE_CHECKING:
    import faiss  # imported where used (see learning/ann_index)

COMPACTED = "compacted"
MADE_BY = "the search_compaction asset (or `ml-platform search compact`)"


@dataclass(frozen=True)
class Manifest:
    """One complete compacted generation of a focus."""

    generation: str
    batches: tuple[str, ...]
    vectors: int
    codec: str
    nlist: int
    built_at: str
    trained_on: int  # vectors the IVF lists were trained on


def _key(layout: Layout, focus: Focus, generation: str, suffix: str) -> Key:
    return Key(f"{layout.ann_prefix(focus)}/{COMPACTED}/{generation}{suffix}", MADE_BY)


def latest_manifest(layout: Layout, focus: Focus) -> Manifest | None:
    """The newest complete compacted generation of `focus` (None before the first)."""
    names = layout.store.children(f"{layout.ann_prefix(focus)}/{COMPACTED}")
    manifests = sorted(n.removesuffix(".json") for n in names if n.endswith(".json"))
    if not manifests:
        return None
    data = layout.store.read_json(_key(layout, focus, manifests[-1], ".json"))
    return Manifest(
        generation=manifests[-1], batches=tuple(data["batches"]), vectors=int(data["vectors"]),
        codec=str(data["codec"]), nlist=int(data["nlist"]), built_at=str(data["built_at"]),
        trained_on=int(data["trained_on"]),
    )  # fmt: skip


def write_compacted(
    layout: Layout, focus: Focus, segment: Segment, batches: list[str], codec: str,
    trained_on: int,
) -> Manifest:  # fmt: skip
    """Persist a compacted segment as a new generation; the manifest goes last."""
    now = datetime.now(UTC)
    generation = f"{now:%Y%m%dT%H%M%S%f}-{len(batches):06d}"
    store = layout.store
    store.write_bytes(_key(layout, focus, generation, ".faiss"), _serialise(segment.index))
    store.write_parquet(
        _key(layout, focus, generation, ".parquet"), attributes_table(segment.attrs)
    )
    manifest = Manifest(
        generation, tuple(sorted(batches)), len(segment.attrs), codec, segment.nlist or 0,
        now.isoformat(timespec="seconds"), trained_on,
    )  # fmt: skip
    store.write_json(_key(layout, focus, generation, ".json"), {
        "batches": list(manifest.batches), "vectors": manifest.vectors, "codec": codec,
        "nlist": manifest.nlist, "built_at": manifest.built_at, "trained_on": trained_on,
    })  # fmt: skip
    return manifest


def read_compacted(layout: Layout, focus: Focus, manifest: Manifest) -> Segment:
    import faiss

    key = _key(layout, focus, manifest.generation, ".faiss")
    data = np.frombuffer(layout.store.read_bytes(key), dtype=np.uint8)
    index = faiss.deserialize_index(data)
    del data
    table = layout.store.read_parquet(_key(layout, focus, manifest.generation, ".parquet"))
    return Segment(index, attributes_of(table)).with_direct_map()


def read_batch_segment(layout: Layout, focus: Focus, batch: str) -> Segment:
    """A batch's exact shard with its rows' attributes (from the batch's catalog)."""
    shard = read_shard(layout, focus, batch)
    ids, vectors = shard.rows()
    return flat_segment(vectors, catalog_attributes(layout, batch, ids))


def batch_vectors(layout: Layout, focus: Focus, batch: str) -> tuple[Attributes, np.ndarray]:
    """A batch's shard rows (normalised vectors) with their attributes: compaction's input."""
    ids, vectors = read_shard(layout, focus, batch).rows()
    return catalog_attributes(layout, batch, ids), vectors


def uncovered_batches(layout: Layout, focus: Focus, manifest: Manifest | None) -> list[str]:
    covered = set(manifest.batches) if manifest else set()
    return [b for b in shard_batches(layout, focus) if b not in covered]


def catalog_attributes(layout: Layout, batch: str, ids: np.ndarray) -> Attributes:
    """Pet and creation time of `ids` (in that order) from the batch's catalog."""
    frame = layout.store.read_parquet(layout.catalog(batch)).to_pandas()
    frame = frame.set_index("image_id")[["pet_id", "created_at"]]
    rows = frame.reindex(ids)
    pets = rows["pet_id"].astype("Int64").fillna(NO_PET).to_numpy(np.int64)
    created = pd.to_datetime(rows["created_at"], utc=True, format="ISO8601")
    since_epoch = (created - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "s")
    seconds = since_epoch.astype("Int64").fillna(NO_TIME).to_numpy(np.int64)
    return Attributes(np.asarray(ids, np.int64), pets, seconds,
                      np.full(len(ids), batch, object))  # fmt: skip


def attributes_table(attrs: Attributes) -> pa.Table:
    return pa.table({
        "image_id": pa.array(attrs.ids, pa.int64()), "pet_id": pa.array(attrs.pets, pa.int64()),
        "created": pa.array(attrs.created, pa.int64()),
        "batch": pa.array(attrs.batches.tolist(), pa.string()),
    })  # fmt: skip


def attributes_of(table: pa.Table) -> Attributes:
    def column(name: str) -> np.ndarray:
        return np.asarray(table.column(name).to_numpy(), np.int64)

    batches = table.column("batch").to_numpy(zero_copy_only=False).astype(object)
    return Attributes(column("image_id"), column("pet_id"), column("created"), batches)


def _serialise(index: faiss.Index) -> bytes:
    import faiss

    return bytes(faiss.serialize_index(index).tobytes())


def indexed_foci(layout: Layout) -> list[Focus]:
    """The foci with a shard or a compacted generation, sorted."""
    return [Focus.from_key(name) for name in layout.store.children(f"{DATA}/ann")]

"""`similarity_index`: one faiss index per focus in use, grown by each batch's vectors.

The batch's own shard is written first (that alone makes it searchable); its near-duplicates
are then looked up in the focus's search index (the compacted segment and the shards it does
not cover), so a run reads one compacted object plus the recent shards, not every shard."""

import dagster as dg

from ml_platform.defs.partitions import ingestion_batches
from ml_platform.defs.resources import StorageResource
from ml_platform.domain import WeightsStatus
from ml_platform.learning.ann_index import AnnIndex
from ml_platform.learning.ann_search import segment_near_duplicates
from ml_platform.store.ann import write_shard
from ml_platform.store.search_cache import IndexCache
from ml_platform.store.vectors import read_table, vectors_of

DUPLICATE_COSINE = 0.98


@dg.asset(
    group_name="perception",
    partitions_def=ingestion_batches,
    deps=["embeddings"],
    kinds={"faiss"},
)
def similarity_index(
    context: dg.AssetExecutionContext, storage: StorageResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Writes this batch's vectors as its shard of each focus's cosine index (shards are
    never rewritten), and reports the near-duplicates they have among everything indexed."""
    key, layout = context.partition_key, storage.layout()
    indexes = IndexCache(layout, refresh_s=0)
    report: dict[str, dict[str, object]] = {}
    for focus in layout.embedded_foci(key):
        ids, vectors, who = vectors_of([read_table(layout, focus, key)])
        weights = who[0].weights.value if who else "unknown"
        if not len(ids):  # e.g. no image of the batch has a face
            report[focus.key] = {"added": 0, "size": None, "near_duplicates": 0, "examples": [],
                                 "weights": weights}  # fmt: skip
            continue
        shard = AnnIndex.create(vectors.shape[1])
        shard.add(ids, vectors)
        write_shard(layout, focus, key, shard)
        segments = indexes.segments(focus)  # this batch's shard included
        pairs = segment_near_duplicates(segments, ids, vectors, DUPLICATE_COSINE)
        examples = [(a, b, round(c, 4)) for a, b, c in pairs[:10]]
        report[focus.key] = {
            "added": len(shard), "size": sum(len(s.attrs) for s in segments),
            "near_duplicates": len(pairs), "examples": examples, "weights": weights,
        }  # fmt: skip
    return dg.MaterializeResult(metadata=_metadata(report))


def _metadata(report: dict[str, dict[str, object]]) -> dict[str, dg.MetadataValue]:  # type: ignore[type-arg]
    """The per-focus report, and the embedder weights behind it: near-duplicates among random
    vectors say nothing about the images."""
    weights = sorted({str(r["weights"]) for r in report.values()})
    metadata: dict[str, dg.MetadataValue] = {  # type: ignore[type-arg]
        "indexes": dg.MetadataValue.json(report),
        "weights": dg.MetadataValue.text(", ".join(weights) or "none"),
    }
    if WeightsStatus.RANDOM.value in weights:
        metadata["note"] = dg.MetadataValue.text(
            "an embedder has random weights: its near-duplicates are artefacts, not copies"
        )
    return metadata

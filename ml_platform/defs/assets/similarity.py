"""`similarity_index`: one faiss index per focus in use, grown by each batch's vectors."""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from ml_platform.defs.partitions import ingestion_batches
from ml_platform.defs.resources import StorageResource
from ml_platform.domain import Focus, WeightsStatus
from ml_platform.learning.ann_index import AnnIndex, near_duplicates
from ml_platform.store.vectors import read_vectors

DUPLICATE_COSINE = 0.98


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """One writer per index file at a time (batches may run concurrently)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _batch_foci(storage: StorageResource, key: str) -> list[Focus]:
    root = storage.data_dir / "embeddings"
    dirs = sorted(root.iterdir()) if root.is_dir() else []
    return [Focus.from_key(d.name) for d in dirs if (d / f"{key}.parquet").is_file()]


@dg.asset(
    group_name="perception",
    partitions_def=ingestion_batches,
    deps=["embeddings"],
    kinds={"faiss"},
)
def similarity_index(
    context: dg.AssetExecutionContext, storage: StorageResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Adds this batch's vectors to each focus's cosine index (never rebuilt), and reports the
    near-duplicates they have among everything indexed so far."""
    key, report = context.partition_key, dict[str, dict[str, object]]()
    for focus in _batch_foci(storage, key):
        ids, vectors, who = read_vectors([storage.embeddings_path(focus, key)])
        weights = who[0]["weights"] if who else "unknown"
        if not len(ids):  # e.g. no image of the batch has a face
            report[focus.key] = {"added": 0, "size": None, "near_duplicates": 0, "examples": [],
                                 "weights": weights}  # fmt: skip
            continue
        path = storage.ann_index_path(focus)
        with locked(path):
            index = AnnIndex.load(path) if path.is_file() else AnnIndex.create(vectors.shape[1])
            added = index.add(ids, vectors)
            index.save(path)
        pairs = near_duplicates(index, ids, vectors, DUPLICATE_COSINE)
        examples = [(a, b, round(c, 4)) for a, b, c in pairs[:10]]
        report[focus.key] = {
            "added": added, "size": len(index), "near_duplicates": len(pairs), "examples": examples,
            "weights": weights,
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

"""`embeddings`: one vector per (image, focus in use), computed once, batched."""

import time
from collections import Counter

import dagster as dg

from ml_platform.defs.partitions import ingestion_batches
from ml_platform.defs.planning import embedding_foci
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import Focus, IngestedImage, IngestStatus
from ml_platform.services.perception import embed_focus
from ml_platform.services.planning import foci_version
from ml_platform.store.detections_table import DetectionRow, read_detections
from ml_platform.store.layout import Layout
from ml_platform.store.tables import read_catalog
from ml_platform.store.vectors import (
    EmbeddingRow,
    has_embeddings,
    read_table,
    rows_of,
    stored_identity,
    write_embeddings,
)
from ml_platform.vision.embedders.identity import EmbedderIdentity


@dg.asset(
    group_name="perception",
    partitions_def=ingestion_batches,
    deps=["image_catalog", "detections", "crawlr_collections"],
    kinds={"pytorch", "parquet"},
)
def embeddings(
    context: dg.AssetExecutionContext, storage: StorageResource, models: ModelsResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Embeddings for every focus used by a usable collection, plus the clustering focus.
    Already computed (image, focus) pairs are kept, so a re-run only adds what a new focus or
    a retry needs."""
    key, layout = context.partition_key, storage.layout()
    catalog = [e for e in read_catalog(layout, key) if e.status is IngestStatus.OK]
    foci = embedding_foci(storage)
    detections = read_detections(layout, key)
    per_focus: dict[str, dict[str, object]] = {}
    for focus in foci:
        per_focus[focus.key] = _embed_focus(
            context, storage, models, key, focus, catalog, detections
        )
    version = dg.DataVersion(foci_version([f.key for f in foci]))  # the planner compares it
    return dg.MaterializeResult(metadata=_metadata(per_focus), data_version=version)


def _embed_focus(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    models: ModelsResource,
    key: str,
    focus: Focus,
    catalog: list[IngestedImage],
    detections: dict[int, DetectionRow],
) -> dict[str, object]:
    layout = storage.layout()
    embedder = models.embedder(focus.embedding_type)
    who = EmbedderIdentity.of(embedder)
    kept = _reusable(layout, focus, key, who)
    done = {r.image_id for r in kept}
    todo = [e for e in catalog if e.image.id not in done]
    started = time.perf_counter()
    batch_size = storage.settings().embed_batch_size
    images = layout.images()
    fresh = embed_focus(todo, detections, focus, embedder, batch_size, images) if todo else []
    seconds = time.perf_counter() - started
    write_embeddings(layout, focus, key, [*kept, *fresh], who, embedder.dim)
    statuses = Counter(r.status for r in [*kept, *fresh])
    if embedder.weights.value == "random":
        context.log.warning("%s uses RANDOM weights: its embeddings are not meaningful", focus.key)
    return {
        "ok": statuses.get("ok", 0), "no_derivative": statuses.get("no_derivative", 0),
        "failed": statuses.get("failed", 0), "computed_now": len(fresh),
        "dimensionality": embedder.dim, "weights": embedder.weights.value,
        "embedder": f"{embedder.model_id}@{embedder.revision}",
        "images_per_second": round(len(todo) / seconds, 2) if todo and seconds > 0 else None,
    }  # fmt: skip


def _reusable(
    layout: Layout, focus: Focus, key: str, identity: EmbedderIdentity
) -> list[EmbeddingRow]:
    """Rows of an earlier run of this batch that a re-run keeps: computed (ok or no
    derivative) by the same embedder."""
    if not has_embeddings(layout, focus, key):
        return []
    table = read_table(layout, focus, key)
    if stored_identity(table) not in (None, identity):
        return []
    return [r for r in rows_of(table) if r.status in ("ok", "no_derivative")]


def _metadata(per_focus: dict[str, dict[str, object]]) -> dict[str, dg.MetadataValue]:  # type: ignore[type-arg]
    weights = sorted({str(v["weights"]) for v in per_focus.values()})
    return {
        "foci": dg.MetadataValue.json(per_focus),
        "embeddings_ok": dg.MetadataValue.int(sum(int(str(v["ok"])) for v in per_focus.values())),
        "failures": dg.MetadataValue.int(sum(int(str(v["failed"])) for v in per_focus.values())),
        "weights": dg.MetadataValue.text(",".join(weights) or "none"),
    }

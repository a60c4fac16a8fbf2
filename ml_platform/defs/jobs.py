"""Jobs: what the sensors, schedules and the CLI launch (names: `JobName`; the per-batch asset
keys: `Stage`; the planner reads these selections back through defs/batch_graph.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from ml_platform.defs.partitions import (
    collection_partitions,
    dataset_partitions,
    ingestion_batches,
)
from ml_platform.domain import Stage
from ml_platform.services.planning import JobName

if TYPE_CHECKING:  # what define_asset_job returns; dagster does not export the name
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )


def _job(
    name: str, partitions: dg.PartitionsDefinition | None, *assets: str
) -> UnresolvedAssetJobDefinition:
    """A job that materializes `assets` (keys; StrEnum members are taken by value), one
    partition of `partitions` a run."""
    return dg.define_asset_job(
        str(name),
        selection=dg.AssetSelection.assets(*(str(a) for a in assets)),
        partitions_def=partitions,
    )


collections_job = _job(JobName.COLLECTIONS, None, "crawlr_collections")
ingest_job = _job(
    JobName.INGEST, ingestion_batches, Stage.CATALOG, Stage.DETECTIONS, Stage.EMBEDDINGS
)
embeddings_job = _job(JobName.EMBEDDINGS, ingestion_batches, Stage.EMBEDDINGS)
training_job = _job(
    JobName.TRAINING, collection_partitions, "collection_classifier", "collection_scores"
)
clusters_job = _job(
    JobName.CLUSTERS,
    ingestion_batches,
    Stage.THUMBNAILS,
    Stage.CLUSTERS,
    Stage.HEROES,
    Stage.SIMILARITY,
    Stage.DRIFT,
)
dataset_versions_job = _job(JobName.DATASET_VERSIONS, dataset_partitions, "datasets")
finetune_job = _job(JobName.FINETUNE, dataset_partitions, "datasets", "finetuned_classifier")
label_suggestions_job = _job("label_suggestions_job", dataset_partitions, "label_suggestions")
health_job = _job("health_job", collection_partitions, "champion_health")

"""Jobs: what the sensors, schedules and the CLI launch (names: `JobName`; the per-batch asset
keys: `Stage`; the planner reads these selections back through defs/batch_graph.py)."""

import dagster as dg

from ml_platform.defs.partitions import (
    collection_partitions,
    dataset_partitions,
    ingestion_batches,
)
from ml_platform.domain import Stage
from ml_platform.services.planning import JobName

collections_job = dg.define_asset_job(
    JobName.COLLECTIONS.value, selection=dg.AssetSelection.assets("crawlr_collections")
)

ingest_job = dg.define_asset_job(
    JobName.INGEST.value,
    selection=dg.AssetSelection.assets(
        Stage.CATALOG.value, Stage.DETECTIONS.value, Stage.EMBEDDINGS.value
    ),
    partitions_def=ingestion_batches,
)

embeddings_job = dg.define_asset_job(
    JobName.EMBEDDINGS.value,
    selection=dg.AssetSelection.assets(Stage.EMBEDDINGS.value),
    partitions_def=ingestion_batches,
)

training_job = dg.define_asset_job(
    JobName.TRAINING.value,
    selection=dg.AssetSelection.assets("collection_classifier", "collection_scores"),
    partitions_def=collection_partitions,
)

clusters_job = dg.define_asset_job(
    JobName.CLUSTERS.value,
    selection=dg.AssetSelection.assets(
        Stage.THUMBNAILS.value,
        Stage.CLUSTERS.value,
        Stage.HEROES.value,
        Stage.SIMILARITY.value,
        Stage.DRIFT.value,
    ),
    partitions_def=ingestion_batches,
)

dataset_versions_job = dg.define_asset_job(
    JobName.DATASET_VERSIONS.value,
    selection=dg.AssetSelection.assets("datasets"),
    partitions_def=dataset_partitions,
)

finetune_job = dg.define_asset_job(
    JobName.FINETUNE.value,
    selection=dg.AssetSelection.assets("datasets", "finetuned_classifier"),
    partitions_def=dataset_partitions,
)

label_suggestions_job = dg.define_asset_job(
    "label_suggestions_job",
    selection=dg.AssetSelection.assets("label_suggestions"),
    partitions_def=dataset_partitions,
)

health_job = dg.define_asset_job(
    "health_job",
    selection=dg.AssetSelection.assets("champion_health"),
    partitions_def=collection_partitions,
)

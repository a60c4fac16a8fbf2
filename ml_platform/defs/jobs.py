"""Jobs: what the sensors, schedules and the CLI launch."""

import dagster as dg

from ml_platform.defs.partitions import (
    collection_partitions,
    dataset_partitions,
    ingestion_batches,
)

collections_job = dg.define_asset_job(
    "collections_job", selection=dg.AssetSelection.assets("crawlr_collections")
)

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets("image_catalog", "detections", "embeddings"),
    partitions_def=ingestion_batches,
)

embeddings_job = dg.define_asset_job(
    "embeddings_job",
    selection=dg.AssetSelection.assets("embeddings"),
    partitions_def=ingestion_batches,
)

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.assets("collection_classifier", "collection_scores"),
    partitions_def=collection_partitions,
)

clusters_job = dg.define_asset_job(
    "clusters_job",
    selection=dg.AssetSelection.assets(
        "thumbnails", "pet_clusters", "pet_heroes", "similarity_index"
    ),
    partitions_def=ingestion_batches,
)

dataset_versions_job = dg.define_asset_job(
    "dataset_versions_job",
    selection=dg.AssetSelection.assets("datasets"),
    partitions_def=dataset_partitions,
)

finetune_job = dg.define_asset_job(
    "finetune_job",
    selection=dg.AssetSelection.assets("datasets", "finetuned_classifier"),
    partitions_def=dataset_partitions,
)

label_suggestions_job = dg.define_asset_job(
    "label_suggestions_job",
    selection=dg.AssetSelection.assets("label_suggestions"),
    partitions_def=dataset_partitions,
)

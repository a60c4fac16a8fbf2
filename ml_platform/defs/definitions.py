"""Assemble the Dagster Definitions; no logic here (`dagster dev` loads this module)."""

import dagster as dg

from ml_platform.defs.assets.batch_drift import batch_drift
from ml_platform.defs.assets.champion_health import champion_health
from ml_platform.defs.assets.classifiers import collection_classifier
from ml_platform.defs.assets.clusters import pet_clusters, pet_heroes
from ml_platform.defs.assets.collections import crawlr_collections
from ml_platform.defs.assets.datasets import datasets, finetuned_classifier, label_suggestions
from ml_platform.defs.assets.detections import detections
from ml_platform.defs.assets.embeddings import embeddings
from ml_platform.defs.assets.images import image_catalog
from ml_platform.defs.assets.scores import collection_scores
from ml_platform.defs.assets.search_compaction import search_compaction
from ml_platform.defs.assets.similarity import similarity_index
from ml_platform.defs.assets.thumbnails import thumbnails
from ml_platform.defs.executors import platform_executor
from ml_platform.defs.jobs import (
    clusters_job,
    collections_job,
    dataset_versions_job,
    embeddings_job,
    finetune_job,
    health_job,
    ingest_job,
    label_suggestions_job,
    training_job,
)
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.defs.schedules import (
    daily_health_schedule,
    nightly_finetune_schedule,
    nightly_retrain_schedule,
)
from ml_platform.defs.sensors import (
    alert_on_run_failure,
    dataset_sensor,
    health_retrain_sensor,
    label_sensor,
    leftovers_sensor,
    planner_sensor,
)


def build_definitions(
    crawlr: CrawlrResource | None = None,
    storage: StorageResource | None = None,
    models: ModelsResource | None = None,
    mlflow: MlflowResource | None = None,
) -> dg.Definitions:
    """The platform's definitions; resources default to the ML_PLATFORM_* settings at run time."""
    return dg.Definitions(
        assets=[
            crawlr_collections,
            image_catalog,
            detections,
            embeddings,
            collection_classifier,
            collection_scores,
            champion_health,
            batch_drift,
            pet_clusters,
            pet_heroes,
            similarity_index,
            search_compaction,
            datasets,
            label_suggestions,
            finetuned_classifier,
            thumbnails,
        ],
        jobs=[
            collections_job,
            ingest_job,
            embeddings_job,
            training_job,
            clusters_job,
            dataset_versions_job,
            finetune_job,
            label_suggestions_job,
            health_job,
        ],
        schedules=[nightly_retrain_schedule, nightly_finetune_schedule, daily_health_schedule],
        sensors=[
            leftovers_sensor,
            planner_sensor,
            dataset_sensor,
            label_sensor,
            health_retrain_sensor,
            alert_on_run_failure,
        ],
        resources={
            "crawlr": crawlr or CrawlrResource(),
            "storage": storage or StorageResource(),
            "models": models or ModelsResource(),
            "mlflow": mlflow or MlflowResource(),
        },
        executor=platform_executor,  # ML_PLATFORM_EXECUTOR, read when a run starts
    )


defs = build_definitions()

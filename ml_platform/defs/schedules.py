"""Schedules: nightly retraining of the collections whose data or focus changed."""

import dagster as dg

from ml_platform.defs.assets.classifier_support import ClassifierConfig
from ml_platform.defs.jobs import training_job
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.services.retraining import collections_to_retrain
from ml_platform.store.collections_file import read_collections


@dg.schedule(
    job=training_job,
    cron_schedule="0 3 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_retrain_schedule(
    context: dg.ScheduleEvaluationContext, storage: StorageResource, mlflow: MlflowResource
) -> list[dg.RunRequest] | dg.SkipReason:
    """Retrain only collections with no champion, a changed focus or changed training data."""
    path = storage.collections_path()
    if not path.is_file():
        return dg.SkipReason("crawlr_collections not materialized yet")
    defaults = ClassifierConfig()
    todo = collections_to_retrain(
        mlflow.client(), storage, read_collections(path),
        negative_sample_size=defaults.negative_sample_size, seed=defaults.seed,
        min_positives=defaults.min_positives, min_negatives=defaults.min_negatives,
    )  # fmt: skip
    if not todo:
        return dg.SkipReason("every champion is current")
    date = (
        context.scheduled_execution_time.strftime("%Y-%m-%d")
        if context.scheduled_execution_time
        else "now"
    )
    return [
        dg.RunRequest(
            partition_key=str(t.collection_id),
            run_key=f"{date}:{t.collection_id}",
            tags={"retrain_reason": t.reason[:200]},
        )
        for t in todo
    ]

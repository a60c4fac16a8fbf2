"""Schedules: nightly retraining of the collections whose labels or focus changed."""

import dagster as dg

from ml_platform.defs.dataset_planning import declared_datasets, finetune_runs
from ml_platform.defs.jobs import finetune_job, health_job, training_job
from ml_platform.defs.partitions import collection_partitions
from ml_platform.defs.planning import retrain_runs
from ml_platform.defs.resources import StorageResource
from ml_platform.learning.training import TrainingConfig
from ml_platform.services.retraining import RetrainPolicy

# One policy for the schedule and `ml-platform run` (defs/runner.py imports it): the
# classifier's own minimum, from the config the launchpad's `training` field mirrors.
RETRAIN_POLICY = RetrainPolicy(min_positives=TrainingConfig().min_positives)


@dg.schedule(
    job=training_job,
    cron_schedule="0 3 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_retrain_schedule(
    context: dg.ScheduleEvaluationContext, storage: StorageResource
) -> list[dg.RunRequest] | dg.SkipReason:
    """Retrain only collections never trained, whose focus changed or whose labels changed
    since their last training decision (a cheap query; see services/retraining.py)."""
    todo = retrain_runs(context.instance, storage, RETRAIN_POLICY)
    if not todo:
        return dg.SkipReason("every collection's last training decision is current")
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


@dg.schedule(
    job=finetune_job, cron_schedule="30 3 * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)  # fmt: skip
def nightly_finetune_schedule(
    context: dg.ScheduleEvaluationContext, storage: StorageResource
) -> list[dg.RunRequest] | dg.SkipReason:
    """Fine-tune each declared dataset whose newest version no fine-tune was trained on
    (the dataset sensor makes the versions); the promotion gate decides the champion."""
    todo = finetune_runs(context.instance, sorted(declared_datasets(storage)))
    if not todo:
        return dg.SkipReason("every dataset's newest version has been fine-tuned on")
    return [
        dg.RunRequest(
            partition_key=t.dataset, run_key=t.run_key, tags={"ml_platform/reason": t.reason[:200]}
        )
        for t in todo
    ]


@dg.schedule(
    job=health_job, cron_schedule="30 4 * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)  # fmt: skip
def daily_health_schedule(
    context: dg.ScheduleEvaluationContext,
) -> list[dg.RunRequest] | dg.SkipReason:
    """Re-evaluate every collection's champion on its fresh labels once a day, after the
    nightly retraining (a collection without a champion or enough fresh labels is recorded
    as not evaluated, quickly)."""
    keys = context.instance.get_dynamic_partitions(collection_partitions.name or "collections")
    if not keys:
        return dg.SkipReason("no collection partitions yet")
    when = context.scheduled_execution_time
    date = when.strftime("%Y-%m-%d") if when else "now"
    return [dg.RunRequest(partition_key=k, run_key=f"health:{date}:{k}") for k in keys]

"""The planner sensor: one tick of `defs.planning.plan_tick`, the same one `ml-platform run`
executes. New crawlr images become batches; every batch that misses a stage (a crash, a failed
run, a new focus, downloads due for retry) gets the one run that completes it. The label sensor:
crawlr's label changes applied to the label index, and the changed collections retrained."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from ml_platform.alerts import AlertConfig, run_failure_alert, send_alert
from ml_platform.crawlr.client import CrawlrError
from ml_platform.crawlr.contract import MalformedReplyError
from ml_platform.defs.assets.batch_drift import drifted_since_training
from ml_platform.defs.assets.champion_health import failing_health
from ml_platform.defs.dataset_planning import declared_datasets, new_partitions, version_runs
from ml_platform.defs.jobs import (
    clusters_job,
    collections_job,
    dataset_versions_job,
    embeddings_job,
    health_job,
    ingest_job,
    training_job,
)
from ml_platform.defs.label_planning import apply_label_changes, label_retrains
from ml_platform.defs.leftovers import clear_leftovers
from ml_platform.defs.partitions import dataset_partitions
from ml_platform.defs.planning import drift_retrain_runs, plan_tick, retrain_runs
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.schedules import RETRAIN_POLICY
from ml_platform.store.label_index import last_history_id

MAX_BATCHES_PER_TICK = 20  # keeps a tick well inside Dagster's sensor timeout on a backlog
MAX_LABEL_PAGES_PER_TICK = 50  # likewise for a feed rescan; the next tick resumes it


def running_sensor(
    every_s: int, *jobs: dg.UnresolvedAssetJobDefinition
) -> Callable[[Callable[..., Any]], dg.SensorDefinition]:
    """A sensor that runs from the start (every sensor here: the platform plans unattended),
    evaluated at most every `every_s` seconds, requesting runs of `jobs`."""
    return dg.sensor(
        jobs=list(jobs) or None,
        minimum_interval_seconds=every_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )


@running_sensor(60, collections_job, ingest_job, embeddings_job, clusters_job)
def planner_sensor(
    context: dg.SensorEvaluationContext, crawlr: CrawlrResource, storage: StorageResource
) -> dg.SensorResult | dg.SkipReason:
    """Plan what is missing and request exactly those runs (Dagster dedupes by run key)."""
    try:
        tick = plan_tick(context.instance, crawlr, storage, MAX_BATCHES_PER_TICK)
    except (CrawlrError, MalformedReplyError) as exc:
        return dg.SkipReason(f"crawlr not read; nothing planned this tick: {exc}")
    for key in tick.new_batches:
        context.log.info("new batch %s", key)
    if not tick.runs:
        return dg.SkipReason("every batch is complete and collections are current")
    requests = [
        dg.RunRequest(
            job_name=run.job.value,
            partition_key=run.partition_key,
            run_key=run.run_key,
            tags={"ml_platform/reason": run.reason[:200]},
        )
        for run in tick.runs
    ]
    return dg.SensorResult(run_requests=requests)


@running_sensor(120, dataset_versions_job)
def dataset_sensor(
    context: dg.SensorEvaluationContext, storage: StorageResource
) -> dg.SensorResult | dg.SkipReason:
    """A partition per dataset of the datasets file, and a new version of each dataset whose
    membership changed (labels, accepted suggestions, a batch's catalog); fine-tuning on it is
    the nightly `nightly_finetune_schedule`'s job."""
    specs = declared_datasets(storage)  # a configured file that is missing fails the tick
    if not specs:
        return dg.SkipReason("no datasets declared (write <home>/datasets.yaml or set "
                             "ML_PLATFORM_DATASETS_FILE)")  # fmt: skip
    added = new_partitions(context.instance, sorted(specs))
    requests = [
        dg.RunRequest(
            partition_key=run.dataset, run_key=run.run_key, tags={"ml_platform/reason": run.reason}
        )
        for run in version_runs(context.instance, storage, specs)
    ]
    if not (added or requests):
        return dg.SkipReason(f"every dataset's version is current ({', '.join(sorted(specs))})")
    partitions = [dataset_partitions.build_add_request(added)] if added else []
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=partitions)


@running_sensor(60, training_job)
def label_sensor(
    context: dg.SensorEvaluationContext, crawlr: CrawlrResource, storage: StorageResource
) -> dg.SensorResult | dg.SkipReason:
    """Apply crawlr's label changes to the label index (services.label_changes; the same
    tick `ml-platform run` executes) and request a training run for each changed collection
    the retrain planner says needs a new decision. Nothing is re-downloaded or re-embedded."""
    try:
        tick = apply_label_changes(crawlr, storage, MAX_LABEL_PAGES_PER_TICK)
    except (CrawlrError, MalformedReplyError) as exc:  # pages applied so far stay applied
        return dg.SkipReason(f"crawlr's labels not read; the label cursor stays: {exc}")
    context.log.info("label tick: %s", tick.summary())
    for reason in tick.malformed[:20]:
        context.log.warning("skipped a malformed label row: %s", reason)
    todo = label_retrains(context.instance, storage, tick, RETRAIN_POLICY)
    if not todo:
        return dg.SkipReason(f"no collection to retrain; {tick.summary()}")
    applied = last_history_id(storage.metadata())  # run keys differ for every later change
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                job_name=training_job.name,
                partition_key=str(t.collection_id),
                run_key=f"labels:{t.collection_id}:{applied}",
                tags={"retrain_reason": f"labels changed in crawlr: {t.reason}"[:200]},
            )
            for t in todo
        ]
    )


@running_sensor(300, training_job)
def health_retrain_sensor(
    context: dg.SensorEvaluationContext, storage: StorageResource
) -> dg.SensorResult | dg.SkipReason:
    """A failing `champion_health` check, or a drifted batch (`batch_drift`), asks the retrain
    planner for a training run of each collection concerned (the gate still decides the
    champion). Failing health retrains only when the labels changed since the last training
    decision (else a retrain would reproduce it, and the check's alert stands); a drifted
    batch retrains each of its collections once, when their last training came before it
    (the batch's images join the training sample of the focus)."""
    failing = failing_health(context.instance)
    drifted = drifted_since_training(context.instance)
    if not failing and not drifted:
        return dg.SkipReason("no champion_health check is failing and no batch drifted")
    planned = {r.collection_id: r for r in retrain_runs(context.instance, storage, RETRAIN_POLICY)}
    if current := sorted(set(failing) - set(planned)):
        context.log.info("failing health, but the last training saw the current labels: %s",
                         current)  # fmt: skip
    requests = {cid: _retrain(cid, f"health:{cid}:{at}", f"champion_health {status}",
                              planned[cid].reason)
                for cid, (status, at) in failing.items() if cid in planned}  # fmt: skip
    for r in drift_retrain_runs(storage, drifted, RETRAIN_POLICY):
        batch = drifted[r.collection_id]
        run_key, why = f"drift:{r.collection_id}:{batch}", f"batch_drift on {batch}"
        requests.setdefault(r.collection_id, _retrain(r.collection_id, run_key, why, r.reason))
    if not requests:
        return dg.SkipReason(f"collections {sorted({*failing, *drifted})} fail health or "
                             "drift; none has anything its last training did not see")  # fmt: skip
    return dg.SensorResult(run_requests=[requests[cid] for cid in sorted(requests)])


def _retrain(cid: int, run_key: str, why: str, reason: str) -> dg.RunRequest:
    return dg.RunRequest(
        job_name=training_job.name,
        partition_key=str(cid),
        run_key=run_key,
        tags={"retrain_reason": f"{why}; {reason}"[:200]},
    )


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING)
def alert_on_run_failure(context: dg.RunFailureSensorContext, storage: StorageResource) -> None:
    """Every failed run is an alert (ml_platform/alerts.py; a receiver that is down is logged)."""
    config = AlertConfig.from_settings(storage.settings())
    run = context.dagster_run
    message = context.failure_event.message or "no message"
    alert = run_failure_alert(run.run_id, run.job_name, run.tags.get("dagster/partition"),
                              message, config, (training_job.name, health_job.name))  # fmt: skip
    send_alert(alert, config)


@running_sensor(600)
def leftovers_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource) -> dg.SkipReason:
    """The daemon's side of `ml-platform run`'s clean-up (one function, two callers): Dagster
    and MLflow runs whose owner process is gone are marked failed, with the reason."""
    cleared = clear_leftovers(context.instance, mlflow.client())
    for line in cleared:
        context.log.warning("marked failed: %s", line)
    return dg.SkipReason(f"{len(cleared)} runs of dead processes marked failed")

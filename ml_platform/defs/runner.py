"""Execute what the sensors and schedules would request, in-process, against one home.

Used by `ml-platform run` and `ml-platform demo`. It has no planning of its own: it calls the
planner the sensor calls (`defs.planning.plan_tick`) and the retrain planner the schedule
calls, and executes their runs on the Dagster instance under home (so `ml-platform
dagster-ui` shows the same runs afterwards, and its sensor finds nothing left to do).
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from ml_platform.crawlr.client import CrawlrError
from ml_platform.crawlr.contract import MalformedReplyError
from ml_platform.defs.assets.datasets import register_dataset_partitions
from ml_platform.defs.dataset_planning import declared_datasets
from ml_platform.defs.definitions import build_definitions
from ml_platform.defs.label_planning import apply_label_changes
from ml_platform.defs.leftovers import clear_leftovers
from ml_platform.defs.planning import dataset_runs, plan_tick, retrain_runs, still_planned
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.defs.resources.base import export_secrets, settings_overrides
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.defs.schedules import RETRAIN_POLICY
from ml_platform.defs.submission import Submission, execute
from ml_platform.redact import redact_url
from ml_platform.services.planning import JobName, PlannedRun
from ml_platform.settings import Settings

log = logging.getLogger(__name__)
# Dagster's console logger silent: the CLI prints each failed run as one sentence, and what
# assets warn about reaches the user once, through Python logging (the CLI's progress display).
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
MAX_ROUNDS = 50  # plan/execute rounds in one `run`; each round completes at least one run


@dataclass
class RunSummary:
    home: Path
    crawlr: str
    new_batches: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    retrained: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # the label tick, and rows it skipped
    materialized: list[str] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)  # runs of dead processes marked failed
    seconds: float = 0.0
    on_job: Callable[[str, str | None], None] | None = None  # progress: (job, partition)


@dataclass(frozen=True)
class Platform:
    """The resources of one home, and the Definitions built from them."""

    crawlr: CrawlrResource
    storage: StorageResource
    models: ModelsResource
    mlflow: MlflowResource

    @classmethod
    def for_settings(cls, settings: Settings, allow_random_weights: bool | None) -> Platform:
        home, overrides = str(settings.resolved_home), settings_overrides(settings)
        export_secrets(settings)
        source = None if "crawlr" not in overrides and settings.crawlr else settings.crawlr_source
        return cls(
            CrawlrResource(home=home, overrides=overrides, source=source),
            StorageResource(home=home, overrides=overrides),
            ModelsResource(
                home=home, overrides=overrides, allow_random_weights=allow_random_weights
            ),
            MlflowResource(home=home, overrides=overrides),
        )

    def definitions(self) -> dg.Definitions:
        return build_definitions(
            crawlr=self.crawlr, storage=self.storage, models=self.models, mlflow=self.mlflow
        )


def instance_for(settings: Settings) -> dg.DagsterInstance:
    """The home's Dagster instance. Its storages are created (and their sqlite schemas
    migrated) under a file lock: two processes starting on a new home at once otherwise leave
    the schema with two alembic heads, and every later client fails."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").touch()
    with (home / ".init.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            instance = dg.DagsterInstance.from_config(str(home))
            instance.get_runs(limit=1)
            instance.event_log_storage.get_dynamic_partitions("ingestion_batches")
            instance.schedule_storage  # noqa: B018 - created now, under the lock
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return instance


def run_once(
    settings: Settings,
    *,
    allow_random_weights: bool | None = None,
    on_job: Callable[[str, str | None], None] | None = None,
    finetune: bool = True,
) -> RunSummary:
    """Execute what the planner sensor would request, round after round, until nothing is
    missing; then the label sensor's tick (crawlr's label changes); then what the nightly
    schedule would train. Runs of one partition are claimed in the metadata database, so two
    `run`s (or `run` beside the daemon) never execute the same partition at once.
    `finetune=False` makes dataset versions but leaves the nightly fine-tune out (the demo:
    minutes of CPU that `ml-platform finetune` runs on request)."""
    started = time.perf_counter()
    platform = Platform.for_settings(settings, allow_random_weights)
    defs, instance = platform.definitions(), instance_for(settings)
    client = platform.mlflow.client()  # create (migrate) the tracking store now, under its lock
    summary = RunSummary(
        home=settings.resolved_home, crawlr=redact_url(settings.crawlr_source), on_job=on_job
    )
    summary.cleared.extend(clear_leftovers(instance, client))
    done: set[str] = set()
    for _ in range(MAX_ROUNDS):
        try:
            tick = plan_tick(instance, platform.crawlr, platform.storage)
        except (CrawlrError, MalformedReplyError) as exc:  # what is planned so far stays valid
            summary.failed_runs.append(f"planning: crawlr not read ({exc}); run again later")
            break
        summary.new_batches.extend(tick.new_batches)
        runs = [r for r in tick.runs if r.run_key not in done]
        if not runs:
            break
        for run in runs:
            done.add(run.run_key)
            summary.planned.append(f"{run.job}[{run.partition_key or '-'}]: {run.reason}")
            _claimed_execute(platform, defs, instance, run, summary)
            if run.job is JobName.COLLECTIONS:
                break  # the foci may have changed: plan the batches again
    apply_labels(platform, summary)
    train_changed(platform, defs, instance, summary)
    refresh_datasets(platform, defs, instance, summary, finetune)
    summary.seconds = time.perf_counter() - started
    return summary


def _claimed_execute(
    platform: Platform,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    run: PlannedRun,
    summary: RunSummary,
) -> None:
    db, name = platform.storage.metadata(), f"{run.job}:{run.partition_key or '-'}"
    lease = platform.storage.settings().claim_lease_s
    if not db.claim(name, lease_s=lease):
        summary.skipped.append(f"{name}: another process is running it")
        return
    try:
        if still_planned(instance, platform.crawlr, platform.storage, run, RETRAIN_POLICY):
            _execute(defs, instance, run.job.value, run.partition_key, summary)
        else:
            summary.skipped.append(f"{name}: done by another process meanwhile")
    finally:
        db.release(name)


def apply_labels(platform: Platform, summary: RunSummary) -> None:
    """What the label sensor does: crawlr's label changes into the label index (the retrain
    planner in `train_changed` then sees the changed collections)."""
    try:
        tick = apply_label_changes(platform.crawlr, platform.storage)
    except (CrawlrError, MalformedReplyError) as exc:  # pages applied so far stay applied
        summary.failed_runs.append(f"labels: crawlr's labels not read ({exc}); run again later")
        return
    if tick.source is not None:
        summary.labels.append(tick.summary())
    summary.labels.extend(f"skipped a malformed label row: {m}" for m in tick.malformed)


def train_changed(
    platform: Platform, defs: dg.Definitions, instance: dg.DagsterInstance, summary: RunSummary
) -> None:
    """What the nightly schedule does, with the schedule's own planner and policy."""
    for item in retrain_runs(instance, platform.storage, RETRAIN_POLICY):
        summary.retrained.append(f"collection {item.collection_id} (why: {item.reason})")
        run = PlannedRun(JobName.TRAINING, str(item.collection_id), item.reason, "")
        _claimed_execute(platform, defs, instance, run, summary)


def refresh_datasets(
    platform: Platform,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    summary: RunSummary,
    finetune: bool = True,
) -> None:
    """What the dataset sensor and the nightly fine-tune schedule do: a partition per declared
    dataset, a version where membership changed, a fine-tune where a version is new."""
    try:
        specs = declared_datasets(platform.storage)
    except (OSError, ValueError) as exc:  # a configured datasets file missing or malformed
        summary.failed_runs.append(f"datasets: {exc}")
        return
    register_dataset_partitions(instance, sorted(specs))
    jobs = (JobName.DATASET_VERSIONS, JobName.FINETUNE) if finetune else (JobName.DATASET_VERSIONS,)
    for job in jobs:
        for run in dataset_runs(instance, platform.storage, job):
            summary.planned.append(f"{run.job}[{run.partition_key}]: {run.reason}")
            _claimed_execute(platform, defs, instance, run, summary)


def run_failure(result: dg.ExecuteInProcessResult) -> str:
    """A failed run's first failed step as `step: ExceptionType: message`, from the innermost
    cause (the user's error, not Dagster's wrapper around it), on one line."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None:
                error = error.cause
            text = " ".join(error.message.split()) if error is not None else "no error recorded"
            return f"{event.step_key}: {text[:400]}"
    return f"run {result.run_id} failed before any step ran"


def _execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    partition_key: str | None,
    summary: RunSummary,
) -> None:
    if summary.on_job is not None:
        summary.on_job(job_name, partition_key)
    submission = Submission.for_definitions(defs)
    result = execute(defs, instance, job_name, partition_key, QUIET, submission)
    if not result.success:
        summary.failed_runs.append(
            f"{job_name}[{partition_key}] (run {result.run_id}): {run_failure(result)}"
        )
    for event in result.get_asset_materialization_events():
        key = event.asset_key.to_user_string() if event.asset_key else "?"
        summary.materialized.append(f"{key}[{partition_key}]" if partition_key else key)

"""One pass of what the sensors and schedules would do, run in-process against one home.

Used by `ml-platform run` and `ml-platform demo`: refresh collections, embed existing batches for
any focus that came into use, cut new ingestion batches from crawlr and materialize them, on the
Dagster instance under home (so `ml-platform dagster-ui` shows the same runs afterwards).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from ml_platform.defs.assets.classifier_support import ClassifierConfig
from ml_platform.defs.definitions import build_definitions
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.defs.resources.base import settings_overrides
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.models import ModelsResource
from ml_platform.defs.sensors import ensure_partitions
from ml_platform.services.batches import FeedCursor, register_batch
from ml_platform.services.retraining import collections_to_retrain
from ml_platform.settings import Settings
from ml_platform.store.collections_file import foci_in_use, read_collections
from ml_platform.store.ledger import LedgerConflictError

log = logging.getLogger(__name__)
FEED_CURSOR, FOCI_CURSOR = "cli_new_images", "cli_foci"
# Dagster's console logger at INFO: asset logs and failures, not every engine event.
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass
class RunSummary:
    home: Path
    crawlr: str
    new_batches: list[str] = field(default_factory=list)
    new_foci: list[str] = field(default_factory=list)
    retrained: list[str] = field(default_factory=list)
    materialized: list[str] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)
    seconds: float = 0.0


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
        return cls(
            CrawlrResource(home=home, overrides=overrides, source=settings.crawlr_source),
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
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    (settings.dagster_home / "dagster.yaml").touch()
    return dg.DagsterInstance.from_config(str(settings.dagster_home))


def cut_new_batches(platform: Platform) -> list[str]:
    """Register batches until crawlr has nothing new; the CLI's cursor is kept in the ledger."""
    ledger, created = platform.storage.ledger(), []
    cursor = FeedCursor.loads(ledger.get_cursor(FEED_CURSOR))
    while True:
        batch, next_cursor = platform.crawlr.next_batch(cursor, ledger)
        if batch is not None:
            try:
                register_batch(batch, platform.storage.manifests(), ledger)
            except LedgerConflictError as exc:  # the sensor took some of them: plan again
                log.info("%s", exc)
                continue
            created.append(batch.key)
        cursor = next_cursor
        ledger.set_cursor(FEED_CURSOR, cursor.dumps())
        if batch is None:
            return created


def new_foci(storage: StorageResource) -> list[str]:
    """Foci in use now that the CLI has not embedded existing batches for yet."""
    foci = [f.key for f in foci_in_use(read_collections(storage.collections_path()))]
    seen = set((storage.ledger().get_cursor(FOCI_CURSOR) or "").split(","))
    return [f for f in foci if f not in seen]


def run_once(settings: Settings, *, allow_random_weights: bool | None = None) -> RunSummary:
    started = time.perf_counter()
    platform = Platform.for_settings(settings, allow_random_weights)
    defs, instance = platform.definitions(), instance_for(settings)
    summary = RunSummary(home=settings.resolved_home, crawlr=settings.crawlr_source)
    ledger = platform.storage.ledger()
    _execute(defs, instance, "collections_job", None, summary)
    summary.new_foci = new_foci(platform.storage)
    if summary.new_foci:
        for key in ledger.ingested_batches():
            _execute(defs, instance, "embeddings_job", key, summary)
    all_foci = [f.key for f in foci_in_use(read_collections(platform.storage.collections_path()))]
    ledger.set_cursor(FOCI_CURSOR, ",".join(all_foci))
    summary.new_batches = cut_new_batches(platform)
    pending = ledger.pending_batches()
    ensure_partitions(instance, pending)
    for key in pending:
        _execute(defs, instance, "ingest_job", key, summary)
        _execute(defs, instance, "clusters_job", key, summary)  # the automation sensor's work
    train_changed(platform, defs, instance, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def train_changed(
    platform: Platform, defs: dg.Definitions, instance: dg.DagsterInstance, summary: RunSummary
) -> None:
    """What the nightly schedule does: train collections without a current champion."""
    defaults = ClassifierConfig()
    todo = collections_to_retrain(
        platform.mlflow.client(), platform.storage,
        read_collections(platform.storage.collections_path()),
        negative_sample_size=defaults.negative_sample_size, seed=defaults.seed,
        min_positives=defaults.min_positives, min_negatives=defaults.min_negatives,
    )  # fmt: skip
    for item in todo:
        summary.retrained.append(f"collection {item.collection_id}: {item.reason}")
        _execute(defs, instance, "training_job", str(item.collection_id), summary)


def _execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    partition_key: str | None,
    summary: RunSummary,
) -> None:
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False, run_config=QUIET
    )
    if not result.success:
        summary.failed_runs.append(f"{job_name}[{partition_key}] run {result.run_id}")
    for event in result.get_asset_materialization_events():
        key = event.asset_key.to_user_string() if event.asset_key else "?"
        summary.materialized.append(f"{key}[{partition_key}]" if partition_key else key)

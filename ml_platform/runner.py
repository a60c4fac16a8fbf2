"""One pass of what the sensors and schedules would do, run in-process against one home.

Used by `ml-platform run` and `ml-platform demo`: refresh collections, cut new ingestion
batches from crawlr, and materialize every pending batch, on the Dagster instance under home
(so `ml-platform dagster-ui` shows the same runs afterwards).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from ml_platform.batches import FeedCursor, register_batch
from ml_platform.definitions import build_definitions
from ml_platform.resources import CrawlrResource, StorageResource
from ml_platform.resources.models import ModelsResource
from ml_platform.sensors import ensure_partitions
from ml_platform.settings import Settings

log = logging.getLogger(__name__)
CLI_CURSOR = "cli_new_images"


@dataclass
class RunSummary:
    home: Path
    crawlr: str
    new_batches: list[str] = field(default_factory=list)
    materialized: list[str] = field(default_factory=list)
    seconds: float = 0.0


def instance_for(settings: Settings) -> dg.DagsterInstance:
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    (settings.dagster_home / "dagster.yaml").touch()
    return dg.DagsterInstance.from_config(str(settings.dagster_home))


def platform_definitions(settings: Settings, allow_random_weights: bool | None) -> dg.Definitions:
    home = str(settings.resolved_home)
    return build_definitions(
        crawlr=CrawlrResource(home=home, source=settings.crawlr_source),
        storage=StorageResource(home=home),
        models=ModelsResource(home=home, allow_random_weights=allow_random_weights),
    )


def cut_new_batches(crawlr: CrawlrResource, storage: StorageResource) -> list[str]:
    """Register batches until crawlr has nothing new; the cursor is kept in the ledger."""
    ledger, created = storage.ledger(), []
    cursor = FeedCursor.loads(ledger.get_cursor(CLI_CURSOR))
    while True:
        batch, cursor = crawlr.next_batch(cursor, ledger)
        if batch is not None:
            register_batch(batch, storage.manifests(), ledger)
            created.append(batch.key)
        ledger.set_cursor(CLI_CURSOR, cursor.dumps())
        if batch is None:
            return created


def run_once(settings: Settings, *, allow_random_weights: bool | None = None) -> RunSummary:
    started = time.perf_counter()
    defs = platform_definitions(settings, allow_random_weights)
    instance = instance_for(settings)
    summary = RunSummary(home=settings.resolved_home, crawlr=settings.crawlr_source)
    _execute(defs, instance, "collections_job", None, summary)
    home = str(settings.resolved_home)
    storage = StorageResource(home=home)
    summary.new_batches = cut_new_batches(CrawlrResource(home=home, source=settings.crawlr_source), storage)
    pending = storage.ledger().pending_batches()
    ensure_partitions(instance, pending)
    for key in pending:
        _execute(defs, instance, "ingest_job", key, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    partition_key: str | None,
    summary: RunSummary,
) -> None:
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(instance=instance, partition_key=partition_key)
    for event in result.get_asset_materialization_events():
        key = event.asset_key.to_user_string() if event.asset_key else "?"
        summary.materialized.append(f"{key}[{partition_key}]" if partition_key else key)

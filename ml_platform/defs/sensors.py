"""Sensors: new crawlr images become ingestion batches; collection changes refresh metadata."""

from __future__ import annotations

import hashlib

import dagster as dg

from ml_platform.crawlr.client import CrawlrError
from ml_platform.crawlr.contract import MalformedReplyError
from ml_platform.defs.jobs import collections_job, embeddings_job, ingest_job
from ml_platform.defs.partitions import ingestion_batches
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.services.batches import FeedCursor, register_batch
from ml_platform.store.collections_file import foci_in_use, read_collections
from ml_platform.store.ledger import LedgerConflictError


def ensure_partitions(instance: dg.DagsterInstance, keys: list[str]) -> None:
    name = ingestion_batches.name
    assert name is not None
    missing = [k for k in keys if not instance.has_dynamic_partition(name, k)]
    if missing:
        instance.add_dynamic_partitions(name, missing)


@dg.sensor(
    job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
)
def new_images_sensor(
    context: dg.SensorEvaluationContext, crawlr: CrawlrResource, storage: StorageResource
) -> dg.SensorResult | dg.SkipReason:
    """New crawlr images since the stored cursor become one ingestion batch partition and a run.

    Order: manifest, ledger, partition, then run requests and the new cursor, so a crash at any
    point neither skips nor repeats an image (see ml_platform/batches.py).
    """
    cursor = FeedCursor.loads(context.cursor)
    ledger = storage.ledger()
    try:
        batch, next_cursor = crawlr.next_batch(cursor, ledger)
    except (CrawlrError, MalformedReplyError) as exc:
        return dg.SkipReason(f"crawlr not read, cursor kept: {exc}")
    if batch is not None:
        try:
            register_batch(batch, storage.manifests(), ledger)
        except LedgerConflictError as exc:
            return dg.SkipReason(f"cursor kept, re-planning next tick: {exc}")
        context.log.info("new batch %s with %d images", batch.key, len(batch.images))
    pending = ledger.pending_batches()
    ensure_partitions(context.instance, pending)
    requests = [dg.RunRequest(partition_key=key, run_key=key) for key in pending]
    return dg.SensorResult(run_requests=requests, cursor=next_cursor.dumps())


@dg.sensor(
    job=collections_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING
)
def collections_sensor(
    context: dg.SensorEvaluationContext, crawlr: CrawlrResource
) -> dg.SensorResult | dg.SkipReason:
    """Refresh `crawlr_collections` whenever crawlr's reply changes (a focus change included)."""
    try:
        digest = hashlib.sha256(crawlr.collections_raw()).hexdigest()
    except CrawlrError as exc:
        return dg.SkipReason(f"crawlr not read: {exc}")
    if digest == context.cursor:
        return dg.SkipReason("collections unchanged")
    run_key = f"{context.cursor}->{digest}"  # A->B->A refreshes again; a retried tick does not
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=run_key)], cursor=digest)


@dg.sensor(
    job=embeddings_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
)
def new_focus_sensor(
    context: dg.SensorEvaluationContext, storage: StorageResource
) -> dg.SensorResult | dg.SkipReason:
    """When a focus comes into use (a collection changed focus), embed the existing batches
    for it; the embeddings asset computes only the missing (image, focus) pairs."""
    path = storage.collections_path()
    if not path.is_file():
        return dg.SkipReason("crawlr_collections not materialized yet")
    foci = sorted(f.key for f in foci_in_use(read_collections(path)))
    seen = set(context.cursor.split(",")) if context.cursor else set()
    new = [f for f in foci if f not in seen]
    if not new:
        return dg.SkipReason("no new focus")
    done = storage.ledger().ingested_batches()
    tag = f"{context.cursor}->{'+'.join(new)}"  # a focus that returns later is embedded again
    requests = [dg.RunRequest(partition_key=k, run_key=f"{tag}:{k}") for k in done]
    return dg.SensorResult(run_requests=requests, cursor=",".join(foci))


automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.assets("pet_clusters", "pet_heroes", "similarity_index"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Clusters and hero sets follow new embeddings (eager automation conditions).",
)

"""One tick of planning, read from the Dagster instance: the sensors and `ml-platform run`
both call `plan_tick`, so there is one planner with two callers and no cursors of its own
beside the shared feed cursor in the metadata database."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import dagster as dg
import sqlalchemy as sa
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.events import DagsterEventType

from ml_platform.defs.assets.collections import DIGEST_TAG
from ml_platform.defs.batch_graph import batch_graph
from ml_platform.defs.dataset_planning import declared_datasets, finetune_runs, version_runs
from ml_platform.defs.partitions import ingestion_batches
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.domain import Focus, Stage
from ml_platform.services.batches import FeedCursor, register_batch
from ml_platform.services.planning import (
    DoneState,
    JobName,
    PlannedRun,
    plan_batches,
    plan_collections,
)
from ml_platform.services.retraining import (
    RetrainPolicy,
    RetrainReason,
    batch_drifted,
    labels_changed,
    plan_retraining,
)
from ml_platform.store.collections_file import foci_in_use, has_collections, read_collections
from ml_platform.store.metadata import BatchConflictError

log = logging.getLogger(__name__)
FEED_CURSOR = "image_feed"


@dataclass
class Tick:
    new_batches: list[str] = field(default_factory=list)
    runs: list[PlannedRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def done_state(instance: dg.DagsterInstance, batches: list[str]) -> DoneState:
    """Newest materialization per stage and batch, and the foci each embeddings run covered."""
    storage = instance.event_log_storage
    wanted = set(batches)
    latest = {
        stage: storage.get_latest_storage_id_by_partition(
            dg.AssetKey(stage.value), DagsterEventType.ASSET_MATERIALIZATION, wanted
        )
        for stage in Stage
    }
    versions = storage.get_latest_tags_by_partition(
        dg.AssetKey(Stage.EMBEDDINGS.value),
        DagsterEventType.ASSET_MATERIALIZATION,
        [DATA_VERSION_TAG],
        asset_partitions=batches,
    )
    foci_versions = {k: t[DATA_VERSION_TAG] for k, t in versions.items() if DATA_VERSION_TAG in t}
    return DoneState(latest=latest, graph=batch_graph(), foci_versions=foci_versions)


def embedding_foci(storage: StorageResource) -> list[Focus]:
    """The foci the `embeddings` asset covers: those in use plus the clustering focus."""
    cluster = Focus.from_key(storage.settings().cluster_focus)
    return sorted({*foci_in_use(read_collections(storage.layout())), cluster})


def ensure_partitions(instance: dg.DagsterInstance, keys: list[str]) -> None:
    name = ingestion_batches.name
    assert name is not None
    existing = set(instance.get_dynamic_partitions(name))
    for key in (k for k in keys if k not in existing):
        try:
            instance.add_dynamic_partitions(name, [key])
        except sa.exc.IntegrityError:  # another planner added it between the check and here
            if not instance.has_dynamic_partition(name, key):
                raise


def cut_new_batches(
    crawlr: CrawlrResource, storage: StorageResource, max_batches: int = 10_000
) -> list[str]:
    """Register batches until crawlr has nothing new; the feed cursor is shared by all callers
    and moves only after the batch it covers is registered (a crash re-reads, never skips)."""
    db, created = storage.metadata(), []
    for _ in range(max_batches):  # each pass registers at most one batch
        cursor = FeedCursor.loads(db.get_cursor(FEED_CURSOR))
        batch, next_cursor = crawlr.next_batch(cursor, db)
        if batch is not None:
            try:
                register_batch(batch, storage.manifests(), db)
            except BatchConflictError as exc:  # another planner took some: plan again
                log.info("%s", exc)
                continue
            created.append(batch.key)
        db.set_cursor(FEED_CURSOR, next_cursor.dumps())
        if batch is None:
            break
    return created


def collections_run(instance: dg.DagsterInstance, crawlr: CrawlrResource) -> PlannedRun | None:
    digest = hashlib.sha256(crawlr.collections_raw()).hexdigest()[:40]  # as the asset tags it
    event = instance.get_latest_materialization_event(dg.AssetKey("crawlr_collections"))
    materialized = None
    if event is not None and event.asset_materialization is not None:
        materialized = (event.asset_materialization.tags or {}).get(DIGEST_TAG)
    return plan_collections(digest, materialized)


def batch_runs(instance: dg.DagsterInstance, storage: StorageResource) -> list[PlannedRun]:
    """Runs for every incomplete batch (missing, stale, new focus, downloads due for retry)."""
    if not has_collections(storage.layout()):
        return []  # collections first: the embeddings asset needs them
    db = storage.metadata()
    batches = db.batch_keys()
    ensure_partitions(instance, batches)
    foci = [f.key for f in embedding_foci(storage)]
    due = db.due_retries(Stage.CATALOG.value)
    return plan_batches(batches, done_state(instance, batches), foci, due)


def plan_tick(
    instance: dg.DagsterInstance,
    crawlr: CrawlrResource,
    storage: StorageResource,
    max_new_batches: int = 10_000,
) -> Tick:
    """Collections, new batches, then whatever every batch is missing."""
    tick = Tick()
    refresh = collections_run(instance, crawlr)
    if refresh is not None:
        tick.runs.append(refresh)
        if not has_collections(storage.layout()):
            return tick  # nothing downstream can run before the first collections
    tick.new_batches = cut_new_batches(crawlr, storage, max_new_batches)
    tick.runs.extend(batch_runs(instance, storage))
    return tick


def retrain_runs(
    instance: dg.DagsterInstance, storage: StorageResource, policy: RetrainPolicy
) -> list[RetrainReason]:
    """What the nightly schedule trains: one grouped query and one Dagster query."""
    if not has_collections(storage.layout()):
        return []
    versions = instance.event_log_storage.get_latest_tags_by_partition(
        dg.AssetKey("collection_classifier"),
        DagsterEventType.ASSET_MATERIALIZATION,
        [DATA_VERSION_TAG],
    )
    trained = {int(k): t[DATA_VERSION_TAG] for k, t in versions.items() if DATA_VERSION_TAG in t}
    labels = storage.metadata().label_fingerprints()
    return plan_retraining(
        read_collections(storage.layout()), labels, policy, labels_changed(trained)
    )


def drift_retrain_runs(
    storage: StorageResource, drifted: dict[int, str], policy: RetrainPolicy
) -> list[RetrainReason]:
    """The retrains a drifted batch asks for (`drifted`: collection -> the batch)."""
    if not drifted or not has_collections(storage.layout()):
        return []
    labels = storage.metadata().label_fingerprints(sorted(drifted))
    return plan_retraining(
        read_collections(storage.layout()), labels, policy, batch_drifted(drifted)
    )


def still_planned(
    instance: dg.DagsterInstance,
    crawlr: CrawlrResource,
    storage: StorageResource,
    run: PlannedRun,
    policy: RetrainPolicy,
) -> bool:
    """Whether `run` is still needed now: checked under its claim, so a run another process
    completed while this one waited is not executed a second time."""
    if run.job is JobName.COLLECTIONS:
        return collections_run(instance, crawlr) is not None
    if run.job is JobName.TRAINING:
        todo = retrain_runs(instance, storage, policy)
        return any(str(t.collection_id) == run.partition_key for t in todo)
    if run.job in (JobName.DATASET_VERSIONS, JobName.FINETUNE):
        return any(r.run_key == run.run_key for r in dataset_runs(instance, storage, run.job))
    assert run.partition_key is not None
    db, key = storage.metadata(), run.partition_key
    foci = [f.key for f in embedding_foci(storage)]
    due = {key: db.due_retries(Stage.CATALOG.value).get(key, [])}
    plans = plan_batches([key], done_state(instance, [key]), foci, due)
    return any(p.job is run.job for p in plans)


def dataset_runs(
    instance: dg.DagsterInstance, storage: StorageResource, job: JobName
) -> list[PlannedRun]:
    """What the dataset sensor (new versions) or the nightly fine-tune schedule requests."""
    specs = declared_datasets(storage)
    if job is JobName.DATASET_VERSIONS:
        todo = version_runs(instance, storage, specs)
    else:
        todo = finetune_runs(instance, sorted(specs))
    return [PlannedRun(job, t.dataset, t.reason, t.run_key) for t in todo]

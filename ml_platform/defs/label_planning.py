"""The label tick with Dagster's resources: the label_sensor and `ml-platform run` both call
`apply_label_changes`, then ask the retrain planner (`defs.planning.retrain_runs`, the
nightly schedule's) which of the collections it changed need a new training decision."""

from __future__ import annotations

import dagster as dg

from ml_platform.defs.planning import retrain_runs
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.services.label_changes import LabelSyncConfig, LabelTick, label_tick
from ml_platform.services.retraining import RetrainPolicy, RetrainReason

LABELS_CLAIM = "label_tick"


def apply_label_changes(
    crawlr: CrawlrResource, storage: StorageResource, max_pages: int = 1_000_000
) -> LabelTick:
    """One label tick against the configured crawlr and metadata database, under a claim:
    the sensor and a `run` beside it never read the same pages at once."""
    settings, db = storage.settings(), storage.metadata()
    if not db.claim(LABELS_CLAIM, lease_s=settings.claim_lease_s):
        return LabelTick(note="another process is applying label changes")
    try:
        with crawlr.client() as client:
            return label_tick(client, db, LabelSyncConfig.from_settings(settings, max_pages))
    finally:
        db.release(LABELS_CLAIM)


def label_retrains(
    instance: dg.DagsterInstance,
    storage: StorageResource,
    tick: LabelTick,
    policy: RetrainPolicy,
) -> list[RetrainReason]:
    """The retrain planner's decisions for the collections whose labels `tick` settled (a
    collection whose new labels match its last decision, or with too few members, is left
    out by the planner itself; a scan spread over ticks is retrained once, at its end)."""
    changed = set(tick.settled)
    if not changed:
        return []
    return [r for r in retrain_runs(instance, storage, policy) if r.collection_id in changed]

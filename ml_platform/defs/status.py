"""The status report with Dagster's part: which batches have every stage materialized."""

from __future__ import annotations

import dagster as dg

from ml_platform.defs.planning import done_state, embedding_foci
from ml_platform.defs.resources import StorageResource
from ml_platform.services.planning import batch_state
from ml_platform.services.status import StatusReport, image_status
from ml_platform.store.collections_file import has_collections


def platform_status(instance: dg.DagsterInstance, storage: StorageResource) -> StatusReport:
    foci = embedding_foci(storage) if has_collections(storage.layout()) else []
    report = image_status(storage.layout(), foci)
    batches = storage.metadata().batch_keys()
    done = done_state(instance, batches)
    keys = [f.key for f in foci]
    complete = sum(batch_state(b, done, keys).complete for b in batches)
    report.batches = {
        "total": len(batches),
        "complete": complete,
        "incomplete": len(batches) - complete,
    }
    return report

"""`search_compaction`: each focus's batch shards compacted into an IVF search segment."""

import dagster as dg

from ml_platform.defs.knobs import knobs_of
from ml_platform.defs.resources import StorageResource
from ml_platform.services.search_compaction import CompactionConfig, compact
from ml_platform.store.search_index import indexed_foci


class SearchCompactionConfig(knobs_of(CompactionConfig)):  # type: ignore[misc]
    """When to compact (uncovered vectors) and how (codec: sq8 | fp16 | flat; nlist): the
    fields and defaults of `services.search_compaction.CompactionConfig`."""


@dg.asset(
    group_name="perception",
    deps=["similarity_index"],
    kinds={"faiss"},
    automation_condition=dg.AutomationCondition.on_cron("*/30 * * * *"),
)
def search_compaction(
    context: dg.AssetExecutionContext, config: SearchCompactionConfig, storage: StorageResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Moves the shards no compacted generation covers into a new one once they hold
    `min_new_vectors`; searches read the newest generation plus the shards it does not
    cover, so a batch is searchable from its own run on, compacted or not."""
    layout = storage.layout()
    settings: CompactionConfig = config.build(CompactionConfig)
    report: dict[str, dict[str, object]] = {}
    for focus in indexed_foci(layout):
        outcome = compact(layout, focus, settings)
        manifest = outcome.manifest
        report[focus.key] = {
            "generation": manifest.generation if manifest else None,
            "vectors": manifest.vectors if manifest else None,
            "nlist": manifest.nlist if manifest else None,
            "new_batches": outcome.new_batches, "new_vectors": outcome.new_vectors,
            "outcome": outcome.reason, "seconds": round(outcome.seconds, 1),
        }  # fmt: skip
        context.log.info("search index %s: %s", focus.key, outcome.reason)
    return dg.MaterializeResult(metadata={"indexes": dg.MetadataValue.json(report)})

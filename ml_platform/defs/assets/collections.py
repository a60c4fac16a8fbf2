"""`crawlr_collections`: every crawlr collection with its parsed focus."""

import json
from collections import Counter

import dagster as dg

from ml_platform.defs.partitions import collection_partitions
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import Collection
from ml_platform.store.collections_file import write_collections

USABLE_CHECK = "usable_collections_exist"
DIGEST_TAG = "ml_platform/collections_digest"
UNUSABLE_CHECK = "no_unusable_collections"


@dg.asset(
    group_name="crawlr",
    kinds={"python", "json"},
    check_specs=[
        dg.AssetCheckSpec(USABLE_CHECK, asset="crawlr_collections"),
        dg.AssetCheckSpec(UNUSABLE_CHECK, asset="crawlr_collections"),
    ],
)
def crawlr_collections(
    context: dg.AssetExecutionContext,
    crawlr: CrawlrResource,
    storage: StorageResource,
    models: ModelsResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """crawlr's collections with their focus (derivative type + embedding type).

    A collection without a focus, or naming an unknown type, stays here marked unusable with
    the reason; downstream assets skip it.
    """
    known = models.known_embedding_types()
    collections, digest = crawlr.collections_with_digest(known)
    write_collections(storage.layout(), collections)
    register_collection_partitions(context.instance, collections)
    unusable = [c for c in collections if not c.usable]
    for c in unusable:
        context.log.warning("collection %s (%s) unusable: %s", c.id, c.name, c.unusable_reason)
    return dg.MaterializeResult(
        metadata=_metadata(collections, known),
        check_results=_checks(collections, unusable),
        tags={DIGEST_TAG: digest[:40]},  # the planner compares it with crawlr's reply now
    )


def register_collection_partitions(
    instance: dg.DagsterInstance, collections: list[Collection]
) -> None:
    """One `collections` partition per crawlr collection (unusable ones are skipped later)."""
    name = collection_partitions.name
    assert name is not None
    existing = set(instance.get_dynamic_partitions(name))
    new = [str(c.id) for c in collections if str(c.id) not in existing]
    if new:
        instance.add_dynamic_partitions(name, new)


def _metadata(collections: list[Collection], known: list[str]) -> dict[str, dg.MetadataValue]:  # type: ignore[type-arg]
    foci = Counter(c.focus.key for c in collections if c.focus and c.usable)
    table = "\n".join(
        f"| {c.id} | {c.name} | {c.focus.key if c.focus else '-'} | "
        f"{c.unusable_reason or 'usable'} |"
        for c in collections
    )
    return {
        "collections": dg.MetadataValue.int(len(collections)),
        "usable": dg.MetadataValue.int(sum(c.usable for c in collections)),
        "foci_in_use": dg.MetadataValue.json(dict(foci)),
        "known_embedding_types": dg.MetadataValue.json(known),
        "table": dg.MetadataValue.md("| id | name | focus | status |\n|---|---|---|---|\n" + table),
    }


def _checks(collections: list[Collection], unusable: list[Collection]) -> list[dg.AssetCheckResult]:
    usable = len(collections) - len(unusable)
    reasons = {str(c.id): c.unusable_reason or "" for c in unusable}
    return [
        dg.AssetCheckResult(
            check_name=USABLE_CHECK,
            passed=usable > 0,
            metadata={"usable": usable},
        ),
        dg.AssetCheckResult(
            check_name=UNUSABLE_CHECK,
            passed=not unusable,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"unusable": dg.MetadataValue.json(reasons)},
            description=json.dumps(reasons)[:500] if unusable else None,
        ),
    ]

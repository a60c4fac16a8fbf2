"""`image_catalog`: the images of one ingestion batch, downloaded once and validated."""

from collections import Counter

import dagster as dg

from ml_platform.defs.partitions import ingestion_batches
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.domain import ImageLimits, IngestStatus, Stage
from ml_platform.services.ingestion import (
    already_stored,
    ingest_batch,
    record_attempts,
)
from ml_platform.store.tables import read_catalog, write_catalog


@dg.asset(group_name="crawlr", partitions_def=ingestion_batches, kinds={"python", "parquet"})
def image_catalog(
    context: dg.AssetExecutionContext, crawlr: CrawlrResource, storage: StorageResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Each image of the batch stored content-addressed under home, EXIF-oriented size and
    capture time recorded; bad images are recorded with their reason and skipped."""
    key = context.partition_key
    layout, settings = storage.layout(), storage.settings()
    images, malformed = layout.manifests().read(key)
    rerun = layout.store.exists(layout.catalog(key))
    previous = {r.image.id: r for r in read_catalog(layout, key)} if rerun else {}
    db = layout.metadata()
    limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels)
    settled = db.settled(Stage.CATALOG, [i.id for i in images])
    store = layout.images()
    with crawlr.client() as client:
        outcome = ingest_batch(client, store, images, limits, previous, settled)
    results = outcome.results
    write_catalog(layout, key, results)
    record_attempts(db, outcome, settings)
    failures = {str(r.image.id): r.error for r in results if r.status is IngestStatus.FAILED}
    statuses = Counter(r.status.value for r in results)
    return dg.MaterializeResult(
        metadata={
            "images": len(results),
            "ok": statuses.get(IngestStatus.OK.value, 0),
            "failed": statuses.get(IngestStatus.FAILED.value, 0),
            "reused_from_previous_run": sum(
                already_stored(store, previous.get(i.id)) for i in images
            ),
            "failures": dg.MetadataValue.json(failures),
            "malformed_entries": dg.MetadataValue.json(malformed),
            "pets": len({r.image.pet_id for r in results if r.image.pet_id is not None}),
            "path": dg.MetadataValue.path(layout.store.url_of(layout.catalog(key))),
        }
    )

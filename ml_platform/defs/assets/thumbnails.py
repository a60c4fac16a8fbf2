"""`thumbnails`: a small JPEG of every stored image of a batch, made once per image."""

import dagster as dg

from ml_platform.defs.partitions import ingestion_batches
from ml_platform.defs.resources import StorageResource
from ml_platform.services.thumbnails import THUMBNAIL_PX, batch_thumbnails
from ml_platform.store.tables import read_catalog
from ml_platform.store.thumbnails_table import has_thumbnails, read_thumbnails, write_thumbnails


@dg.asset(
    group_name="clusters",
    partitions_def=ingestion_batches,
    deps=["image_catalog"],
    kinds={"pillow", "parquet"},
)
def thumbnails(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Each ingested image scaled to fit 256 px (JPEG), served at
    `GET /v1/images/{id}/thumbnail` and drawn in the hero contact sheets. A re-run keeps the
    thumbnails of unchanged images; an image that cannot be decoded is recorded with the reason."""
    key, layout = context.partition_key, storage.layout()
    previous = read_thumbnails(layout, key) if has_thumbnails(layout, key) else {}
    outcome = batch_thumbnails(read_catalog(layout, key), previous, layout.images())
    write_thumbnails(layout, key, outcome.rows)
    failures = {str(i): reason for i, reason in outcome.failures.items()}
    if failures:
        context.log.warning("%d images of batch %s have no thumbnail", len(failures), key)
    return dg.MaterializeResult(
        metadata={
            "thumbnails": len(outcome.rows) - len(failures),
            "made": outcome.made,
            "reused": outcome.reused,
            "failed": len(failures),
            "failures": dg.MetadataValue.json(failures),
            "max_side_px": THUMBNAIL_PX,
            "bytes": sum(len(r.data or b"") for r in outcome.rows),
            "path": dg.MetadataValue.path(layout.store.url_of(layout.thumbnails(key))),
        }
    )

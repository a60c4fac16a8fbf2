"""`thumbnails` on a temporary instance: one per stored image, sized to fit, bad ones recorded."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import numpy as np
from PIL import Image

from ml_platform.defs.assets.thumbnails import thumbnails
from ml_platform.defs.resources import StorageResource
from ml_platform.domain import ImageRecord, IngestedImage, IngestStatus
from ml_platform.services.thumbnails import THUMBNAIL_PX
from ml_platform.store.tables import write_catalog
from ml_platform.store.thumbnails_table import read_thumbnails


def stored(storage: StorageResource, image_id: int, data: bytes) -> IngestedImage:
    sha, path = storage.layout().images().put(data, "JPEG")
    record = ImageRecord(image_id, f"/media/{image_id}.jpg", datetime(2025, 1, 1, tzinfo=UTC), 1)
    return IngestedImage(record, IngestStatus.OK, sha256=sha, path=str(path))


def jpeg(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(width).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


def write_batch(storage: StorageResource, key: str, entries: list[IngestedImage]) -> None:
    write_catalog(storage.layout(), key, entries)


def run(storage: StorageResource, instance: dg.DagsterInstance) -> dict[str, object]:
    result = dg.materialize(
        [thumbnails], partition_key="b1", instance=instance, resources={"storage": storage}
    )
    assert result.success  # a bad image never fails the batch
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_thumbnails_fit_the_size_once_per_image_and_record_bad_images(tmp_path: Path) -> None:
    storage = StorageResource(home=str(tmp_path))
    failed = IngestedImage(ImageRecord(4, "/x", datetime(2025, 1, 1, tzinfo=UTC)),
                           IngestStatus.FAILED, error="404")  # fmt: skip
    entries = [
        stored(storage, 1, jpeg(800, 400)),
        stored(storage, 2, jpeg(60, 90)),
        stored(storage, 3, b"\xff\xd8 not really a jpeg"),
        failed,
    ]
    write_batch(storage, "b1", entries)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("ingestion_batches", ["b1"])

    metadata = run(storage, instance)
    rows = read_thumbnails(storage.layout(), "b1")
    assert sorted(rows) == [1, 2, 3]  # one row per stored image; the failed download has none
    assert (rows[1].width, rows[1].height) == (THUMBNAIL_PX, THUMBNAIL_PX // 2)
    assert (rows[2].width, rows[2].height) == (60, 90)  # never scaled up
    with Image.open(io.BytesIO(rows[1].data or b"")) as image:
        assert image.format == "JPEG" and image.size == (THUMBNAIL_PX, THUMBNAIL_PX // 2)
    assert not rows[3].ok and "decodable" in (rows[3].error or "")
    assert metadata["made"] == 3 and metadata["failed"] == 1
    assert metadata["failures"] == {"3": rows[3].error}

    again = run(storage, instance)
    assert again["reused"] == 2 and again["made"] == 1  # only the bad image is tried again
    assert read_thumbnails(storage.layout(), "b1", ids=[1])[1].data == rows[1].data

"""image_catalog materialized on a temporary instance against a real crawlr server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from ml_platform.defs.assets.images import image_catalog
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.domain import IngestStatus
from ml_platform.services.batches import FeedCursor, register_batch
from ml_platform.store.tables import read_catalog
from tests.crawlr_server import CrawlrServer, CrawlrState


def exif_rotated_jpeg() -> bytes:
    """A 60x40 landscape image stored turned, with orientation 6 and a capture time."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769)[0x9003] = "2024:07:14 08:30:00"
    buffer = io.BytesIO()
    Image.new("RGB", (60, 40), "red").transpose(Image.Transpose.ROTATE_90).save(
        buffer, "JPEG", exif=exif.tobytes()
    )
    return buffer.getvalue()


def bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[CrawlrServer]:
    monkeypatch.setenv("ML_PLATFORM_MAX_IMAGE_PIXELS", "1000000")
    monkeypatch.setenv("ML_PLATFORM_CRAWLR_RETRIES", "0")
    state = CrawlrState()
    for image_id in (1, 2):
        state.add_image(image_id, pet_id=10)
    state.add_image(3, url="/media/rotated.jpg")
    state.files["/media/rotated.jpg"] = exif_rotated_jpeg()
    state.add_image(4, url="/media/corrupt.jpg")
    state.files["/media/corrupt.jpg"] = state.files["/media/1.jpg"][:150]
    state.add_image(5, url="/media/bomb.png")
    state.files["/media/bomb.png"] = bomb_png()
    state.add_image(6, url="/media/missing.jpg")
    del state.files["/media/missing.jpg"]
    with CrawlrServer(state) as server:
        yield server


def ingest(home: Path, source: str) -> tuple[str, dg.DagsterInstance]:
    crawlr, storage = CrawlrResource(home=str(home), source=source), StorageResource(home=str(home))
    batch, _ = crawlr.next_batch(FeedCursor(), storage.metadata())
    assert batch is not None
    register_batch(batch, storage.manifests(), storage.metadata())
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("ingestion_batches", [batch.key])
    resources = {"crawlr": crawlr, "storage": storage}
    result = dg.materialize(
        [image_catalog], partition_key=batch.key, instance=instance, resources=resources
    )
    assert result.success
    return batch.key, instance


def test_bad_images_are_recorded_and_skipped_without_failing_the_batch(
    tmp_path: Path, server: CrawlrServer
) -> None:
    key, _ = ingest(tmp_path, server.url)
    by_id = {r.image.id: r for r in read_catalog(StorageResource(home=str(tmp_path)).layout(), key)}
    assert {i for i, r in by_id.items() if r.status is IngestStatus.OK} == {1, 2, 3}
    assert "not a decodable image" in (by_id[4].error or "") or "corrupt" in (by_id[4].error or "")
    assert "pixels; the limit is 1000000" in (by_id[5].error or "") or "bomb" in (
        by_id[5].error or ""
    )
    assert "HTTP 404" in (by_id[6].error or "")


def test_exif_orientation_and_capture_time_are_applied(
    tmp_path: Path, server: CrawlrServer
) -> None:
    key, _ = ingest(tmp_path, server.url)
    rotated = next(
        r
        for r in read_catalog(StorageResource(home=str(tmp_path)).layout(), key)
        if r.image.id == 3
    )
    assert (rotated.width, rotated.height) == (60, 40)
    assert rotated.captured_at is not None and rotated.captured_at.year == 2024


def test_images_are_stored_content_addressed_once(tmp_path: Path, server: CrawlrServer) -> None:
    key, instance = ingest(tmp_path, server.url)
    storage = StorageResource(home=str(tmp_path))
    stored = sorted(p for p in (tmp_path / "images").rglob("*") if p.is_file())
    assert len(stored) == 3
    before = {p: p.stat().st_mtime_ns for p in stored}
    resources = {
        "crawlr": CrawlrResource(home=str(tmp_path), source=server.url),
        "storage": storage,
    }
    dg.materialize([image_catalog], partition_key=key, instance=instance, resources=resources)
    assert {p: p.stat().st_mtime_ns for p in stored} == before
    events = instance.fetch_materializations(dg.AssetKey("image_catalog"), limit=1).records
    metadata = events[0].asset_materialization.metadata if events[0].asset_materialization else {}
    assert metadata["reused_from_previous_run"].value == 3

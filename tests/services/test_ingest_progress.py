"""`ingest_batch` reports every image to whoever listens (the CLI's progress line)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from ml_platform.crawlr.snapshot import SnapshotCrawlrClient
from ml_platform.domain import ImageLimits, ImageRecord, IngestStatus
from ml_platform.services.ingest_progress import listening
from ml_platform.services.ingestion import ingest_batch


def test_ingest_reports_each_image_done_out_of_the_batch(tmp_path: Path) -> None:
    (tmp_path / "images.json").write_text('{"images": [], "next_cursor": null}')
    when = datetime(2025, 1, 1, tzinfo=UTC)
    images = [ImageRecord(i, f"images/missing-{i}.jpg", when) for i in (7, 8, 9)]
    seen: list[tuple[int, int]] = []
    store = cast(Any, None)  # never reached: every image fails to download first

    with listening(lambda done, total: seen.append((done, total))):
        outcome = ingest_batch(
            SnapshotCrawlrClient(tmp_path), store, images, ImageLimits(10**6, 10**6)
        )
    ingest_batch(SnapshotCrawlrClient(tmp_path), store, images[:1], ImageLimits(10**6, 10**6))

    assert seen == [(1, 3), (2, 3), (3, 3)]  # and nothing once the listener left
    assert [r.status for r in outcome.results] == [IngestStatus.FAILED] * 3

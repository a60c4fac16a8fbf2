"""Bytes that do not decode are retried like a failed download, unless the re-downloaded bytes
hash the same (then the file itself is broken). Real HTTP crawlr on 127.0.0.1; the truncated
body has a consistent Content-Length, as in the fault trial that lost 5 of 120 images."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ml_platform.crawlr.http import HttpCrawlrClient
from ml_platform.domain import ImageLimits, ImageRecord, IngestStatus
from ml_platform.services.ingestion import ingest_batch
from ml_platform.settings import Settings
from ml_platform.store.layout import Layout
from tests.faulty_crawlr import FaultPlan, FaultyState, faulty_crawlr

LIMITS = ImageLimits(max_bytes=10_000_000, max_pixels=50_000_000)


def test_a_truncated_download_is_retried_and_a_broken_file_is_given_up_on(
    tmp_path: Path,
) -> None:
    state = FaultyState(collections=[], faults=FaultPlan(seed=0, rate=0.0))
    for image_id in (1, 2):
        state.add_image(image_id)
    whole = {url: data for url, data in state.files.items()}
    for url, data in whole.items():
        state.files[url] = data[: len(data) // 3]  # served with its own (consistent) length
    store = Layout.for_settings(Settings(home=tmp_path)).images()
    records = [ImageRecord(i, f"/media/{i}.jpg", datetime(2025, 3, 1, tzinfo=UTC)) for i in (1, 2)]
    with faulty_crawlr(state) as url:
        client = HttpCrawlrClient(url, timeout_s=5.0, retries=0, backoff_s=0.01)
        first = ingest_batch(client, store, records, LIMITS)
        assert first.retryable == {1, 2}  # before: a decode failure was failed for good
        state.files["/media/1.jpg"] = whole["/media/1.jpg"]  # the transfer works this time
        previous = {r.image.id: r for r in first.results}
        second = ingest_batch(client, store, records, LIMITS, previous)
    by_id = {r.image.id: r for r in second.results}
    assert by_id[1].status is IngestStatus.OK
    assert by_id[2].status is IngestStatus.FAILED and second.retryable == frozenset()
    assert "the same as last time" in (by_id[2].error or "")

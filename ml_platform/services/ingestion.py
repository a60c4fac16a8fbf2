"""Ingest one batch: download each image once, validate it, store it content-addressed.

A bad image (download error, not an image, too large, decompression bomb) is recorded with its
reason and skipped; it never fails the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

from ml_platform.crawlr.client import CrawlrClient, CrawlrError
from ml_platform.domain import ImageRecord, IngestedImage, IngestStatus, Stage
from ml_platform.services.ingest_progress import notify_images
from ml_platform.settings import Settings
from ml_platform.store.image_store import ImageStore
from ml_platform.store.metadata import MetadataDB
from ml_platform.vision.decode import ImageDecodeError, check_byte_size, decode_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestLimits:
    max_bytes: int
    max_pixels: int


def _failed(image: ImageRecord, reason: str, *, retryable: bool) -> IngestedImage:
    log.warning("image %s skipped: %s", image.id, reason)
    extra = {"retryable": "true" if retryable else "false"}
    return IngestedImage(image=image, status=IngestStatus.FAILED, error=reason, extra=extra)


@dataclass(frozen=True)
class IngestOutcome:
    """What one catalog run did: every image's result, and the failures a retry may fix."""

    results: list[IngestedImage]
    retryable: frozenset[int]
    attempted: frozenset[int]


def _retryable(exc: Exception) -> bool:
    return isinstance(exc, CrawlrError) and exc.retryable


def ingest_one(
    client: CrawlrClient, store: ImageStore, image: ImageRecord, limits: IngestLimits
) -> IngestedImage:
    try:
        data = client.image_bytes(image.url, limits.max_bytes)
        check_byte_size(data, limits.max_bytes)
        decoded = decode_image(data, max_pixels=limits.max_pixels)
    except (CrawlrError, ImageDecodeError) as exc:
        return _failed(image, f"{type(exc).__name__}: {exc}", retryable=_retryable(exc))
    except Exception as exc:  # one bad image never fails a batch: recorded, not raised
        log.exception("image %s: unexpected error while ingesting", image.id)
        return _failed(image, f"unexpected {type(exc).__name__}: {exc}", retryable=False)
    image_format = decoded.format
    sha, key = store.put(data, image_format)
    return IngestedImage(
        image=image,
        status=IngestStatus.OK,
        sha256=sha,
        path=key,
        width=decoded.image.width,
        height=decoded.image.height,
        captured_at=decoded.captured_at,
        extra={"format": image_format or "", "exif_orientation": str(decoded.orientation)},
    )


def already_stored(store: ImageStore, previous: IngestedImage | None) -> bool:
    return (
        previous is not None
        and previous.status is IngestStatus.OK
        and previous.path is not None
        and store.has(previous.path)
    )


def ingest_batch(
    client: CrawlrClient,
    store: ImageStore,
    images: Sequence[ImageRecord],
    limits: IngestLimits,
    previous: Mapping[int, IngestedImage] | None = None,
    settled: Set[int] = frozenset(),
) -> IngestOutcome:
    """Ingest `images`, reusing `previous` outcomes whose file is already stored and those
    whose failure is settled (permanent, or out of attempts); every other image is tried."""
    previous = previous or {}
    results, attempted, retryable = [], set(), set()
    for done, image in enumerate(images, start=1):
        notify_images(done, len(images))
        earlier = previous.get(image.id)
        if earlier is not None and (already_stored(store, earlier) or image.id in settled):
            results.append(earlier)
            continue
        result = ingest_one(client, store, image, limits)
        attempted.add(image.id)
        if result.status is IngestStatus.FAILED and result.extra.get("retryable") == "true":
            retryable.add(image.id)
        results.append(result)
    return IngestOutcome(results, frozenset(retryable), frozenset(attempted))


def record_attempts(db: MetadataDB, outcome: IngestOutcome, settings: Settings) -> None:
    """Record the download outcome of every image this run tried (attempts, backoff)."""
    tried = [r for r in outcome.results if r.image.id in outcome.attempted]
    ok = [r.image.id for r in tried if r.status is IngestStatus.OK]
    failed = {
        r.image.id: (r.error or "failed", r.image.id in outcome.retryable)
        for r in tried
        if r.status is IngestStatus.FAILED
    }
    db.record_outcomes(
        Stage.CATALOG, ok, failed,
        max_attempts=settings.download_max_attempts,
        backoff_s=settings.download_retry_backoff_s,
    )  # fmt: skip

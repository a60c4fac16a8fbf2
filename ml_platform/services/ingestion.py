"""Ingest one batch: download each image once, validate it, store it content-addressed.

A bad image (download error, not an image, too large, decompression bomb) is recorded with its
reason and skipped; it never fails the batch. Bytes that do not decode are retried like a
failed download (a transfer can arrive truncated with a consistent Content-Length), unless the
re-downloaded bytes hash the same as the last failed attempt's: then the file itself is broken.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

from ml_platform.crawlr.client import CrawlrClient, CrawlrError
from ml_platform.domain import ImageLimits, ImageRecord, IngestedImage, IngestStatus, Stage
from ml_platform.services.ingest_progress import notify_images
from ml_platform.settings import Settings
from ml_platform.store.image_store import ImageStore
from ml_platform.store.metadata import MetadataDB
from ml_platform.vision.decode import (
    ImageDecodeError,
    ImageTooLargeError,
    check_byte_size,
    decode_image,
)

log = logging.getLogger(__name__)


FAILED_SHA256 = "failed_sha256"  # extra: the hash of bytes that did not decode


def _failed(
    image: ImageRecord, reason: str, *, retryable: bool, failed_sha256: str = ""
) -> IngestedImage:
    log.warning("image %s skipped: %s", image.id, reason)
    extra = {"retryable": "true" if retryable else "false"}
    if failed_sha256:
        extra[FAILED_SHA256] = failed_sha256
    return IngestedImage(image=image, status=IngestStatus.FAILED, error=reason, extra=extra)


def _undecodable(
    image: ImageRecord, data: bytes, exc: ImageDecodeError, failed_before: str
) -> IngestedImage:
    """A decode failure: retryable, unless these bytes are the ones that failed last time."""
    digest = hashlib.sha256(data).hexdigest()
    same = digest == failed_before
    why = (
        "the re-downloaded bytes are the same as last time: the file is broken"
        if same
        else "retried: the download may have arrived truncated"
    )
    reason = f"{type(exc).__name__}: {exc} ({why})"
    return _failed(image, reason, retryable=not same, failed_sha256=digest)


@dataclass(frozen=True)
class IngestOutcome:
    """What one catalog run did: every image's result, and the failures a retry may fix."""

    results: list[IngestedImage]
    retryable: frozenset[int]
    attempted: frozenset[int]


def _retryable(exc: Exception) -> bool:
    return isinstance(exc, CrawlrError) and exc.retryable


def ingest_one(
    client: CrawlrClient,
    store: ImageStore,
    image: ImageRecord,
    limits: ImageLimits,
    failed_before: str = "",
) -> IngestedImage:
    """`failed_before`: the sha256 of the bytes that failed to decode at the last attempt."""
    try:
        data = client.image_bytes(image.url, limits.max_bytes)
        check_byte_size(data, limits.max_bytes)
        decoded = decode_image(data, max_pixels=limits.max_pixels)
    except ImageTooLargeError as exc:  # over a limit: the same file is over it next time
        return _failed(image, f"{type(exc).__name__}: {exc}", retryable=False)
    except ImageDecodeError as exc:
        return _undecodable(image, data, exc, failed_before)
    except CrawlrError as exc:
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
    limits: ImageLimits,
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
        failed_before = earlier.extra.get(FAILED_SHA256, "") if earlier is not None else ""
        result = ingest_one(client, store, image, limits, failed_before)
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

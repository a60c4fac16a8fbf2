"""Ingest one batch: download each image once, validate it, store it content-addressed.

A bad image (download error, not an image, too large, decompression bomb) is recorded with its
reason and skipped; it never fails the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ml_platform.crawlr.client import CrawlrClient, CrawlrError
from ml_platform.domain import ImageRecord, IngestedImage, IngestStatus
from ml_platform.store.image_store import ImageStore
from ml_platform.vision.decode import ImageDecodeError, check_byte_size, decode_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestLimits:
    max_bytes: int
    max_pixels: int


def _failed(image: ImageRecord, reason: str) -> IngestedImage:
    log.warning("image %s skipped: %s", image.id, reason)
    return IngestedImage(image=image, status=IngestStatus.FAILED, error=reason)


def ingest_one(
    client: CrawlrClient, store: ImageStore, image: ImageRecord, limits: IngestLimits
) -> IngestedImage:
    try:
        data = client.image_bytes(image.url, limits.max_bytes)
        check_byte_size(data, limits.max_bytes)
        decoded = decode_image(data, max_pixels=limits.max_pixels)
    except (CrawlrError, ImageDecodeError) as exc:
        return _failed(image, f"{type(exc).__name__}: {exc}")
    image_format = decoded.format
    sha, path = store.put(data, image_format)
    return IngestedImage(
        image=image,
        status=IngestStatus.OK,
        sha256=sha,
        path=str(path),
        width=decoded.image.width,
        height=decoded.image.height,
        captured_at=decoded.captured_at,
        extra={"format": image_format or "", "exif_orientation": str(decoded.orientation)},
    )


def already_stored(previous: IngestedImage | None) -> bool:
    return (
        previous is not None
        and previous.status is IngestStatus.OK
        and previous.path is not None
        and Path(previous.path).is_file()
    )


def ingest_batch(
    client: CrawlrClient,
    store: ImageStore,
    images: Sequence[ImageRecord],
    limits: IngestLimits,
    previous: Mapping[int, IngestedImage] | None = None,
) -> list[IngestedImage]:
    """Ingest `images`, reusing `previous` outcomes whose file is already stored."""
    previous = previous or {}
    results = []
    for image in images:
        earlier = previous.get(image.id)
        if already_stored(earlier) and earlier is not None:
            results.append(earlier)
        else:
            results.append(ingest_one(client, store, image, limits))
    return results

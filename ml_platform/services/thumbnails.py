"""Thumbnails of a batch's stored images: made once per image, reused while its bytes match.

A thumbnail is the EXIF-oriented image scaled so its long side is at most `size` pixels,
as JPEG. An image that cannot be decoded is recorded with the reason, never fails the batch.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PIL import Image

from ml_platform.domain import IngestedImage, IngestStatus
from ml_platform.services.perception import stored_rgb
from ml_platform.store.image_store import ImageStore
from ml_platform.store.thumbnails_table import Thumbnail
from ml_platform.vision.decode import ImageDecodeError

log = logging.getLogger(__name__)

THUMBNAIL_PX = 256
JPEG_QUALITY = 85


@dataclass(frozen=True)
class ThumbnailOutcome:
    rows: list[Thumbnail]
    made: int
    reused: int

    @property
    def failures(self) -> dict[int, str]:
        return {r.image_id: r.error or "" for r in self.rows if not r.ok}


def thumbnail_bytes(image: Image.Image, size: int = THUMBNAIL_PX) -> tuple[bytes, int, int]:
    """JPEG bytes and size of `image` scaled (never up) to fit `size` x `size`."""
    small = image.copy()
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue(), small.width, small.height


def make_thumbnail(entry: IngestedImage, images: ImageStore, size: int = THUMBNAIL_PX) -> Thumbnail:
    """The thumbnail of one catalogued image, or a row with the reason it has none."""
    image_id, sha = entry.image.id, entry.sha256
    if entry.path is None:
        return Thumbnail(image_id, sha, 0, 0, None, "the catalog has no stored file for it")
    try:
        image = stored_rgb(images, entry, (size, size))
    except ImageDecodeError as exc:
        log.warning("image %s: no thumbnail: %s", image_id, exc)
        return Thumbnail(image_id, sha, 0, 0, None, f"{entry.path}: {exc}")
    data, width, height = thumbnail_bytes(image, size)
    return Thumbnail(image_id, sha, width, height, data)


def batch_thumbnails(
    images: Sequence[IngestedImage],
    previous: Mapping[int, Thumbnail],
    images_store: ImageStore,
    size: int = THUMBNAIL_PX,
) -> ThumbnailOutcome:
    """One row per successfully ingested image; a previous row is kept while the image's
    sha256 is unchanged (images that failed before are tried again)."""
    rows, reused = [], 0
    for entry in images:
        if entry.status is not IngestStatus.OK:
            continue
        old = previous.get(entry.image.id)
        if old is not None and old.ok and old.sha256 == entry.sha256:
            rows.append(old)
            reused += 1
        else:
            rows.append(make_thumbnail(entry, images_store, size))
    return ThumbnailOutcome(rows, len(rows) - reused, reused)

"""A platform home filled with synthetic catalogs and embeddings (no images are decoded).

For tests of the stages after perception: classifiers and clusters read exactly these files.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from PIL import Image

from ml_platform.defs.resources import StorageResource
from ml_platform.domain import (
    Collection,
    Focus,
    ImageRecord,
    IngestedImage,
    IngestStatus,
)
from ml_platform.store.collections_file import write_collections
from ml_platform.store.detections_table import DetectionRow, write_detections
from ml_platform.store.image_store import ImageStore
from ml_platform.store.tables import write_catalog
from ml_platform.store.vectors import EmbeddingRow, write_embeddings
from ml_platform.vision.embedders.identity import EmbedderIdentity


@dataclass(frozen=True)
class SyntheticImage:
    id: int
    vector: np.ndarray
    pet_id: int | None = None
    members: tuple[int, ...] = ()
    rejected: tuple[int, ...] = ()


def _image_file(images: ImageStore, image_id: int) -> tuple[str, str]:
    """A random PNG put in the image store: its sha256 and key."""
    rng = np.random.default_rng(image_id)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return images.put(buffer.getvalue(), "PNG")


def add_batch(
    storage: StorageResource, key: str, images: list[SyntheticImage], foci: list[Focus]
) -> None:
    """Write one ingested batch: catalog, detections (none found) and embeddings per focus."""
    layout = storage.layout()
    base = datetime(2025, 1, 1, tzinfo=UTC)
    stored = {im.id: _image_file(layout.images(), im.id) for im in images}
    ingested = [
        IngestedImage(
            image=ImageRecord(im.id, f"/media/{im.id}.png", base + timedelta(days=im.id),
                              im.pet_id, im.members, im.rejected),
            status=IngestStatus.OK, sha256=stored[im.id][0], path=stored[im.id][1],
            width=64, height=48,
        )
        for im in images
    ]  # fmt: skip
    write_catalog(layout, key, ingested)
    rows = [
        DetectionRow(im.id, "ok", person_detector="test", face_detector="test") for im in images
    ]
    write_detections(layout, key, rows)
    for focus in foci:
        dim = images[0].vector.shape[0]
        who = EmbedderIdentity(focus.embedding_type, "synthetic", "v1")
        vectors = [EmbeddingRow(im.id, "ok", im.vector.astype(np.float32)) for im in images]
        write_embeddings(layout, focus, key, vectors, who, dim)
    layout.metadata().register_batch(key, [r.image for r in ingested])


def set_collections(storage: StorageResource, collections: list[Collection]) -> None:
    write_collections(storage.layout(), collections)

"""A platform home filled with synthetic catalogs and embeddings (no images are decoded).

For tests of the stages after perception: classifiers and clusters read exactly these files.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
from ml_platform.store.tables import catalog_frame, write_parquet_atomic
from ml_platform.store.vectors import EmbedderIdentity, EmbeddingRow, write_embeddings


@dataclass(frozen=True)
class SyntheticImage:
    id: int
    vector: np.ndarray
    pet_id: int | None = None
    members: tuple[int, ...] = ()
    rejected: tuple[int, ...] = ()


def _image_file(root: Path, image_id: int) -> Path:
    path = root / "images" / f"{image_id}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(image_id)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def add_batch(
    storage: StorageResource, key: str, images: list[SyntheticImage], foci: list[Focus]
) -> None:
    """Write one ingested batch: catalog, detections (none found) and embeddings per focus."""
    home = Path(storage.settings().resolved_home)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    ingested = [
        IngestedImage(
            image=ImageRecord(im.id, f"/media/{im.id}.png", base + timedelta(days=im.id),
                              im.pet_id, im.members, im.rejected),
            status=IngestStatus.OK, sha256=f"{im.id:064d}", path=str(_image_file(home, im.id)),
            width=64, height=48,
        )
        for im in images
    ]  # fmt: skip
    write_parquet_atomic(catalog_frame(ingested), storage.catalog_path(key))
    rows = [
        DetectionRow(im.id, "ok", person_detector="test", face_detector="test") for im in images
    ]
    write_detections(storage.detections_path(key), rows)
    for focus in foci:
        dim = images[0].vector.shape[0]
        who = EmbedderIdentity(focus.derivative_type.value, focus.embedding_type, "synthetic",
                               "v1", "pretrained")  # fmt: skip
        vectors = [EmbeddingRow(im.id, "ok", im.vector.astype(np.float32)) for im in images]
        write_embeddings(storage.embeddings_path(focus, key), vectors, who, dim)
    storage.metadata().register_batch(key, [r.image for r in ingested])


def set_collections(storage: StorageResource, collections: list[Collection]) -> None:
    write_collections(storage.collections_path(), collections)
